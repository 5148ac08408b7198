using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Trellis.Rpc;
using Trellis.Rpc.Tests;
using Trellis.Rpc.Tests.Echo;
using Trellis.Thrift;

namespace Trellis.Proxy.Tests;

/// <summary>Metrics (OpenTelemetry RPC conventions), traces across the proxy, and the Prometheus text of /metrics — over real sockets.</summary>
public partial class TelemetryTests
{
    private sealed record Recorded(string Instrument, double Value, Dictionary<string, object?> Tags);

    [Fact]
    public async Task ClientAndServerDurations_CarryTheSemanticConventionTags()
    {
        var recorded = new ConcurrentQueue<Recorded>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == RpcTelemetry.Name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
            recorded.Enqueue(new Recorded(instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value))));
        listener.Start();

        var (server, _) = await Servers.StartAsync();
        await using var owned = server;
        await using var channel = Servers.Channel(server, ThriftEncoding.HeaderBinary);
        var client = new Echo.Client(channel);
        Assert.Equal("measured", await client.EchoAsync("measured"));
        await Assert.ThrowsAsync<TApplicationException>(() => client.FailAsync("crash"));
        var port = server.Endpoints[0].Port;

        // other tests run alongside: ours are the client measurements towards our server's port
        var mine = recorded.Where(r => r.Instrument == "rpc.client.call.duration" && Equals(r.Tags.GetValueOrDefault("server.port"), port)).ToList();
        var ok = Assert.Single(mine, r => (string?)r.Tags["rpc.method"] == "Echo/echo");
        Assert.Equal("thrift", ok.Tags["rpc.system.name"]);
        Assert.Equal("127.0.0.1", ok.Tags["server.address"]);
        Assert.False(ok.Tags.ContainsKey("error.type"));
        Assert.InRange(ok.Value, 0, 10); // seconds
        var failed = Assert.Single(mine, r => (string?)r.Tags["rpc.method"] == "Echo/fail");
        Assert.Equal("InternalError", failed.Tags["error.type"]);

        Assert.Contains(recorded, r => r.Instrument == "rpc.server.call.duration" && (string?)r.Tags["rpc.method"] == "Echo/echo"
            && (string?)r.Tags["rpc.system.name"] == "thrift" && !r.Tags.ContainsKey("error.type"));
        Assert.Contains(recorded, r => r.Instrument == "rpc.server.call.duration" && (string?)r.Tags["rpc.method"] == "Echo/fail"
            && (string?)r.Tags.GetValueOrDefault("error.type") == "InternalError");
    }

    [Fact]
    public async Task OneTrace_RunsFromClientThroughTheProxyToTheServer()
    {
        using var root = new Activity("telemetry-test").SetIdFormat(ActivityIdFormat.W3C);
        root.Start();
        var traceId = root.TraceId;
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is RpcTelemetry.Name or ProxyTelemetry.Name,
            // only this test's trace: the other tests running alongside get no spans
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.TraceId == traceId ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.None,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var channel = rig.Channel(rig.Tcp, ThriftEncoding.HeaderBinary);
        Assert.Equal("traced", await new Echo.Client(channel).EchoAsync("traced"));
        root.Stop();

        await Wait.UntilAsync(() => stopped.Count(a => a.TraceId == traceId) >= 3, what: "the client, proxy and server spans");
        var spans = stopped.Where(a => a.TraceId == traceId).ToList();
        var clientSpan = Assert.Single(spans, a => a.Source.Name == RpcTelemetry.Name && a.Kind == ActivityKind.Client);
        var proxySpan = Assert.Single(spans, a => a.Source.Name == ProxyTelemetry.Name);
        var serverSpan = Assert.Single(spans, a => a.Source.Name == RpcTelemetry.Name && a.Kind == ActivityKind.Server);
        Assert.Equal(root.SpanId, clientSpan.ParentSpanId);
        Assert.Equal(clientSpan.SpanId, proxySpan.ParentSpanId); // the proxy is the client's child…
        Assert.Equal(proxySpan.SpanId, serverSpan.ParentSpanId); // …and the server the proxy's: it sent its own traceparent
        Assert.All(new[] { clientSpan, proxySpan, serverSpan }, span =>
        {
            Assert.Equal("Echo/echo", span.DisplayName);
            Assert.Equal("Echo/echo", span.GetTagItem("rpc.method"));
            Assert.Equal("thrift", span.GetTagItem("rpc.system.name"));
        });
        Assert.Equal(ActivityKind.Server, proxySpan.Kind);
        Assert.Equal("a", proxySpan.GetTagItem("trellis.instance"));
    }

    [Fact]
    public async Task Metrics_OfARunningProxy_AreValidPrometheusText()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var port = LoopbackPorts.Free();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
        await using var web = builder.Build();
        web.MapTrellisProxyAdmin(rig.Proxy);
        await web.StartAsync();

        var channel = rig.Channel(rig.Tcp, ThriftEncoding.HeaderBinary);
        var client = new Echo.Client(channel);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("scraped", await client.EchoAsync("scraped"));
        }

        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var text = await response.Content.ReadAsStringAsync();
        var samples = ParsePrometheus(text);

        // the proxy's counters and gauges, under the names they always had, and the new ones
        Assert.True(samples[("trellis_proxy_calls_total", "")] >= 5);
        Assert.Equal(1, samples[("trellis_proxy_instances", "service=\"Echo\",state=\"ready\"")]);
        Assert.Equal(0, samples[("trellis_proxy_ejections_total", "service=\"Echo\"")]);
        Assert.Contains(("trellis_proxy_connections", ""), samples.Keys);
        Assert.Contains(("trellis_proxy_retries_total", ""), samples.Keys);
        Assert.True(samples[("trellis_proxy_backend_connections", "")] >= 1);

        // the RPC histograms of the process (the proxy's client and the backend live in it): buckets, sum, count
        Assert.Contains("# TYPE rpc_server_call_duration_seconds histogram", text, StringComparison.Ordinal);
        var count = samples.Single(s => s.Key.Name == "rpc_server_call_duration_seconds_count" && s.Key.Labels == "rpc_method=\"Echo/echo\",rpc_system_name=\"thrift\"");
        Assert.True(count.Value >= 5);
        var inf = samples[("rpc_server_call_duration_seconds_bucket", "rpc_method=\"Echo/echo\",rpc_system_name=\"thrift\",le=\"+Inf\"")];
        Assert.Equal(count.Value, inf);
        Assert.Contains(samples.Keys, k => k.Name == "rpc_client_call_duration_seconds_bucket" && k.Labels.Contains("le=\"0.005\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Exporter_EscapesLabelValues_AndNamesUnits()
    {
        using var meter = new Meter("Trellis.Test." + Guid.NewGuid().ToString("N"));
        using var exporter = new PrometheusExporter(m => ReferenceEquals(m, meter));
        var counter = meter.CreateCounter<long>("trellis.test.things", description: "things\nseen");
        var histogram = meter.CreateHistogram<double>("trellis.test.wait", "s", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1] });
        counter.Add(2, new KeyValuePair<string, object?>("what", "a \"quoted\" back\\slash\nline"));
        counter.Add(3, new KeyValuePair<string, object?>("what", "a \"quoted\" back\\slash\nline"));
        histogram.Record(0.05);
        histogram.Record(0.5);
        histogram.Record(5);
        var text = exporter.Render();
        Assert.Contains("# HELP trellis_test_things_total things\\nseen\n# TYPE trellis_test_things_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("trellis_test_things_total{what=\"a \\\"quoted\\\" back\\\\slash\\nline\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("trellis_test_wait_seconds_bucket{le=\"0.1\"} 1\ntrellis_test_wait_seconds_bucket{le=\"1\"} 2\ntrellis_test_wait_seconds_bucket{le=\"+Inf\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("trellis_test_wait_seconds_sum 5.55\ntrellis_test_wait_seconds_count 3\n", text, StringComparison.Ordinal);
        ParsePrometheus(text);
    }

    /// <summary>Parses the text format 0.0.4 strictly enough to fail on malformed lines: every sample under its TYPE, labels well quoted.</summary>
    private static Dictionary<(string Name, string Labels), double> ParsePrometheus(string text)
    {
        var samples = new Dictionary<(string, string), double>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Equal(4, parts.Length);
                Assert.Contains(parts[3], new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                Assert.True(types.TryAdd(parts[2], parts[3]), $"TYPE of {parts[2]} given twice");
                continue;
            }

            if (line.StartsWith("# ", StringComparison.Ordinal))
            {
                Assert.StartsWith("# HELP ", line, StringComparison.Ordinal);
                continue;
            }

            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"not a sample line: {line}");
            var name = match.Groups["name"].Value;
            var family = types.Keys.Where(t => name == t || (name.StartsWith(t, StringComparison.Ordinal) && name[t.Length..] is "_bucket" or "_sum" or "_count")).ToList();
            Assert.True(family.Count > 0, $"{name} has no TYPE before it");
            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            Assert.True(samples.TryAdd((name, match.Groups["labels"].Value), value), $"sample given twice: {line}");
        }

        return samples;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)\})? (?<value>\S+)$""")]
    private static partial Regex SampleLine();
}
