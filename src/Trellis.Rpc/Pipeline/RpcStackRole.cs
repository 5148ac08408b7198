namespace Trellis.Rpc;

/// <summary>
/// The roles of the middleware stack, in the order a call passes them (outermost first). Client, server,
/// proxy and balancer build from the same roles; each uses those that apply to it.
/// </summary>
/// <remarks>
/// Why each sits where it sits (Finagle's stack, written down):
/// <list type="number">
/// <item><b>Telemetry</b> is outermost so it measures everything the caller experiences, retries and
/// queueing included, and sees every outcome, even one produced by a middleware further in.</item>
/// <item><b>Deadline</b> comes next so every later role works under the call's budget; a call already past
/// it fails here without spending anything.</item>
/// <item><b>AccessControl</b> rejects callers who may not call at all before they cost rate-limit tokens
/// or backend capacity.</item>
/// <item><b>RateLimit</b> sheds excess load before routing and retries multiply it.</item>
/// <item><b>Routing</b> chooses the instance subset (tags, caller conditions, A/B weights) once per call, so
/// retries stay within the route.</item>
/// <item><b>Retry</b> sits outside balancing so each attempt can pick another instance, and inside routing
/// and limits so retries obey both.</item>
/// <item><b>Balance</b> picks one instance per attempt.</item>
/// <item><b>CircuitBreak</b> is per instance, so it sits after the pick: it fails fast for an instance that
/// is down, and the retry above tries another.</item>
/// <item><b>Connection</b> is the terminal: encode, send, wait for the reply, decode.</item>
/// </list>
/// </remarks>
public enum RpcStackRole
{
    Telemetry = 0,
    Deadline = 1,
    AccessControl = 2,
    RateLimit = 3,
    Routing = 4,
    Retry = 5,
    Balance = 6,
    CircuitBreak = 7,
    Connection = 8,
}

/// <summary>
/// Builds a pipeline from middleware registered per role. Order is fixed by <see cref="RpcStackRole"/>,
/// not by registration order; several middleware of one role run in the order added. The stack records
/// what it was built from (<see cref="Describe"/>), for the admin page.
/// </summary>
public sealed class RpcPipelineBuilder
{
    private readonly List<(RpcStackRole Role, string Name, Func<RpcHandler, RpcHandler> Middleware)> _entries = [];

    public RpcPipelineBuilder Use(RpcStackRole role, string name, Func<RpcHandler, RpcHandler> middleware)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(middleware);
        if (role == RpcStackRole.Connection)
        {
            throw new ArgumentException("the connection is the terminal handler, not a middleware", nameof(role));
        }

        _entries.Add((role, name, middleware));
        return this;
    }

    /// <summary>Wraps <paramref name="terminal"/> (the connection) in every middleware, outermost role first.</summary>
    public RpcHandler Build(RpcHandler terminal)
    {
        ArgumentNullException.ThrowIfNull(terminal);
        var handler = terminal;
        foreach (var entry in Ordered().Reverse())
        {
            handler = entry.Middleware(handler);
        }

        return handler;
    }

    /// <summary>Each middleware as <c>role: name</c>, in call order.</summary>
    public IReadOnlyList<string> Describe() => Ordered().Select(e => $"{e.Role}: {e.Name}").Append("Connection").ToList();

    private IEnumerable<(RpcStackRole Role, string Name, Func<RpcHandler, RpcHandler> Middleware)> Ordered() =>
        _entries.Select((e, i) => (e, i)).OrderBy(x => x.e.Role).ThenBy(x => x.i).Select(x => x.e);
}
