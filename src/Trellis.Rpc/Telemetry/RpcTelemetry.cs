using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Rpc;

/// <summary>
/// Trellis's RPC telemetry, under the OpenTelemetry RPC semantic conventions: the meter and activity source
/// <c>Trellis.Rpc</c>, the histograms <c>rpc.client.call.duration</c> and <c>rpc.server.call.duration</c> (seconds),
/// client spans (kind Client, current while the call is sent, so their context travels as <c>traceparent</c> in
/// THeader) and server spans (kind Server, children of the caller's <c>traceparent</c>).
/// </summary>
/// <remarks>
/// Nothing is measured or allocated per call unless a listener is attached: callers check <see cref="ClientActive"/>
/// and <see cref="ServerActive"/> (an instrument's <c>Enabled</c>, an activity source's <c>HasListeners()</c>) first.
/// </remarks>
public static class RpcTelemetry
{
    /// <summary>The meter's and the activity source's name.</summary>
    public const string Name = "Trellis.Rpc";

    /// <summary>
    /// The value of <c>rpc.system.name</c>. The conventions list no Thrift value; their newest well-known values name
    /// the project without its foundation (<c>dubbo</c>, formerly <c>apache_dubbo</c>; <c>connectrpc</c>), so Thrift is <c>thrift</c>.
    /// </summary>
    public const string SystemName = "thrift";

    public const string ClientDurationName = "rpc.client.call.duration";

    public const string ServerDurationName = "rpc.server.call.duration";

    /// <summary>Bucket bounds (seconds) for RPC latencies: 0.5 ms to 10 s.</summary>
    public static IReadOnlyList<double> DurationBuckets { get; } =
        [0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    private static readonly string? Version = typeof(RpcTelemetry).Assembly.GetName().Version?.ToString();

    public static ActivitySource Source { get; } = new(Name, Version);

    public static Meter Meter { get; } = new(Name, Version);

    internal static readonly Histogram<double> ClientDuration = Meter.CreateHistogram(ClientDurationName, "s",
        "Duration of outgoing RPCs (each attempt), from the call to its answer.", tags: null,
        new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    internal static readonly Histogram<double> ServerDuration = Meter.CreateHistogram(ServerDurationName, "s",
        "Duration of incoming RPCs, from the request read to the answer made.", tags: null,
        new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    public const string SystemNameTag = "rpc.system.name";
    public const string MethodTag = "rpc.method";
    public const string StatusCodeTag = "rpc.response.status_code";
    public const string ErrorTypeTag = "error.type";
    public const string ServerAddressTag = "server.address";
    public const string ServerPortTag = "server.port";

    /// <summary>A client call is measured or traced: someone listens.</summary>
    public static bool ClientActive => ClientDuration.Enabled || Source.HasListeners();

    public static bool ServerActive => ServerDuration.Enabled || Source.HasListeners();

    private static readonly ConcurrentDictionary<(string Service, string Method), string> MethodNames = new();

    /// <summary>The fully-qualified method, <c>Service/method</c>, as <c>rpc.method</c> and span names want it (cached).</summary>
    public static string MethodName(string service, string method)
    {
        if (service.Length == 0)
        {
            return method;
        }

        return MethodNames.TryGetValue((service, method), out var name) ? name
            : MethodNames.Count < 4096 ? MethodNames.GetOrAdd((service, method), static k => k.Service + "/" + k.Method)
            : service + "/" + method;
    }

    /// <summary>The <c>error.type</c> of a failure: the Thrift error's kind, or the exception's type.</summary>
    public static string ErrorType(Exception error) => error switch
    {
        TApplicationException app => app.Type.ToString(),
        TTransportException transport => transport.Kind.ToString(),
        TProtocolException => "ProtocolError",
        OperationCanceledException => "Cancelled",
        _ => error.GetType().FullName ?? error.GetType().Name,
    };

    /// <summary>A client span for one call to <paramref name="endpoint"/> (null when nobody samples it); it becomes current.</summary>
    internal static Activity? StartClient(string method, RpcEndpoint endpoint)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity(method, ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(SystemNameTag, SystemName);
            activity.SetTag(MethodTag, method);
            if (endpoint.IsUnix)
            {
                activity.SetTag(ServerAddressTag, endpoint.UnixPath);
            }
            else
            {
                activity.SetTag(ServerAddressTag, endpoint.Host);
                activity.SetTag(ServerPortTag, endpoint.Port);
            }
        }

        return activity;
    }

    /// <summary>A server span, child of the caller's <c>traceparent</c> when it sent one; it becomes current.</summary>
    internal static Activity? StartServer(string method, RpcContext context)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        ActivityContext parent = default;
        if (context.HasRequestHeaders && context.RequestHeaders.TryGetValue(RpcHeaders.TraceParent, out var traceParent))
        {
            context.RequestHeaders.TryGetValue(RpcHeaders.TraceState, out var traceState);
            ActivityContext.TryParse(traceParent, traceState, isRemote: true, out parent);
        }

        var activity = Source.StartActivity(method, ActivityKind.Server, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(SystemNameTag, SystemName);
            activity.SetTag(MethodTag, method);
        }

        return activity;
    }

    /// <summary>Ends a call's span and records its duration.</summary>
    internal static void Finish(Histogram<double> histogram, string method, long started, Activity? activity, Exception? error, string? address = null, object? port = null)
    {
        var errorType = error is null ? null : ErrorType(error);
        if (activity is not null)
        {
            if (errorType is not null)
            {
                activity.SetStatus(ActivityStatusCode.Error, error!.Message);
                activity.SetTag(ErrorTypeTag, errorType);
                activity.SetTag(StatusCodeTag, errorType);
            }

            activity.Dispose();
        }

        if (histogram.Enabled)
        {
            var tags = new TagList
            {
                { SystemNameTag, SystemName },
                { MethodTag, method },
            };
            if (errorType is not null)
            {
                tags.Add(ErrorTypeTag, errorType);
            }

            if (address is not null)
            {
                tags.Add(ServerAddressTag, address);
                if (port is not null)
                {
                    tags.Add(ServerPortTag, port);
                }
            }

            histogram.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        }
    }

    /// <summary>The fully-qualified name of a generated method.</summary>
    internal static string MethodName(ThriftMethod method) => MethodName(method.ServiceName, method.Name);
}
