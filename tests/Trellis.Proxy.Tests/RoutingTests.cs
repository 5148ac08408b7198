using System.Text;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Xunit.Abstractions;
using EchoClient = Trellis.Rpc.Tests.Echo.Echo.Client;

namespace Trellis.Proxy.Tests;

/// <summary>Routes, static degradation, circuit breakers, access control and per-caller limits of a service config, at a real proxy.</summary>
public sealed class RoutingTests(ITestOutputHelper output)
{
    private static async Task<EchoService> AddAsync(ProxyRig rig, string id, string version, Dictionary<string, string>? tags = null, string zone = "")
    {
        var (server, service) = await Servers.StartAsync();
        rig.Own(server);
        rig.Own(await rig.Registry.RegisterAsync(new ServiceInstance
        {
            Product = ProxyRig.Product, Service = "Echo", InstanceId = id, Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
            Version = version, Tags = tags ?? [], Zone = zone,
        }));
        return service;
    }

    /// <summary>A THeader channel to the proxy that sends <paramref name="headers"/> with every call.</summary>
    private static ThriftChannel Channel(ProxyRig rig, RpcEndpoint endpoint, Dictionary<string, string>? headers = null, ThriftProtocol protocol = ThriftProtocol.Binary)
    {
        var channel = new ThriftChannel(new ThriftChannelOptions
        {
            Endpoint = endpoint,
            Encoding = new ThriftEncoding(ThriftFraming.Header, protocol),
            Multiplexed = true,
            PeerMultiplexesCalls = true,
            Headers = headers,
            DefaultTimeout = TimeSpan.FromSeconds(10),
        });
        rig.Own(channel);
        return channel;
    }

    private static async Task ConfigureAsync(ProxyRig rig, string json, Func<Trellis.Rpc.Governance.ServiceConfig, bool> applied)
    {
        await rig.Registry.SetConfigAsync(ProxyRig.Product, "Echo", Encoding.UTF8.GetBytes(json));
        await Wait.UntilAsync(() => rig.Proxy.ConfigOf("Echo") is { } c && applied(c), TimeSpan.FromSeconds(10), "the config applied");
    }

