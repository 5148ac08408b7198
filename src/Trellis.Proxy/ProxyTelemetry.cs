using System.Diagnostics;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Proxy;

/// <summary>
/// The proxy's and the balancer's traces: activity source <c>Trellis.Proxy</c>, one span per forwarded call (kind
/// Server, named <c>Service/method</c>), child of the caller's <c>traceparent</c>; the backend gets the span's own
/// context as its <c>traceparent</c>, so a trace reads client → proxy → server.
/// </summary>
/// <remarks>
/// Nothing happens per call unless a listener is attached (<see cref="ActivitySource.HasListeners"/>, one volatile
/// read): the hot path neither parses headers nor allocates.
/// </remarks>
public static class ProxyTelemetry
{
    public const string Name = "Trellis.Proxy";

    public static ActivitySource Source { get; } = new(Name, typeof(ProxyTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Starts the call's span when someone listens (and samples it).</summary>
    internal static Activity? StartForward(ForwardCall call)
    {
        ActivityContext parent = default;
        if (call.Headers is { } headers)
        {
            string? traceParent = null;
            string? traceState = null;
            foreach (var (key, value) in headers)
            {
                if (key == RpcHeaders.TraceParent)
                {
                    traceParent = value;
                }
                else if (key == RpcHeaders.TraceState)
                {
                    traceState = value;
                }
            }

            if (traceParent is not null)
            {
                ActivityContext.TryParse(traceParent, traceState, isRemote: true, out parent);
            }
        }

        var name = RpcTelemetry.MethodName(call.Service, call.Method);
        var activity = Source.StartActivity(name, ActivityKind.Server, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(RpcTelemetry.SystemNameTag, RpcTelemetry.SystemName);
            activity.SetTag(RpcTelemetry.MethodTag, name);
        }

        return activity;
    }

    /// <summary>The instance an attempt went to.</summary>
    internal static void Attempt(Activity activity, ServiceInstance instance, int attempt)
    {
        if (!activity.IsAllDataRequested)
        {
            return;
        }

        if (attempt > 0)
        {
            activity.AddEvent(new ActivityEvent("retry", tags: new ActivityTagsCollection { ["trellis.attempt"] = attempt, ["trellis.instance"] = instance.InstanceId }));
        }

        activity.SetTag("trellis.instance", instance.InstanceId);
        activity.SetTag(RpcTelemetry.ServerAddressTag, instance.Host);
        activity.SetTag(RpcTelemetry.ServerPortTag, instance.Port);
    }

    internal static void Failed(Activity activity, TApplicationException error)
    {
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.SetTag(RpcTelemetry.ErrorTypeTag, error.Type.ToString());
    }
}
