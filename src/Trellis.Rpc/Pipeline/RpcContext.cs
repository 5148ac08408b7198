using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Rpc;

/// <summary>
/// One call as it passes through a middleware pipeline, on the client or the server side: what is called,
/// with which arguments and headers, under which deadline; and, once done, its result or its error.
/// </summary>
/// <remarks>
/// Forwarders (the proxy, the balancer) carry the payload as bytes and leave <see cref="Arguments"/> and
/// <see cref="Result"/> null. Not thread-safe: one call, one context.
/// </remarks>
public sealed class RpcContext
{
    private Dictionary<string, string>? _requestHeaders;
    private Dictionary<string, string>? _responseHeaders;
    private Dictionary<object, object?>? _items;

    public RpcContext(string service, string method, TMessageType type = TMessageType.Call)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        Service = service ?? "";
        MethodName = method;
        MessageType = type;
    }

    /// <summary>The service called (empty for a plain, non-multiplexed name).</summary>
    public string Service { get; }

    public string MethodName { get; }

    /// <summary>The generated descriptor, when the method is known (null in forwarders).</summary>
    public ThriftMethod? Method { get; init; }

    public TMessageType MessageType { get; }

    public bool IsOneway => MessageType == TMessageType.Oneway;

    /// <summary>The sequence id on the wire (set by the connection).</summary>
    public int SeqId { get; set; }

    public IThriftWritable? Arguments { get; set; }

    /// <summary>Client: the struct the reply is read into. Server: the struct the handler produced.</summary>
    public IThriftStruct? Result { get; set; }

    /// <summary>Server side: the reply to send (the invoker's result struct).</summary>
    public IThriftWritable? Reply { get; set; }

    /// <summary>When the call must be finished; sent to the peer in THeader so it stops working after it.</summary>
    public DateTimeOffset? Deadline { get; set; }

    /// <summary>THeader info headers that arrived with the call (server) or go with it (client).</summary>
    public IDictionary<string, string> RequestHeaders => _requestHeaders ??= new(StringComparer.Ordinal);

    public IDictionary<string, string> ResponseHeaders => _responseHeaders ??= new(StringComparer.Ordinal);

    public bool HasRequestHeaders => _requestHeaders is { Count: > 0 };

    /// <summary>Per-call state middleware share.</summary>
    public IDictionary<object, object?> Items => _items ??= [];

    public CancellationToken CancellationToken { get; set; }

    /// <summary>Where the call came from (server) or went (client), e.g. <c>tcp://127.0.0.1:9090</c>.</summary>
    public string? Peer { get; set; }

    /// <summary>Server side: who is calling, as proven by the connection (mTLS, Unix peer credentials), when it is known.</summary>
    public CallerIdentity? Caller { get; set; }

    public string FullName => Service.Length == 0 ? MethodName : Service + ":" + MethodName;

    public override string ToString() => $"{FullName}#{SeqId}";
}

/// <summary>Handles a call; middleware wrap handlers (ASP.NET Core's <c>RequestDelegate</c> idiom).</summary>
public delegate ValueTask RpcHandler(RpcContext context);
