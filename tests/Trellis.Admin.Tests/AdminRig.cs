using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Trellis.Proxy;
using Trellis.Proxy.Tests;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using EchoClient = Trellis.Rpc.Tests.Echo.Echo.Client;

namespace Trellis.Admin.Tests;

/// <summary>Debian's Chromium driven by Playwright: never a downloaded browser; missing, the tests fail.</summary>
internal static class Browser
{
    public const string Chromium = "/usr/bin/chromium";

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: install the Debian package chromium (scripts/setup.sh)");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        return (playwright, browser);
    }

    /// <summary>Where screenshots go: under the test output directory.</summary>
    public static string Screenshot(string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name + ".png");
    }
}

/// <summary>A proxy over a local registry (<see cref="ProxyRig"/>) with its admin endpoint on Kestrel, and Echo backends with zones and weights.</summary>
internal sealed class AdminRig : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    private AdminRig(ProxyRig proxy, WebApplication web, string url)
    {
        Proxy = proxy;
        Web = web;
        Url = url;
    }

    public ProxyRig Proxy { get; }

    public WebApplication Web { get; }

    /// <summary>The proxy's admin endpoint, <c>http://127.0.0.1:PORT</c>.</summary>
    public string Url { get; }

    public Dictionary<string, EchoService> Backends { get; } = new(StringComparer.Ordinal);

    public static async Task<AdminRig> StartAsync()
    {
        var proxy = await ProxyRig.StartAsync();
        var port = LoopbackPorts.Free();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
        var web = builder.Build();
        web.MapTrellisProxyAdmin(proxy.Proxy);
        await web.StartAsync();
        return new AdminRig(proxy, web, $"http://127.0.0.1:{port}");
    }

    /// <summary>An Echo server registered as an instance of Echo with a zone and a weight.</summary>
    public async Task AddBackendAsync(string id, string zone, int weight)
    {
        var (server, service) = await Servers.StartAsync();
        _owned.Add(server);
        var registration = await Proxy.Registry.RegisterAsync(new ServiceInstance
        {
            Product = ProxyRig.Product, Service = "Echo", InstanceId = id, Host = "127.0.0.1", Port = server.Endpoints[0].Port,
            Framing = "header", Zone = zone, Weight = weight, Version = "1.2.3",
        });
        _owned.Add(registration);
        Backends[id] = service;
    }

    public EchoClient Client() => new(Proxy.Channel(Proxy.Tcp));

    /// <summary>Makes <paramref name="count"/> calls through the proxy, all answered.</summary>
    public async Task CallAsync(int count)
    {
        var client = Client();
        for (var i = 0; i < count; i++)
        {
            Assert.Equal("x" + i, await client.EchoAsync("x" + i));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Web.StopAsync();
        await Web.DisposeAsync();
        foreach (var thing in Enumerable.Reverse(_owned))
        {
            try
            {
                await thing.DisposeAsync();
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or TException)
            {
                // already gone
            }
        }

        await Proxy.DisposeAsync();
    }
}
