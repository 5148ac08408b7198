using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;

BenchmarkSwitcher.FromAssembly(typeof(Trellis.Bench.Balancing.PickerBenchmarks).Assembly).Run(args.Length == 0 ? ["--filter", "*"] : args);

namespace Trellis.Bench.Balancing
{

/// <summary>The cost of one pick per strategy, with 10 and 1,000 instances (all usable), and what it allocates.</summary>
[MemoryDiagnoser]
public class PickerBenchmarks
{
    private static readonly Func<BalancerEndpoint, bool> Usable = static e => !e.Instance.Draining;
    private Picker _picker = null!;
    private ulong _key;

    [Params(10, 1000)]
    public int Instances { get; set; }

    // round_robin runs with weights 50..149 (the weighted scan); round_robin_equal with equal weights (the rotation)
    [Params("random", "weighted_random", "round_robin", "round_robin_equal", "least_active", "p2c", "consistent_hash", "locality")]
    public string Strategy { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var endpoints = Enumerable.Range(0, Instances).Select(i => new BalancerEndpoint(new ServiceInstance
        {
            Product = "p",
            Service = "s",
            InstanceId = $"i{i:D4}",
            Host = $"10.{i % 4}.{i / 256 % 256}.{i % 256}",
            Port = 9000,
            Weight = Strategy == "round_robin_equal" ? 100 : 50 + i % 100,
        })).ToImmutableArray();
        var strategy = Strategy == "locality"
            ? new LocalityStrategy(new PeakEwmaP2CStrategy(), localHost: "10.0.0.0", localZone: "10.0")
            : BalancerStrategy.Parse(Strategy == "round_robin_equal" ? "round_robin" : Strategy);
        _picker = strategy.Build(endpoints);
    }

    [Benchmark]
    public BalancerEndpoint? Pick() => _picker.Pick(new PickContext(_key++ * 0x9E3779B97F4A7C15UL), Usable);
}
}
