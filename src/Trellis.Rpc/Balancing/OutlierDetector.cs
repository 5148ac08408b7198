using System.Collections.Immutable;
using System.Diagnostics;

namespace Trellis.Rpc.Balancing;

/// <summary>Passive health settings (Envoy's outlier detection).</summary>
public sealed record OutlierPolicy
{
    /// <summary>This many failures in a row eject an endpoint.</summary>
    public int ConsecutiveFailures { get; init; } = 5;

    /// <summary>An error rate above this over <see cref="Window"/> (with at least <see cref="MinimumCalls"/>) ejects.</summary>
    public double ErrorRate { get; init; } = 0.5;

    public int MinimumCalls { get; init; } = 20;

    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The first ejection's length; the n-th lasts n times as long, up to <see cref="MaxEjection"/>.</summary>
    public TimeSpan BaseEjection { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan MaxEjection { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Calls an endpoint takes at a time while half open (after an ejection, before its first success): the
    /// probes of a per-endpoint circuit breaker. A failed probe ejects it again at once.
    /// </summary>
    public int HalfOpenCalls { get; init; } = 1;

    /// <summary>Never eject more than this share of the endpoints.</summary>
    public double MaxEjectedShare { get; init; } = 0.5;

    /// <summary>When fewer than this share are usable, route to all of them (panic) rather than overload the few.</summary>
    public double PanicThreshold { get; init; } = 0.5;
}

/// <summary>Applies an <see cref="OutlierPolicy"/> to the endpoints of one service.</summary>
public sealed class OutlierDetector(OutlierPolicy policy)
{
    public OutlierPolicy Policy { get; } = policy ?? throw new ArgumentNullException(nameof(policy));

    /// <summary>After a call on <paramref name="endpoint"/>: eject it if it crossed a threshold and the cap allows.</summary>
    public bool AfterCall(BalancerEndpoint endpoint, ImmutableArray<BalancerEndpoint> all, long now)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var health = endpoint.Health;
        health.RollWindow(now, Policy.Window);
        var (calls, failures) = health.Window;
        var tripped = health.ProbeFailed ||
                      health.ConsecutiveFailures >= Policy.ConsecutiveFailures ||
                      (calls >= Policy.MinimumCalls && failures > Policy.ErrorRate * calls);
        if (!tripped || health.IsEjected(now))
        {
            return false;
        }

        var ejected = 0;
        foreach (var e in all)
        {
            if (e.Health.IsEjected(now))
            {
                ejected++;
            }
        }

        if (ejected + 1 > Policy.MaxEjectedShare * all.Length)
        {
            return false; // the cap: better a bad endpoint in rotation than too few endpoints
        }

        health.Eject(now, Policy.BaseEjection, Policy.MaxEjection);
        return true;
    }

    /// <summary>
    /// Whether an endpoint may be picked now: not ejected, not draining, and when half open not already
    /// holding <see cref="OutlierPolicy.HalfOpenCalls"/> calls — unless the service is in panic (too few
    /// usable), when every endpoint that is not draining may be. The filter judges at <paramref name="now"/> until the next call.
    /// </summary>
    public Func<BalancerEndpoint, bool> Usable(ImmutableArray<BalancerEndpoint> all, long now)
    {
        var usable = 0;
        var candidates = 0;
        foreach (var e in all)
        {
            if (e.Instance.Draining)
            {
                continue;
            }

            candidates++;
            if (!e.Health.IsEjected(now) && !e.Health.ActiveDown)
            {
                usable++;
            }
        }

        if (candidates > 0 && usable < Policy.PanicThreshold * candidates)
        {
            return NotDraining;
        }

        Volatile.Write(ref _at, now);
        return _usable ??= UsableAt;
    }

    private static readonly Func<BalancerEndpoint, bool> NotDraining = static e => !e.Instance.Draining;

    private Func<BalancerEndpoint, bool>? _usable;
    private long _at;

    // one delegate per detector, so a pick allocates nothing: it judges at the time of the latest Usable call
    // (concurrent picks differ by microseconds, which no ejection or probation period notices)
    private bool UsableAt(BalancerEndpoint e)
    {
        if (e.Instance.Draining || e.Health.ActiveDown)
        {
            return false;
        }

        var now = Volatile.Read(ref _at);
        return !e.Health.IsEjected(now) && (e.Active < Policy.HalfOpenCalls || !e.Health.InProbation(now));
    }

    public static long Now => Stopwatch.GetTimestamp();
}