    [Fact]
    public async Task TagRoutes_CallerConditions_AndAWeightedStickySplit_SendEachCallToItsInstances()
    {
        await using var rig = await ProxyRig.StartAsync();
        var stable1 = await AddAsync(rig, "stable1", "1.4");
        var stable2 = await AddAsync(rig, "stable2", "1.5");
        var canary = await AddAsync(rig, "canary", "2.0", new() { ["track"] = "canary" });
        var plain = new EchoClient(Channel(rig, rig.Tcp));
        Assert.Equal("up", await plain.EchoAsync("up"));
        await Wait.UntilAsync(() => rig.Proxy.Routes["Echo"].Count == 3, TimeSpan.FromSeconds(10), "three instances");
        await ConfigureAsync(rig, """
            {
              "strategy": "round_robin",
              "routes": [
                { "name": "canary", "when": { "tag": "canary" }, "to": { "tags": { "track": "canary" } } },
                { "name": "partner", "when": { "callerService": "partner-*" }, "to": { "instances": ["stable2"] } },
                { "name": "ab", "when": { "method": "echo", "headers": { "x-experiment": "on" } }, "stickyHeader": "x-user",
                  "split": [ { "weight": 80, "to": { "version": "1.*" } }, { "weight": 20, "to": { "version": "2.*" } } ] },
                { "name": "default", "to": { "version": "1.*" } }
              ]
            }
            """, c => c.Routes.Rules.Count == 4 && c.Strategy == "round_robin");

        async Task<(int Stable1, int Stable2, int Canary)> CountAsync(Func<Task> calls)
        {
            var before = (stable1.Echoes, stable2.Echoes, canary.Echoes);
            await calls();
            return (stable1.Echoes - before.Item1, stable2.Echoes - before.Item2, canary.Echoes - before.Item3);
        }

        async Task Many(EchoClient client, int n = 200)
        {
            for (var i = 0; i < n; i++)
            {
                Assert.Equal("x", await client.EchoAsync("x"));
            }
        }

        // untagged callers: the default route keeps them off the canary
        var untagged = await CountAsync(() => Many(plain));
        Assert.Equal(0, untagged.Canary);
        Assert.True(untagged.Stable1 > 50 && untagged.Stable2 > 50, $"spread over the stable ones: {untagged}");

        // a tagged caller (the tag on every call of its channel): all to the canary
        var tagged = await CountAsync(() => Many(new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.Tag] = "canary" }))));
        Assert.Equal((0, 0, 200), tagged);

        // a caller condition: the partner service's calls go to stable2 only
        var partner = await CountAsync(() => Many(new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.CallerService] = "partner-billing" }))));
        Assert.Equal((0, 200, 0), partner);

        // the A/B split: 80/20 over many users, and one user always on the same side
        var users = Enumerable.Range(0, 400).Select(i => new EchoClient(Channel(rig, rig.Tcp, new() { ["x-experiment"] = "on", ["x-user"] = "user-" + i }))).ToList();
        var split = await CountAsync(async () =>
        {
            foreach (var user in users)
            {
                Assert.Equal("x", await user.EchoAsync("x"));
            }
        });
        output.WriteLine($"A/B over 400 users: stable {split.Stable1 + split.Stable2}, canary {split.Canary}");
        Assert.InRange(split.Canary, 50, 110); // 20 % of 400 = 80
        var sticky = await CountAsync(() => Many(users[7], 50));
        Assert.True(sticky.Canary is 0 or 50, $"one user stays on one side: {sticky}");

        // forced and unforced routes to instances that are not there
        await ConfigureAsync(rig, """{ "routes": [ { "when": { "tag": "gone" }, "to": { "version": "9.*" } }, { "when": { "tag": "strict" }, "to": { "version": "9.*" }, "force": true } ] }""",
            c => c.Routes.Rules.Count == 2);
        Assert.Equal("falls back", await new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.Tag] = "gone" })).EchoAsync("falls back"));
        var e = await Assert.ThrowsAsync<TApplicationException>(() => new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.Tag] = "strict" })).EchoAsync("x"));
        Assert.Equal("no instance available: none matches the call's route", e.Message);
    }

    [Fact]
    public async Task ADegradedMethod_AnswersWithItsConfiguredReply_InTheCallersProtocol()
    {
        await using var rig = await ProxyRig.StartAsync();
        var service = (await rig.AddTrellisBackendAsync("a")).Service;
        var binary = new EchoClient(Channel(rig, rig.Tcp));
        var compact = new EchoClient(Channel(rig, rig.Tcp, protocol: ThriftProtocol.Compact));
        Assert.Equal("live", await binary.EchoAsync("live"));
        await ConfigureAsync(rig, """{ "methods": { "echo": { "degrade": { "reply": { "str": "from the cache" } } }, "fail": { "degrade": { "reply": { "i32": 42 } } } } }""",
            c => c.DegradeFor("fail") is not null);
        var before = service.Echoes;
        Assert.Equal("from the cache", await binary.EchoAsync("x"));
        Assert.Equal("from the cache", await compact.EchoAsync("x"));
        Assert.Equal(42, await compact.FailAsync("crash"));
        Assert.Equal(before, service.Echoes); // never reached the instance
        Assert.Equal(3, rig.Proxy.Stats.Degraded);
        Assert.Equal("hello y", await new Trellis.Rpc.Tests.Echo.Other.Client(Channel(rig, rig.Tcp)).HelloAsync("y"));
    }

    [Fact]
    public async Task AMethodsCircuitBreaker_OpensOnFailures_FailsFast_ThenAProbeClosesIt()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var client = new EchoClient(Channel(rig, rig.Tcp));
        Assert.Equal("up", await client.EchoAsync("up"));
        await ConfigureAsync(rig, """
            { "outlier": { "consecutiveFailures": 1000 },
              "methods": { "fail": { "circuitBreaker": { "errorRate": 0.5, "minimumCalls": 10, "windowMs": 10000, "openMs": 700 } } } }
            """, c => c.Methods.ContainsKey("fail"));
        for (var i = 0; i < 10; i++)
        {
            var crash = await Assert.ThrowsAsync<TApplicationException>(() => client.FailAsync("crash"));
            Assert.DoesNotContain("circuit open", crash.Message, StringComparison.Ordinal);
        }

        var open = await Assert.ThrowsAsync<TApplicationException>(() => client.FailAsync("ok"));
        Assert.StartsWith("circuit open: Echo:fail:", open.Message);
        Assert.Equal("other methods flow", await client.EchoAsync("other methods flow"));
        Assert.Equal(1, rig.Proxy.Stats.BreakerOpen);
        await Task.Delay(800);
        Assert.Equal(0, await client.FailAsync("ok")); // the half-open probe succeeds: closed again
        Assert.Equal(0, await client.FailAsync("ok"));
        Assert.Equal(1000, rig.Proxy.RouteOf("Echo")!.Set.OutlierPolicy.ConsecutiveFailures); // the per-instance breaker as configured
    }

    [Fact]
    public async Task AccessRules_AllowByUnixPeerCredentials_OrByClaimedProductWhenTrusted_AndDenyTheRest()
    {
        await using var rig = await ProxyRig.StartAsync();
        var service = (await rig.AddTrellisBackendAsync("a")).Service;
        var overUnix = new EchoClient(Channel(rig, rig.Unix));
        var overTcp = new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.CallerService] = "web" }));
        Assert.Equal("up", await overTcp.EchoAsync("up"));
        var uid = Trellis.Rpc.Governance.AccessList.UserId(Environment.UserName) ?? throw new InvalidOperationException("no uid for " + Environment.UserName);

        await ConfigureAsync(rig, $$"""{ "allow": ["uid:{{uid}}"], "methods": { "fail": { "allow": ["uid:99999"] } } }""", c => c.Allow is not null);
        Assert.Equal("me", await overUnix.EchoAsync("me")); // the kernel vouches for this process's uid
        var denied = await Assert.ThrowsAsync<TApplicationException>(() => overTcp.EchoAsync("x"));
        Assert.Equal("access denied: Echo:echo does not allow p/web (claimed)", denied.Message);
        var method = await Assert.ThrowsAsync<TApplicationException>(() => overUnix.FailAsync("ok")); // the method's own list
        Assert.StartsWith("access denied: Echo:fail does not allow uid ", method.Message);

        // a claimed identity counts only where the config trusts claims
        await ConfigureAsync(rig, """{ "allow": ["service:p/web"] }""", c => c.Allow?.Entries.SequenceEqual(["service:p/web"]) == true);
        await Assert.ThrowsAsync<TApplicationException>(() => overTcp.EchoAsync("x"));
        await ConfigureAsync(rig, """{ "allow": ["service:p/web"], "trustClaimedCallers": true }""", c => c.TrustClaimedCallers);
        var before = service.Echoes;
        Assert.Equal("web", await overTcp.EchoAsync("web"));
        await Assert.ThrowsAsync<TApplicationException>(() => overUnix.EchoAsync("x")); // says no service
        Assert.Equal(before + 1, service.Echoes);
        Assert.Equal(4, rig.Proxy.Stats.Denied);
    }

    [Fact]
    public async Task APerCallerRateLimit_GivesEachCallerItsOwnBucket()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var a = new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.CallerService] = "a" }));
        var b = new EchoClient(Channel(rig, rig.Tcp, new() { [RpcHeaders.CallerService] = "b" }));
        Assert.Equal("up", await a.EchoAsync("up"));
        await ConfigureAsync(rig, """{ "methods": { "echo": { "rateLimit": { "perSecond": 0.01, "burst": 3, "perCaller": true } } } }""", c => c.Methods.ContainsKey("echo"));
        foreach (var client in new[] { a, b })
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal("ok", await client.EchoAsync("ok"));
            }

            var e = await Assert.ThrowsAsync<TApplicationException>(() => client.EchoAsync("4th"));
            Assert.Equal("rate limited: Echo:echo: over 0.01 calls/s for this caller at this proxy; the call was not run", e.Message);
        }
    }
}
