using System.Globalization;
using Trellis.Thrift;

namespace Trellis.Rpc.Governance;

/// <summary>Who a direct-mode client is, for the routes of the services it calls (a proxy learns it from THeader instead).</summary>
public sealed record CallerInfo(string? Product = null, string? Service = null, string? Zone = null, string? Host = null, string? Tag = null)
{
    /// <summary>The caller's key for per-caller rate limits.</summary>
    public string Key { get; } = Service is null ? Product ?? "" : Product + "/" + Service;
}

/// <summary>
/// A service config applied in a direct-mode client, in the order the proxy applies it: degradation → rate limits →
/// concurrency limits → circuit breakers → route, with the method's timeout and retry policy. Access control and
/// product isolation are the callee's side (its proxy and server) and are not applied here: the client is the caller.
/// </summary>
public sealed class ClientGovernance(string service, CallerInfo? caller = null)
{
    private readonly CallerInfo _caller = caller ?? new CallerInfo();
    private volatile ServiceConfig _config = ServiceConfig.Empty;
    private volatile GovernanceState _limits = GovernanceState.None;
    private readonly object _lock = new();

    public ServiceConfig Config => _config;

    /// <summary>No config in force (none set, or an empty one): calls need not pass the rules at all.</summary>
    public bool IsEmpty => ReferenceEquals(_config, ServiceConfig.Empty);

    /// <summary>Puts a (valid) config in force; limits left unchanged keep their state.</summary>
    public void Apply(ServiceConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        lock (_lock)
        {
            _limits = _limits.Next(config);
            _config = config;
        }
    }

    /// <summary>
    /// Admits a call of <paramref name="method"/>, or throws the <see cref="TApplicationException"/> it is refused with
    /// (the same messages as at a proxy, saying "in this client"). A degraded method with a static reply is admitted
    /// with <see cref="ClientAdmission.Reply"/> set: the caller answers with it and sends nothing.
    /// </summary>
    public ClientAdmission Admit(string method)
    {
        var config = _config;
        var admission = new ClientAdmission { Subset = -1 };
        if (ReferenceEquals(config, ServiceConfig.Empty))
        {
            return admission; // IsEmpty: callers normally skip Admit altogether
        }

        if (config.DegradeFor(method) is { } degraded)
        {
            return degraded.Reply is { } reply
                ? admission with { Reply = reply }
                : throw GovernanceErrors.Degraded(service, method, degraded.Error!);
        }

        var limits = _limits;
        if (limits.Throttle(method, _caller.Key) is { } limit)
        {
            throw GovernanceErrors.RateLimited(service, method, limit, "in this client");
        }

        if (limits.Enter(method, out var methodGate, out var serviceGate) is { } cap)
        {
            throw GovernanceErrors.Overloaded(service, method, cap, "in this client");
        }

        if (limits.Break(method, out var breakers) is { } open)
        {
            methodGate?.Exit();
            serviceGate?.Exit();
            throw GovernanceErrors.CircuitOpen(service, method, open);
        }

        config.Methods.TryGetValue(method, out var own);
        admission = admission with
        {
            MethodGate = methodGate,
            ServiceGate = serviceGate,
            Breakers = breakers,
            Timeout = own?.Timeout ?? config.Timeout,
            Retries = own?.Retries,
            Idempotent = own?.Idempotent == true,
        };
        if (!config.Routes.IsEmpty
            && config.Routes.Select(new CallFacts(method, _caller.Tag, _caller.Product, _caller.Service, _caller.Zone, _caller.Host, null)) is var (rule, target))
        {
            admission = admission with { Subset = target.Subset, Force = rule.Force };
        }

        return admission;
    }
}

/// <summary>What a direct-mode call was admitted with: the limits it holds (given back by <see cref="Release"/>), its route and policy.</summary>
public readonly record struct ClientAdmission
{
    /// <summary>The route's instance subset, or -1.</summary>
    public int Subset { get; init; }

    public bool Force { get; init; }

    /// <summary>The configured deadline (the caller's own, if shorter, still wins).</summary>
    public TimeSpan? Timeout { get; init; }

    public int? Retries { get; init; }

    /// <summary>The config marks the method idempotent.</summary>
    public bool Idempotent { get; init; }

    /// <summary>A degraded method's configured answer: no call is sent.</summary>
    public StaticReply? Reply { get; init; }

    public ConcurrencyGate? MethodGate { get; init; }

    public ConcurrencyGate? ServiceGate { get; init; }

    public BreakerTicket Breakers { get; init; }

    /// <summary>The call is over: slots given back, its outcome told to the breakers.</summary>
    public void Release(bool success)
    {
        MethodGate?.Exit();
        ServiceGate?.Exit();
        Breakers.Record(success);
    }

    /// <summary>
    /// Whether a call's failure counts against the breakers: no answer, a transport or protocol failure, or an error the
    /// instance raised (<see cref="TApplicationException"/>); a declared exception is an answer, a success.
    /// </summary>
    public static bool IsFailure(Exception e) => e is TApplicationException or TTransportException or TProtocolException or IOException or TimeoutException;
}

/// <summary>The errors a call refused by a service config's rules is answered with (at a proxy, or in a direct-mode client).</summary>
public static class GovernanceErrors
{
    public static TApplicationException Degraded(string service, string method, string error) =>
        new(TApplicationExceptionType.InternalError, $"degraded: {service}:{method}: {error}");

    public static TApplicationException RateLimited(string service, string method, RateLimit limit, string where) =>
        new(TApplicationExceptionType.InternalError,
            $"rate limited: {service}:{method}: over {limit.PerSecond.ToString("0.###", CultureInfo.InvariantCulture)} calls/s{(limit.PerCaller ? " for this caller" : "")} {where}; the call was not run");

    public static TApplicationException Overloaded(string service, string method, int cap, string where) =>
        new(TApplicationExceptionType.InternalError, $"{RpcErrors.OverloadedPrefix}{service}:{method}: {cap} calls in flight {where} (maxConcurrent); the call was not run");

    public static TApplicationException CircuitOpen(string service, string method, CircuitBreaker open) =>
        new(TApplicationExceptionType.InternalError,
            $"circuit open: {service}:{method}: {open.Policy.ErrorRate.ToString("P0", CultureInfo.InvariantCulture)} or more of the calls failed; failing fast for up to {open.Policy.OpenFor.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)} ms; the call was not run");
}
