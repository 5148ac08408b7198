using System.Collections.Immutable;
using System.Diagnostics;
using System.Text;

namespace Trellis.Rpc.Balancing;

/// <summary>What a pick may depend on: a hash key (consistent hashing) and where the caller is (locality).</summary>
public readonly record struct PickContext(ulong? HashKey = null);

/// <summary>
/// An immutable choice over a fixed set of endpoints (grpc-dotnet's SubchannelPicker): built once per
/// instance-set change, called once per attempt, allocation-free. Returns null when no endpoint is usable.
/// </summary>
public abstract class Picker
{
    protected Picker(ImmutableArray<BalancerEndpoint> endpoints) => Endpoints = endpoints;

    public ImmutableArray<BalancerEndpoint> Endpoints { get; }

    public abstract BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable);
}

/// <summary>A load-balancing strategy: makes pickers. Adding one is a class of a few dozen lines.</summary>
public abstract class BalancerStrategy
{
    public abstract string Name { get; }

    public abstract Picker Build(ImmutableArray<BalancerEndpoint> endpoints);

    public static BalancerStrategy Parse(string name) => name.ToLowerInvariant() switch
    {
        "random" => new RandomStrategy(),
        "weighted_random" or "weighted-random" => new WeightedRandomStrategy(),
        "round_robin" or "round-robin" or "smooth_weighted_round_robin" => new SmoothWeightedRoundRobinStrategy(),
        "least_active" or "least-active" => new LeastActiveStrategy(),
        "p2c" or "p2c_ewma" or "p2c-ewma" => new PeakEwmaP2CStrategy(),
        "consistent_hash" or "consistent-hash" or "ring_hash" => new RingHashStrategy(),
        _ => throw new ArgumentException($"unknown strategy '{name}' (random, weighted_random, round_robin, least_active, p2c, consistent_hash)", nameof(name)),
    };
}

/// <summary>Uniformly random among usable endpoints.</summary>
public sealed class RandomStrategy : BalancerStrategy
{
    public override string Name => "random";

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints) => new P(endpoints);

    private sealed class P(ImmutableArray<BalancerEndpoint> e) : Picker(e)
    {
        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            var n = Endpoints.Length;
            // random probes find a usable endpoint at once when most are; a scan settles the rare rest
            for (var tries = 0; tries < 8 && n > 0; tries++)
            {
                var candidate = Endpoints[Random.Shared.Next(n)];
                if (usable(candidate))
                {
                    return candidate;
                }
            }

            var count = 0;
            BalancerEndpoint? chosen = null;
            foreach (var endpoint in Endpoints)
            {
                // reservoir sampling: one pass, no allocation
                if (usable(endpoint) && Random.Shared.Next(++count) == 0)
                {
                    chosen = endpoint;
                }
            }

            return chosen;
        }
    }
}

/// <summary>Random in proportion to (warm-up adjusted) weight.</summary>
public sealed class WeightedRandomStrategy : BalancerStrategy
{
    public override string Name => "weighted_random";

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints) => new P(endpoints);

    private sealed class P : Picker
    {
        private readonly long[] _cumulative;
        private readonly bool _anyWarmUp;

        public P(ImmutableArray<BalancerEndpoint> e) : base(e)
        {
            _cumulative = new long[e.Length];
            long total = 0;
            for (var i = 0; i < e.Length; i++)
            {
                total += Math.Max(0, e[i].Instance.Weight);
                _cumulative[i] = total;
            }

            _anyWarmUp = e.Any(x => x.WarmUp > TimeSpan.Zero);
        }

        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            var now = Stopwatch.GetTimestamp();
            var total = _cumulative.Length == 0 ? 0 : _cumulative[^1];
            if (!_anyWarmUp && total > 0)
            {
                // O(log n): a point on the cumulative weights; a few redraws when it lands on an unusable endpoint
                for (var tries = 0; tries < 8; tries++)
                {
                    var index = Array.BinarySearch(_cumulative, Random.Shared.NextInt64(total) + 1);
                    if (index < 0)
                    {
                        index = ~index;
                    }

                    // zero-weight endpoints repeat the previous cumulative value: the owner is the first of a run
                    while (index > 0 && _cumulative[index - 1] == _cumulative[index])
                    {
                        index--;
                    }

                    var candidate = Endpoints[index];
                    if (usable(candidate))
                    {
                        return candidate;
                    }
                }
            }

            return Weighted.Pick(Endpoints, usable, now);
        }
    }
}

