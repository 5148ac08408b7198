namespace Trellis.Cli.Call;

/// <summary>
/// Latencies in microseconds in log-linear buckets (HDR-style): exact below 2 ms, then 1024 buckets per power of two —
/// under 0.1 % relative error up to an hour, in a fixed ~190 KB whatever the number of calls. Safe to record from many
/// threads at once and to read while recording (a read sees a moment's counts).
/// </summary>
internal sealed class LatencyHistogram
{
    private const int LinearLimit = 2048; // µs recorded exactly below this
    private const int SubBuckets = 1024;  // per power of two above it
    private const int LinearBits = 11;    // log2(LinearLimit)
    private const long MaxValue = (1L << 32) - 1; // ~71 minutes

    private readonly long[] _counts = new long[LinearLimit + ((32 - LinearBits) * SubBuckets)];
    private long _count;
    private long _max;
    private long _sum;

    public long Count => Volatile.Read(ref _count);

    public long MaxMicroseconds => Volatile.Read(ref _max);

    public double MeanMicroseconds => Count == 0 ? 0 : (double)Volatile.Read(ref _sum) / Count;

    public void Record(long microseconds)
    {
        var value = Math.Clamp(microseconds, 0, MaxValue);
        Interlocked.Increment(ref _counts[Index(value)]);
        Interlocked.Add(ref _sum, value);
        Interlocked.Increment(ref _count);
        var max = Volatile.Read(ref _max);
        while (value > max)
        {
            var seen = Interlocked.CompareExchange(ref _max, value, max);
            if (seen == max)
            {
                break;
            }

            max = seen;
        }
    }

    private static int Index(long value)
    {
        if (value < LinearLimit)
        {
            return (int)value;
        }

        var exponent = 63 - (int)long.LeadingZeroCount(value); // >= LinearBits
        var sub = (int)((value >> (exponent - 10)) & (SubBuckets - 1));
        return LinearLimit + ((exponent - LinearBits) * SubBuckets) + sub;
    }

    /// <summary>The highest value a bucket holds.</summary>
    private static long UpperBound(int index)
    {
        if (index < LinearLimit)
        {
            return index;
        }

        var exponent = ((index - LinearLimit) / SubBuckets) + LinearBits;
        var sub = (index - LinearLimit) % SubBuckets;
        var width = 1L << (exponent - 10);
        return (1L << exponent) + (sub * width) + width - 1;
    }

    /// <summary>The latency at or below which <paramref name="quantile"/> (0..1) of the calls finished, in microseconds.</summary>
    public long Percentile(double quantile)
    {
        var total = Count;
        if (total == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(quantile * total));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Min(UpperBound(i), MaxMicroseconds);
            }
        }

        return MaxMicroseconds;
    }
}
