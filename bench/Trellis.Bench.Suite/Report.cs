using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trellis.Bench.Suite
{
    /// <summary>Everything one run measured, printed to the console and written as Markdown and JSON.</summary>
    internal sealed class Report(
        MachineInfo machine,
        string commandLine,
        Options options,
        DateTime started,
        DateTime finished,
        List<EchoPoint> points,
        List<SerializationRow> serialization,
        string serializationSizes,
        List<Ratio> ratios,
        List<string> failures)
    {
        /// <summary>The comparisons, as (ratio name, A system, B system, metrics, meaning).</summary>
        private static readonly (string Name, string A, string B, string[] Metrics, string Meaning)[] EchoRatios =
        [
            ("Trellis ÷ C++", "trellis tcp", "c++ tcp", ["calls/s", "p99"], "Trellis echo server vs Apache Thrift C++ TNonblockingServer, TCP (goal: calls/s ≥ 1.0 at 16 and 64 conns, p99 ≤ 1.0)"),
            ("Trellis ÷ Kestrel ceiling", "trellis tcp", "kestrel ceiling", ["calls/s", "p99"], "Trellis echo server vs a bare Kestrel connection handler that answers the echo by patching the request's bytes (no decoder), TCP: the .NET ceiling (goal: calls/s ≥ 0.9)"),
            ("UDS ÷ TCP", "trellis unix", "trellis tcp", ["calls/s", "p99"], "the Trellis server on a Unix socket vs TCP"),
            ("proxy ÷ direct", "trellis proxy", "direct", ["calls/s", "p50"], "one Trellis proxy hop's share of direct (goal: no worse than HAProxy's; ≥ 0.75 calls/s at 64 conns)"),
            ("HAProxy ÷ direct", "haproxy tcp", "direct", ["calls/s", "p50"], "one HAProxy (TCP mode) hop's share of direct: the reference"),
            ("proxy ÷ HAProxy", "trellis proxy", "haproxy tcp", ["calls/s", "p50"], "the Trellis hop vs the HAProxy hop"),
        ];

        private static readonly (string A, string B)[] SerializationRatios =
        [
            ("Thrift_Binary_Encode", "Protobuf_Encode"),
            ("Thrift_Compact_Encode", "Protobuf_Encode"),
            ("Thrift_Binary_Decode", "Protobuf_Decode"),
            ("Thrift_Compact_Decode", "Protobuf_Decode"),
        ];

        public static List<Ratio> Ratios(List<EchoPoint> points, List<SerializationRow> serialization)
        {
            var ratios = new List<Ratio>();
            foreach (var (name, a, b, metrics, meaning) in EchoRatios)
            {
                foreach (var connections in points.Select(p => p.Connections).Distinct().Order())
                {
                    var pa = points.FirstOrDefault(p => p.System == a && p.Connections == connections);
                    var pb = points.FirstOrDefault(p => p.System == b && p.Connections == connections);
                    if (pa is null || pb is null)
                    {
                        continue;
                    }

                    foreach (var metric in metrics)
                    {
                        Func<EchoRound, double> f = metric switch { "calls/s" => r => r.Rate, "p50" => r => r.P50, _ => r => r.P99 };
                        var perRound = pa.Rounds.Join(pb.Rounds, r => r.Round, r => r.Round, (x, y) => f(x) / f(y)).Where(v => !double.IsNaN(v)).ToArray();
                        var ma = EchoLoad.Median(pa.Rounds.Select(f));
                        var mb = EchoLoad.Median(pb.Rounds.Select(f));
                        ratios.Add(new Ratio(name, metric, $"{connections} conns", ma / mb,
                            perRound.Length == 0 ? double.NaN : perRound.Min(), perRound.Length == 0 ? double.NaN : perRound.Max(), meaning));
                    }
                }
            }

            foreach (var (a, b) in SerializationRatios)
            {
                var ra = serialization.FirstOrDefault(r => r.Name == a);
                var rb = serialization.FirstOrDefault(r => r.Name == b);
                if (ra is null || rb is null)
                {
                    continue;
                }

                var perRound = ra.Rounds.Join(rb.Rounds, r => r.Round, r => r.Round, (x, y) => x.Ns / y.Ns).ToArray();
                var kind = a.Contains("Compact", StringComparison.Ordinal) ? "compact" : "binary";
                var op = a.EndsWith("Encode", StringComparison.Ordinal) ? "encode" : "decode";
                ratios.Add(new Ratio("Trellis ÷ Protobuf", "time/op", $"{kind} {op}", ra.Ns.Median / rb.Ns.Median,
                    perRound.Length == 0 ? double.NaN : perRound.Min(), perRound.Length == 0 ? double.NaN : perRound.Max(),
                    "Trellis Thrift serialization time per operation vs Google.Protobuf on the same message (below 1: faster; goal ≤ 1.0)"));
            }

            return ratios;
        }

        public void PrintSummary(TextWriter o)
        {
            o.WriteLine();
            o.WriteLine("Echo (median of the rounds; [min–max]):");
            o.WriteLine();
            foreach (var line in EchoTable())
            {
                o.WriteLine(line);
            }

            if (serialization.Count > 0)
            {
                o.WriteLine();
                o.WriteLine($"Serialization ({serializationSizes}):");
                o.WriteLine();
                foreach (var line in SerializationTable())
                {
                    o.WriteLine(line);
                }
            }

            o.WriteLine();
            o.WriteLine("Ratios (A ÷ B of the medians; [range of the per-round ratios]):");
            o.WriteLine();
            foreach (var line in RatioTable())
            {
                o.WriteLine(line);
            }
        }

        public string Markdown(IReadOnlyList<string> charts)
        {
            var s = new StringBuilder();
            s.AppendLine(CultureInfo.InvariantCulture, $"# Trellis bench suite — {started:yyyy-MM-dd HH:mm:ss} UTC");
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture, $"Command: `{commandLine}`{(options.Quick ? " (quick: a smoke run, the figures mean nothing)" : "")}");
            s.AppendLine();
            s.AppendLine("## Machine");
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture, $"- CPU: {machine.Cpu}, {machine.Cores} cores");
            s.AppendLine(CultureInfo.InvariantCulture, $"- kernel {machine.Kernel} ({machine.Os})");
            s.AppendLine(CultureInfo.InvariantCulture, $"- {machine.DotNet}; reference peers: {machine.ThriftCpp}; {(machine.Haproxy.Length > 0 ? machine.Haproxy : "haproxy (not run)")} (TCP mode)");
            s.AppendLine(CultureInfo.InvariantCulture, $"- load average (1/5/15 min): {machine.LoadAverageStart} at the start, {machine.LoadAverageEnd} at the end");
            s.AppendLine(CultureInfo.InvariantCulture, $"- run: {started:HH:mm:ss}–{finished:HH:mm:ss} UTC; echo of {options.Payload} B, framed binary, one call in flight per connection, every reply checked; " +
                $"{options.Rounds} round(s) x {options.Seconds:0.###} s per point after {options.Warmup:0.###} s warm-up; systems take turns within a round (rotating order)");
            s.AppendLine();
            s.AppendLine("Load generator, servers and proxies share the machine's cores; only ratios taken in one run mean much.");
            s.AppendLine();
            if (failures.Count > 0)
            {
                s.AppendLine("## FAILURES");
                s.AppendLine();
                foreach (var f in failures)
                {
                    s.AppendLine(CultureInfo.InvariantCulture, $"- {f}");
                }

                s.AppendLine();
            }

            s.AppendLine("## Ratios");
            s.AppendLine();
            s.AppendLine("A ÷ B of the medians, and in brackets the range of the per-round ratios (A and B ran back to back in each round).");
            s.AppendLine();
            foreach (var line in RatioTable())
            {
                s.AppendLine(line);
            }

            s.AppendLine();
            foreach (var meaning in ratios.Select(r => (r.Name, r.Meaning)).Distinct())
            {
                s.AppendLine(CultureInfo.InvariantCulture, $"- **{meaning.Name}**: {meaning.Meaning}");
            }

            s.AppendLine();
            s.AppendLine("## Echo: medians and spreads");
            s.AppendLine();
            s.AppendLine("`server`: the suite's load on the Trellis server, the C++ server and the bare Kestrel ceiling (plain `echo`, not multiplexed); `transport`: the same Trellis server on a Unix socket; " +
                "`proxy`: Trellis.Bench.Proxy run as a step (name `Bench:echo`; `direct` is its own Trellis server). CPU µs/call: the server's (server, transport) or the hop's (proxy) CPU time per call.");
            s.AppendLine();
            foreach (var line in EchoTable())
            {
                s.AppendLine(line);
            }

            foreach (var chart in charts)
            {
                s.AppendLine();
                s.AppendLine(CultureInfo.InvariantCulture, $"![{chart}]({chart})");
            }

            if (serialization.Count > 0)
            {
                s.AppendLine();
                s.AppendLine("## Serialization");
                s.AppendLine();
                s.AppendLine(CultureInfo.InvariantCulture, $"Trellis.Bench.Serialization `--timed` (the BenchmarkDotNet bodies in a plain loop, one process); {serializationSizes}.");
                s.AppendLine();
                foreach (var line in SerializationTable())
                {
                    s.AppendLine(line);
                }
            }

            s.AppendLine();
            s.AppendLine("## Every round");
            s.AppendLine();
            s.AppendLine("| comparison | system | conns | round | calls/s | p50 µs | p99 µs | p999 µs | CPU µs/call | errors |");
            s.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var p in points)
            {
                foreach (var r in p.Rounds)
                {
                    s.AppendLine(CultureInfo.InvariantCulture, $"| {p.Comparison} | {p.System} | {p.Connections} | {r.Round} | {N(r.Rate)} | {N(r.P50)} | {N(r.P99)} | {N(r.P999)} | {F(r.CpuPerCall)} | {r.Errors} |");
                }
            }

            if (serialization.Count > 0)
            {
                s.AppendLine();
                s.AppendLine("| serialization row | round | ns/op | B allocated/op |");
                s.AppendLine("|---|---:|---:|---:|");
                foreach (var row in serialization)
                {
                    foreach (var (round, ns, bytes) in row.Rounds)
                    {
                        s.AppendLine(CultureInfo.InvariantCulture, $"| {row.Name} | {round} | {ns:N0} | {bytes:N0} |");
                    }
                }
            }

            return s.ToString();
        }

        public string Json()
        {
            var document = new
            {
                started,
                finished,
                commandLine,
                options = new { options.Quick, options.Rounds, options.Seconds, options.Warmup, options.Connections, options.Payload, options.Skip },
                machine = new
                {
                    machine.Cpu, machine.Cores, machine.Kernel, machine.Os, machine.DotNet, machine.ThriftCpp, machine.Haproxy,
                    machine.LoadAverageStart, machine.LoadAverageEnd,
                },
                echo = points.Select(p => new
                {
                    p.Comparison, p.System, p.Connections,
                    median = new { rate = p.Rate.Median, p50 = p.P50.Median, p99 = p.P99.Median, p999 = p.P999.Median, cpuPerCall = p.CpuPerCall.Median },
                    min = new { rate = p.Rate.Min, p50 = p.P50.Min, p99 = p.P99.Min, p999 = p.P999.Min },
                    max = new { rate = p.Rate.Max, p50 = p.P50.Max, p99 = p.P99.Max, p999 = p.P999.Max },
                    errors = p.Errors,
                    rounds = p.Rounds,
                }),
                serialization = new
                {
                    sizes = serializationSizes,
                    rows = serialization.Select(r => new
                    {
                        r.Name,
                        nsPerOp = new { median = r.Ns.Median, min = r.Ns.Min, max = r.Ns.Max },
                        bytesPerOp = r.Bytes.Median,
                        rounds = r.Rounds.Select(x => new { round = x.Round, ns = x.Ns, bytes = x.Bytes }),
                    }),
                },
                ratios,
                failures,
            };
            return JsonSerializer.Serialize(document, JsonOptions);
        }

        private static readonly JsonSerializerOptions JsonOptions = new()
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };

        private IEnumerable<string> EchoTable()
        {
            yield return "| comparison | system | conns | calls/s | p50 µs | p99 µs | p999 µs | CPU µs/call | errors |";
            yield return "|---|---|---:|---:|---:|---:|---:|---:|---:|";
            foreach (var p in points.OrderBy(p => p.Comparison == "proxy").ThenBy(p => p.Connections))
            {
                yield return $"| {p.Comparison} | {p.System} | {p.Connections} | {S(p.Rate)} | {S(p.P50)} | {S(p.P99)} | {S(p.P999)} | {F(p.CpuPerCall.Median)} | {p.Errors} |";
            }
        }

        private IEnumerable<string> SerializationTable()
        {
            yield return "| row | ns/op | B allocated/op |";
            yield return "|---|---:|---:|";
            foreach (var r in serialization)
            {
                yield return $"| {r.Name} | {S(r.Ns)} | {N(r.Bytes.Median)} |";
            }
        }

        private IEnumerable<string> RatioTable()
        {
            yield return "| ratio | point | metric | A ÷ B | per-round range |";
            yield return "|---|---|---|---:|---|";
            foreach (var r in ratios)
            {
                yield return $"| {r.Name} | {r.Point} | {r.Metric} | {X(r.OfMedians)} | {X(r.RoundMin)}–{X(r.RoundMax)} |";
            }
        }

        private static string S(Spread s) => s.Count <= 1 ? N(s.Median) : $"{N(s.Median)} [{N(s.Min)}–{N(s.Max)}]";

        private static string N(double v) => double.IsNaN(v) ? "n/a" : v.ToString("N0", CultureInfo.InvariantCulture);

        private static string F(double v) => double.IsNaN(v) ? "—" : v.ToString("0.0", CultureInfo.InvariantCulture);

        private static string X(double v) => double.IsNaN(v) || double.IsInfinity(v) ? "n/a" : v.ToString("0.00", CultureInfo.InvariantCulture) + "×";
    }
}
