using System.Globalization;
using System.Text.RegularExpressions;
using Trellis.Proxy;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;
using Trellis.ZooKeeper;
using Xunit.Abstractions;
using EchoClient = Trellis.Rpc.Tests.Echo.Echo.Client;

namespace Trellis.Faults.Tests;

/// <summary>A proxy over real ZooKeeper while ZooKeeper fails: the rows of shared/RELIABILITY.md not covered elsewhere.</summary>
public sealed partial class ZooKeeperFaultTests(ITestOutputHelper output)
{
    /// <summary>Two Trellis backends registered in ZooKeeper (Echo and Other), a proxy of the product over its own ZooKeeper session.</summary>
    private sealed class Stack : IAsyncDisposable
    {
        private readonly List<IAsyncDisposable> _owned = [];
        public string Root { get; } = Path.Combine(Path.GetTempPath(), "trellis-faults-zk-" + Guid.NewGuid().ToString("N")[..8]);
        public string Product { get; } = "p" + Guid.NewGuid().ToString("N")[..8];
        public ProxyServer Proxy { get; private set; } = null!;
        public ZooKeeperRegistry Registrar { get; private set; } = null!;

        public static async Task<Stack> StartAsync(ZooKeeperEnsemble ensemble)
        {
            var stack = new Stack();
            Directory.CreateDirectory(stack.Root);
            try
            {
                var zk = new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10) };
                stack.Registrar = await ZooKeeperRegistry.ConnectAsync(zk);
                stack._owned.Add(stack.Registrar);
                for (var i = 0; i < 2; i++)
                {
                    var (server, _) = await Trellis.Rpc.Tests.Servers.StartAsync();
                    stack._owned.Add(server);
                    foreach (var service in new[] { "Echo", "Other" })
                    {
                        stack._owned.Add(await stack.Registrar.RegisterAsync(new ServiceInstance
                        {
                            Product = stack.Product, Service = service, InstanceId = "i" + i, Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
                        }));
                    }
                }

