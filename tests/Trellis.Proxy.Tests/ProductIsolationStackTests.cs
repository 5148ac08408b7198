using System.Text;
using Trellis.Rpc;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Trellis.ZooKeeper;
using Xunit.Abstractions;
using EchoClient = Trellis.Rpc.Tests.Echo.Echo.Client;

namespace Trellis.Proxy.Tests;

/// <summary>
/// Product isolation through the whole stack, on a real ZooKeeper with digest ACLs: a test product's callers, under
/// load, by every path they have (the online proxy, the online server directly, their own proxy, direct-mode
/// discovery, a proxy misconfigured as the online product), while online callers are served.
/// </summary>
public sealed class ProductIsolationStackTests(ITestOutputHelper output)
{
    private const string Online = "online-shop";
    private const string Test = "test-shop";
    private const string Deployer = "shop-deployer:d-pw";
    private const string OnlineReader = "online-proxy:r-pw";
    private const string Tester = "tester:t-pw";
    private const string Admin = "admin:a-pw";

    private static ZooKeeperOptions Zk(string connect, string credentials) => new()
    {
        ConnectString = connect,
        SessionTimeout = TimeSpan.FromSeconds(10),
        Authentication = [("digest", Encoding.UTF8.GetBytes(credentials))],
    };

    private static string Id(string credentials) => Acl.DigestId(credentials.Split(':')[0], credentials.Split(':')[1]);

    private static ThriftChannel Channel(RpcEndpoint endpoint, string callerProduct, List<IAsyncDisposable> owned)
    {
        var channel = new ThriftChannel(new ThriftChannelOptions
        {
            Endpoint = endpoint,
            Encoding = new ThriftEncoding(ThriftFraming.Header, ThriftProtocol.Binary),
            Multiplexed = true,
            PeerMultiplexesCalls = true,
            CallerProduct = callerProduct,
            DefaultTimeout = TimeSpan.FromSeconds(10),
        });
        owned.Add(channel);
        return channel;
    }

    private static async Task<ProxyServer> ProxyAsync(string connect, string credentials, string product, List<IAsyncDisposable> owned)
    {
        var registry = await ZooKeeperRegistry.ConnectAsync(Zk(connect, credentials));
        owned.Add(registry);
        var options = new ProxyOptions { Product = product, DefaultTimeout = TimeSpan.FromSeconds(5) };
        options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        var proxy = new ProxyServer(options, registry);
        await proxy.StartAsync();
        owned.Add(proxy);
        return proxy;
    }

    [Fact]
    public async Task ATestProductCaller_UnderLoad_ByEveryPath_NeverReachesAnOnlineService()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync();
        var owned = new List<IAsyncDisposable>();
        try
        {
            // the registry's administrator creates both products: the online one written only by its deployer and read
            // only by online readers; the test one written by the tester (and readable by all)
            await using (var admin = await ZooKeeperRegistry.ConnectAsync(Zk(ensemble.ConnectString, Admin), RegistryAclPolicy.Create(Admin, null, null)))
            {
                await admin.SecureProductAsync(Online, RegistryAclPolicy.Create(Admin, Id(Deployer), [Id(OnlineReader)])!);
                await admin.SecureProductAsync(Test, RegistryAclPolicy.Create(Admin, Id(Tester), null)!);
            }

            var deployer = await ZooKeeperRegistry.ConnectAsync(Zk(ensemble.ConnectString, Deployer), RegistryAclPolicy.Create(Deployer, null, [Id(OnlineReader)]));
            owned.Add(deployer);
            var (server, service) = await Servers.StartAsync(o => o.Product = Online);
            owned.Add(server);
            owned.Add(await deployer.RegisterAsync(new ServiceInstance
            {
                Product = Online, Service = "Echo", InstanceId = "a", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
            }));
            await deployer.SetConfigAsync(Online, "Echo", Encoding.UTF8.GetBytes("""{ "timeoutMs": 5000 }"""));
            // the test product's own Echo, so that its proxy has something of its own to route
            var testDeployer = await ZooKeeperRegistry.ConnectAsync(Zk(ensemble.ConnectString, Tester), RegistryAclPolicy.Create(Tester, null, null));
            owned.Add(testDeployer);
            var (testServer, testService) = await Servers.StartAsync(o => o.Product = Test);
            owned.Add(testServer);
            owned.Add(await testDeployer.RegisterAsync(new ServiceInstance
            {
                Product = Test, Service = "Echo", InstanceId = "t", Host = "127.0.0.1", Port = testServer.Endpoints[0].Port, Framing = "header",
            }));

            var onlineProxy = await ProxyAsync(ensemble.ConnectString, OnlineReader, Online, owned);
            var testProxy = await ProxyAsync(ensemble.ConnectString, Tester, Test, owned);
            var misconfigured = await ProxyAsync(ensemble.ConnectString, Tester, Online, owned); // a test machine whose proxy says "online-shop"
            var onlineCaller = new EchoClient(Channel(onlineProxy.Endpoints[0], "online-web", owned));
            Assert.Equal("online works", await onlineCaller.EchoAsync("online works"));
            Assert.Equal("test works", await new EchoClient(Channel(testProxy.Endpoints[0], Test, owned)).EchoAsync("test works"));

            // direct-mode discovery of the online service with the tester's identity: ZooKeeper refuses to list it
            await using (var testerRegistry = await ZooKeeperRegistry.ConnectAsync(Zk(ensemble.ConnectString, Tester)))
            {
                var denied = await Assert.ThrowsAsync<RegistryAccessDeniedException>(async () =>
                {
                    await using var resolver = new RegistryResolver(testerRegistry, Online, "Echo");
                    await resolver.StartAsync().WaitAsync(TimeSpan.FromSeconds(10));
                });
                Assert.Contains("not allowed: tester may not read /trellis/online-shop", denied.Message);
                await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => testerRegistry.GetConfigAsync(Online, "Echo"));
            }

