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
        Assert.Contains("$.degrade.error: the message callers get", text);
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
}