                var options = new ProxyOptions { Product = stack.Product, SnapshotDirectory = Path.Combine(stack.Root, "snapshot"), DefaultTimeout = TimeSpan.FromSeconds(10) };
                options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
                stack.Proxy = new ProxyServer(options, async ct => await ZooKeeperRegistry.ConnectAsync(new ZooKeeperOptions
                {
                    ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10), ConnectionAttemptTimeout = TimeSpan.FromMilliseconds(500),
                }, ct));
                await stack.Proxy.StartAsync();
                await Wait.UntilAsync(() => stack.Proxy.RegistryConnected, TimeSpan.FromSeconds(30), "the proxy's ZooKeeper session");
                return stack;
            }
            catch
            {
                await stack.DisposeAsync();
                throw;
            }
        }

        public ThriftChannel Channel()
        {
            var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = Proxy.Endpoints[0], Multiplexed = true, PeerMultiplexesCalls = true, DefaultTimeout = TimeSpan.FromSeconds(10) });
            _owned.Add(channel);
            return channel;
        }

        public async ValueTask DisposeAsync()
        {
            if (Proxy is not null)
            {
                await Proxy.DisposeAsync();
            }

            foreach (var thing in Enumerable.Reverse(_owned))
            {
                try
                {
                    await thing.DisposeAsync();
                }
                catch (Exception e) when (e is ObjectDisposedException or IOException or TException or KeeperException or OperationCanceledException)
                {
                    // ZooKeeper may be down: a registration cannot be removed; the session ends with the process
                }
            }

            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
                // a late snapshot writer
            }
        }
    }

    /// <summary>Samples the proxy's view of Echo every few ms, keeping the smallest size seen.</summary>
    private static (Task Task, Func<int> Min, Action Stop) WatchView(ProxyServer proxy)
    {
        var min = int.MaxValue;
        var stop = false;
        var task = Task.Run(async () =>
        {
            while (!Volatile.Read(ref stop))
            {
                var count = proxy.Routes.TryGetValue("Echo", out var route) ? route.Count : 0;
                min = Math.Min(min, count);
                await Task.Delay(10);
            }
        });
        return (task, () => min, () => Volatile.Write(ref stop, true));
    }

    [Fact]
    public async Task ZooKeeperDownForLong_SuccessRateUnchanged_TheEndpointViewNeverEmpty()
    {
        // "for minutes": 20 s in the test command (past two session timeouts, 10 s, of every client), as long as asked
        // with TRELLIS_FAULTS_ZK_DOWN_SECONDS (the closing figures ran 180 s)
        var downSeconds = int.TryParse(Environment.GetEnvironmentVariable("TRELLIS_FAULTS_ZK_DOWN_SECONDS"), out var asked) && asked > 0 ? asked : 20;
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);
        await using var stack = await Stack.StartAsync(ensemble);
        var echo = new EchoClient(stack.Channel());
        Assert.Equal("up", await echo.EchoAsync("up"));
        await Wait.UntilAsync(() => stack.Proxy.Routes["Echo"].Count == 2, TimeSpan.FromSeconds(10), "both instances");
        var view = WatchView(stack.Proxy);
        var load = MeasuredLoad.Start(4, _ => echo.EchoAsync("x"));
        await Task.Delay(3000);
        var downAt = load.NowMs;
        ensemble.Servers[0].Kill();
        await Task.Delay(TimeSpan.FromSeconds(downSeconds));
        var upAt = load.NowMs;
        ensemble.Servers[0].Start();
        await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60));
        await Task.Delay(3000);
        await load.StopAsync();
        view.Stop();
        await view.Task;
        var before = load.Between(0, downAt);
        var during = load.Between(downAt, upAt);
        var after = load.Between(upAt, double.MaxValue);
        static string Rate(IReadOnlyList<(double AtMs, double LatencyMs, Exception? Error)> calls) =>
            $"{calls.Count(c => c.Error is null)}/{calls.Count} ok ({calls.Count(c => c.Error is null) / (double)Math.Max(1, calls.Count):P2})";
        output.WriteLine($"before: {Rate(before)}; ZooKeeper down {downSeconds} s: {Rate(during)}; after it returned: {Rate(after)}");
        output.WriteLine($"smallest endpoint view seen: {view.Min()} of 2; view at the end {stack.Proxy.Routes["Echo"].Count}; proxy session {(stack.Proxy.RegistryConnected ? "connected" : "not connected")}");
        Assert.DoesNotContain(load.Calls, c => c.Error is not null);
        Assert.True(during.Count > 1000, "traffic flowed while ZooKeeper was down");
        Assert.Equal(2, view.Min());
    }

    [Fact]
    public async Task TwoOfThreeServersDown_TheProxyServesFromCache_RestoredBeforeTheSessionTimeout_NothingChanges()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(size: 3);
        await using var stack = await Stack.StartAsync(ensemble);
        var echo = new EchoClient(stack.Channel());
        Assert.Equal("up", await echo.EchoAsync("up"));
        await Wait.UntilAsync(() => stack.Proxy.Routes["Echo"].Count == 2, TimeSpan.FromSeconds(10), "both instances");
        var routeBefore = stack.Proxy.Routes["Echo"].Select(e => e.Instance.InstanceId).Order().ToList();
        var owners = await OwnersAsync(ensemble, stack.Product);
        var view = WatchView(stack.Proxy);
        var load = MeasuredLoad.Start(4, _ => echo.EchoAsync("x"));
        await Task.Delay(1500);
        var leader = await ensemble.LeaderAsync();
        var down = new[] { leader, ensemble.Servers.First(s => s != leader) };
        var downAt = load.NowMs;
        foreach (var s in down)
        {
            s.Kill();
        }

        await Task.Delay(4000); // no quorum for 4 s: well within the 10 s session timeout
        foreach (var s in down)
        {
            s.Start();
        }

        await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60));
        var upAt = load.NowMs;
        await Task.Delay(3000);
        await load.StopAsync();
        view.Stop();
        await view.Task;
        var ownersAfter = await OwnersAsync(ensemble, stack.Product);
        var during = load.Between(downAt, upAt);
        output.WriteLine($"2 of 3 servers down for {upAt - downAt:F0} ms (until the quorum served again): {during.Count(c => c.Error is null)}/{during.Count} calls ok; overall {load.Calls.Count(c => c.Error is not null)} failed of {load.Calls.Count}");
        output.WriteLine($"smallest endpoint view {view.Min()} of 2; instances' session owners before {string.Join(",", owners)}, after {string.Join(",", ownersAfter)}");
        Assert.DoesNotContain(load.Calls, c => c.Error is not null);
        Assert.Equal(2, view.Min());
        Assert.Equal(routeBefore, stack.Proxy.Routes["Echo"].Select(e => e.Instance.InstanceId).Order().ToList());
        Assert.Equal(owners, ownersAfter); // same sessions, same ephemerals: nothing changed
        Assert.True(stack.Proxy.RegistryConnected);
    }

    /// <summary>The ephemeralOwner of every Echo instance node of the product (read with a client of its own).</summary>
    private static async Task<List<long>> OwnersAsync(ZooKeeperEnsemble ensemble, string product)
    {
        await using var client = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions { ConnectString = ensemble.ConnectString });
        var nodes = await FindInstanceNodesAsync(client, "/", product);
        var owners = new List<long>();
        foreach (var node in nodes)
        {
            var stat = await client.ExistsAsync(node);
            owners.Add(stat!.EphemeralOwner);
        }

        owners.Sort();
        return owners;
    }

    private static async Task<List<string>> FindInstanceNodesAsync(ZooKeeperClient client, string path, string product)
    {
        var found = new List<string>();
        foreach (var child in (await client.GetChildrenAsync(path)).Children)
        {
            var full = path == "/" ? "/" + child : path + "/" + child;
            if (full == "/zookeeper")
            {
                continue;
            }

            var stat = await client.ExistsAsync(full);
            if (stat is { EphemeralOwner: not 0 } && full.Contains(product, StringComparison.Ordinal) && full.Contains("Echo", StringComparison.Ordinal))
            {
                found.Add(full);
            }

            found.AddRange(await FindInstanceNodesAsync(client, full, product));
        }

        return found;
    }

    [GeneratedRegex(@"sid=0x([0-9a-f]+)")]
    private static partial Regex SessionId();

    private static async Task<HashSet<string>> SessionsAsync(ZooKeeperEnsemble ensemble)
    {
        var cons = await ensemble.Servers[0].FourLetterWordAsync("cons") ?? "";
        return [.. SessionId().Matches(cons).Select(m => m.Groups[1].Value)];
    }

    [Fact]
    public async Task OneZooKeeperSessionPerProxy_NotPerServiceOrConnection()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);
        await using var stack = await Stack.StartAsync(ensemble);
        // 16 client connections calling two services, with their config watches, through one proxy
        var channels = Enumerable.Range(0, 16).Select(_ => stack.Channel()).ToList();
        await Task.WhenAll(channels.Select(async (c, i) =>
        {
            for (var k = 0; k < 20; k++)
            {
                Assert.Equal("x", await new EchoClient(c).EchoAsync("x"));
                Assert.Equal("hello y", await new Trellis.Rpc.Tests.Echo.Other.Client(c).HelloAsync("y"));
            }
        }));
        await Wait.UntilAsync(() => stack.Proxy.Routes.Count >= 2 && stack.Proxy.Routes["Other"].Count == 2, TimeSpan.FromSeconds(10), "both services routed");
        var sessions = await SessionsAsync(ensemble);
        // the registrar (the backends' side) holds one session; everything else is the proxy's
        output.WriteLine($"ZooKeeper sessions: {sessions.Count} ({string.Join(", ", sessions)}): the backends' registrar and the proxy; proxy routes {string.Join(", ", stack.Proxy.Routes.Keys)}, 16 client connections");
        Assert.Equal(2, sessions.Count);
        var cons = await ensemble.Servers[0].FourLetterWordAsync("cons") ?? "";
        Assert.Equal(2, cons.Split('\n').Count(l => l.Contains("sid=0x", StringComparison.Ordinal)));
        _ = CultureInfo.InvariantCulture;
    }
}