internal static class Weighted
{
    /// <summary>Weighted reservoir sampling in one pass: each endpoint wins with its share of the running total.</summary>
    public static BalancerEndpoint? Pick(ImmutableArray<BalancerEndpoint> endpoints, Func<BalancerEndpoint, bool> usable, long now)
    {
        long total = 0;
        BalancerEndpoint? chosen = null;
        foreach (var endpoint in endpoints)
        {
            if (!usable(endpoint))
            {
                continue;
            }

            var weight = endpoint.EffectiveWeight(now);
            if (weight <= 0)
            {
                continue;
            }

            total += weight;
            if (Random.Shared.NextInt64(total) < weight)
            {
                chosen = endpoint;
            }
        }

        return chosen;
    }
}

/// <summary>
/// nginx's smooth weighted round robin: exact proportions, evenly interleaved (5,1,1 gives a a b a c a a). With
/// equal weights and no warm-up it is plain rotation, done with a counter in O(1); weighted sets scan (O(n)).
/// </summary>
public sealed class SmoothWeightedRoundRobinStrategy : BalancerStrategy
{
    public override string Name => "round_robin";

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints) => new P(endpoints);

    private sealed class P(ImmutableArray<BalancerEndpoint> e) : Picker(e)
    {
        private readonly long[] _current = new long[e.Length];
        // equal weights and no warm-up (the common case): smooth WRR is plain rotation, which a counter does in O(1)
        private readonly bool _uniform = e.Length > 0 && e.All(x => x.WarmUp <= TimeSpan.Zero && x.Instance.Weight > 0 && x.Instance.Weight == e[0].Instance.Weight);
        private long _next = -1;

        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            if (_uniform)
            {
                var n = Endpoints.Length;
                var turn = Endpoints[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)n)];
                if (usable(turn))
                {
                    return turn;
                }

                // an unusable endpoint's turn goes to a random one, so no neighbour gets twice its share
                for (var tries = 0; tries < 8; tries++)
                {
                    var candidate = Endpoints[Random.Shared.Next(n)];
                    if (usable(candidate))
                    {
                        return candidate;
                    }
                }
            }

            var now = Stopwatch.GetTimestamp();
            lock (_current)
            {
                long total = 0;
                var best = -1;
                for (var i = 0; i < Endpoints.Length; i++)
                {
                    var endpoint = Endpoints[i];
                    if (!usable(endpoint))
                    {
                        continue;
                    }

                    var weight = endpoint.EffectiveWeight(now);
                    _current[i] += weight;
                    total += weight;
                    if (best < 0 || _current[i] > _current[best])
                    {
                        best = i;
                    }
                }

                if (best < 0 || total == 0)
                {
                    return null;
                }

                _current[best] -= total;
                return Endpoints[best];
            }
        }
    }
}

/// <summary>
/// Dubbo's least active: fewest calls in flight; among ties, weighted random. Up to
/// <see cref="FullScanLimit"/> endpoints every one is compared; above it a pick compares <see cref="Choices"/>
/// random usable endpoints (Envoy's least request), so a pick stays O(1) over thousands of instances.
/// </summary>
public sealed class LeastActiveStrategy(int fullScanLimit = 64, int choices = 8) : BalancerStrategy
{
    public override string Name => "least_active";

    public int FullScanLimit { get; } = fullScanLimit >= 0 ? fullScanLimit : throw new ArgumentOutOfRangeException(nameof(fullScanLimit));

    public int Choices { get; } = choices >= 2 ? choices : throw new ArgumentOutOfRangeException(nameof(choices), "at least 2");

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints) => new P(endpoints, this);

    private sealed class P(ImmutableArray<BalancerEndpoint> e, LeastActiveStrategy strategy) : Picker(e)
    {
        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            var now = Stopwatch.GetTimestamp();
            var least = int.MaxValue;
            long total = 0;
            BalancerEndpoint? chosen = null;
            var n = Endpoints.Length;
            if (n > strategy.FullScanLimit)
            {
                for (var draw = 0; draw < strategy.Choices; draw++)
                {
                    var endpoint = Endpoints[Random.Shared.Next(n)];
                    if (usable(endpoint))
                    {
                        Consider(endpoint);
                    }
                }

                if (chosen is not null)
                {
                    return chosen;
                }
            }

            foreach (var endpoint in Endpoints)
            {
                if (usable(endpoint))
                {
                    Consider(endpoint);
                }
            }

            return chosen;

            void Consider(BalancerEndpoint endpoint)
            {
                var weight = Math.Max(1, endpoint.EffectiveWeight(now));
                var active = endpoint.Active;
                if (active < least)
                {
                    least = active;
                    total = weight;
                    chosen = endpoint;
                }
                else if (active == least)
                {
                    total += weight;
                    if (Random.Shared.NextInt64(total) < weight)
                    {
                        chosen = endpoint;
                    }
                }
            }
        }
    }
}

