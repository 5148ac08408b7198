using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Trellis.Hosting;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Tests;

public sealed class HostingTests : IDisposable
{
    private readonly string _registry = Path.Combine(Path.GetTempPath(), "trellis-host-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_registry))
        {
            Directory.Delete(_registry, recursive: true);
        }
    }

    private static IHost Build(Dictionary<string, string?> settings, Action<IServiceCollection, IConfiguration> configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        configure(builder.Services, builder.Configuration);
        return builder.Build();
    }

    [Fact]
    public async Task AHostedServer_ListensRegistersAndServes_FromConfiguration()
    {
        using var host = Build(new()
        {
            ["Trellis:Product"] = "demo",
            ["Trellis:Registry"] = "local",
            ["Trellis:LocalRegistryPath"] = _registry,
            ["Trellis:Server:Listen:0"] = "tcp://127.0.0.1:0",
            ["Trellis:Server:AdvertisedHost"] = "127.0.0.1",
            ["Trellis:Server:DeregisterDelaySeconds"] = "0",
        }, (services, configuration) =>
        {
            services.AddSingleton<EchoService>();
            services.AddTrellisServer(configuration, sp => new Echo.Echo.Dispatcher(sp.GetRequiredService<EchoService>()));
        });
        await host.StartAsync();
        var registry = host.Services.GetRequiredService<IServiceRegistry>();
        await using var watch = await registry.WatchAsync("demo", "Echo");
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        var instance = watch.Instances[0];
        Assert.Equal("127.0.0.1", instance.Host);

        // a client registered the same way, pointed at the instance
        using var clientHost = Build(new()
        {
            ["Trellis:Product"] = "demo",
            ["Trellis:Registry"] = "local",
            ["Trellis:LocalRegistryPath"] = _registry,
            ["Trellis:Clients:echo:Endpoint"] = instance.Endpoint().ToString(),
        }, (services, configuration) => services.AddTrellisClient(configuration, "echo", channel => new Echo.Echo.Client(channel)));
        var client = clientHost.Services.GetRequiredService<Echo.Echo.Client>();
        Assert.Equal("through the host", await client.EchoAsync("through the host"));

        await host.StopAsync();
        await Wait.UntilAsync(() => watch.Instances.Count == 0);
    }

