using System.Diagnostics;
using System.Text;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Trellis.ZooKeeper;
using Xunit.Abstractions;

namespace Trellis.Proxy.Tests;

/// <summary>Service configs pushed through ZooKeeper to real proxies.</summary>
public sealed class GovernanceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AConfigPush_IsAppliedByEveryProxy_AMalformedOneIsIgnored_AndDegradationAnswersAtOnce()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync();
        var zk = new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10) };
        var product = "p" + Guid.NewGuid().ToString("N")[..8];
        await using var operatorSide = await ZooKeeperRegistry.ConnectAsync(zk);
        var owned = new List<IAsyncDisposable>();
        try
        {
            foreach (var id in new[] { "a", "b" })
            {
                var (server, _) = await Servers.StartAsync();
                owned.Add(server);
                owned.Add(await operatorSide.RegisterAsync(new ServiceInstance
                {
                    Product = product, Service = "Echo", InstanceId = id, Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
                }));
            }

            var proxies = new List<ProxyServer>();
            var clients = new List<Trellis.Rpc.Tests.Echo.Echo.Client>();
            for (var i = 0; i < 3; i++)
            {
                var registry = await ZooKeeperRegistry.ConnectAsync(zk);
                owned.Add(registry);
                var options = new ProxyOptions { Product = product, DefaultTimeout = TimeSpan.FromSeconds(10) };
                options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
                var proxy = new ProxyServer(options, registry);
                await proxy.StartAsync();
                proxies.Add(proxy);
                var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = proxy.Endpoints[0], Multiplexed = true, PeerMultiplexesCalls = true, DefaultTimeout = TimeSpan.FromSeconds(10) });
                owned.Add(channel);
                clients.Add(new Trellis.Rpc.Tests.Echo.Echo.Client(channel));
            }

            owned.AddRange(proxies);
            foreach (var client in clients)
            {
                Assert.Equal("up", await client.EchoAsync("up"));
            }

            await Wait.UntilAsync(() => proxies.All(p => p.Routes["Echo"].Count == 2), TimeSpan.FromSeconds(10), "both instances at every proxy");

            // take "a" offline: every proxy stops sending to it
            var clock = Stopwatch.StartNew();
            await operatorSide.SetConfigAsync(product, "Echo", Encoding.UTF8.GetBytes("""{ "offline": ["a"], "timeoutMs": 5000 }"""));
            var applied = new double[3];
            await Wait.UntilAsync(() =>
            {
                for (var i = 0; i < 3; i++)
                {
                    if (applied[i] == 0 && proxies[i].Routes["Echo"].Select(e => e.Instance.InstanceId).SequenceEqual(["b"]))
                    {
                        applied[i] = clock.Elapsed.TotalMilliseconds;
                    }
                }

                return applied.All(a => a > 0);
            }, TimeSpan.FromSeconds(10), "the config applied at all three proxies");
            output.WriteLine($"applied after {string.Join(", ", applied.Select(a => $"{a:F0} ms"))}");

            // a malformed push (a typo'd key and a wrong type) is rejected: the last good config stays everywhere
            await operatorSide.SetConfigAsync(product, "Echo", Encoding.UTF8.GetBytes("""{ "ofline": ["b"], "offline": "b" }"""));
            await Task.Delay(1000);
            Assert.All(proxies, p => Assert.Equal(["b"], p.Routes["Echo"].Select(e => e.Instance.InstanceId)));
            Assert.Equal("still b", await clients[0].EchoAsync("still b"));

            // degradation: answered by the proxy at once, with the configured message
            await operatorSide.SetConfigAsync(product, "Echo", Encoding.UTF8.GetBytes("""{ "methods": { "echo": { "degrade": { "error": "off for maintenance" } } } }"""));
            await Wait.UntilAsync(() => proxies.All(p => p.ConfigOf("Echo")?.DegradeFor("echo") is not null), TimeSpan.FromSeconds(10), "degradation applied");
            var e = await Assert.ThrowsAsync<TApplicationException>(() => clients[1].EchoAsync("x"));
            Assert.Equal("degraded: Echo:echo: off for maintenance", e.Message);
            Assert.Equal(1, proxies[1].Stats.Degraded);
            // the degradation config brought "a" back online
            await Wait.UntilAsync(() => proxies.All(p => p.Routes["Echo"].Count == 2), TimeSpan.FromSeconds(10), "a back online");

            // the config removed: everything as before
            await operatorSide.SetConfigAsync(product, "Echo", Encoding.UTF8.GetBytes("{}"));
            await Wait.UntilAsync(() => proxies.All(p => p.ConfigOf("Echo")?.DegradeFor("echo") is null), TimeSpan.FromSeconds(10), "degradation lifted");
            Assert.Equal("back", await clients[2].EchoAsync("back"));

            // every write is kept in the history, the malformed one too (it was written; the proxies refused it)
            var history = await operatorSide.GetConfigHistoryAsync(product, "Echo");
            Assert.Equal(4, history.Count);
            Assert.Equal("{}", Encoding.UTF8.GetString(history[0].Data));
            Assert.Contains("\"offline\": [\"a\"]", Encoding.UTF8.GetString(history[3].Data));
        }
        finally
        {
            foreach (var thing in Enumerable.Reverse(owned))
            {
                await thing.DisposeAsync();
            }
        }
    }
}

