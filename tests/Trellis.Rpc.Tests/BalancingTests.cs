using System.Collections.Immutable;
using System.Diagnostics;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Tests;

/// <summary>Each strategy and policy on its own, with numbers a wrong implementation would miss.</summary>
public class BalancingTests
{
    private static ServiceInstance Instance(string id, int weight = 100, string? host = null, string zone = "") => new()
    {
        Product = "p",
        Service = "s",
        InstanceId = id,
        Host = host ?? "10.0.0." + (id.GetHashCode(StringComparison.Ordinal) & 0x7F),
        Port = 9000,
        Weight = weight,
        Zone = zone,
    };

    private static ImmutableArray<BalancerEndpoint> Endpoints(params (string Id, int Weight)[] specs) =>
        [.. specs.Select(s => new BalancerEndpoint(Instance(s.Id, s.Weight)))];

    private static Dictionary<string, int> Count(Picker picker, int picks, Func<BalancerEndpoint, bool>? usable = null, Func<int, PickContext>? context = null)
    {
        var counts = picker.Endpoints.ToDictionary(e => e.Key, _ => 0);
        for (var i = 0; i < picks; i++)
        {
            var chosen = picker.Pick(context?.Invoke(i) ?? default, usable ?? (_ => true));
            Assert.NotNull(chosen);
            counts[chosen.Key]++;
        }

        return counts;
    }

    [Fact]
    public void Random_IsUniform_AndSkipsUnusable()
    {
        var picker = new RandomStrategy().Build(Endpoints(("a", 1), ("b", 1000), ("c", 1), ("d", 1)));
        var counts = Count(picker, 40_000, e => e.Key != "d");
        Assert.Equal(0, counts["d"]);
        Assert.All(new[] { "a", "b", "c" }, k => Assert.InRange(counts[k], 12_000, 14_700)); // weights ignored: 1/3 each
    }

    [Fact]
    public void WeightedRandom_FollowsWeights()
    {
        var counts = Count(new WeightedRandomStrategy().Build(Endpoints(("a", 100), ("z", 0), ("b", 300), ("c", 0))), 40_000);
        Assert.Equal(0, counts["c"]);
        Assert.Equal(0, counts["z"]);
        Assert.InRange(counts["b"] / (double)counts["a"], 2.7, 3.3);
    }

    [Fact]
    public void RoundRobin_WithEqualWeights_RotatesExactly_AndSpreadsAnUnusableOnesTurns()
    {
        var endpoints = Endpoints([.. Enumerable.Range(0, 1000).Select(i => ($"e{i:D4}", 10))]);
        var picker = new SmoothWeightedRoundRobinStrategy().Build(endpoints);
        Assert.Equal(["e0000", "e0001", "e0002"], Enumerable.Range(0, 3).Select(_ => picker.Pick(default, _ => true)!.Key));
        var counts = Count(picker, 10_000);
        Assert.All(counts.Values, c => Assert.Equal(10, c));

        // a tenth unusable: nobody else gets double turns, every usable one stays near its 1/900 share
        var skipped = Count(picker, 90_000, e => !e.Key.EndsWith('0'));
        Assert.All(skipped.Where(c => c.Key.EndsWith('0')), c => Assert.Equal(0, c.Value));
        Assert.All(skipped.Where(c => !c.Key.EndsWith('0')), c => Assert.InRange(c.Value, 90, 130));
    }

    [Fact]
    public void SmoothWeightedRoundRobin_InterleavesExactly()
    {
        var picker = new SmoothWeightedRoundRobinStrategy().Build(Endpoints(("a", 5), ("b", 1), ("c", 1)));
        var sequence = string.Concat(Enumerable.Range(0, 14).Select(_ => picker.Pick(default, _ => true)!.Key));
        Assert.Equal("aabacaaaabacaa", sequence); // nginx's order for weights 5,1,1, twice
    }

