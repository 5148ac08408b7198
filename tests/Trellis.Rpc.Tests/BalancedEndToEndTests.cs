using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests.Echo;
using Trellis.Thrift;

namespace Trellis.Rpc.Tests;

/// <summary>The balanced channel over three real servers under continuous load.</summary>
public class BalancedEndToEndTests
{
    private sealed class Load(Echo.Echo.Client client, int callers)
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _tasks = [];
        public int Ok;
        public int Failed;

        public void Start()
        {
            for (var i = 0; i < callers; i++)
            {
                _tasks.Add(Task.Run(async () =>
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        try
                        {
                            await client.EchoAsync("load");
                            Interlocked.Increment(ref Ok);
                        }
                        catch (Exception)
                        {
                            Interlocked.Increment(ref Failed);
                        }
                    }
                }));
            }
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_tasks);
        }
    }

    [Fact]
    public async Task KillingOneOfThreeUnderLoad_FailsAtMostItsCallsInFlight_AndNothingAfterItsEjection()
    {
        await using var a = await EchoNode.StartAsync("a");
        await using var b = await EchoNode.StartAsync("b");
        await using var c = await EchoNode.StartAsync("c");
        var resolver = new StaticResolver([a.Instance, b.Instance, c.Instance]);
        await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions
        {
            Strategy = new LeastActiveStrategy(),
            Outliers = new OutlierPolicy { ConsecutiveFailures = 1 },
            DefaultTimeout = TimeSpan.FromSeconds(5),
        });
        var load = new Load(new Echo.Echo.Client(channel), callers: 8);
        load.Start();
        await Wait.UntilAsync(() => Volatile.Read(ref load.Ok) > 2000);

        var victim = channel.Endpoints.Single(e => e.Key == "c");
        var inFlightAtKill = victim.Active;
        await c.Server.StopAsync(TimeSpan.Zero); // abrupt: calls on it are cut
        await Wait.UntilAsync(() => victim.Health.IsEjected(OutlierDetector.Now) || victim.Health.Ejections > 0, TimeSpan.FromSeconds(10), "c to be ejected");
        // the first failure ejects c; the other calls c held fail a moment later: count them all
        await Wait.UntilAsync(() => victim.Active == 0, TimeSpan.FromSeconds(10), "c's calls to end");
        var failedAtEjection = Volatile.Read(ref load.Failed);
        var okAtEjection = Volatile.Read(ref load.Ok);
        await Wait.UntilAsync(() => Volatile.Read(ref load.Ok) > okAtEjection + 3000);
        await load.StopAsync();

        // 8 callers each have one call in flight: failures are bounded by the calls c held
        Assert.True(failedAtEjection <= Math.Max(inFlightAtKill, 8), $"{failedAtEjection} failed; {inFlightAtKill} were in flight on c");
        Assert.Equal(failedAtEjection, load.Failed); // none after the ejection
    }

    [Fact]
    public async Task ARollingRestartOfAllThree_UnderLoad_FailsNoCall()
    {
        var nodes = new[] { await EchoNode.StartAsync("a"), await EchoNode.StartAsync("b"), await EchoNode.StartAsync("c") };
        try
        {
            var resolver = new StaticResolver(nodes.Select(n => n.Instance));
            await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions { DefaultTimeout = TimeSpan.FromSeconds(5) });
            var load = new Load(new Echo.Echo.Client(channel), callers: 8);
            load.Start();
            await Wait.UntilAsync(() => Volatile.Read(ref load.Ok) > 1000);

            for (var i = 0; i < nodes.Length; i++)
            {
                await nodes[i].RestartGracefullyAsync(resolver, nodes);
                var ok = Volatile.Read(ref load.Ok);
                await Wait.UntilAsync(() => Volatile.Read(ref load.Ok) > ok + 500);
            }

            await load.StopAsync();
            Assert.Equal(0, load.Failed);
            Assert.True(load.Ok > 3000);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData("p2c")]
    [InlineData("least_active")]
    public async Task AnInstance500msSlower_GetsUnder5PercentOfTraffic(string strategy)
    {
        await using var a = await EchoNode.StartAsync("a");
        await using var b = await EchoNode.StartAsync("b");
        await using var slow = await EchoNode.StartAsync("slow");
        slow.Backend.DelayMs = 500;
        var resolver = new StaticResolver([a.Instance, b.Instance, slow.Instance]);
        await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions { Strategy = BalancerStrategy.Parse(strategy) });
        var load = new Load(new Echo.Echo.Client(channel), callers: 8);
        load.Start();
        await Task.Delay(TimeSpan.FromSeconds(2)); // it learns
        var (fast0, slow0) = (a.Backend.Echoes + b.Backend.Echoes, slow.Backend.Echoes);
        await Task.Delay(TimeSpan.FromSeconds(3));
        await load.StopAsync();
        var fast = a.Backend.Echoes + b.Backend.Echoes - fast0;
        var slowCalls = slow.Backend.Echoes - slow0;
        Assert.True(slowCalls < 0.05 * (fast + slowCalls), $"{strategy}: slow got {slowCalls} of {fast + slowCalls}");
        Assert.Equal(0, load.Failed);
    }

    [Fact]
    public async Task AHedgedIdempotentCall_IsAnsweredByTheFastInstance_AndTheSlowAttemptIsAbandoned()
    {
        await using var fast = await EchoNode.StartAsync("fast");
        await using var slow = await EchoNode.StartAsync("slow");
        fast.Backend.Prefix = "fast:";
        slow.Backend.Prefix = "slow:";
        slow.Backend.DelayMs = 1500;
        var resolver = new StaticResolver([fast.Instance, slow.Instance]);
        BalancedChannelOptions Options(bool idempotent) => new()
        {
            Strategy = BalancerStrategy.Parse("round_robin"), // half the first attempts go to the slow one
            Hedging = new HedgingPolicy { Delay = TimeSpan.FromMilliseconds(50), MaxAttempts = 2 },
            IdempotentMethods = idempotent ? new HashSet<string> { "echo" } : new HashSet<string>(),
            Budget = new RetryBudget(ratio: 1.0, minPerSecond: 100),
        };

        await using var hedged = new BalancedChannel(resolver, Options(idempotent: true));
        var client = new Echo.Echo.Client(hedged);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal($"fast:{i}", await client.EchoAsync(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        Assert.InRange(slow.Backend.Echoes, 4, 10); // first attempts did go to the slow one: the hedges answered
        var slowEndpoint = hedged.Endpoints.Single(e => e.Key == "slow");
        await Wait.UntilAsync(() => slowEndpoint.Active == 0, TimeSpan.FromSeconds(10), "the losing attempts to be abandoned");
        Assert.Equal(0, slowEndpoint.Health.ConsecutiveFailures); // a lost race is no verdict on the instance

        // a method that is not idempotent is never hedged: the slow instance answers its share itself
        await using var plain = new BalancedChannel(resolver, Options(idempotent: false));
        var plainClient = new Echo.Echo.Client(plain);
        var answers = new[] { await plainClient.EchoAsync("a"), await plainClient.EchoAsync("b") };
        Assert.Contains(answers, a => a.StartsWith("slow:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ACallersTimeout_BoundsTheBalancedCall()
    {
        await using var slow = await EchoNode.StartAsync("slow");
        slow.Backend.DelayMs = 5000;
        await using var channel = new BalancedChannel(new StaticResolver([slow.Instance]), new BalancedChannelOptions { DefaultTimeout = TimeSpan.FromSeconds(30) });
        var client = new Echo.Echo.Client(channel);
        using (ThriftChannel.WithTimeout(TimeSpan.FromMilliseconds(200)))
        {
            var error = await Assert.ThrowsAsync<TTransportException>(() => client.EchoAsync("x"));
            Assert.Equal(TTransportErrorKind.TimedOut, error.Kind);
        }
    }

    [Fact]
    public async Task TheActiveHealthCheck_TakesADeadInstanceOut_WithoutAnyTraffic_AndBringsItBack()
    {
        await using var a = await EchoNode.StartAsync("a");
        await using var b = await EchoNode.StartAsync("b");
        await using var c = await EchoNode.StartAsync("c");
        var resolver = new StaticResolver([a.Instance, b.Instance, c.Instance]);
        await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions
        {
            Strategy = BalancerStrategy.Parse("round_robin"),
            HealthCheck = new HealthCheckPolicy { Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromMilliseconds(500), UnhealthyAfter = 2, HealthyAfter = 2 },
        });
        var victim = channel.Endpoints.Single(e => e.Key == "c");
        await Task.Delay(300);
        Assert.False(victim.Health.ActiveDown);

        var port = c.Instance.Port;
        await c.Server.StopAsync(TimeSpan.Zero);
        await Wait.UntilAsync(() => victim.Health.ActiveDown, TimeSpan.FromSeconds(10), "the probes to find c down");
        Assert.Equal(0, victim.Health.Ejections); // no call was needed to find out

        var client = new Echo.Echo.Client(channel);
        for (var i = 0; i < 30; i++)
        {
            await client.EchoAsync("x");
        }

        Assert.Equal(30, a.Backend.Echoes + b.Backend.Echoes);
        Assert.Equal(0, victim.Health.ConsecutiveFailures); // never tried while down: no connection refused was needed

        await c.StartServerAsync("c", port);
        await Wait.UntilAsync(() => !victim.Health.ActiveDown, TimeSpan.FromSeconds(10), "the probes to find c back");
        for (var i = 0; i < 30; i++)
        {
            await client.EchoAsync("x");
        }

        Assert.InRange(c.Backend.Echoes, 5, 15); // its share of the rotation again
        Assert.Throws<ArgumentException>(() => new BalancedChannel(resolver, new BalancedChannelOptions { HealthCheck = new HealthCheckPolicy { UnhealthyAfter = 0 } }));
    }

    [Fact]
    public async Task ConsistentHashing_SendsAKeyToOneInstance_AndSpreadsKeys()
    {
        await using var a = await EchoNode.StartAsync("a");
        await using var b = await EchoNode.StartAsync("b");
        await using var c = await EchoNode.StartAsync("c");
        EchoNode[] nodes = [a, b, c];
        await using var channel = new BalancedChannel(new StaticResolver([a.Instance, b.Instance, c.Instance]),
            new BalancedChannelOptions { Strategy = BalancerStrategy.Parse("consistent_hash") });
        var client = new Echo.Echo.Client(channel);
        var owners = new Dictionary<string, EchoNode>();
        for (var k = 0; k < 30; k++)
        {
            var key = $"user-{k}";
            var before = nodes.Select(n => n.Backend.Echoes).ToArray();
            using (BalancedChannel.WithHashKey(key))
            {
                for (var i = 0; i < 5; i++)
                {
                    await client.EchoAsync(key);
                }
            }

            var hit = nodes.Where((n, i) => n.Backend.Echoes > before[i]).ToArray();
            Assert.True(hit.Length == 1, $"{key} went to {hit.Length} instances");
            Assert.Equal(5, hit[0].Backend.Echoes - before[Array.IndexOf(nodes, hit[0])]);
            owners[key] = hit[0];
        }

        Assert.Equal(3, owners.Values.Distinct().Count()); // 30 keys land on all three
    }

    [Fact]
    public async Task TheStrategy_CanBeSwitchedWhileCallsFlow()
    {
        await using var a = await EchoNode.StartAsync("a");
        await using var b = await EchoNode.StartAsync("b");
        var resolver = new StaticResolver([a.Instance with { Weight = 100 }, b.Instance with { Weight = 1 }]);
        await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions { Strategy = new RandomStrategy() });
        var client = new Echo.Echo.Client(channel);
        for (var i = 0; i < 400; i++) await client.EchoAsync("x");
        Assert.InRange(b.Backend.Echoes, 120, 280); // random ignores weights: about half

        channel.SetStrategy(new WeightedRandomStrategy());
        var before = b.Backend.Echoes;
        for (var i = 0; i < 400; i++) await client.EchoAsync("x");
        Assert.InRange(b.Backend.Echoes - before, 0, 20); // weight 1 of 101
    }

    [Fact]
    public async Task ACallThatWasNeverSent_IsRetriedOnAnotherInstance_ButASentOneOnlyWhenIdempotent()
    {
        await using var live = await EchoNode.StartAsync("live");
        var dead = new ServiceInstance { Product = "p", Service = "Echo", InstanceId = "dead", Host = "127.0.0.1", Port = LoopbackPorts.Free() };
        var resolver = new StaticResolver([dead, live.Instance]);
        await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions { Strategy = new RoundRobinOnly(), Outliers = new OutlierPolicy { ConsecutiveFailures = 1000 } });
        var client = new Echo.Echo.Client(channel);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("x", await client.EchoAsync("x")); // connection refused on "dead": retried on "live"
        }

        Assert.Equal(20, live.Backend.Echoes);
    }

    /// <summary>Round robin without weights, so half the first attempts go to the dead instance.</summary>
    private sealed class RoundRobinOnly : BalancerStrategy
    {
        public override string Name => "rr";
        public override Picker Build(System.Collections.Immutable.ImmutableArray<BalancerEndpoint> endpoints) => new SmoothWeightedRoundRobinStrategy().Build(endpoints);
    }
}
