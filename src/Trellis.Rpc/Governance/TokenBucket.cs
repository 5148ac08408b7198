using System.Diagnostics;

namespace Trellis.Rpc.Governance;

/// <summary>
/// A token bucket: starts full (<see cref="RateLimit.Burst"/> tokens), refills at <see cref="RateLimit.PerSecond"/>,
/// and each admitted call takes one token. Thread-safe; a lock held for a few arithmetic operations.
/// </summary>
public sealed class TokenBucket(RateLimit limit)
{
    private readonly object _lock = new();
    private double _tokens = limit.Burst;
    private long _at = Stopwatch.GetTimestamp();

    public RateLimit Limit { get; } = limit;

    /// <summary>Takes a token if there is one.</summary>
    public bool TryTake()
    {
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            _tokens = Math.Min(Limit.Burst, _tokens + ((now - _at) * Limit.PerSecond / Stopwatch.Frequency));
            _at = now;
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }
}

/// <summary>At most <see cref="Limit"/> calls at once: <see cref="TryEnter"/> before a call, <see cref="Exit"/> after it.</summary>
public sealed class ConcurrencyGate(int limit)
{
    private int _inside;

    public int Limit { get; } = limit;

    public int Inside => Volatile.Read(ref _inside);

    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _inside) <= Limit)
        {
            return true;
        }

        Interlocked.Decrement(ref _inside);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _inside);
}