/// <summary>Rate limits of a service config, at a proxy under load.</summary>
public sealed class RateLimitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AMethodsRateLimit_AdmitsItsRate_WithinFivePercent_AndRefusesTheRestUnrun()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var clients = Enumerable.Range(0, 8).Select(_ => new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp))).ToArray();
        Assert.Equal("up", await clients[0].EchoAsync("up"));
        await rig.Registry.SetConfigAsync(ProxyRig.Product, "Echo", Encoding.UTF8.GetBytes("""{ "methods": { "echo": { "rateLimit": { "perSecond": 200, "burst": 100 } } } }"""));
        await Wait.UntilAsync(() => rig.Proxy.ConfigOf("Echo")?.Methods.ContainsKey("echo") == true, TimeSpan.FromSeconds(10), "the limit applied");
        // the bucket is full (100) when the load starts; a burst of half a second's worth also keeps a stall of the
        // callers on a busy machine (no call arriving for up to 0.5 s) from losing tokens to the cap
        await Task.Delay(600);

        var before = rig.Proxy.Stats.Replies;
        var clock = Stopwatch.StartNew();
        var n = 0;
        var load = CallLoad.Start(8, () => clients[Interlocked.Increment(ref n) & 7].EchoAsync("x"));
        await Task.Delay(3000);
        await load.StopAsync();
        var seconds = clock.Elapsed.TotalSeconds;
        var admitted = load.Ok;
        var expected = 100 + (200 * seconds);
        // a stall of the callers longer than the burst's half second (a starved 2-core machine) loses tokens to the
        // cap: those are not the limiter's to give. Refusals come thousands a second while the load runs, so a gap
        // between two of them is a stall of the load; what it cost is taken off the lower bound, never the upper.
        var stalled = 0.0;
        var previous = 0L;
        foreach (var at in load.Failures.Select(f => f.AtMs).Append((long)(seconds * 1000)).Order())
        {
            stalled += Math.Max(0, at - previous - 500) / 1000.0;
            previous = at;
        }

        var reachable = 100 + (200 * (seconds - stalled));
        output.WriteLine($"{seconds:F2} s: {admitted} admitted (expected {expected:F0}; {reachable:F0} after {stalled:F2} s of stalled callers), {load.Failures.Count} refused; ratio {admitted / expected:F3}");
        Assert.True(admitted <= expected * 1.05, $"admitted {admitted}, over the rate (expected {expected:F0})");
        Assert.True(admitted >= reachable * 0.95, $"admitted {admitted}, under the rate (reachable {reachable:F0})");
        Assert.True(load.Failures.Count > admitted, "the load ran well over the limit");
        Assert.All(load.Failures, f => Assert.StartsWith("rate limited: Echo:echo: over 200 calls/s", f.Error.Message));
        Assert.Equal(admitted, rig.Proxy.Stats.Replies - before); // refused calls never reached the instance
        Assert.Equal(load.Failures.Count, rig.Proxy.Stats.RateLimited);
        // another method is not limited
        Assert.Equal("hello x", await new Trellis.Rpc.Tests.Echo.Other.Client(rig.Channel(rig.Tcp)).HelloAsync("x"));
    }
}

