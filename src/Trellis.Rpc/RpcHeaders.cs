using System.Diagnostics;
using System.Globalization;
using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>The THeader info keys Trellis sends and reads.</summary>
public static class RpcHeaders
{
    /// <summary>The caller's remaining budget in milliseconds when it sent the call (relative: immune to clock skew).</summary>
    public const string Timeout = "trellis-timeout-ms";

    /// <summary>W3C trace context.</summary>
    public const string TraceParent = "traceparent";

    public const string TraceState = "tracestate";

    /// <summary>The calling application's product (see <see cref="Governance.ProductIsolation"/>).</summary>
    public const string CallerProduct = "trellis-caller-product";

    /// <summary>The calling service (when the caller is one), for routes and access rules.</summary>
    public const string CallerService = "trellis-caller-service";

    /// <summary>The caller's zone (IDC) and host, for routes; a local proxy uses its own when the caller does not say.</summary>
    public const string CallerZone = "trellis-caller-zone";

    public const string CallerHost = "trellis-caller-host";

    /// <summary>The call's route tag (gray release, canary): set per call, or for every call of a tagged caller.</summary>
    public const string Tag = "trellis-tag";

    public static bool TryGetTimeout(THeaderInfo info, out TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (info.TryGet(Timeout, out var text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            timeout = TimeSpan.FromMilliseconds(ms);
            return true;
        }

        timeout = default;
        return false;
    }

    /// <summary>Adds the call's remaining time and the current trace context.</summary>
    public static void Stamp(THeaderInfo info, DateTimeOffset? deadline)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (deadline is { } d)
        {
            var left = Math.Max(0, (long)(d - DateTimeOffset.UtcNow).TotalMilliseconds);
            info.Set(Timeout, left.ToString(CultureInfo.InvariantCulture));
        }

        if (Activity.Current is { } activity && activity.IdFormat == ActivityIdFormat.W3C)
        {
            info.Set(TraceParent, activity.Id!);
            if (activity.TraceStateString is { Length: > 0 } state)
            {
                info.Set(TraceState, state);
            }
        }
    }
}
