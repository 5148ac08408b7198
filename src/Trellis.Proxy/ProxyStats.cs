using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Trellis.Proxy;

/// <summary>
/// The proxy's counters: exported through System.Diagnostics.Metrics (meter <c>Trellis.Proxy</c>, for
/// OpenTelemetry or dotnet-counters) and in Prometheus text on the admin endpoint's <c>/metrics</c>.
/// </summary>
public sealed class ProxyStats : IDisposable
{
    public const string MeterName = "Trellis.Proxy";

    private readonly Meter _meter = new(MeterName);

    /// <summary>This proxy's meter (one per proxy: several proxies in one process keep their own counts).</summary>
    public Meter Meter => _meter;
    private long _calls;
    private long _replies;
    private long _retries;
    private long _unknownService;
    private long _noInstance;
    private long _timeouts;
    private long _backendFailures;
    private long _badFrames;
    private long _notThrift;
    private long _degraded;
    private long _rateLimited;
    private long _denied;
    private long _breakerOpen;
    private Func<long> _connections = static () => 0;
    private Func<long> _inFlight = static () => 0;

    internal ProxyStats()
    {
        _meter.CreateObservableCounter("trellis.proxy.calls", () => Calls, description: "calls taken from applications");
        _meter.CreateObservableCounter("trellis.proxy.replies", () => Replies, description: "backend replies forwarded");
        _meter.CreateObservableCounter("trellis.proxy.retries", () => Retries, description: "calls resent to another instance");
        _meter.CreateObservableCounter("trellis.proxy.errors", () => new[]
        {
            new Measurement<long>(UnknownService, new KeyValuePair<string, object?>("kind", "unknown_service")),
            new Measurement<long>(NoInstance, new KeyValuePair<string, object?>("kind", "no_instance")),
            new Measurement<long>(Timeouts, new KeyValuePair<string, object?>("kind", "timeout")),
            new Measurement<long>(BackendFailures, new KeyValuePair<string, object?>("kind", "backend")),
            new Measurement<long>(BadFrames, new KeyValuePair<string, object?>("kind", "bad_frame")),
            new Measurement<long>(NotThriftConnections, new KeyValuePair<string, object?>("kind", "not_thrift")),
            new Measurement<long>(Degraded, new KeyValuePair<string, object?>("kind", "degraded")),
            new Measurement<long>(RateLimited, new KeyValuePair<string, object?>("kind", "rate_limited")),
            new Measurement<long>(Denied, new KeyValuePair<string, object?>("kind", "denied")),
            new Measurement<long>(BreakerOpen, new KeyValuePair<string, object?>("kind", "circuit_open")),
        }, description: "calls or connections that failed, by kind");
        _meter.CreateObservableUpDownCounter("trellis.proxy.connections", () => Connections, description: "open application connections");
        _meter.CreateObservableUpDownCounter("trellis.proxy.in_flight", () => InFlight, description: "calls being forwarded");
    }

    public long Calls => Interlocked.Read(ref _calls);

    public long Replies => Interlocked.Read(ref _replies);

    public long Retries => Interlocked.Read(ref _retries);

    public long UnknownService => Interlocked.Read(ref _unknownService);

    public long NoInstance => Interlocked.Read(ref _noInstance);

    public long Timeouts => Interlocked.Read(ref _timeouts);

    public long BackendFailures => Interlocked.Read(ref _backendFailures);

    public long BadFrames => Interlocked.Read(ref _badFrames);

    /// <summary>Calls answered by a degradation rule of the service's config, without reaching an instance.</summary>
    public long Degraded => Interlocked.Read(ref _degraded);

    /// <summary>Calls refused by a rate limit of the service's config.</summary>
    public long RateLimited => Interlocked.Read(ref _rateLimited);

    /// <summary>Calls refused by an access rule.</summary>
    public long Denied => Interlocked.Read(ref _denied);

    /// <summary>Calls failed fast by an open circuit breaker.</summary>
    public long BreakerOpen => Interlocked.Read(ref _breakerOpen);

    public long NotThriftConnections => Interlocked.Read(ref _notThrift);

    public long Connections => _connections();

    /// <summary>Calls being forwarded (the proxy's own count; not a second counter to update per call).</summary>
    public long InFlight => _inFlight();

    /// <summary>The gauges read the proxy's own state rather than counters kept beside it.</summary>
    internal void Count(Func<long> inFlight, Func<long> connections)
    {
        _inFlight = inFlight;
        _connections = connections;
    }

    internal void Call() => Interlocked.Increment(ref _calls);


    internal void Replied() => Interlocked.Increment(ref _replies);

    internal void Retried() => Interlocked.Increment(ref _retries);

    internal void Unknown() => Interlocked.Increment(ref _unknownService);

    internal void Degrade() => Interlocked.Increment(ref _degraded);

    internal void Throttle() => Interlocked.Increment(ref _rateLimited);

    internal void Deny() => Interlocked.Increment(ref _denied);

    internal void BreakerOpened() => Interlocked.Increment(ref _breakerOpen);

    internal void NoneAvailable() => Interlocked.Increment(ref _noInstance);

    internal void TimedOut() => Interlocked.Increment(ref _timeouts);

    internal void BackendFailed() => Interlocked.Increment(ref _backendFailures);

    internal void BadFrame() => Interlocked.Increment(ref _badFrames);

    internal void NotThrift() => Interlocked.Increment(ref _notThrift);

    /// <summary>The counters in Prometheus text exposition format.</summary>
    public string ToPrometheus()
    {
        var text = new StringBuilder();
        void Line(string name, string type, string help, long value, string labels = "")
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n{name}{labels} {value}\n");
        }

        Line("trellis_proxy_calls_total", "counter", "calls taken from applications", Calls);
        Line("trellis_proxy_replies_total", "counter", "backend replies forwarded", Replies);
        Line("trellis_proxy_retries_total", "counter", "calls resent to another instance", Retries);
        text.Append("# HELP trellis_proxy_errors_total calls or connections that failed, by kind\n# TYPE trellis_proxy_errors_total counter\n");
        foreach (var (kind, value) in new[] { ("unknown_service", UnknownService), ("no_instance", NoInstance), ("timeout", Timeouts),
                     ("backend", BackendFailures), ("bad_frame", BadFrames), ("not_thrift", NotThriftConnections), ("degraded", Degraded), ("rate_limited", RateLimited), ("denied", Denied), ("circuit_open", BreakerOpen) })
        {
            text.Append(CultureInfo.InvariantCulture, $"trellis_proxy_errors_total{{kind=\"{kind}\"}} {value}\n");
        }

        Line("trellis_proxy_connections", "gauge", "open application connections", Connections);
        Line("trellis_proxy_in_flight", "gauge", "calls being forwarded", InFlight);
        return text.ToString();
    }

    public void Dispose() => _meter.Dispose();
}