    [Fact]
    public void LeastActive_OverManyEndpoints_ComparesASample_AndStillAvoidsTheBusy()
    {
        // 1,000 endpoints, 100 of them busy: a sample of 8 holds an idle one but once in 10^8 picks
        var endpoints = Endpoints([.. Enumerable.Range(0, 1000).Select(i => ($"e{i:D4}", 1))]);
        foreach (var busy in endpoints.Where((_, i) => i % 10 == 0))
        {
            busy.Begin();
        }

        var counts = Count(new LeastActiveStrategy().Build(endpoints), 20_000);
        Assert.Equal(0, endpoints.Where((_, i) => i % 10 == 0).Sum(e => counts[e.Key]));
        Assert.True(counts.Values.Count(c => c > 0) > 850, "idle endpoints share the picks"); // ~20 picks each

        // only one usable endpoint among the 1,000: the sample misses it, the scan finds it
        var only = endpoints[777];
        var picker = new LeastActiveStrategy().Build(endpoints);
        for (var i = 0; i < 100; i++)
        {
            Assert.Same(only, picker.Pick(default, e => ReferenceEquals(e, only)));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new LeastActiveStrategy(choices: 1));
    }

    [Fact]
    public void LeastActive_PicksTheLeastBusy_TiesByWeight()
    {
        var endpoints = Endpoints(("a", 100), ("b", 100), ("c", 300));
        endpoints[0].Begin();
        endpoints[0].Begin();
        var picker = new LeastActiveStrategy().Build(endpoints);
        var counts = Count(picker, 20_000);
        Assert.Equal(0, counts["a"]);
        Assert.InRange(counts["c"] / (double)counts["b"], 2.6, 3.4); // b and c tie at 0 in flight: 1:3 by weight
        endpoints[2].Begin();
        Assert.Equal("b", picker.Pick(default, _ => true)!.Key);
    }

    [Fact]
    public void PeakEwmaP2C_AvoidsTheSlowInstance()
    {
        var endpoints = Endpoints(("fast1", 100), ("fast2", 100), ("slow", 100));
        var now = Stopwatch.GetTimestamp();
        foreach (var e in endpoints)
        {
            e.Begin();
            e.End(TimeSpan.FromMilliseconds(e.Key == "slow" ? 500 : 1), success: true, now);
        }

        var counts = Count(new PeakEwmaP2CStrategy().Build(endpoints), 30_000);
        // the slow one wins only when both draws are it, which p2c never allows: never picked
        Assert.True(counts["slow"] < 300, $"slow picked {counts["slow"]} times");
        Assert.InRange(counts["fast1"], 12_000, 18_000);
    }

    [Fact]
    public void RingHash_IsStablePerKey_AndMovesOnlyTheRemovedInstancesKeys()
    {
        var strategy = new RingHashStrategy();
        var full = strategy.Build(Endpoints(("a", 100), ("b", 100), ("c", 100), ("d", 100)));
        var keys = Enumerable.Range(0, 10_000).Select(i => RingHashStrategy.Hash($"user-{i}")).ToList();
        var before = keys.Select(k => full.Pick(new PickContext(k), _ => true)!.Key).ToList();
        Assert.Equal(before, keys.Select(k => full.Pick(new PickContext(k), _ => true)!.Key)); // stable
        var share = before.GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(share.Values, c => Assert.InRange(c, 1500, 3500));

        var without = strategy.Build(Endpoints(("a", 100), ("b", 100), ("c", 100)));
        var after = keys.Select(k => without.Pick(new PickContext(k), _ => true)!.Key).ToList();
        var moved = before.Zip(after).Count(p => p.First != p.Second);
        Assert.Equal(before.Count(k => k == "d"), moved); // only d's keys moved
    }

    [Fact]
    public void Locality_PrefersHostThenZone_AndSpillsWhenTheTierIsUnhealthy()
    {
        ImmutableArray<BalancerEndpoint> endpoints =
        [
            new(Instance("local", host: "10.1.0.5")),
            new(Instance("zone1", host: "10.1.0.6")),
            new(Instance("zone2", host: "10.1.9.9")),
            new(Instance("far", host: "10.7.0.1")),
        ];
        var picker = new LocalityStrategy(new RandomStrategy(), localHost: "10.1.0.5", localZone: "10.1").Build(endpoints);
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Equal("local", picker.Pick(default, _ => true)!.Key));