/// <summary>
/// Power of two choices (Mitzenmacher) on peak-EWMA cost (Finagle's): two random usable endpoints, the one with
/// the lower latency × (in flight + 1) / weight wins. Slow instances lose traffic within a few calls.
/// </summary>
public sealed class PeakEwmaP2CStrategy : BalancerStrategy
{
    public override string Name => "p2c";

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints) => new P(endpoints);

    private sealed class P(ImmutableArray<BalancerEndpoint> e) : Picker(e)
    {
        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            var n = Endpoints.Length;
            if (n == 0)
            {
                return null;
            }

            var now = Stopwatch.GetTimestamp();
            BalancerEndpoint? a = null, b = null;
            // a few random draws find two usable endpoints in the common case; a scan is the fallback
            for (var tries = 0; tries < 8 && b is null; tries++)
            {
                var candidate = Endpoints[Random.Shared.Next(n)];
                if (!usable(candidate) || ReferenceEquals(candidate, a))
                {
                    continue;
                }

                if (a is null) a = candidate; else b = candidate;
            }

            if (a is null || b is null)
            {
                foreach (var endpoint in Endpoints)
                {
                    if (usable(endpoint) && !ReferenceEquals(endpoint, a))
                    {
                        if (a is null) a = endpoint; else { b = endpoint; break; }
                    }
                }
            }

            if (a is null || b is null)
            {
                return a;
            }

            return Cost(a, now) <= Cost(b, now) ? a : b;
        }

        private static double Cost(BalancerEndpoint endpoint, long now)
        {
            var latency = endpoint.LatencyMicros(now);
            // an endpoint with no history is given a small cost so it is tried
            return (latency <= 0 ? 1 : latency) * (endpoint.Active + 1) / Math.Max(1, endpoint.EffectiveWeight(now));
        }
    }
}

/// <summary>
/// Consistent hashing on a ring (ketama-style): each endpoint owns points in proportion to its weight; a key
/// goes to the first usable endpoint clockwise, so removing one endpoint moves only its own keys.
/// </summary>
public sealed class RingHashStrategy(int pointsPerWeightUnit = 1, int basePoints = 100) : BalancerStrategy
{
    public override string Name => "consistent_hash";

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints)
    {
        var points = new List<(ulong Hash, int Index)>();
        for (var i = 0; i < endpoints.Length; i++)
        {
            var count = basePoints + pointsPerWeightUnit * Math.Max(0, endpoints[i].Instance.Weight);
            for (var p = 0; p < count; p++)
            {
                points.Add((Hash($"{endpoints[i].Key}#{p}"), i));
            }
        }

        points.Sort((x, y) => x.Hash.CompareTo(y.Hash));
        return new P(endpoints, [.. points.Select(p => p.Hash)], [.. points.Select(p => p.Index)]);
    }

    /// <summary>
    /// A 64-bit hash that is the same in every process (unlike <see cref="string.GetHashCode()"/>): FNV-1a over
    /// the UTF-8 bytes, then the splitmix64 finalizer to spread nearby keys across the ring.
    /// </summary>
    public static ulong Hash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var hash = 14695981039346656037UL;
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetByteCount(key) <= buffer.Length ? buffer[..Encoding.UTF8.GetBytes(key, buffer)] : Encoding.UTF8.GetBytes(key);
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        hash ^= hash >> 30;
        hash *= 0xBF58476D1CE4E5B9UL;
        hash ^= hash >> 27;
        hash *= 0x94D049BB133111EBUL;
        return hash ^ (hash >> 31);
    }

    private sealed class P(ImmutableArray<BalancerEndpoint> e, ulong[] hashes, int[] owners) : Picker(e)
    {
        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            if (hashes.Length == 0)
            {
                return null;
            }

            var key = context.HashKey ?? (ulong)Random.Shared.NextInt64();
            var index = Array.BinarySearch(hashes, key);
            if (index < 0)
            {
                index = ~index;
            }

            for (var step = 0; step < hashes.Length; step++)
            {
                var endpoint = Endpoints[owners[(index + step) % hashes.Length]];
                if (usable(endpoint))
                {
                    return endpoint;
                }
            }

            return null;
        }
    }
}
