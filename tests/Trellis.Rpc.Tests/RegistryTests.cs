using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Trellis.Rpc.Registry;
using Trellis.Testing;
using Trellis.Thrift;
using Trellis.ZooKeeper;

namespace Trellis.Rpc.Tests;

public sealed class ZooKeeperServer : IAsyncLifetime
{
    public ZooKeeperEnsemble Ensemble { get; private set; } = null!;
    public async Task InitializeAsync() => Ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);
    public async Task DisposeAsync() => await Ensemble.DisposeAsync();
    public ZooKeeperOptions Options => new() { ConnectString = Ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10) };
}

[CollectionDefinition(Name)]
public sealed class ZooKeeperCollection : ICollectionFixture<ZooKeeperServer>
{
    public const string Name = "a ZooKeeper server for the registry";
}

internal static class Instances
{
    public static ServiceInstance Make(string product, string service, string id, int port = 9090, bool draining = false) => new()
    {
        Product = product,
        Service = service,
        InstanceId = id,
        Host = "10.1.2.3",
        Port = port,
        Zone = "z1",
        Pid = Environment.ProcessId,
        StartedAt = DateTimeOffset.UtcNow,
        Draining = draining,
    };

    public static string Product() => "p" + Guid.NewGuid().ToString("N")[..8];
}

[Collection(ZooKeeperCollection.Name)]
public class ZooKeeperRegistryTests(ZooKeeperServer zk)
{
    [Fact]
    public async Task Instances_AppearChangeAndGo_ForWatchers()
    {
        var product = Instances.Product();
        await using var provider = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await using var consumer = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await using var watch = await consumer.WatchAsync(product, "Echo");
        Assert.Empty(watch.Instances);

        var registration = await provider.RegisterAsync(Instances.Make(product, "Echo", "i-1"));
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        Assert.Equal("10.1.2.3", watch.Instances[0].Host);
        Assert.Equal(RpcEndpoint.Tcp("10.1.2.3", 9090), watch.Instances[0].Endpoint());

        await registration.UpdateAsync(registration.Instance with { Draining = true });
        await Wait.UntilAsync(() => watch.Instances.Single().Draining);

        // the node's layout is the documented one, with an ephemeral owner
        var node = await provider.Sessions.Current.GetDataAsync(RegistryPaths.Instance(product, "Echo", "i-1"));
        Assert.True(node.Stat.IsEphemeral);
        Assert.Contains("\"instanceId\":\"i-1\"", Encoding.UTF8.GetString(node.Data));

        await registration.DeregisterAsync();
        await Wait.UntilAsync(() => watch.Instances.Count == 0);
    }

    [Fact]
    public async Task AMalformedRecord_IsSkipped_NotFatal()
    {
        var product = Instances.Product();
        await using var registry = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await using var _ = await registry.RegisterAsync(Instances.Make(product, "Echo", "good"));
        await registry.Sessions.Current.CreateAsync(RegistryPaths.Instance(product, "Echo", "garbage"), "{not json"u8.ToArray(), CreateMode.Ephemeral);
        await registry.Sessions.Current.CreateAsync(RegistryPaths.Instance(product, "Echo", "portless"),
            "{\"product\":\"x\",\"service\":\"Echo\",\"instanceId\":\"portless\",\"host\":\"h\",\"port\":0}"u8.ToArray(), CreateMode.Ephemeral);
        await using var watch = await registry.WatchAsync(product, "Echo");
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        Assert.Equal("good", watch.Instances[0].InstanceId);
    }

    [Fact]
    public async Task BadRecords_AreRefusedAtRegistration()
    {
        await using var registry = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await Assert.ThrowsAsync<ArgumentException>(() => registry.RegisterAsync(Instances.Make("a/b", "Echo", "i")));
        await Assert.ThrowsAsync<ArgumentException>(() => registry.RegisterAsync(Instances.Make("p", "Echo", "i", port: 0)));
    }
}

