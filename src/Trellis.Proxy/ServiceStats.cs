using System.Numerics;

namespace Trellis.Proxy;

/// <summary>
/// One service's calls at the proxy over the last minute: per wall-clock second, the calls that completed, those that
/// failed and a latency histogram. Recording is lock-free (a few interlocked adds); a bucket is reset under a tiny lock
/// once, when its second comes round again.
/// </summary>
public sealed class ServiceStats
{
    /// <summary>Seconds kept.</summary>
    public const int Seconds = 60;

    private const int Ring = Seconds + 2; // the current second, and one being read while the clock turns

    // a slot's bucket is made on its first second: a routed service that is rarely called keeps a few buckets, not 62
    private readonly Bucket?[] _ring = new Bucket?[Ring];

    /// <summary>The current wall-clock second (Unix time).</summary>
    public static long Now => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond;

    /// <summary>A forwarded call completed after <paramref name="micros"/> µs; <paramref name="error"/>: it failed (no reply, or an exception reply).</summary>
    public void Record(long micros, bool error) => Record(Now, micros, error);

    internal void Record(long second, long micros, bool error)
    {
        var slot = (int)(second % Ring);
        var bucket = Volatile.Read(ref _ring[slot]) ?? Made(slot);
        if (Volatile.Read(ref bucket.Second) != second)
        {
            lock (bucket)
            {
                if (bucket.Second != second)
                {
                    // allocated on a bucket's first second: a routed service that is rarely called keeps ~1 KB, not 62 KB
                    if (bucket.Histogram is null)
                    {
                        bucket.Histogram = new long[LatencyHistogram.Buckets];
                    }
                    else
                    {
                        Array.Clear(bucket.Histogram);
                    }

                    bucket.Calls = 0;
                    bucket.Errors = 0;
                    Volatile.Write(ref bucket.Second, second);
                }
            }
        }

        Interlocked.Increment(ref bucket.Calls);
        if (error)
        {
            Interlocked.Increment(ref bucket.Errors);
        }

        Interlocked.Increment(ref bucket.Histogram![LatencyHistogram.Index(micros)]); // set before Second was (under the lock)
    }

    private Bucket Made(int slot)
    {
        var made = new Bucket();
        return Interlocked.CompareExchange(ref _ring[slot], made, null) ?? made;
    }

    /// <summary>The last <see cref="Seconds"/> complete seconds (oldest first; seconds without calls are zeros).</summary>
    public StatsWindow Window() => Window(Now);

    internal StatsWindow Window(long now)
    {
        var seconds = new StatsSecond[Seconds];
        for (var i = 0; i < Seconds; i++)
        {
            var second = now - Seconds + i; // complete seconds only: the current one is still filling
            var bucket = Volatile.Read(ref _ring[second % Ring]);
            long[]? histogram = null;
            long calls = 0, errors = 0;
            if (bucket is not null && Volatile.Read(ref bucket.Second) == second)
            {
                calls = Interlocked.Read(ref bucket.Calls);
                errors = Interlocked.Read(ref bucket.Errors);
                histogram = new long[LatencyHistogram.Buckets];
                for (var b = 0; b < histogram.Length; b++)
                {
                    histogram[b] = Interlocked.Read(ref bucket.Histogram![b]); // set before Second was
                }

                if (Volatile.Read(ref bucket.Second) != second)
                {
                    (calls, errors, histogram) = (0, 0, null); // reused while read: that second is gone
                }
            }

            seconds[i] = new StatsSecond(second, calls, errors, histogram ?? new long[LatencyHistogram.Buckets]);
        }

        return new StatsWindow(seconds);
    }

    private sealed class Bucket
    {
        public long Second = -1;
        public long Calls;
        public long Errors;
        /// <summary>Null until the bucket's first second; set (under the bucket's lock) before <see cref="Second"/> is.</summary>
        public long[]? Histogram;
    }
}

/// <summary>Log-linear latency buckets: four per power of two of microseconds (within 19 % of the true value).</summary>
public static class LatencyHistogram
{
    public const int Buckets = 128;

