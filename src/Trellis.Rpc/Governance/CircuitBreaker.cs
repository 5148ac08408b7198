using System.Diagnostics;
using System.Text.Json;

namespace Trellis.Rpc.Governance;

/// <summary>
/// When a service's (or a method's) calls fail so often that sending more only adds load to something broken: over
/// <see cref="Window"/>, with at least <see cref="MinimumCalls"/> calls, a failure share of <see cref="ErrorRate"/> or
/// more opens the breaker; calls then fail at once for <see cref="OpenFor"/>; then <see cref="HalfOpenCalls"/> probe
/// calls go through, and the breaker closes on a success or opens again on a failure.
/// </summary>
public sealed record BreakerPolicy(double ErrorRate, int MinimumCalls, TimeSpan Window, TimeSpan OpenFor, int HalfOpenCalls)
{
    private static readonly string[] Keys = ["errorRate", "minimumCalls", "windowMs", "openMs", "halfOpenCalls"];

    internal static BreakerPolicy? Parse(JsonElement v, string path, List<string> problems)
    {
        if (v.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be an object such as {{\"errorRate\": 0.5, \"minimumCalls\": 20, \"windowMs\": 10000, \"openMs\": 5000}}");
            return null;
        }

        ServiceConfig.Unknown(v, path, Keys, problems);
        var before = problems.Count;
        var rate = 0.5;
        if (v.TryGetProperty("errorRate", out var r))
        {
            if (r.ValueKind != JsonValueKind.Number || !r.TryGetDouble(out rate) || rate is <= 0 or > 1)
            {
                problems.Add($"{path}.errorRate: the failing share that opens the breaker, above 0 and at most 1");
            }
        }

        var minimum = v.TryGetProperty("minimumCalls", out var m) ? ServiceConfig.Int(m, path + ".minimumCalls", 1, 1_000_000, problems) : 20;
        var window = v.TryGetProperty("windowMs", out var w) ? ServiceConfig.Int(w, path + ".windowMs", 100, 3_600_000, problems) : 10_000;
        var open = v.TryGetProperty("openMs", out var o) ? ServiceConfig.Int(o, path + ".openMs", 10, 3_600_000, problems) : 5_000;
        var probes = v.TryGetProperty("halfOpenCalls", out var h) ? ServiceConfig.Int(h, path + ".halfOpenCalls", 1, 1000, problems) : 1;
        return problems.Count > before || minimum is null || window is null || open is null || probes is null
            ? null
            : new BreakerPolicy(rate, minimum.Value, TimeSpan.FromMilliseconds(window.Value), TimeSpan.FromMilliseconds(open.Value), probes.Value);
    }
}

/// <summary>A breaker's state (<see cref="BreakerPolicy"/>). Thread-safe; the window is ten rolling buckets.</summary>
public sealed class CircuitBreaker(BreakerPolicy policy)
{
    private const int Buckets = 10;
    private readonly object _lock = new();
    private readonly int[] _calls = new int[Buckets];
    private readonly int[] _failures = new int[Buckets];
    private readonly long _bucketTicks = Math.Max(1, (long)(policy.Window.TotalSeconds * Stopwatch.Frequency / Buckets));
    private long _bucket; // the index (time / bucket length) of the newest bucket
    private volatile BreakerState _state;
    private long _openUntil;
    private int _probesOut;

    public BreakerPolicy Policy { get; } = policy ?? throw new ArgumentNullException(nameof(policy));

    public BreakerState State
    {
        get
        {
            lock (_lock)
            {
                return _state == BreakerState.Open && Stopwatch.GetTimestamp() >= _openUntil ? BreakerState.HalfOpen : _state;
            }
        }
    }

    /// <summary>Times the breaker opened.</summary>
    public long Opened { get; private set; }

    /// <summary>
    /// May a call go? False while open (the call should fail at once). <paramref name="probe"/>: the call is one of the
    /// half-open probes, and must be reported with <see cref="Record"/> (or <see cref="Abandon"/> if it was not sent).
    /// </summary>
    public bool TryEnter(out bool probe)
    {
        probe = false;
        if (_state == BreakerState.Closed)
        {
            return true;
        }

        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            switch (_state)
            {
                case BreakerState.Closed:
                    return true;
                case BreakerState.Open when now < _openUntil:
                    return false;
                case BreakerState.Open:
                    _state = BreakerState.HalfOpen;
                    _probesOut = 0;
                    break;
            }

            if (_probesOut >= Policy.HalfOpenCalls)
            {
                return false;
            }

            _probesOut++;
            probe = true;
            return true;
        }
    }

    /// <summary>A probe that was let through but not sent.</summary>
    public void Abandon(bool probe)
    {
        if (probe)
        {
            lock (_lock)
            {
                _probesOut = Math.Max(0, _probesOut - 1);
            }
        }
    }

    /// <summary>The outcome of a call that went (a failure: no answer, a transport error, a timeout, an application error).</summary>
    public void Record(bool success, bool probe)
    {
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            if (probe || _state == BreakerState.HalfOpen)
            {
                if (_state != BreakerState.HalfOpen)
                {
                    return; // a late probe answer after another probe decided
                }

                if (success)
                {
                    _state = BreakerState.Closed;
                    Array.Clear(_calls);
                    Array.Clear(_failures);
                }
                else
                {
                    Open(now);
                }

                return;
            }

            if (_state != BreakerState.Closed)
            {
                return; // calls let in before it opened
            }

            var index = Roll(now);
            _calls[index]++;
            if (!success)
            {
                _failures[index]++;
                int calls = 0, failures = 0;
                for (var i = 0; i < Buckets; i++)
                {
                    calls += _calls[i];
                    failures += _failures[i];
                }

                if (calls >= Policy.MinimumCalls && failures >= Policy.ErrorRate * calls)
                {
                    Open(now);
                }
            }
        }
    }

    private void Open(long now)
    {
        _state = BreakerState.Open;
        _openUntil = now + (long)(Policy.OpenFor.TotalSeconds * Stopwatch.Frequency);
        _probesOut = 0;
        Opened++;
    }

    private int Roll(long now)
    {
        var bucket = now / _bucketTicks;
        if (bucket != _bucket)
        {
            // clear the buckets the window moved past (all of them after a long quiet time)
            for (var b = Math.Max(_bucket + 1, bucket - Buckets + 1); b <= bucket; b++)
            {
                var i = (int)(b % Buckets);
                _calls[i] = 0;
                _failures[i] = 0;
            }

            _bucket = bucket;
        }

        return (int)(bucket % Buckets);
    }
}

public enum BreakerState
{
    Closed,
    Open,
    HalfOpen,
}