/// <summary>Concurrency limits of a service config at a proxy.</summary>
public sealed class ConcurrencyLimitTests
{
    [Fact]
    public async Task AMethodsConcurrencyLimit_RefusesCallsBeyondIt_UnrunAsOverloaded_AndFreesItsSlots()
    {
        await using var rig = await ProxyRig.StartAsync();
        var (_, service, _) = await rig.AddTrellisBackendAsync("a");
        var clients = Enumerable.Range(0, 5).Select(_ => new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp))).ToArray();
        Assert.Equal("up", await clients[0].EchoAsync("up"));
        await rig.Registry.SetConfigAsync(ProxyRig.Product, "Echo", Encoding.UTF8.GetBytes("""{ "methods": { "slow": { "maxConcurrent": 2 } } }"""));
        await Wait.UntilAsync(() => rig.Proxy.ConfigOf("Echo")?.Methods.ContainsKey("slow") == true, TimeSpan.FromSeconds(10), "the limit applied");

        var first = new[] { clients[0].SlowAsync(1500, "1"), clients[1].SlowAsync(1500, "2") };
        await Wait.UntilAsync(() => service.Running == 2, TimeSpan.FromSeconds(5), "two slow calls running");
        for (var i = 2; i < 5; i++)
        {
            var e = await Assert.ThrowsAsync<TApplicationException>(() => clients[i].SlowAsync(1500, "x"));
            Assert.Equal("overloaded: Echo:slow: 2 calls in flight at this proxy (maxConcurrent); the call was not run", e.Message);
        }

        Assert.Equal("echo is not limited", await clients[2].EchoAsync("echo is not limited"));
        Assert.Equal(["1", "2"], await Task.WhenAll(first));
        Assert.Equal("3", await clients[3].SlowAsync(10, "3")); // the slots were given back
    }
}

/// <summary>Product isolation: callers of test products never reach online ones.</summary>
public sealed class ProductIsolationTests(ITestOutputHelper output)
{
    private static ThriftChannel Channel(RpcEndpoint endpoint, string? callerProduct) => new(new ThriftChannelOptions
    {
        Endpoint = endpoint,
        Encoding = new ThriftEncoding(ThriftFraming.Header, ThriftProtocol.Binary),
        Multiplexed = true,
        PeerMultiplexesCalls = true,
        CallerProduct = callerProduct,
        DefaultTimeout = TimeSpan.FromSeconds(10),
    });

    [Fact]
    public async Task ATestProductCaller_UnderLoad_NeverReachesAnOnlineServer_NorThroughAnOnlineProxy()
    {
        var (server, service) = await Servers.StartAsync(o => o.Product = "online_shop");
        await using var _ = server;
        await using var test = Channel(server.Endpoints[0], "test_shop");
        var client = new Trellis.Rpc.Tests.Echo.Echo.Client(test);
        var load = CallLoad.Start(4, async () =>
        {
            await client.FireAsync("should never arrive");
            await client.EchoAsync("should never run");
        });
        // at least a second, and until enough calls were tried (a starved machine may take longer to get there)
        await Task.Delay(1000);
        await Wait.UntilAsync(() => load.Failures.Count > 50, TimeSpan.FromSeconds(30), "the load to try more than 50 calls");
        await load.StopAsync();
        output.WriteLine($"{load.Ok} calls admitted, {load.Failures.Count} refused");
        Assert.Equal(0, load.Ok);
        Assert.True(load.Failures.Count > 50, $"only {load.Failures.Count} calls were tried");
        Assert.All(load.Failures, f => Assert.Contains("product isolation: a caller of product 'test_shop' may not call product 'online_shop'", f.Error.Message));
        await Task.Delay(200);
        Assert.Empty(service.Fired); // not one oneway call reached the handler either

        // online callers, and callers that do not say (stock clients), are served
        await using var online = Channel(server.Endpoints[0], "online_app");
        Assert.Equal("ok", await new Trellis.Rpc.Tests.Echo.Echo.Client(online).EchoAsync("ok"));
        await using var stock = Channel(server.Endpoints[0], null);
        Assert.Equal("ok", await new Trellis.Rpc.Tests.Echo.Echo.Client(stock).EchoAsync("ok"));

        // an online proxy refuses a test caller too; a caller that does not say is taken as one of the proxy's product
        await using var rig = await ProxyRig.StartAsync(o => o.Product = "online_shop");
        await rig.Registry.RegisterAsync(new ServiceInstance { Product = "online_shop", Service = "Echo", InstanceId = "a", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header" });
        await using var viaProxy = Channel(rig.Tcp, "test_shop");
        var e = await Assert.ThrowsAsync<TApplicationException>(() => new Trellis.Rpc.Tests.Echo.Echo.Client(viaProxy).EchoAsync("x"));
        Assert.Contains("product isolation", e.Message);
        Assert.Equal("through the proxy", await new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp)).EchoAsync("through the proxy"));
    }
}