            // every path a test caller has, under load, while an online caller keeps calling
            var paths = new (string Name, EchoClient Client)[]
            {
                ("the online proxy", new EchoClient(Channel(onlineProxy.Endpoints[0], Test, owned))),
                ("the online server directly", new EchoClient(Channel(server.Endpoints[0], Test, owned))),
                ("its own proxy", new EchoClient(Channel(testProxy.Endpoints[0], Test, owned))),
                ("a test proxy that says it is online", new EchoClient(Channel(misconfigured.Endpoints[0], Test, owned))),
                ("a misconfigured proxy, not saying", new EchoClient(new ThriftChannel(new ThriftChannelOptions { Endpoint = misconfigured.Endpoints[0], Multiplexed = true, PeerMultiplexesCalls = true }))),
            };
            var before = service.Echoes;
            var testBefore = testService.Echoes;
            var loads = paths.Select(p => CallLoad.Start(2, async () =>
            {
                await p.Client.FireAsync("should never arrive");
                await p.Client.EchoAsync("should never run");
            })).ToList();
            var onlineLoad = CallLoad.Start(1, () => onlineCaller.EchoAsync("online"));
            await Task.Delay(2000);
            await onlineLoad.StopAsync();
            foreach (var load in loads)
            {
                await load.StopAsync();
            }

            await Task.Delay(300);
            for (var i = 0; i < paths.Length; i++)
            {
                var reasons = loads[i].Failures.Select(f => f.Error.Message.Split(':')[0]).Distinct();
                output.WriteLine($"{paths[i].Name}: {loads[i].Ok} ok, {loads[i].Failures.Count} refused ({string.Join(", ", reasons)})");
            }

            output.WriteLine($"online caller meanwhile: {onlineLoad.Ok} calls served");
            var onlineReached = service.Echoes - before - onlineLoad.Ok;
            lock (service.Fired)
            {
                Assert.DoesNotContain("should never arrive", service.Fired);
            }

            Assert.Equal(0, onlineReached); // not one test call ran at the online service
            Assert.True(onlineLoad.Ok > 50, "the online caller was served meanwhile");
            Assert.All(loads.Take(2), l => Assert.Equal(0, l.Ok));
            Assert.All(loads.Take(2), l => Assert.True(l.Failures.Count > 20, "the load ran"));
            Assert.All(loads.Take(2).SelectMany(l => l.Failures), f => Assert.Contains("product isolation: a caller of product 'test-shop' may not call product 'online-shop'", f.Error.Message));
            // its own proxy routes only its own product: the calls ran at the test service, not the online one
            Assert.True(loads[2].Ok > 20 && testService.Echoes - testBefore == loads[2].Ok);
            // the misconfigured proxy cannot read the online product at all
            Assert.All(loads.Skip(3), l => Assert.Equal(0, l.Ok));
            Assert.All(loads.Skip(3).SelectMany(l => l.Failures), f => Assert.True(
                f.Error.Message.Contains("product isolation", StringComparison.Ordinal) || f.Error.Message.Contains("the registry refuses this proxy: not allowed: tester may not read", StringComparison.Ordinal),
                f.Error.Message));
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