    public static int Index(long micros)
    {
        if (micros < 4)
        {
            return (int)Math.Max(0, micros);
        }

        var log = BitOperations.Log2((ulong)micros); // ≥ 2
        var index = (log * 4) + (int)((micros >> (log - 2)) & 3) - 4;
        return Math.Min(index, Buckets - 1);
    }

    /// <summary>The upper bound (µs) of a bucket.</summary>
    public static double Upper(int index)
    {
        if (index < 4)
        {
            return index;
        }

        var log = (index + 4) / 4;
        var quarter = (index + 4) % 4;
        return Math.Pow(2, log) * (1 + ((quarter + 1) / 4.0)) - 1;
    }

    /// <summary>The latency (µs) under which <paramref name="quantile"/> of the calls completed, or null without calls.</summary>
    public static double? Quantile(long[] histogram, double quantile)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        long total = 0;
        foreach (var count in histogram)
        {
            total += count;
        }

        if (total == 0)
        {
            return null;
        }

        var rank = (long)Math.Ceiling(quantile * total);
        long seen = 0;
        for (var i = 0; i < histogram.Length; i++)
        {
            seen += histogram[i];
            if (seen >= rank && histogram[i] > 0)
            {
                return Upper(i);
            }
        }

        return Upper(histogram.Length - 1);
    }
}

/// <summary>One second of a service's calls.</summary>
public sealed record StatsSecond(long Second, long Calls, long Errors, long[] Histogram);

/// <summary>Consecutive seconds of a service's calls (oldest first), from one proxy or merged from several.</summary>
public sealed class StatsWindow(IReadOnlyList<StatsSecond> seconds)
{
    public IReadOnlyList<StatsSecond> Seconds { get; } = seconds;

    /// <summary>The seconds of several proxies added up, second by second.</summary>
    public static StatsWindow Merge(IEnumerable<StatsWindow> windows)
    {
        ArgumentNullException.ThrowIfNull(windows);
        var bySecond = new SortedDictionary<long, (long Calls, long Errors, long[] Histogram)>();
        foreach (var window in windows)
        {
            foreach (var s in window.Seconds)
            {
                if (!bySecond.TryGetValue(s.Second, out var sum))
                {
                    sum = (0, 0, new long[LatencyHistogram.Buckets]);
                }

                for (var i = 0; i < Math.Min(s.Histogram.Length, LatencyHistogram.Buckets); i++)
                {
                    sum.Histogram[i] += s.Histogram[i];
                }

                bySecond[s.Second] = (sum.Calls + s.Calls, sum.Errors + s.Errors, sum.Histogram);
            }
        }

        return new StatsWindow([.. bySecond.Select(kv => new StatsSecond(kv.Key, kv.Value.Calls, kv.Value.Errors, kv.Value.Histogram))]);
    }

    /// <summary>Calls/s, error rate and percentiles over the last <paramref name="last"/> seconds of the window.</summary>
    public StatsSummary Summary(int last)
    {
        var taken = Seconds.Skip(Math.Max(0, Seconds.Count - last)).ToList();
        var histogram = new long[LatencyHistogram.Buckets];
        long calls = 0, errors = 0;
        foreach (var s in taken)
        {
            calls += s.Calls;
            errors += s.Errors;
            for (var i = 0; i < histogram.Length; i++)
            {
                histogram[i] += s.Histogram[i];
            }
        }

        var span = Math.Max(1, taken.Count);
        return new StatsSummary(span, calls, errors, (double)calls / span, calls == 0 ? 0 : (double)errors / calls,
            LatencyHistogram.Quantile(histogram, 0.5), LatencyHistogram.Quantile(histogram, 0.9), LatencyHistogram.Quantile(histogram, 0.99));
    }
}

/// <summary>A service's calls over some seconds: latencies in microseconds (null without calls).</summary>
public sealed record StatsSummary(int Seconds, long Calls, long Errors, double CallsPerSecond, double ErrorRate, double? P50, double? P90, double? P99);
