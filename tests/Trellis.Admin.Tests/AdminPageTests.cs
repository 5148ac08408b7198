using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using Trellis.Proxy.Tests;

namespace Trellis.Admin.Tests;

/// <summary>The admin page in headless Chromium, against a real proxy with real Echo backends.</summary>
public sealed class AdminPageTests
{
    /// <summary>Counts the pixels of a canvas that are of a chart line's colour (not white, not grid grey, not text).</summary>
    private const string LinePixels = """
        ([id, r, g, b]) => {
          const c = document.getElementById(id);
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) n++;
          return n;
        }
        """;

    /// <summary>Draws a PNG (data URL) in a canvas and counts its distinct colours, sampled: a blank page has one or two.</summary>
    private const string DistinctColours = """
        async (src) => {
          const img = new Image();
          img.src = src;
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.width; c.height = img.height;
          const ctx = c.getContext('2d');
          ctx.drawImage(img, 0, 0);
          const d = ctx.getImageData(0, 0, c.width, c.height).data;
          const seen = new Set();
          for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          return seen.size;
        }
        """;

    private static async Task<double> CallsPerSecondAsync(IPage page)
    {
        var text = await page.Locator("#calls-per-second").TextContentAsync();
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : 0;
    }

    [Fact]
    public async Task Page_shows_instances_with_zone_and_weight_and_live_statistics_with_charts()
    {
        await using var rig = await AdminRig.StartAsync();
        await rig.AddBackendAsync("echo-a", "z1", 100);
        await rig.AddBackendAsync("echo-b", "z2", 300);
        await rig.CallAsync(20); // the proxy routes Echo from its first call

        var (playwright, browser) = await Browser.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
            await page.GotoAsync(rig.Url + "/");
            await page.Locator("#services li[data-service='Echo']").WaitForAsync();
            var a = page.Locator("#instances tr[data-instance='echo-a']");
            var b = page.Locator("#instances tr[data-instance='echo-b']");
            await b.WaitForAsync();
            Assert.Equal("z1", await a.Locator("td.zone").TextContentAsync());
            Assert.Equal("100", await a.Locator("td.weight").TextContentAsync());
            Assert.Equal("z2", await b.Locator("td.zone").TextContentAsync());
            Assert.Equal("300", await b.Locator("td.weight").TextContentAsync());
            Assert.Equal("ok", await a.Locator("td.health").TextContentAsync());
            Assert.Contains(rig.Proxy.Registry.GetType().Name.Length > 0 ? "127.0.0.1:" : "", await a.Locator("td.address").TextContentAsync());

            // load for a few seconds: the statistics (complete seconds only) and the charts follow
            await using (new Traffic(rig))
            {
                await UntilCallsPerSecondAsync(page, "calls/s stayed 0 under load");
                await UntilAsync(async () => (await page.Locator("#p99").TextContentAsync() ?? "").EndsWith('s'), "a p99 latency");
                Assert.NotEqual("0", await page.Locator("#chart-calls").GetAttributeAsync("data-points"));
                var clock = Stopwatch.StartNew();
                while (int.Parse(await page.Locator("#chart-latency").GetAttributeAsync("data-points") ?? "0", CultureInfo.InvariantCulture) < 6 && clock.Elapsed < TimeSpan.FromSeconds(15))
                {
                    await Task.Delay(200); // a few seconds of latencies (p50 and p99 of each)
                }

                var blue = await page.EvaluateAsync<int>(LinePixels, new object[] { "chart-calls", 0x25, 0x63, 0xeb });
                var green = await page.EvaluateAsync<int>(LinePixels, new object[] { "chart-latency", 0x05, 0x96, 0x69 });
                Assert.True(blue > 20, $"the calls chart has {blue} pixels of its line");
                Assert.True(green > 20, $"the latency chart has {green} pixels of its p50 line");
            }

            var file = Browser.Screenshot("admin-proxy");
            var png = await page.ScreenshotAsync(new PageScreenshotOptions { Path = file, FullPage = true });
            Assert.True(File.Exists(file));
            var colours = await page.EvaluateAsync<int>(DistinctColours, "data:image/png;base64," + Convert.ToBase64String(png));
            Assert.True(colours > 50, $"the screenshot has {colours} colours: blank?");
            var text = await page.InnerTextAsync("body");
            Assert.Contains("echo-a", text);
            Assert.Contains("echo-b", text);
            Assert.DoesNotContain("update failed", text);
        }
    }

    [Fact]
    public async Task Offline_button_writes_the_config_and_the_proxy_stops_sending_to_the_instance_and_online_restores_it()
    {
        await using var rig = await AdminRig.StartAsync();
        await rig.AddBackendAsync("echo-a", "z1", 100);
        await rig.AddBackendAsync("echo-b", "z1", 100);
        await rig.CallAsync(40);
        Assert.True(rig.Backends["echo-a"].Echoes > 0 && rig.Backends["echo-b"].Echoes > 0, "both instances take calls at first");

        var (playwright, browser) = await Browser.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(rig.Url + "/");
            var row = page.Locator("#instances tr[data-instance='echo-a']");
            await row.Locator("button[data-action='offline']").ClickAsync();
            await row.Locator("td.health.offline").WaitForAsync();
            Assert.Contains("is now offline", await page.Locator("#message").TextContentAsync());

            var stored = await rig.Proxy.Registry.GetConfigAsync(ProxyRig.Product, "Echo");
            Assert.NotNull(stored);
            using (var config = JsonDocument.Parse(stored.Data))
            {
                Assert.Equal(["echo-a"], config.RootElement.GetProperty("offline").EnumerateArray().Select(e => e.GetString()));
            }

            await page.Locator("#config").GetByText("echo-a").WaitForAsync(); // the config panel shows it

            var before = rig.Backends["echo-a"].Echoes;
            await rig.CallAsync(60);
            Assert.Equal(before, rig.Backends["echo-a"].Echoes);

            await row.Locator("button[data-action='online']").ClickAsync();
            await row.Locator("td.health.ok").WaitForAsync();
            Assert.Contains("is now online", await page.Locator("#message").TextContentAsync());
            var back = rig.Backends["echo-a"].Echoes;
            await rig.CallAsync(60);
            Assert.True(rig.Backends["echo-a"].Echoes > back, "echo-a took no call after coming back online");
        }
    }

    [Fact]
    public async Task Api_refuses_unsafe_actions_with_clear_json_errors()
    {
        await using var rig = await AdminRig.StartAsync();
        await rig.AddBackendAsync("echo-a", "z1", 100);
        await rig.CallAsync(2);
        using var http = new HttpClient { BaseAddress = new Uri(rig.Url) };

        var get = await http.GetAsync("/api/services/Echo/instances/echo-a/offline");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);

        var noHeader = await http.PostAsync("/api/services/Echo/instances/echo-a/offline", null);
        Assert.Equal(HttpStatusCode.Forbidden, noHeader.StatusCode);
        Assert.Contains("X-Trellis-Action", JsonDocument.Parse(await noHeader.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());

        using var bad = new HttpRequestMessage(HttpMethod.Post, "/api/services/Echo/instances/" + new string('x', 300) + "/offline"); // longer than a registry name
        bad.Headers.Add("X-Trellis-Action", "1");
        var badName = await http.SendAsync(bad);
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
        Assert.False(JsonDocument.Parse(await badName.Content.ReadAsStringAsync()).RootElement.GetProperty("ok").GetBoolean());

        using var unknown = new HttpRequestMessage(HttpMethod.Post, "/api/services/Echo/instances/echo-a/delete");
        unknown.Headers.Add("X-Trellis-Action", "1");
        Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(unknown)).StatusCode);

        Assert.Null(await rig.Proxy.Registry.GetConfigAsync(ProxyRig.Product, "Echo")); // nothing was written

        using var good = new HttpRequestMessage(HttpMethod.Post, "/api/services/Echo/instances/echo-a/offline");
        good.Headers.Add("X-Trellis-Action", "1");
        var ok = await http.SendAsync(good);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("changed", JsonDocument.Parse(await ok.Content.ReadAsStringAsync()).RootElement.GetProperty("outcome").GetString());
        Assert.NotNull(await rig.Proxy.Registry.GetConfigAsync(ProxyRig.Product, "Echo"));
    }

    [Fact]
    public async Task Trellis_admin_serves_the_page_for_the_registry_with_statistics_from_a_proxy()
    {
        await using var rig = await AdminRig.StartAsync();
        await rig.AddBackendAsync("echo-a", "z1", 100);
        await rig.AddBackendAsync("echo-b", "z2", 200);
        var port = LoopbackPorts.Free();
        var url = $"http://127.0.0.1:{port}";
        await using var admin = await TrellisProxyProcess.StartAsync("admin", () => Answers(url), "trellis admin's page",
            "--local-registry", Path.Combine(rig.Proxy.Root, "registry"), "-p", ProxyRig.Product, "--listen", url, "--proxy-admin", rig.Url);

        var (playwright, browser) = await Browser.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
            await page.GotoAsync(url + "/");
            var b = page.Locator("#instances tr[data-instance='echo-b']");
            await b.WaitForAsync();
            Assert.Equal("z2", await b.Locator("td.zone").TextContentAsync());
            Assert.Equal("200", await b.Locator("td.weight").TextContentAsync());
            Assert.Contains("registry", await page.Locator("#source").TextContentAsync());

            await using (new Traffic(rig))
            {
                await UntilCallsPerSecondAsync(page, "calls/s from the proxy stayed 0 under load");
            }

            // an action from this page reaches the proxy through the registry
            var row = page.Locator("#instances tr[data-instance='echo-a']");
            await row.Locator("button[data-action='offline']").ClickAsync();
            await row.Locator("td.health.offline").WaitForAsync();
            await Wait.UntilAsync(() => rig.Proxy.Proxy.Routes.TryGetValue("Echo", out var endpoints) && endpoints.All(e => e.Instance.InstanceId != "echo-a"),
                TimeSpan.FromSeconds(10), "the proxy to drop echo-a");
            var before = rig.Backends["echo-a"].Echoes;
            await rig.CallAsync(30);
            Assert.Equal(before, rig.Backends["echo-a"].Echoes);

            var png = await page.ScreenshotAsync(new PageScreenshotOptions { Path = Browser.Screenshot("admin-registry"), FullPage = true });
            Assert.True(png.Length > 10_000, "the screenshot is suspiciously small");
            var text = await page.InnerTextAsync("body");
            Assert.Contains("echo-a", text);
            Assert.Contains("echo-b", text);
        }
    }

    [Fact]
    public async Task Trellis_admin_without_a_proxy_says_it_has_no_statistics()
    {
        await using var rig = await AdminRig.StartAsync();
        await rig.AddBackendAsync("echo-a", "z1", 100);
        var port = LoopbackPorts.Free();
        var url = $"http://127.0.0.1:{port}";
        await using var admin = await TrellisProxyProcess.StartAsync("admin", () => Answers(url), "trellis admin's page",
            "--local-registry", Path.Combine(rig.Proxy.Root, "registry"), "-p", ProxyRig.Product, "--listen", url);

        var (playwright, browser) = await Browser.LaunchAsync();
        using (playwright)
        await using (browser)
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(url + "/");
            await page.Locator("#instances tr[data-instance='echo-a']").WaitForAsync();
            var note = page.Locator("#stats-note");
            await note.WaitForAsync();
            Assert.Contains("no statistics: no proxy given", await note.TextContentAsync());
        }
    }

    /// <summary>Waits up to 15 s for the page to show calls per second above 0.</summary>
    private static async Task UntilCallsPerSecondAsync(IPage page, string failure)
    {
        var clock = Stopwatch.StartNew();
        while (await CallsPerSecondAsync(page) <= 0 && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(200);
        }

        Assert.True(await CallsPerSecondAsync(page) > 0, failure);
    }

    /// <summary>Echo calls through the rig's proxy, one after another, until disposed: the page's statistics need traffic.</summary>
    private sealed class Traffic : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _load;

        public Traffic(AdminRig rig)
        {
            _load = Task.Run(async () =>
            {
                var client = rig.Client();
                while (!_stop.IsCancellationRequested)
                {
                    await client.EchoAsync("load");
                }
            });
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _load;
            _stop.Dispose();
        }
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static bool Answers(string url)
    {
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
            return http.GetAsync(url + "/api/services").Result.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is AggregateException or HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}
