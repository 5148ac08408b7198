using System.Diagnostics;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Balancing;

/// <summary>
/// One instance as the balancer sees it, with the live state strategies read: calls in flight, peak-EWMA
/// latency, warm-up, and passive health (outlier ejection). Thread-safe; updated after every call.
/// </summary>
public sealed class BalancerEndpoint
{
    private readonly long _addedAt;
    private int _active;
    private double _ewmaMicros;
    private long _ewmaStamp;

    public BalancerEndpoint(ServiceInstance instance, TimeSpan warmUp = default, long? addedAt = null)
    {
        _instance = instance ?? throw new ArgumentNullException(nameof(instance));
        WarmUp = warmUp;
        _addedAt = addedAt ?? Stopwatch.GetTimestamp();
        Health = new OutlierState();
    }

    private ServiceInstance _instance;

    public ServiceInstance Instance => Volatile.Read(ref _instance);

    public string Key => Instance.InstanceId;

    public TimeSpan WarmUp { get; }

    public OutlierState Health { get; }

    /// <summary>Calls in flight on this endpoint.</summary>
    public int Active => Volatile.Read(ref _active);

    /// <summary>The configured weight, ramped up linearly during warm-up (at least 1 while weight > 0).</summary>
    public int EffectiveWeight(long now)
    {
        var weight = Instance.Weight;
        if (weight <= 0 || WarmUp <= TimeSpan.Zero)
        {
            return Math.Max(weight, 0);
        }

        var age = Stopwatch.GetElapsedTime(_addedAt, now);
        return age >= WarmUp ? weight : Math.Max(1, (int)(weight * (age / WarmUp)));
    }

    /// <summary>Peak-EWMA latency in µs (Finagle's): a slow reply counts at once, a fast one decays in.</summary>
    public double LatencyMicros(long now)
    {
        var ewma = Volatile.Read(ref _ewmaMicros);
        return ewma;
    }

    public void Begin() => Interlocked.Increment(ref _active);

    /// <summary>A call given up by its caller (cancelled, or a hedge that lost): no longer in flight, no verdict.</summary>
    public void Abandon() => Interlocked.Decrement(ref _active);

    /// <summary>Records a finished call: latency, and success or failure for health.</summary>
    public void End(TimeSpan latency, bool success, long now)
    {
        Interlocked.Decrement(ref _active);
        UpdateLatency(latency.TotalMicroseconds, now);
        Health.Record(success, now);
    }

    private const double DecayMicros = 10_000_000; // 10 s time constant

    private void UpdateLatency(double sample, long now)
    {
        lock (this)
        {
            var previous = _ewmaMicros;
            if (sample > previous || _ewmaStamp == 0)
            {
                _ewmaMicros = sample; // peak: jump up at once
            }
            else
            {
                var elapsed = Stopwatch.GetElapsedTime(_ewmaStamp, now).TotalMicroseconds;
                var w = Math.Exp(-elapsed / DecayMicros);
                _ewmaMicros = previous * w + sample * (1 - w);
            }

            _ewmaStamp = now;
        }
    }

    /// <summary>Takes a newer record of the same instance at the same address (weight, draining…), keeping the live state.</summary>
    internal void Update(ServiceInstance instance) => Volatile.Write(ref _instance, instance);

    public override string ToString() => $"{Key}@{Instance.Host}:{Instance.Port}";
}

/// <summary>
/// Passive health (Envoy's outlier detection): consecutive failures, or an error rate over a window, eject the
/// endpoint for a time that grows with each ejection. When an ejection ends the endpoint is half open (a
/// circuit breaker's probation): it takes a limited number of calls at a time, one failure re-opens it at
/// once, and a success closes it. Whether an ejection may happen (the cap on ejected endpoints) is the
/// detector's call; this holds one endpoint's numbers.
/// </summary>
public sealed class OutlierState
{
    private readonly object _lock = new();
    private int _consecutiveFailures;
    private int _windowCalls;
    private int _windowFailures;
    private long _windowStart;
    private long _ejectedUntil;
    private int _ejections;
    private bool _probation;
    private bool _probeFailed;

    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    public int Ejections => Volatile.Read(ref _ejections);

    public bool IsEjected(long now) => now < Interlocked.Read(ref _ejectedUntil);

    /// <summary>The active health check's verdict: down after its failures in a row, up again after its successes.</summary>
    public bool ActiveDown => Volatile.Read(ref _activeDown);

    private bool _activeDown;
    private int _probeStreak; // > 0: successes in a row, < 0: failures in a row

    internal void RecordProbe(bool ok, int unhealthyAfter, int healthyAfter)
    {
        lock (_lock)
        {
            _probeStreak = ok ? Math.Max(_probeStreak, 0) + 1 : Math.Min(_probeStreak, 0) - 1;
            if (!ok && -_probeStreak >= unhealthyAfter)
            {
                Volatile.Write(ref _activeDown, true);
            }
            else if (ok && _probeStreak >= healthyAfter)
            {
                Volatile.Write(ref _activeDown, false);
            }
        }
    }

    /// <summary>Half open: the ejection is over but no call has succeeded since.</summary>
    public bool InProbation(long now) => Volatile.Read(ref _probation) && !IsEjected(now);

    /// <summary>A call failed while half open: the breaker opens again without waiting for the thresholds.</summary>
    internal bool ProbeFailed => Volatile.Read(ref _probeFailed);

    internal (int Calls, int Failures) Window
    {
        get
        {
            lock (_lock)
            {
                return (_windowCalls, _windowFailures);
            }
        }
    }

    internal void Record(bool success, long now)
    {
        lock (_lock)
        {
            if (_probation && now >= _ejectedUntil)
            {
                if (success)
                {
                    _probation = false; // closed
                }
                else
                {
                    _probeFailed = true;
                }
            }

            _consecutiveFailures = success ? 0 : _consecutiveFailures + 1;
            _windowCalls++;
            if (!success)
            {
                _windowFailures++;
            }

            if (_windowStart == 0)
            {
                _windowStart = now;
            }
        }
    }

    /// <summary>Starts a new error-rate window when the old one is over.</summary>
    internal void RollWindow(long now, TimeSpan window)
    {
        lock (_lock)
        {
            if (_windowStart != 0 && Stopwatch.GetElapsedTime(_windowStart, now) >= window)
            {
                _windowCalls = 0;
                _windowFailures = 0;
                _windowStart = now;
            }
        }
    }

    internal void Eject(long now, TimeSpan baseTime, TimeSpan maxTime)
    {
        lock (_lock)
        {
            if (!_probation && _ejectedUntil != 0 && Stopwatch.GetElapsedTime(_ejectedUntil, now) > maxTime)
            {
                _ejections = 0; // healthy for long enough: the next ejection starts short again
            }

            _ejections++;
            _probation = true;
            _probeFailed = false;
            var duration = TimeSpan.FromTicks(Math.Min(maxTime.Ticks, baseTime.Ticks * _ejections));
            Interlocked.Exchange(ref _ejectedUntil, now + (long)(duration.TotalSeconds * Stopwatch.Frequency));
            _consecutiveFailures = 0;
            _windowCalls = 0;
            _windowFailures = 0;
        }
    }
}
