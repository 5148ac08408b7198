using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Tests;

/// <summary>Discovery and balancing on a real ZooKeeper, with instances that register and stop as services do.</summary>
[Collection(ZooKeeperCollection.Name)]
public class ZooKeeperBalancingTests(ZooKeeperServer zk)
{
    private async Task<(ServiceHost Host, EchoService Service, int Port)> StartInstanceAsync(string product, string id, int port = 0)
    {
        var options = new ThriftServerOptions { DefaultService = "Echo" };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", port));
        var service = new EchoService();
        var server = new ThriftServer(options).AddService(new Echo.Echo.Dispatcher(service));
        var registry = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        var host = new ServiceHost(server, registry, ["Echo"], new ServiceHostOptions
        {
            Product = product,
            InstanceId = id,
            AdvertisedHost = "127.0.0.1",
            DeregisterDelay = TimeSpan.FromMilliseconds(700),
            DrainTimeout = TimeSpan.FromSeconds(5),
        });
        await host.StartAsync();
        return (host, service, server.Endpoints[0].Port);
    }

    [Fact]
    public async Task ARollingRestartOfThreeRegisteredInstances_UnderLoad_FailsNoCall()
    {
        var product = Instances.Product();
        var instances = new List<(ServiceHost Host, EchoService Service, int Port)>();
        for (var i = 0; i < 3; i++)
        {
            instances.Add(await StartInstanceAsync(product, $"i{i}"));
        }

        await using var registry = await ZooKeeperRegistry.ConnectAsync(zk.Options);
        await using var resolver = new RegistryResolver(registry, product, "Echo");
        await resolver.StartAsync();
        await Wait.UntilAsync(() => resolver.Instances.Count == 3);
        await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions { DefaultTimeout = TimeSpan.FromSeconds(5) });
        var client = new Echo.Echo.Client(channel);
        var load = CallLoad.Start(8, () => client.EchoAsync("rolling"));
        try
        {
            await Wait.UntilAsync(() => load.Ok > 500);
            for (var i = 0; i < instances.Count; i++)
            {
                var (host, _, port) = instances[i];
                await host.DisposeAsync(); // draining → deregister → wait → drain → close
                instances[i] = await StartInstanceAsync(product, $"i{i}", port);
                await Wait.UntilAsync(() => resolver.Instances.Count(x => !x.Draining) == 3, what: "the restarted instance to be back");
                await load.AfterAsync(300);
            }
        }
        finally
        {
            await load.StopAsync();
            foreach (var (host, _, _) in instances)
            {
                await host.DisposeAsync();
            }
        }

        Assert.True(load.Failures.Count == 0, $"{load.Failures.Count} failed: {(load.Failures.Count > 0 ? load.Failures[0].Error : null)}");
        Assert.All(instances, x => Assert.True(x.Service.Fired.Count == 0));
    }
}