        var zoneOnly = Count(picker, 2000, e => e.Key != "local");
        Assert.Equal(0, zoneOnly["far"]);
        Assert.True(zoneOnly["zone1"] > 800 && zoneOnly["zone2"] > 800);

        var spill = Count(picker, 200, e => e.Key == "far");
        Assert.Equal(200, spill["far"]);
        Assert.Equal("10.1", LocalityStrategy.ZoneOf(Instance("x", host: "10.1.2.3")));
        Assert.Equal("idc-a", LocalityStrategy.ZoneOf(Instance("x", host: "10.1.2.3", zone: "idc-a")));
    }

    [Fact]
    public void WarmUp_RampsANewInstancesWeight()
    {
        var start = Stopwatch.GetTimestamp();
        var endpoint = new BalancerEndpoint(Instance("new", weight: 100), warmUp: TimeSpan.FromSeconds(10), addedAt: start);
        var at = (double seconds) => start + (long)(seconds * Stopwatch.Frequency);
        Assert.InRange(endpoint.EffectiveWeight(at(1)), 9, 11);
        Assert.InRange(endpoint.EffectiveWeight(at(5)), 49, 51);
        Assert.Equal(100, endpoint.EffectiveWeight(at(11)));
        Assert.Equal(1, endpoint.EffectiveWeight(at(0)));
    }

    [Fact]
    public void Outliers_AreEjectedForGrowingTimes_WithinTheCap_AndPanicRoutesToAll()
    {
        var detector = new OutlierDetector(new OutlierPolicy { ConsecutiveFailures = 3, BaseEjection = TimeSpan.FromSeconds(10), MaxEjectedShare = 0.5, PanicThreshold = 0.5 });
        var all = Endpoints(("a", 1), ("b", 1), ("c", 1), ("d", 1));
        var t = Stopwatch.GetTimestamp();
        long Seconds(double s) => t + (long)(s * Stopwatch.Frequency);

        void Fail(BalancerEndpoint e, long now) { e.Begin(); e.End(TimeSpan.FromMilliseconds(1), false, now); detector.AfterCall(e, all, now); }

        Fail(all[0], t);
        Fail(all[0], t);
        Assert.False(all[0].Health.IsEjected(t));
        Fail(all[0], t);
        Assert.True(all[0].Health.IsEjected(t));
        Assert.True(all[0].Health.IsEjected(Seconds(9)));
        Assert.False(all[0].Health.IsEjected(Seconds(10.1)));

        for (var i = 0; i < 3; i++) Fail(all[0], Seconds(11));
        Assert.True(all[0].Health.IsEjected(Seconds(11 + 19))); // second ejection: twice as long
        Assert.False(all[0].Health.IsEjected(Seconds(11 + 20.1)));

        // the cap: with a already out, b may go (2 of 4 = 50%), c may not
        for (var i = 0; i < 3; i++) Fail(all[1], Seconds(12));
        for (var i = 0; i < 3; i++) Fail(all[2], Seconds(12));
        Assert.True(all[1].Health.IsEjected(Seconds(12)));
        Assert.False(all[2].Health.IsEjected(Seconds(12)));

        var usable = detector.Usable(all, Seconds(12));
        Assert.Equal(["c", "d"], all.Where(usable).Select(e => e.Key));

        // panic: when fewer than half are usable, everything (not draining) is
        var few = new OutlierDetector(new OutlierPolicy { ConsecutiveFailures = 1, MaxEjectedShare = 1.0, PanicThreshold = 0.5 });
        var three = Endpoints(("x", 1), ("y", 1), ("z", 1));
        foreach (var e in three.Take(2)) { e.Begin(); e.End(TimeSpan.Zero, false, t); few.AfterCall(e, three, t); }
        Assert.Equal(3, three.Count(few.Usable(three, t)));
    }

    [Fact]
    public void AfterAnEjection_TheEndpointIsHalfOpen_OneProbeAtATime_AFailedProbeReopensAtOnce_ASuccessCloses()
    {
        var detector = new OutlierDetector(new OutlierPolicy { ConsecutiveFailures = 5, BaseEjection = TimeSpan.FromSeconds(10), MaxEjectedShare = 0.5, HalfOpenCalls = 1 });
        var all = Endpoints(("a", 1), ("b", 1), ("c", 1));
        var a = all[0];
        var t = Stopwatch.GetTimestamp();
        long Seconds(double s) => t + (long)(s * Stopwatch.Frequency);
        void Call(bool ok, long now) { a.Begin(); a.End(TimeSpan.FromMilliseconds(1), ok, now); detector.AfterCall(a, all, now); }

        for (var i = 0; i < 5; i++) Call(false, t);
        Assert.True(a.Health.IsEjected(t));
        Assert.False(a.Health.InProbation(Seconds(5)));
        Assert.DoesNotContain(a, all.Where(detector.Usable(all, Seconds(5))));

        // half open: usable while it holds no call, not while its one probe is in flight
        Assert.True(a.Health.InProbation(Seconds(10.5)));
        Assert.Contains(a, all.Where(detector.Usable(all, Seconds(10.5))));
        a.Begin();
        Assert.DoesNotContain(a, all.Where(detector.Usable(all, Seconds(10.5))));
        Assert.Contains(all[1], all.Where(detector.Usable(all, Seconds(10.5))));

        // the probe fails: ejected again at once (1 failure, not 5), for twice as long
        a.End(TimeSpan.FromMilliseconds(1), false, Seconds(10.5));
        detector.AfterCall(a, all, Seconds(10.5));
        Assert.True(a.Health.IsEjected(Seconds(10.5 + 19.9)));
        Assert.False(a.Health.IsEjected(Seconds(10.5 + 20.1)));

        // the next probe succeeds: closed, full traffic, and a single failure no longer ejects
        Call(true, Seconds(31));
        Assert.False(a.Health.InProbation(Seconds(31)));
        a.Begin();
        a.Begin();
        Assert.Contains(a, all.Where(detector.Usable(all, Seconds(31))));
        a.End(TimeSpan.Zero, true, Seconds(31));
        a.End(TimeSpan.Zero, true, Seconds(31));
        Call(false, Seconds(32));
        Assert.False(a.Health.IsEjected(Seconds(32)));
    }

    [Fact]
    public void RetryBudget_AllowsAShareOfCalls_ThenRefuses()
    {
        var budget = new RetryBudget(ratio: 0.1, minPerSecond: 0);
        for (var i = 0; i < 100; i++) budget.Deposit();
        var granted = Enumerable.Range(0, 50).Count(_ => budget.TryWithdraw());
        Assert.Equal(10, granted);
    }

    [Fact]
    public void Strategies_ParseByName_AndRefuseUnknownOnes()
    {
        Assert.IsType<PeakEwmaP2CStrategy>(BalancerStrategy.Parse("p2c"));
        Assert.IsType<SmoothWeightedRoundRobinStrategy>(BalancerStrategy.Parse("round_robin"));
        Assert.Throws<ArgumentException>(() => BalancerStrategy.Parse("fastest"));
    }

    [Fact]
    public async Task RegistryResolver_IgnoresAnEmptyHiccup_AndHoldsARemovalBriefly()
    {
        var root = Path.Combine(Path.GetTempPath(), "trellis-res-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using var registry = new LocalRegistry(root);
            var a = await registry.RegisterAsync(Instances.Make("p", "s", "a"));
            var b = await registry.RegisterAsync(Instances.Make("p", "s", "b", port: 9091));
            await using var resolver = new RegistryResolver(registry, "p", "s", removalHoldDown: TimeSpan.FromSeconds(1));
            await resolver.StartAsync();
            await Wait.UntilAsync(() => resolver.Instances.Count == 2);

            var clock = Stopwatch.StartNew();
            await a.DeregisterAsync();
            await Wait.UntilAsync(() => resolver.Instances.Count == 1, TimeSpan.FromSeconds(10));
            // held down: the removal shows no sooner than the hold-down after it happened (a lower bound, so a
            // busy machine cannot make this flaky)
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(980), $"removed after {clock.ElapsedMilliseconds} ms");

            await b.DeregisterAsync(); // the last one goes: an empty set replacing a non-empty one is ignored
            await Task.Delay(1200);
            Assert.Single(resolver.Instances);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