    [Fact]
    public void RpcProxyConfigIni_MapsOntoTheTrellisSection()
    {
        var file = Path.Combine(Path.GetTempPath(), $"config-{Guid.NewGuid():N}.ini");
        File.WriteAllText(file, """
            # an rpc_proxy deployment's file, unchanged
            zk=10.0.0.1:2181,10.0.0.2:2181
            product=online_shop
            zk_session_timeout=30
            service=typo
            front_host=
            front_port=5555
            back_address=127.0.0.1:5556
            ip_prefix=10.
            worker_pool_size=4
            proxy_address=/usr/local/rpc_proxy/proxy.sock
            verbose=1
            """);
        try
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(RpcProxyIni.Load(file)).Build();
            var options = configuration.GetSection(TrellisOptions.Section).Get<TrellisOptions>()!;
            Assert.Equal("10.0.0.1:2181,10.0.0.2:2181", options.ZooKeeper.ConnectString);
            Assert.Equal("online_shop", options.Product);
            Assert.Equal(30, options.ZooKeeper.SessionTimeoutSeconds);
            Assert.Equal("typo", options.Service);
            Assert.Null(options.Server.AdvertisedHost);
            Assert.Equal(5555, options.Server.Port);
            Assert.Equal("127.0.0.1:5556", options.BackAddress);
            Assert.Equal("10.", options.Server.IpPrefix);
            Assert.Equal(4, options.WorkerPoolSize);
            Assert.Equal("/usr/local/rpc_proxy/proxy.sock", options.ProxyAddress);
            Assert.True(options.Verbose);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("zk 10.0.0.1", "config.ini:1: expected key=value")]
    [InlineData("zookeeper=x", "config.ini:1: unknown key 'zookeeper'")]
    [InlineData("front_port=abc", "config.ini:1: front_port must be a whole number")]
    public void RpcProxyConfigIni_BadLines_SayWhereAndWhat(string line, string expected)
    {
        var error = Assert.Throws<FormatException>(() => RpcProxyIni.Parse([line]));
        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public async Task BadConfiguration_StopsTheStart_WithEveryProblemNamed()
    {
        using var host = Build(new()
        {
            ["Trellis:Product"] = "a/b",
            ["Trellis:Registry"] = "zookeeper",
            ["Trellis:Server:Listen:0"] = "not an endpoint",
            ["Trellis:Clients:orders:Framing"] = "framed",
            ["Trellis:Clients:users:Mode"] = "direct",
            ["Trellis:Clients:users:Strategy"] = "fastest",
            ["Trellis:Clients:carts:Mode"] = "sideways",
        }, (services, configuration) => services.AddTrellisServer(configuration, _ => new Echo.Echo.Dispatcher(new EchoService())));
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        var text = string.Join("\n", error.Failures);
        Assert.Contains("Trellis:Product", text);
        Assert.Contains("ConnectString (rpc_proxy 'zk') is empty", text);
        Assert.Contains("Trellis:Server:Listen", text);
        Assert.Contains("Trellis:Clients:orders: no Endpoint", text);
        Assert.Contains("Trellis:Clients:users:Strategy: unknown strategy 'fastest'", text);
        Assert.Contains("Trellis:Clients:carts:Mode: 'sideways' is neither proxy nor direct", text);
    }

    /// <summary>Two Echo servers of product demo in the local registry, on 127.0.0.1 and 127.0.0.2 (each advertising its own host).</summary>
    /// <summary>Runs <paramref name="body"/> with the two Echo servers started and both seen in the registry; stops them after.</summary>
    private async Task WithRegisteredEchoServersAsync(Func<LocalRegistry, IReadOnlyList<ServiceInstance>, List<EchoService>, Task> body)
    {
        var servers = new List<IHost>();
        var services = new List<EchoService>();
        try
        {
            await StartEchoServersAsync(servers, services);
            var registry = new LocalRegistry(_registry);
            await using var watch = await registry.WatchAsync("demo", "Echo");
            await Wait.UntilAsync(() => watch.Instances.Count == 2, TimeSpan.FromSeconds(10), "both registered");
            await body(registry, watch.Instances, services);
        }
        finally
        {
            foreach (var host in servers)
            {
                await host.StopAsync();
                host.Dispose();
            }
        }
    }

    private async Task StartEchoServersAsync(List<IHost> servers, List<EchoService> services)
    {
        for (var i = 0; i < 2; i++)
        {
            var service = new EchoService();
            services.Add(service);
            var host = Build(new()
            {
                ["Trellis:Product"] = "demo",
                ["Trellis:Registry"] = "local",
                ["Trellis:LocalRegistryPath"] = _registry,
                // two hosts on loopback: 127.0.0.1 (the client's) and 127.0.0.2
                ["Trellis:Server:Listen:0"] = $"tcp://127.0.0.{i + 1}:0",
                ["Trellis:Server:AdvertisedHost"] = $"127.0.0.{i + 1}",
                ["Trellis:Server:DeregisterDelaySeconds"] = "0",
            }, (s, configuration) => s.AddTrellisServer(configuration, _ => new Echo.Echo.Dispatcher(service)));
            servers.Add(host);
            await host.StartAsync();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ADirectModeClient_FindsTheServersInTheRegistry_AndBalancesAcrossThem_OrPrefersItsHost(bool locality)
    {
        var servers = new List<IHost>();
        var services = new List<EchoService>();
        try
        {
            await StartEchoServersAsync(servers, services);

            using var clientHost = Build(new()
            {
                ["Trellis:Product"] = "demo",
                ["Trellis:Registry"] = "local",
                ["Trellis:LocalRegistryPath"] = _registry,
                ["Trellis:Clients:Echo:Mode"] = "direct",
                ["Trellis:Clients:Echo:Strategy"] = "round_robin",
                ["Trellis:Clients:Echo:Locality"] = locality ? "true" : "false",
                ["Trellis:Server:AdvertisedHost"] = "127.0.0.1",
            }, (s, configuration) => s.AddTrellisClient(configuration, "Echo", channel => new Echo.Echo.Client(channel)));
            await clientHost.StartAsync();
            var client = clientHost.Services.GetRequiredService<Echo.Echo.Client>();
            var balanced = await Task.Run(async () =>
            {
                // the registry may show the second server a moment after the first
                for (var attempt = 0; attempt < 100; attempt++)
                {
                    await client.FireAsync("x");
                    if (services.All(s => s.Fired.Count > 0))
                    {
                        return true;
                    }

                    await Task.Delay(20);
                }

                return false;
            });
            if (locality)
            {
                // the same host first: the instance on 127.0.0.2 gets nothing while the local one is healthy
                Assert.False(balanced);
                await Wait.UntilAsync(() => services.Sum(s => s.Fired.Count) == 100, TimeSpan.FromSeconds(10), "the oneway calls to arrive");
                Assert.Equal(100, services[0].Fired.Count);
            }
            else
            {
                Assert.True(balanced, $"calls reached {string.Join(", ", services.Select(s => s.Fired.Count))}");
            }

            Assert.Equal("direct", await client.EchoAsync("direct"));
            await clientHost.StopAsync();
        }
        finally
        {
            foreach (var host in servers)
            {
                await host.StopAsync();
                host.Dispose();
            }
        }
    }

    [Fact]
    public Task DirectModeClients_FollowTheServiceConfig_InstancesTakenOffline() => WithRegisteredEchoServersAsync(async (registry, instances, services) =>
    {
        var second = instances.Single(i => i.Host == "127.0.0.2").InstanceId;
        await registry.SetConfigAsync("demo", "Echo", System.Text.Encoding.UTF8.GetBytes($$"""{ "offline": ["{{second}}"], "strategy": "round_robin" }"""));

        using var clientHost = Build(new()
        {
            ["Trellis:Product"] = "demo",
            ["Trellis:Registry"] = "local",
            ["Trellis:LocalRegistryPath"] = _registry,
            ["Trellis:Clients:Echo:Mode"] = "direct",
            ["Trellis:Clients:Echo:Locality"] = "false",
        }, (s, configuration) => s.AddTrellisClient(configuration, "Echo", channel => new Echo.Echo.Client(channel)));
        await clientHost.StartAsync();
        var client = clientHost.Services.GetRequiredService<Echo.Echo.Client>();
        for (var i = 0; i < 40; i++)
        {
            Assert.Equal("x", await client.EchoAsync("x"));
            await client.FireAsync("x");
        }

        await Wait.UntilAsync(() => services[0].Fired.Count == 40, TimeSpan.FromSeconds(10), "the oneway calls to arrive");
        Assert.Empty(services[1].Fired); // offline: registered, but sent nothing

        // back online: both get calls again
        await registry.SetConfigAsync("demo", "Echo", System.Text.Encoding.UTF8.GetBytes("{}"));
        for (var attempt = 0; attempt < 500 && services[1].Fired.Count == 0; attempt++)
        {
            await client.FireAsync("y");
            await Task.Delay(20);
        }

        Assert.NotEmpty(services[1].Fired);
        await clientHost.StopAsync();
    });

    [Fact]
    public Task DirectModeClients_ApplyTheServiceConfigsRules_RoutesByTheirTag_StaticReplies_AndLimits() => WithRegisteredEchoServersAsync(async (registry, _, services) =>
    {
        await registry.SetConfigAsync("demo", "Echo", System.Text.Encoding.UTF8.GetBytes("""
            {
              "routes": [ { "when": { "tag": "canary" }, "to": { "host": "127.0.0.2" } }, { "to": { "host": "127.0.0.1" } } ],
              "methods": {
                "fail": { "degrade": { "reply": { "i32": 5 } } },
                "slow": { "rateLimit": { "perSecond": 0.01, "burst": 2 } }
              }
            }
            """));

        IHost Client(string? tag) => Build(new()
        {
            ["Trellis:Product"] = "demo",
            ["Trellis:Registry"] = "local",
            ["Trellis:LocalRegistryPath"] = _registry,
            ["Trellis:Tag"] = tag,
            ["Trellis:Clients:Echo:Mode"] = "direct",
            ["Trellis:Clients:Echo:Locality"] = "false",
        }, (s, configuration) => s.AddTrellisClient(configuration, "Echo", channel => new Echo.Echo.Client(channel)));
        using var plainHost = Client(null);
        using var canaryHost = Client("canary");
        await plainHost.StartAsync();
        await canaryHost.StartAsync();
        var plain = plainHost.Services.GetRequiredService<Echo.Echo.Client>();
        var canary = canaryHost.Services.GetRequiredService<Echo.Echo.Client>();
        foreach (var (client, text) in new[] { (plain, "plain"), (canary, "canary") })
        {
            Assert.Equal(5, await client.FailAsync("crash")); // the configured reply: no instance ran it
            for (var i = 0; i < 20; i++)
            {
                await client.FireAsync(text);
            }

            Assert.Equal("a", await client.SlowAsync(1, "a"));
            Assert.Equal("b", await client.SlowAsync(1, "b"));
            var limited = await Assert.ThrowsAsync<Trellis.Thrift.TApplicationException>(() => client.SlowAsync(1, "c"));
            Assert.Equal("rate limited: Echo:slow: over 0.01 calls/s in this client; the call was not run", limited.Message);
        }

        await Wait.UntilAsync(() => services.Sum(s => s.Fired.Count) == 40, TimeSpan.FromSeconds(10), "the oneway calls to arrive");
        Assert.Equal(Enumerable.Repeat("plain", 20), services[0].Fired); // the default route: 127.0.0.1
        Assert.Equal(Enumerable.Repeat("canary", 20), services[1].Fired); // the tagged caller's route: 127.0.0.2
        await plainHost.StopAsync();
        await canaryHost.StopAsync();
    });

    [Fact]
    public void IpPrefix_ChoosesTheLocalAddress_OrSaysWhatThereIs()
    {
        Assert.Equal("127.0.0.1", ServiceHost.AdvertisedHost("0.0.0.0", null, "127."));
        Assert.Equal("10.9.9.9", ServiceHost.AdvertisedHost("0.0.0.0", "10.9.9.9", "127."));
        Assert.Equal("127.0.0.1", ServiceHost.AdvertisedHost("127.0.0.1", null, null));
        var error = Assert.Throws<InvalidOperationException>(() => ServiceHost.AdvertisedHost("0.0.0.0", null, "203.0.113."));
        Assert.Contains("127.0.0.1", error.Message); // lists what there is
    }
}
