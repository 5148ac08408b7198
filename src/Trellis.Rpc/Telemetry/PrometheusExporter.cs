using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Trellis.Rpc;

/// <summary>
/// Collects the instruments of Trellis's meters (a <see cref="MeterListener"/>) and renders them in the Prometheus
/// text exposition format 0.0.4: counters as <c>_total</c>, up-down counters and gauges as gauges, histograms as
/// <c>_bucket{le=…}</c>, <c>_sum</c> and <c>_count</c>. Names lose their dots (<c>rpc.server.call.duration</c> with
/// unit <c>s</c> is <c>rpc_server_call_duration_seconds</c>); tags become labels.
/// </summary>
/// <remarks>
/// Recording a measurement finds its series by the tags' hash and compares them: no allocation once a series
/// exists. Observable instruments are read at each <see cref="Render"/>. Every exporter is a listener of its own:
/// create one per admin endpoint and dispose it with it.
/// </remarks>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>The content type of <see cref="Render"/>'s text.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener = new();
    private readonly Func<Meter, bool> _include;
    private readonly List<Metric> _metrics = [];
    private readonly object _render = new();

    /// <param name="include">Which meters to export; by default every meter whose name starts with <c>Trellis</c>.</param>
    public PrometheusExporter(Func<Meter, bool>? include = null)
    {
        _include = include ?? (static meter => meter.Name.StartsWith("Trellis", StringComparison.Ordinal));
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!_include(instrument.Meter) || Metric.KindOf(instrument) is not { } kind)
            {
                return;
            }

            var metric = new Metric(instrument, kind);
            lock (_metrics)
            {
                _metrics.Add(metric);
            }

            listener.EnableMeasurementEvents(instrument, metric);
        };
        _listener.MeasurementsCompleted = (instrument, state) =>
        {
            lock (_metrics)
            {
                _metrics.Remove((Metric)state!);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((Metric)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((Metric)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((Metric)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, value, tags, state) => ((Metric)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>Reads the observable instruments and renders every series.</summary>
    public string Render()
    {
        lock (_render)
        {
            Metric[] metrics;
            lock (_metrics)
            {
                metrics = [.. _metrics];
            }

            foreach (var metric in metrics)
            {
                metric.BeginObservation();
            }

            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            var lines = new StringBuilder();
            foreach (var group in metrics.GroupBy(m => m.PrometheusName, StringComparer.Ordinal))
            {
                lines.Clear();
                foreach (var metric in group)
                {
                    metric.Write(lines);
                }

                if (lines.Length == 0)
                {
                    continue; // nothing measured yet (or nothing observed now): no metadata without samples
                }

                var first = group.First();
                text.Append("# HELP ").Append(first.PrometheusName).Append(' ').Append(EscapeHelp(first.Instrument.Description ?? first.Instrument.Name)).Append('\n');
                text.Append("# TYPE ").Append(first.PrometheusName).Append(' ').Append(first.Kind switch
                {
                    MetricKind.Counter or MetricKind.ObservableCounter => "counter",
                    MetricKind.Histogram => "histogram",
                    _ => "gauge",
                }).Append('\n');
                text.Append(lines);
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>A Prometheus metric name from an instrument's: <c>[a-zA-Z0-9_:]</c>, not starting with a digit.</summary>
    public static string MetricName(string name)
    {
        var text = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            text.Append(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or ':' ? c : '_');
        }

        if (text.Length == 0 || char.IsAsciiDigit(text[0]))
        {
            text.Insert(0, '_');
        }

        return text.ToString();
    }

    /// <summary>A label name: <c>[a-zA-Z0-9_]</c>, not starting with a digit.</summary>
    public static string LabelName(string name) => MetricName(name).Replace(':', '_');

    /// <summary>A label value, escaped: backslash, double quote and line feed.</summary>
    public static string EscapeLabelValue(string value) =>
        value.IndexOfAny(['\\', '"', '\n']) < 0 ? value : value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string EscapeHelp(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>The unit's word in a Prometheus name (UCUM units as OpenTelemetry's Prometheus exporter names them).</summary>
    private static string? UnitSuffix(string? unit) => unit switch
    {
        null or "" or "1" => null,
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "By" => "bytes",
        _ when unit.StartsWith('{') => null, // an annotation, not a unit
        _ => MetricName(unit),
    };

    internal static string FormatValue(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString(CultureInfo.InvariantCulture);

    private enum MetricKind
    {
        Counter,
        ObservableCounter,
        UpDownCounter,
        ObservableGauge,
        Gauge,
        Histogram,
    }

    private sealed class Series
    {
        public required KeyValuePair<string, object?>[] Tags { get; init; }

        public required int Hash { get; init; }

        public Series? Next { get; set; }

        public double Value { get; set; }

        public long[]? Buckets { get; init; }

        public long Count { get; set; }

        public bool Observed { get; set; }

        public bool Matches(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length != Tags.Length)
            {
                return false;
            }

            foreach (var tag in tags)
            {
                var found = false;
                foreach (var own in Tags)
                {
                    if (own.Key == tag.Key && Equals(own.Value, tag.Value))
                    {
                        found = true;
                        break;
                    }
                }

                if (!found)
                {
                    return false;
                }
            }

            return true;
        }
    }

    private sealed class Metric
    {
        private readonly Dictionary<int, Series> _series = [];
        private readonly List<Series> _ordered = [];
        private readonly double[] _bounds = [];

        public Metric(Instrument instrument, MetricKind kind)
        {
            Instrument = instrument;
            Kind = kind;
            var name = MetricName(instrument.Name);
            if (UnitSuffix(instrument.Unit) is { } unit && !name.EndsWith("_" + unit, StringComparison.Ordinal))
            {
                name += "_" + unit;
            }

            if (kind is MetricKind.Counter or MetricKind.ObservableCounter && !name.EndsWith("_total", StringComparison.Ordinal))
            {
                name += "_total";
            }

            PrometheusName = name;
            if (kind == MetricKind.Histogram)
            {
                _bounds = (instrument switch
                {
                    Instrument<double> d => d.Advice?.HistogramBucketBoundaries?.ToArray(),
                    Instrument<float> f => f.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                    Instrument<long> l => l.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                    Instrument<int> i => i.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                    _ => null,
                }) ?? (instrument.Unit == "s" ? [.. RpcTelemetry.DurationBuckets] : [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);
            }
        }

        public Instrument Instrument { get; }

        public MetricKind Kind { get; }

        public string PrometheusName { get; }

        private bool IsObservable => Kind is MetricKind.ObservableCounter or MetricKind.ObservableGauge;

        public static MetricKind? KindOf(Instrument instrument)
        {
            if (!instrument.GetType().IsGenericType)
            {
                return null;
            }

            var definition = instrument.GetType().GetGenericTypeDefinition();
            return definition == typeof(Counter<>) ? MetricKind.Counter
                : definition == typeof(UpDownCounter<>) ? MetricKind.UpDownCounter
                : definition == typeof(Histogram<>) ? MetricKind.Histogram
                : definition == typeof(Gauge<>) ? MetricKind.Gauge
                : definition == typeof(ObservableCounter<>) ? MetricKind.ObservableCounter
                : definition == typeof(ObservableUpDownCounter<>) || definition == typeof(ObservableGauge<>) ? MetricKind.ObservableGauge
                : null;
        }

        /// <summary>Observable series seen in the last collection only: a series that is no longer reported goes.</summary>
        public void BeginObservation()
        {
            if (!IsObservable)
            {
                return;
            }

            lock (_series)
            {
                foreach (var series in _ordered)
                {
                    series.Observed = false;
                }
            }
        }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var hash = 0;
            foreach (var tag in tags)
            {
                hash ^= HashCode.Combine(tag.Key, tag.Value); // order-free: the same tags in another order are the same series
            }

            lock (_series)
            {
                var series = Find(hash, tags) ?? Add(hash, tags);
                switch (Kind)
                {
                    case MetricKind.Counter or MetricKind.UpDownCounter:
                        series.Value += value;
                        break;
                    case MetricKind.Histogram:
                        series.Value += value;
                        series.Count++;
                        var bucket = 0;
                        while (bucket < _bounds.Length && value > _bounds[bucket])
                        {
                            bucket++;
                        }

                        series.Buckets![bucket]++;
                        break;
                    default:
                        series.Value = value;
                        series.Observed = true;
                        break;
                }
            }
        }

        private Series? Find(int hash, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            for (var series = _series.GetValueOrDefault(hash); series is not null; series = series.Next)
            {
                if (series.Matches(tags))
                {
                    return series;
                }
            }

            return null;
        }

        private Series Add(int hash, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var series = new Series
            {
                Tags = tags.ToArray(),
                Hash = hash,
                Buckets = Kind == MetricKind.Histogram ? new long[_bounds.Length + 1] : null,
                Next = _series.GetValueOrDefault(hash),
            };
            _series[hash] = series;
            _ordered.Add(series);
            return series;
        }

        public void Write(StringBuilder text)
        {
            lock (_series)
            {
                foreach (var series in _ordered)
                {
                    if (IsObservable && !series.Observed)
                    {
                        continue;
                    }

                    var labels = Labels(series.Tags);
                    if (Kind != MetricKind.Histogram)
                    {
                        Line(text, PrometheusName, labels, null, FormatValue(series.Value));
                        continue;
                    }

                    var cumulative = 0L;
                    for (var i = 0; i < _bounds.Length; i++)
                    {
                        cumulative += series.Buckets![i];
                        Line(text, PrometheusName + "_bucket", labels, FormatValue(_bounds[i]), cumulative.ToString(CultureInfo.InvariantCulture));
                    }

                    Line(text, PrometheusName + "_bucket", labels, "+Inf", series.Count.ToString(CultureInfo.InvariantCulture));
                    Line(text, PrometheusName + "_sum", labels, null, FormatValue(series.Value));
                    Line(text, PrometheusName + "_count", labels, null, series.Count.ToString(CultureInfo.InvariantCulture));
                }
            }
        }

        private static string Labels(KeyValuePair<string, object?>[] tags)
        {
            if (tags.Length == 0)
            {
                return "";
            }

            var text = new StringBuilder();
            foreach (var (key, value) in tags.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                text.Append(text.Length == 0 ? "" : ",").Append(LabelName(key)).Append("=\"")
                    .Append(EscapeLabelValue(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "")).Append('"');
            }

            return text.ToString();
        }

        private static void Line(StringBuilder text, string name, string labels, string? le, string value)
        {
            text.Append(name);
            if (labels.Length > 0 || le is not null)
            {
                text.Append('{').Append(labels);
                if (le is not null)
                {
                    text.Append(labels.Length > 0 ? "," : "").Append("le=\"").Append(le).Append('"');
                }

                text.Append('}');
            }

            text.Append(' ').Append(value).Append('\n');
        }
    }
}