public sealed class LocalRegistryTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "trellis-reg-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Instances_AppearChangeAndGo_AcrossRegistryInstances()
    {
        // two registries on one directory: what two processes on one machine share
        await using var provider = new LocalRegistry(_root, TimeSpan.FromSeconds(2));
        await using var consumer = new LocalRegistry(_root, TimeSpan.FromSeconds(2));
        await using var watch = await consumer.WatchAsync("demo", "Echo");
        var seen = 0;
        watch.Changed += _ => Interlocked.Increment(ref seen);

        var registration = await provider.RegisterAsync(Instances.Make("demo", "Echo", "a"));
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        Assert.True(File.Exists(Path.Combine(_root, "demo", "services", "Echo", "instances", "a.json")));

        await registration.UpdateAsync(registration.Instance with { Weight = 5 });
        await Wait.UntilAsync(() => watch.Instances.Single().Weight == 5);

        await Task.Delay(3000); // longer than the lease: the heartbeat keeps it alive
        Assert.Single(watch.Instances);

        await registration.DeregisterAsync();
        await Wait.UntilAsync(() => watch.Instances.Count == 0);
        Assert.True(seen >= 3);
    }

    [Fact]
    public async Task AnInstanceWhoseOwnerStoppedRenewing_ExpiresWithItsLease()
    {
        await using var registry = new LocalRegistry(_root, TimeSpan.FromMilliseconds(600));
        await using var watch = await registry.WatchAsync("demo", "Echo");
        var registration = await registry.RegisterAsync(Instances.Make("demo", "Echo", "crashy"));
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        LocalRegistry.Abandon(registration); // what a crash leaves: the file, no heartbeat
        await Wait.UntilAsync(() => watch.Instances.Count == 0, TimeSpan.FromSeconds(5), "the lease to run out");
    }

    [Fact]
    public async Task ARecordOfADeadProcess_IsIgnored_AndGarbageIsSkipped()
    {
        var directory = Path.Combine(_root, "demo", "services", "Echo", "instances");
        Directory.CreateDirectory(directory);
        File.WriteAllBytes(Path.Combine(directory, "ghost.json"), (Instances.Make("demo", "Echo", "ghost") with { Pid = 999_999 }).ToJson());
        File.WriteAllText(Path.Combine(directory, "garbage.json"), "not json");
        await using var registry = new LocalRegistry(_root);
        await using var _ = await registry.RegisterAsync(Instances.Make("demo", "Echo", "alive"));
        await using var watch = await registry.WatchAsync("demo", "Echo");
        Assert.Equal(["alive"], watch.Instances.Select(i => i.InstanceId));
    }
}

[Collection(ZooKeeperCollection.Name)]
public class GracefulStopTests(ZooKeeperServer zk)
{
    [Fact]
    public async Task Stop_DeregistersBeforeTheListenerCloses_AndCallsInFlightComplete()
    {
        var product = Instances.Product();
        var options = new ThriftServerOptions { DefaultService = "Echo" };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        var service = new EchoService();
        var live = new ThriftServer(options).AddService(new Echo.Echo.Dispatcher(service));
        await using var registry = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await using var host = new ServiceHost(live, registry, ["Echo"], new ServiceHostOptions
        {
            Product = product,
            AdvertisedHost = "127.0.0.1",
            DeregisterDelay = TimeSpan.FromMilliseconds(500),
            DrainTimeout = TimeSpan.FromSeconds(5),
        });
        await host.StartAsync();
        var port = live.Endpoints[0].Port;

        await using var consumer = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await using var watch = await consumer.WatchAsync(product, "Echo");
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        Assert.Equal(port, watch.Instances[0].Port);
        var clock = Stopwatch.StartNew();
        long deregisteredAt = -1;
        watch.Changed += list =>
        {
            if (list.Count == 0)
            {
                Interlocked.CompareExchange(ref deregisteredAt, clock.ElapsedMilliseconds, -1);
            }
        };

        await using var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = RpcEndpoint.Tcp("127.0.0.1", port), PeerMultiplexesCalls = true });
        var client = new Echo.Echo.Client(channel);
        var inFlight = client.SlowAsync(1200, "finished");
        await Wait.UntilAsync(() => Volatile.Read(ref service.Running) == 1);

        var stopping = host.StopAsync();
        long closedAt = -1;
        while (closedAt < 0)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                await Task.Delay(5);
            }
            catch (SocketException)
            {
                closedAt = clock.ElapsedMilliseconds;
            }
        }

        Assert.Equal("finished", await inFlight); // drained, not cut
        await stopping;
        await Wait.UntilAsync(() => Interlocked.Read(ref deregisteredAt) >= 0);
        Assert.True(deregisteredAt < closedAt, $"deregistered at {deregisteredAt} ms, listener closed at {closedAt} ms");
    }

    [Fact]
    public async Task AHandlerStuckPastTheStopDeadline_FailsAlone()
    {
        var (server, service) = await Servers.StartAsync();
        await using var registry = new LocalRegistry(Path.Combine(Path.GetTempPath(), "trellis-reg-" + Guid.NewGuid().ToString("N")[..8]));
        await using var host = new ServiceHost(server, registry, ["Echo"], new ServiceHostOptions
        {
            Product = "demo",
            DeregisterDelay = TimeSpan.Zero,
            DrainTimeout = TimeSpan.FromMilliseconds(500),
        });
        // the server has started already: the host only registers it
        await using var channel = Servers.Channel(server);
        var client = new Echo.Echo.Client(channel);
        var stuck = client.StuckAsync();
        var quick = client.SlowAsync(100, "quick");
        await Wait.UntilAsync(() => Volatile.Read(ref service.Running) == 2);
        await server.StopAsync(TimeSpan.FromMilliseconds(500));
        Assert.Equal("quick", await quick);
        var error = await Assert.ThrowsAsync<TApplicationException>(() => stuck);
        Assert.Contains("shutting down", error.Message);
    }
}
