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

/// <summary>
/// A rate limit as configured: one bucket, or (<see cref="RateLimit.PerCaller"/>) a bucket per caller key. At most
/// <see cref="MaxCallers"/> callers are tracked; past that every caller's bucket starts over full (memory stays bounded).
/// </summary>
public sealed class RateLimiter(RateLimit limit)
{
    public const int MaxCallers = 10_000;

    private readonly TokenBucket? _shared = limit.PerCaller ? null : new TokenBucket(limit);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TokenBucket>? _callers =
        limit.PerCaller ? new(StringComparer.Ordinal) : null;

    public RateLimit Limit { get; } = limit;

    /// <summary>Takes a token for a call of <paramref name="caller"/> (ignored unless per caller).</summary>
    public bool TryTake(string caller)
    {
        if (_shared is not null)
        {
            return _shared.TryTake();
        }

        if (!_callers!.TryGetValue(caller, out var bucket))
        {
            if (_callers.Count >= MaxCallers)
            {
                _callers.Clear();
            }

            bucket = _callers.GetOrAdd(caller, _ => new TokenBucket(Limit));
        }

        return bucket.TryTake();
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
