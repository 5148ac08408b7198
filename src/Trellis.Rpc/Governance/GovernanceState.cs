namespace Trellis.Rpc.Governance;

/// <summary>
/// The live state of a service config's limits — rate limiters, concurrency gates and circuit breakers, by service and
/// by method — for one consumer (a proxy's route, a direct-mode channel). Immutable: a new config makes a new state
/// with <see cref="Next"/>, where every limit left unchanged keeps its object (a bucket's tokens, a gate's count, a
/// breaker's state), and a changed one starts afresh.
/// </summary>
public sealed class GovernanceState
{
    public static readonly GovernanceState None = new(null, [], null, [], null, []);

    private readonly RateLimiter? _serviceRate;
    private readonly Dictionary<string, RateLimiter> _methodRates;
    private readonly ConcurrencyGate? _serviceGate;
    private readonly Dictionary<string, ConcurrencyGate> _methodGates;
    private readonly CircuitBreaker? _serviceBreaker;
    private readonly Dictionary<string, CircuitBreaker> _methodBreakers;

    private GovernanceState(RateLimiter? serviceRate, Dictionary<string, RateLimiter> methodRates, ConcurrencyGate? serviceGate,
        Dictionary<string, ConcurrencyGate> methodGates, CircuitBreaker? serviceBreaker, Dictionary<string, CircuitBreaker> methodBreakers)
    {
        _serviceRate = serviceRate;
        _methodRates = methodRates;
        _serviceGate = serviceGate;
        _methodGates = methodGates;
        _serviceBreaker = serviceBreaker;
        _methodBreakers = methodBreakers;
        PerCaller = serviceRate?.Limit.PerCaller == true || methodRates.Values.Any(m => m.Limit.PerCaller);
    }

    /// <summary>Some rate limit is per caller: the consumer must work out each call's caller key.</summary>
    public bool PerCaller { get; }

    /// <summary>The state for <paramref name="config"/>, keeping what is unchanged from this one.</summary>
    public GovernanceState Next(ServiceConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        // settings compared by value (records, ints): boxed here, once per config, never per call
        return new GovernanceState(
            Keep(_serviceRate, config.RateLimit, r => r.Limit, l => new RateLimiter((RateLimit)l)),
            KeepAll(_methodRates, config, m => m.RateLimit, r => r.Limit, l => new RateLimiter((RateLimit)l)),
            Keep(_serviceGate, config.MaxConcurrent, g => g.Limit, l => new ConcurrencyGate((int)l)),
            KeepAll(_methodGates, config, m => m.MaxConcurrent, g => g.Limit, l => new ConcurrencyGate((int)l)),
            Keep(_serviceBreaker, config.CircuitBreaker, b => b.Policy, p => new CircuitBreaker((BreakerPolicy)p)),
            KeepAll(_methodBreakers, config, m => m.CircuitBreaker, b => b.Policy, p => new CircuitBreaker((BreakerPolicy)p)));
    }

    /// <summary>The old object when its setting is unchanged, a new one for a new setting, none without one.</summary>
    private static T? Keep<T>(T? old, object? setting, Func<T, object> settingOf, Func<object, T> create) where T : class =>
        setting is null ? null : old is not null && settingOf(old).Equals(setting) ? old : create(setting);

    /// <summary><see cref="Keep{T}"/> for each method of the config.</summary>
    private static Dictionary<string, T> KeepAll<T>(Dictionary<string, T> old, ServiceConfig config, Func<MethodConfig, object?> settingIn,
        Func<T, object> settingOf, Func<object, T> create)
        where T : class
    {
        var next = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var (name, method) in config.Methods)
        {
            if (Keep(old.GetValueOrDefault(name), settingIn(method), settingOf, create) is { } kept)
            {
                next[name] = kept;
            }
        }

        return next;
    }

    /// <summary>Takes a token for a call of <paramref name="method"/> by <paramref name="caller"/>; the limit that refuses it, or null when admitted.</summary>
    public RateLimit? Throttle(string method, string caller)
    {
        if (_methodRates.Count > 0 && _methodRates.TryGetValue(method, out var own) && !own.TryTake(caller))
        {
            return own.Limit;
        }

        return _serviceRate is not null && !_serviceRate.TryTake(caller) ? _serviceRate.Limit : null;
    }

    /// <summary>Enters the concurrency limits of a call of <paramref name="method"/>: the limit that refuses it (nothing held), or null with the gates to exit when it is done.</summary>
    public int? Enter(string method, out ConcurrencyGate? methodGate, out ConcurrencyGate? serviceGate)
    {
        methodGate = null;
        serviceGate = null;
        if (_methodGates.Count > 0 && _methodGates.TryGetValue(method, out var own))
        {
            if (!own.TryEnter())
            {
                return own.Limit;
            }

            methodGate = own;
        }

        if (_serviceGate is { } gate)
        {
            if (!gate.TryEnter())
            {
                methodGate?.Exit();
                methodGate = null;
                return gate.Limit;
            }

            serviceGate = gate;
        }

        return null;
    }

    /// <summary>
    /// Passes a call of <paramref name="method"/> through the circuit breakers: the one that is open (the call must fail
    /// at once), or null with the breakers to report the outcome to (<see cref="BreakerTicket.Record"/>).
    /// </summary>
    public CircuitBreaker? Break(string method, out BreakerTicket ticket)
    {
        ticket = default;
        CircuitBreaker? own = null;
        var ownProbe = false;
        if (_methodBreakers.Count > 0 && _methodBreakers.TryGetValue(method, out own) && !own.TryEnter(out ownProbe))
        {
            return own;
        }

        var serviceProbe = false;
        if (_serviceBreaker is { } service && !service.TryEnter(out serviceProbe))
        {
            own?.Abandon(ownProbe);
            return service;
        }

        ticket = new BreakerTicket(own, ownProbe, _serviceBreaker, serviceProbe);
        return null;
    }
}

/// <summary>The circuit breakers a call passed (with whether it is their half-open probe): its outcome goes to them.</summary>
public readonly record struct BreakerTicket(CircuitBreaker? Method, bool MethodProbe, CircuitBreaker? Service, bool ServiceProbe)
{
    public void Record(bool success)
    {
        Method?.Record(success, MethodProbe);
        Service?.Record(success, ServiceProbe);
    }

    /// <summary>The call was not sent (refused by a later rule): probes it held are given back.</summary>
    public void Abandon()
    {
        Method?.Abandon(MethodProbe);
        Service?.Abandon(ServiceProbe);
    }
}