/// <summary><c>trellis config</c> against the local registry, as an operator runs it.</summary>
public sealed class ConfigProgramTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "trellis-cfgprog-" + Guid.NewGuid().ToString("N")[..8]);

    public ConfigProgramTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task SetRefusesABadConfig_AndWritesNothing_ThenGetDiffAndCompareAndSetWork()
    {
        var registry = Path.Combine(_root, "registry");
        var bad = Path.Combine(_root, "bad.json");
        var good = Path.Combine(_root, "good.json");
        var next = Path.Combine(_root, "next.json");
        await File.WriteAllTextAsync(bad, """{ "ofline": ["a"], "timeoutMs": 0 }""");
        await File.WriteAllTextAsync(good, """{ "offline": ["a"] }""");
        await File.WriteAllTextAsync(next, """{ "offline": ["a", "b"] }""");
        string[] at = ["-p", "demo", "--local-registry", registry, "Echo"];

        var (code, _, err) = await TrellisCli.RunAsync(["config", "set", .. at, bad]);
        Assert.Equal(1, code);
        Assert.Contains("$.ofline: unknown setting", err);
        Assert.Contains("$.timeoutMs: must be a whole number", err);
        Assert.Contains("nothing was written", err);
        (code, _, err) = await TrellisCli.RunAsync(["config", "get", .. at]);
        Assert.Equal(0, code);
        Assert.Contains("has no config", err);

        (code, var stdout, _) = await TrellisCli.RunAsync(["config", "set", .. at, good]);
        Assert.Equal(0, code);
        Assert.Contains("stored demo/Echo config", stdout);
        (code, stdout, err) = await TrellisCli.RunAsync(["config", "get", .. at]);
        Assert.Equal(0, code);
        Assert.Contains("\"offline\"", stdout);
        var version = err.Split("version ")[1].Trim();

        (code, stdout, _) = await TrellisCli.RunAsync(["config", "diff", .. at, next]);
        Assert.Equal(1, code); // differs
        Assert.Contains("+     \"b\"", stdout);

        (code, _, err) = await TrellisCli.RunAsync(["config", "set", .. at, next, "--if-version", "12345"]);
        Assert.Equal(1, code);
        Assert.Contains("changed since version 12345", err);
        (code, _, _) = await TrellisCli.RunAsync(["config", "set", .. at, next, "--if-version", version]);
        Assert.Equal(0, code);
        (code, _, _) = await TrellisCli.RunAsync(["config", "validate", next]);
        Assert.Equal(0, code);

        // two writes so far (the refused one left no trace), newest first, each with its change
        (code, stdout, _) = await TrellisCli.RunAsync(["config", "history", .. at]);
        Assert.Equal(0, code);
        Assert.Equal(2, stdout.Split('\n').Count(l => l.StartsWith("== v-", StringComparison.Ordinal)));
        Assert.Contains("(in force)", stdout.Split('\n')[0]);
        Assert.Contains("+     \"b\"", stdout);
    }
}

/// <summary><c>trellis registry</c> against the local registry, next to a running proxy.</summary>
public sealed class RegistryProgramTests
{
    [Fact]
    public async Task LsDescribeOfflineOnline_AsAnOperatorUsesThem_AndTheProxyFollows()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        await rig.AddTrellisBackendAsync("b");
        var echo = new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp));
        Assert.Equal("up", await echo.EchoAsync("up"));
        await Wait.UntilAsync(() => rig.Proxy.Routes["Echo"].Count == 2, TimeSpan.FromSeconds(10), "both instances routed");
        string[] at = ["-p", ProxyRig.Product, "--local-registry", rig.Registry.Root];

        var (code, stdout, _) = await TrellisCli.RunAsync(["registry", "ls", .. at]);
        Assert.Equal(0, code);
        Assert.Contains("Echo\t2 instances", stdout);

        (code, stdout, _) = await TrellisCli.RunAsync(["registry", "offline", .. at, "Echo", "a"]);
        Assert.Equal(0, code);
        Assert.Contains("a of p/Echo is now offline", stdout);
        await Wait.UntilAsync(() => rig.Proxy.Routes["Echo"].Select(e => e.Instance.InstanceId).SequenceEqual(["b"]), TimeSpan.FromSeconds(10), "the proxy to drop a");
        (code, stdout, _) = await TrellisCli.RunAsync(["registry", "describe", .. at, "Echo"]);
        Assert.Equal(0, code);
        Assert.Matches(@"a\t.*\tOFFLINE", stdout);
        Assert.Matches(@"b\t.*\tonline", stdout);
        Assert.Equal("only b", await echo.EchoAsync("only b"));

        (code, _, _) = await TrellisCli.RunAsync(["registry", "online", .. at, "Echo", "a"]);
        Assert.Equal(0, code);
        await Wait.UntilAsync(() => rig.Proxy.Routes["Echo"].Count == 2, TimeSpan.FromSeconds(10), "a back");
    }
}
