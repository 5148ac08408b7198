using System.Diagnostics;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Trellis.ZooKeeper;
using Xunit.Abstractions;

namespace Trellis.Proxy.Tests;

/// <summary>Faults around the proxy: a backend killed mid-request, ZooKeeper gone while traffic flows, a proxy restarted while it is gone.</summary>
public sealed class ProxyFaultTests(ITestOutputHelper output)
{
    private static Everything Sample(string? str = null)
    {
        var sample = ThriftSerializer.Deserialize<Everything>(PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples"))[0].Payload);
        if (str is not null)
        {
            sample.Str = str;
        }

        return sample;
    }

    [Fact]
    public async Task AStockBackendKilledMidRequest_FailsOnlyItsCallsInFlight_WithAClearError_AndTrafficMovesOn()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Strategy = "least_active");
        var pythons = new List<PythonServer>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var python = await PythonServer.StartAsync();
                pythons.Add(python);
                rig.Own(await rig.Registry.RegisterAsync(python.Instance(ProxyRig.Product, "py" + i)));
            }

            var client = new global::Conformance.Client(rig.Channel(rig.Tcp));
            var sample = Sample();
            await client.PingAsync();

            var load = CallLoad.Start(8, async () => Assert.Equal(sample, await client.EchoAsync(sample)));
            await Wait.UntilAsync(() => load.Ok > 500);
            var victim = rig.Proxy.Routes["Conformance"].Single(e => e.Key == "py1");
            var inFlightOnVictim = victim.Active;
            pythons[1].Kill();
            var killedAt = load.Clock.ElapsedMilliseconds;
            await load.AfterAsync(2000);
            await load.StopAsync();
            var (ok, failures) = (load.Ok, load.Failures);

            output.WriteLine($"{ok} calls ok, {failures.Count} failed; {inFlightOnVictim} in flight on the killed instance when it died");
            // the calls the instance had taken may fail (they may have run); nothing else may
            Assert.InRange(failures.Count, 0, 8);
            Assert.All(failures, f =>
            {
                var app = Assert.IsType<TApplicationException>(f.Error);
                Assert.Contains("backend failure", app.Message);
                Assert.InRange(f.AtMs, killedAt - 50, killedAt + 2000);
            });
        }
        finally
        {
            foreach (var python in pythons)
            {
                await python.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task ATrellisBackendStoppingAbruptlyMidCall_GivesTheCallerABackendFailure_NotAHang()
    {
        await using var rig = await ProxyRig.StartAsync();
        var (server, service, _) = await rig.AddTrellisBackendAsync("a");
        var echo = new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp));
        var stuck = echo.StuckAsync();
        await Wait.UntilAsync(() => service.StuckCalls == 1);
        // the backend's connections drop under the call (what a crash looks like from the proxy)
        await server.StopAsync(TimeSpan.Zero);
        var error = await Assert.ThrowsAsync<TApplicationException>(() => stuck);
        Assert.True(error.Message.Contains("backend failure", StringComparison.Ordinal) || error.Message.StartsWith("shutting down", StringComparison.Ordinal), error.Message);
    }

    [Fact]
    public async Task ASavedList_IsNotUsed_WhenTheRegistryAnswers()
    {
        // a snapshot left by an earlier run names an instance that is long gone (nothing listens on its port)
        var snapshot = Path.Combine(Path.GetTempPath(), "trellis-stale-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var gone = new ServiceInstance { Product = ProxyRig.Product, Service = "Echo", InstanceId = "gone", Host = "127.0.0.1", Port = LoopbackPorts.Free(), Framing = "header" };
            new SnapshotStore(snapshot, ProxyRig.Product, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).Save("Echo", [gone]);
            new SnapshotStore(snapshot, ProxyRig.Product, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).Save("Other", [gone with { Service = "Other" }]);

            await using var rig = await ProxyRig.StartAsync(o => o.SnapshotDirectory = snapshot);
            await rig.AddTrellisBackendAsync("live");
            // the registry knows the live instance: the very first call goes there, never to the saved one
            Assert.Equal("first", await new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp)).EchoAsync("first"));
            Assert.Equal(["live"], rig.Proxy.Routes["Echo"].Select(e => e.Instance.InstanceId));
        }
        finally
        {
            Directory.Delete(snapshot, recursive: true);
        }
    }

    [Fact]
    public async Task ASavedList_DoesNotOutliveARegistryThatSaysThereIsNoInstance()
    {
        var snapshot = Path.Combine(Path.GetTempPath(), "trellis-stale-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var gone = new ServiceInstance { Product = ProxyRig.Product, Service = "Echo", InstanceId = "gone", Host = "127.0.0.1", Port = LoopbackPorts.Free(), Framing = "header" };
            new SnapshotStore(snapshot, ProxyRig.Product, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).Save("Echo", [gone]);
            await using var rig = await ProxyRig.StartAsync(o => o.SnapshotDirectory = snapshot);
            var e = await Assert.ThrowsAsync<TApplicationException>(() => new Trellis.Rpc.Tests.Echo.Echo.Client(rig.Channel(rig.Tcp)).EchoAsync("x"));
            Assert.Contains("no instance", e.Message); // not "backend failure … connection refused" from the saved instance
        }
        finally
        {
            Directory.Delete(snapshot, recursive: true);
        }
    }

    [Fact]
    public async Task ZooKeeperDown_TrafficGoesOnWithoutAFailure_AndAProxyRestartedMeanwhileServesFromItsSnapshot()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(size: 3);
        var zk = new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10) };
        var product = "p" + Guid.NewGuid().ToString("N")[..8];
        var root = Path.Combine(Path.GetTempPath(), "trellis-proxy-zk-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var servers = new List<ThriftServer>();
        try
        {
            await using var registrar = await ZooKeeperRegistry.ConnectAsync(zk);
            for (var i = 0; i < 2; i++)
            {
                var (server, _) = await Servers.StartAsync();
                servers.Add(server);
                await registrar.RegisterAsync(new ServiceInstance
                {
                    Product = product, Service = "Echo", InstanceId = "i" + i, Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
                });
            }

            ProxyOptions Options(string name)
            {
                var options = ProxyRig.NewOptions(root, name);
                options.Product = product;
                options.SnapshotDirectory = Path.Combine(root, "snapshot"); // the restarted proxy reads what the first one saved
                return options;
            }

            Task<IServiceRegistry> Connect(CancellationToken ct) =>
                ZooKeeperRegistry.ConnectAsync(new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10), ConnectionAttemptTimeout = TimeSpan.FromMilliseconds(500) }, ct)
                    .ContinueWith(t => (IServiceRegistry)t.Result, ct, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);

            var first = new ProxyServer(Options("first"), Connect);
            await using (first)
            {
                await first.StartAsync();
                await using var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = first.Endpoints[0], PeerMultiplexesCalls = true });
                var echo = new Trellis.Rpc.Tests.Echo.Echo.Client(channel);
                await Wait.UntilAsync(() => first.RegistryConnected);
                Assert.Equal("up", await echo.EchoAsync("up"));
                await Wait.UntilAsync(() => first.Routes["Echo"].Count == 2);

                var load = CallLoad.Start(4, () => echo.EchoAsync("zk down"));
                await Wait.UntilAsync(() => load.Ok > 200);
                foreach (var server in ensemble.Servers)
                {
                    server.Kill();
                }

                var atKill = load.Ok;
                await Task.Delay(3000); // longer than a ZooKeeper tick and the client's reconnect attempts
                await load.AfterAsync(1000);
                await load.StopAsync();
                var (ok, failures) = (load.Ok, load.Failures);
                output.WriteLine($"{ok} calls, {ok - atKill} of them with ZooKeeper down; {failures.Count} failed");
                Assert.Empty(failures);
                Assert.Equal(2, first.Routes["Echo"].Count);
            }

            // ZooKeeper is still down: a proxy started now has only its snapshot
            var second = new ProxyServer(Options("second"), Connect);
            await using (second)
            {
                await second.StartAsync();
                Assert.False(second.RegistryConnected);
                await using var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = second.Endpoints[0], PeerMultiplexesCalls = true });
                var echo = new Trellis.Rpc.Tests.Echo.Echo.Client(channel);
                for (var i = 0; i < 20; i++)
                {
                    Assert.Equal("from the snapshot", await echo.EchoAsync("from the snapshot"));
                }

                Assert.Equal(2, second.Routes["Echo"].Count);
                Assert.False(second.RegistryConnected);
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }

            Directory.Delete(root, recursive: true);
        }
    }
}
