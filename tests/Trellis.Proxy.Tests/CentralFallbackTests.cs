using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Trellis.Rpc;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Trellis.ZooKeeper;
using Xunit.Abstractions;

namespace Trellis.Proxy.Tests;

/// <summary>
/// The local proxy as the real program (<c>trellis proxy</c>, started from an rpc_proxy config.ini), killed with
/// SIGKILL under load: the application's channel moves to the zone's central proxy (found in ZooKeeper) at once,
/// and returns to the local proxy once it is back and has stayed up.
/// </summary>
public sealed class CentralFallbackTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheLocalProxyKilled_CallsMoveToTheCentralProxyAtOnce_AndComeBackWhenItReturns()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);
        var zk = new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10) };
        var product = "p" + Guid.NewGuid().ToString("N")[..8];
        var root = Path.Combine(Path.GetTempPath(), "trellis-central-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            await using var registry = await ZooKeeperRegistry.ConnectAsync(zk);
            var (server, _) = await Servers.StartAsync();
            await using var backend = server;
            await using var registration = await registry.RegisterAsync(new ServiceInstance
            {
                Product = product, Service = "Echo", InstanceId = "backend", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header", Zone = "z1",
            });

            // the central proxy of zone z1
            var centralOptions = ProxyRig.NewOptions(root, "central");
            centralOptions.Product = product;
            centralOptions.Zone = "z1";
            centralOptions.Central = true;
            await using var central = new ProxyServer(centralOptions, registry);
            await central.StartAsync();
            await using (var watch = await registry.WatchProxiesAsync(product, "z1"))
            {
                await Wait.UntilAsync(() => watch.Instances.Count == 1, what: "the central proxy's record");
                Assert.Equal(central.Endpoints.First(e => !e.IsUnix).Port, watch.Instances[0].Port);
            }

            // the local proxy: the real program, configured with the original rpc_proxy keys
            var socket = Path.Combine(root, "local.sock");
            var ini = Path.Combine(root, "config.ini");
            await File.WriteAllLinesAsync(ini, [
                "# rpc_proxy config.ini",
                $"zk={ensemble.ConnectString}",
                $"product={product}",
                "zk_session_timeout=10",
                $"proxy_address={socket}",
            ]);
            var adminPort = LoopbackPorts.Free();
            var local = await TrellisProxyProcess.StartAsync(socket, "--config", ini, "--admin", $"127.0.0.1:{adminPort}");
            try
            {
                await using var channel = new ProxyChannel(new ProxyChannelOptions
                {
                    Local = RpcEndpoint.Unix(socket),
                    Central = RegistryResolver.ForCentralProxies(registry, product, "z1"),
                    ProbeInterval = TimeSpan.FromMilliseconds(100),
                    ReturnAfter = 5,
                    DefaultTimeout = TimeSpan.FromSeconds(5),
                });
                var switches = new List<(bool ToCentral, long At)>();
                var clock = Stopwatch.StartNew();
                channel.Switched += toCentral => { lock (switches) switches.Add((toCentral, clock.ElapsedMilliseconds)); };
                var echo = new Trellis.Rpc.Tests.Echo.Echo.Client(channel);
                Assert.Equal("local", await echo.EchoAsync("local"));
                Assert.False(channel.OnCentral);

                var firstCentralOk = -1L;
                var load = CallLoad.Start(4, async () =>
                {
                    await echo.EchoAsync("x");
                    if (channel.OnCentral)
                    {
                        Interlocked.CompareExchange(ref firstCentralOk, clock.ElapsedMilliseconds, -1);
                    }
                });

                await Wait.UntilAsync(() => load.Ok > 300);
                var killedAt = clock.ElapsedMilliseconds;
                local.Kill();
                await Wait.UntilAsync(() => Interlocked.Read(ref firstCentralOk) >= 0, TimeSpan.FromSeconds(10), "a call through the central proxy");
                await load.AfterAsync(300);
                output.WriteLine($"killed at {killedAt} ms; first call through the central proxy at {firstCentralOk} ms (+{firstCentralOk - killedAt} ms); {load.Failures.Count} calls failed");
                Assert.True(channel.OnCentral);
                Assert.True(central.Stats.Replies > 0);
                // shared/RELIABILITY.md: clients on the central proxy cluster within 1 s
                Assert.InRange(firstCentralOk - killedAt, 0, 1000);
                // only calls in flight on the killed proxy may fail (4 callers, one call each)
                Assert.InRange(load.Failures.Count, 0, 4);

                // the local proxy comes back: calls return to it after the hysteresis
                await local.DisposeAsync();
                File.Delete(socket); // SIGKILL left the socket file behind; the restarted proxy may also replace it itself
                local = await TrellisProxyProcess.StartAsync(socket, "--config", ini, "--admin", $"127.0.0.1:{adminPort}");
                await Wait.UntilAsync(() => !channel.OnCentral, TimeSpan.FromSeconds(10), "the return to the local proxy");
                await load.AfterAsync(300);
                await load.StopAsync();
                using var http = new HttpClient();
                await Wait.UntilAsync(() => ProxyProgramTests.Health(http, adminPort) == System.Net.HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the admin endpoint");
                var metrics = await http.GetStringAsync($"http://127.0.0.1:{adminPort}/metrics");
                var calls = metrics.Split('\n').Single(l => l.StartsWith("trellis_proxy_calls_total ", StringComparison.Ordinal));
                Assert.True(long.Parse(calls.Split(' ')[1], CultureInfo.InvariantCulture) >= 300, calls);
                lock (switches)
                {
                    Assert.Equal([true, false], switches.Select(s => s.ToCentral));
                }

                Assert.InRange(load.Failures.Count, 0, 4);
            }
            finally
            {
                await local.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
