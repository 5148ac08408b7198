using System.Text;
using Trellis.Rpc.Governance;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Tests;

public sealed class ServiceConfigTests
{
    private static (ServiceConfig? Config, IReadOnlyList<string> Problems) Parse(string json) => ServiceConfig.Parse(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void AValidConfig_IsRead_AndAppliedToInstances()
    {
        var (config, problems) = Parse("""
            {
              "strategy": "least_active",
              "weights": { "b": 300 },
              "offline": ["a"],
              "timeoutMs": 2000,
              "degrade": { "error": "whole service off" },
              "methods": { "get": { "timeoutMs": 200, "retries": 2, "idempotent": true }, "put": { "degrade": { "error": "read only" } } }
            }
            """);
        Assert.Empty(problems);
        Assert.NotNull(config);
        Assert.Equal("least_active", config.Strategy);
        Assert.Equal(TimeSpan.FromMilliseconds(200), config.Methods["get"].Timeout);
        Assert.Equal("read only", config.DegradeFor("put")!.Error);
        Assert.Equal("whole service off", config.DegradeFor("get")!.Error);
        ServiceInstance[] instances =
        [
            new() { Product = "p", Service = "s", InstanceId = "a", Host = "h", Port = 1 },
            new() { Product = "p", Service = "s", InstanceId = "b", Host = "h", Port = 2 },
        ];
        var applied = config.Apply(instances);
        Assert.Equal([("b", 300)], applied.Select(i => (i.InstanceId, i.Weight)));
    }

    [Fact]
    public void EveryProblem_IsReported_WithItsPath()
    {
        var (config, problems) = Parse("""
            {
              "strategy": "fastest",
              "weights": { "a": -1 },
              "ofline": ["x"],
              "timeoutMs": 0,
              "methods": { "get": { "retries": 3 }, "svc:m": {} },
              "degrade": { "message": "x" }
            }
            """);
        Assert.Null(config);
        var text = string.Join("\n", problems);
        Assert.Contains("$.strategy: unknown strategy 'fastest'", text);
        Assert.Contains("$.weights.a: must be a whole number from 0 to 100000", text);
        Assert.Contains("$.ofline: unknown setting", text);
        Assert.Contains("$.timeoutMs: must be a whole number from 1 to 600000", text);
        Assert.Contains("$.methods.get.retries: a call that was sent is retried only for an idempotent method", text);
        Assert.Contains("$.methods.svc:m: not a method name", text);
        Assert.Contains("$.degrade.message: unknown setting", text);
        Assert.Contains("$.degrade: give either \"error\" (fail fast with this message) or \"reply\" (answer with this value), not neither", text);
    }

    [Theory]
    [InlineData("", "not JSON")]
    [InlineData("[1]", "must be an object")]
    [InlineData("""{ "offline": "a" }""", "$.offline: must be an array")]
    [InlineData("""{ "offline": ["a"], "weights": { "a": 5 } }""", "also offline")]
    [InlineData("""{ "methods": { "m": { "idempotent": "yes" } } }""", "must be true or false")]
    [InlineData("""{ "rateLimit": { "perSecond": 0 } }""", "$.rateLimit.perSecond: calls a second")]
    [InlineData("""{ "methods": { "m": { "rateLimit": { "perSecond": 5, "burst": 0 } } } }""", "$.methods.m.rateLimit.burst: must be a whole number from 1")]
    [InlineData("""{ "rateLimit": { "qps": 5 } }""", "$.rateLimit.qps: unknown setting")]
    [InlineData("""{ "methods": { "m": { "maxConcurrent": 0 } } }""", "$.methods.m.maxConcurrent: must be a whole number from 1")]
    public void BadInput_IsRefusedWithAClearReport(string json, string expected)
    {
        var (config, problems) = Parse(json);
        Assert.Null(config);
        Assert.Contains(problems, p => p.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheLocalRegistry_StoresConfigs_WithCompareAndSet_AndWatchesThem()
    {
        var root = Path.Combine(Path.GetTempPath(), "trellis-cfg-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var registry = new LocalRegistry(root);
            Assert.Null(await registry.GetConfigAsync("p", "s"));
            await using var watch = await registry.WatchConfigAsync("p", "s");
            var seen = new List<string?>();
            watch.Changed += data => { lock (seen) seen.Add(data is null ? null : Encoding.UTF8.GetString(data)); };
            var v1 = await registry.SetConfigAsync("p", "s", Encoding.UTF8.GetBytes("{}"));
            await Assert.ThrowsAsync<InvalidOperationException>(() => registry.SetConfigAsync("p", "s", Encoding.UTF8.GetBytes("""{"timeoutMs":5}"""), expectedVersion: v1 + 1));
            await registry.SetConfigAsync("p", "s", Encoding.UTF8.GetBytes("""{"timeoutMs":5}"""), expectedVersion: v1);
            await Wait.UntilAsync(() => { lock (seen) return seen.Contains("""{"timeoutMs":5}"""); }, TimeSpan.FromSeconds(5), "the change seen");
            Assert.Equal("""{"timeoutMs":5}""", Encoding.UTF8.GetString((await registry.GetConfigAsync("p", "s"))!.Data));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void RoutesBreakersAccessAndStaticReplies_AreRead_AndTheirProblemsReported()
    {
        var (config, problems) = Parse("""
            {
              "routes": [
                { "name": "canary", "when": { "tag": "canary", "callerProduct": ["online-*"] }, "to": { "tags": { "track": "canary" } }, "force": true },
                { "when": { "callerZone": "!bj" }, "split": [ { "weight": 90, "to": { "zone": "sh" } }, { "weight": 10, "to": { "tags": { "track": "canary" } } } ], "stickyHeader": "x-user" }
              ],
              "circuitBreaker": { "errorRate": 0.25, "minimumCalls": 5 },
              "outlier": { "consecutiveFailures": 3, "maxEjectedPercent": 30 },
              "allow": ["product:online-shop", "service:online-shop/cart", "uid:0", "*"],
              "methods": { "get": { "degrade": { "reply": { "rec": { "1": { "str": "x" }, "2": { "lst": ["i32", 2, 1, 2] }, "3": { "map": ["str", "i64", 1, { "k": 9 }] } } } } } }
            }
            """);
        Assert.Empty(problems);
        Assert.NotNull(config);
        Assert.Equal(2, config.Routes.Rules.Count);
        Assert.Equal(2, config.Routes.Subsets.Count); // the canary selector is shared by both routes
        var canary = new ServiceInstance { Product = "p", Service = "s", InstanceId = "c", Host = "h", Port = 1, Tags = new Dictionary<string, string> { ["track"] = "canary" } };
        var tagged = new CallFacts("get", "canary", "online-web", null, "bj", "h1", null);
        Assert.Equal("canary", config.Routes.Select(tagged)!.Value.Rule.Name);
        Assert.True(config.Routes.Select(tagged)!.Value.Target.To.Matches(canary));
        Assert.Null(config.Routes.Select(tagged with { Tag = null })); // from bj: the second route's "!bj" does not hold
        Assert.NotNull(config.Routes.Select(tagged with { Tag = null, CallerZone = "sh" }));
        Assert.Equal(0.25, config.CircuitBreaker!.ErrorRate);
        Assert.Equal(0.3, config.Outliers!.MaxEjectedShare);
        Assert.True(config.Allow!.Allows(new CallerIdentity { Source = IdentitySource.Certificate, Product = "online-shop" }, trustClaimed: false));
        var body = config.DegradeFor("get")!.Reply!.BinaryBody;
        // field 0 (struct) { 1: "x", 2: [1, 2], 3: {"k": 9} } in the binary protocol
        Assert.Equal("0c0000" + "0b0001000000017" + "8" + "0f000208000000020000000100000002" + "0d00030b0a00000001000000016b0000000000000009" + "00" + "00",
            Convert.ToHexStringLower(body));

        var (bad, found) = Parse("""
            {
              "routes": [
                { "when": { "tagg": "x" }, "to": { "tags": {} } },
                { "to": { "zone": "a" }, "split": [] },
                { "split": [ { "weight": 0, "to": { "zone": "a" } }, { "weight": 0, "to": { "zone": "b" } } ] },
                { "to": { "version": "1*2" }, "stickyHeader": "x" }
              ],
              "circuitBreaker": { "errorRate": 2 },
              "allow": ["group:admins"],
              "degrade": { "reply": { "i32": "seven" } },
              "methods": { "a": { "degrade": { "error": "x", "reply": {} } }, "b": { "degrade": { "reply": { "lst": ["i32", 3, 1] } } } }
            }
            """);
        Assert.Null(bad);
        var text = string.Join("\n", found);
        Assert.Contains("$.routes[0].when.tagg: unknown setting", text);
        Assert.Contains("$.routes[0].to.tags: must be an object of tag → value(s)", text);
        Assert.Contains("$.routes[1]: give either \"to\" (one set of instances) or \"split\" (weighted sets), not both", text);
        Assert.Contains("$.routes[2].split: the weights add up to 0", text);
        Assert.Contains("$.routes[3].to.version: a pattern is not empty, and has at most one * at its end", text);
        Assert.Contains("$.routes[3].stickyHeader: only for a route with a \"split\"", text);
        Assert.Contains("$.circuitBreaker.errorRate: the failing share that opens the breaker", text);
        Assert.Contains("$.allow[0]: 'group:admins' is not a caller", text);
        Assert.Contains("$.degrade.reply.i32: must be a whole number", text);
        Assert.Contains("$.methods.a.degrade: give either \"error\"", text);
        Assert.Contains("$.methods.b.degrade.reply.lst: must be [elementType, count, elements…]", text);
    }

    [Fact]
    public void ACircuitBreaker_Opens_FailsFast_ThenLetsOneProbeDecide()
    {
        var breaker = new CircuitBreaker(new BreakerPolicy(0.5, 4, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(150), 1));
        for (var i = 0; i < 4; i++)
        {
            Assert.True(breaker.TryEnter(out var probe));
            Assert.False(probe);
            breaker.Record(success: i == 0, probe);
        }

        Assert.Equal(BreakerState.Open, breaker.State);
        Assert.False(breaker.TryEnter(out _));
        Thread.Sleep(200);
        Assert.True(breaker.TryEnter(out var first));
        Assert.True(first);
        Assert.False(breaker.TryEnter(out _)); // one probe at a time
        breaker.Record(success: false, first);
        Assert.Equal(BreakerState.Open, breaker.State);
        Thread.Sleep(200);
        Assert.True(breaker.TryEnter(out var second));
        breaker.Record(success: true, second);
        Assert.Equal(BreakerState.Closed, breaker.State);
        Assert.Equal(2, breaker.Opened);
    }
}
