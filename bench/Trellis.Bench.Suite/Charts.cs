using System.Diagnostics;
using System.Globalization;
using System.Security;
using System.Text;

namespace Trellis.Bench.Suite
{
    /// <summary>
    /// Line charts by connection count, one line per system (median, with a bar from the rounds' min to max), drawn as
    /// SVG and turned into PNG by Debian's headless chromium. The SVG files are kept next to the PNGs.
    /// </summary>
    internal static class Charts
    {
        private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

        public static async Task<List<string>> WriteAsync(List<EchoPoint> points, string dir, string baseName, Options options, MachineInfo machine, CancellationToken ct)
        {
            var systems = points.Select(p => (p.Comparison, p.System)).Distinct().ToList();
            var connections = points.Select(p => p.Connections).Distinct().Order().ToArray();
            if (systems.Count == 0 || connections.Length == 0)
            {
                return [];
            }

            var subtitle = $"{options.Payload} B echo, {machine.Cores} cores, median of {options.Rounds} x {options.Seconds:0.###} s (bars: min–max){(options.Quick ? " — QUICK RUN, figures meaningless" : "")}";
            var throughput = Svg(1000, 560, "Echo throughput by concurrency (calls/s)", subtitle, systems, connections,
                [("calls/s", p => p.Rate, false)], points);
            var latency = Svg(1500, 560, "Echo latency percentiles by concurrency (µs, log scale)", subtitle, systems, connections,
                [("p50 µs", p => p.P50, true), ("p99 µs", p => p.P99, true), ("p999 µs", p => p.P999, true)], points);

            var written = new List<string>();
            foreach (var (name, svg, width, height) in new[] { ("throughput", throughput, 1000, 560), ("latency", latency, 1500, 560) })
            {
                var svgPath = Path.Combine(dir, $"{baseName}-{name}.svg");
                var pngPath = Path.Combine(dir, $"{baseName}-{name}.png");
                await File.WriteAllTextAsync(svgPath, svg, ct);
                await RenderAsync(svgPath, pngPath, width, height, ct);
                written.Add(pngPath);
            }

            return written;
        }

        /// <summary>One SVG with a panel per metric; x: connection counts evenly spaced; y: linear from 0, or log10.</summary>
        private static string Svg(int width, int height, string title, string subtitle, List<(string Comparison, string System)> systems, int[] connections,
            (string Label, Func<EchoPoint, Spread> Metric, bool Log)[] panels, List<EchoPoint> points)
        {
            var s = new StringBuilder();
            s.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">");
            s.Append(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
            s.Append(CultureInfo.InvariantCulture, $"<text x=\"20\" y=\"26\" font-size=\"18\" font-weight=\"bold\">{E(title)}</text>");
            s.Append(CultureInfo.InvariantCulture, $"<text x=\"20\" y=\"46\" fill=\"#555\">{E(subtitle)}</text>");

            const int legendWidth = 210;
            var panelWidth = (width - legendWidth - 20) / panels.Length;
            const int top = 70;
            var bottom = height - 50;
            for (var k = 0; k < panels.Length; k++)
            {
                var (label, metric, log) = panels[k];
                var left = 20 + k * panelWidth + 60;
                var right = 20 + (k + 1) * panelWidth - 20;
                var values = points.SelectMany(p => new[] { metric(p).Min, metric(p).Max, metric(p).Median }).Where(v => !double.IsNaN(v) && v > 0).ToArray();
                if (values.Length == 0)
                {
                    continue;
                }

                double lo, hi;
                if (log)
                {
                    lo = Math.Pow(10, Math.Floor(Math.Log10(values.Min())));
                    hi = Math.Pow(10, Math.Ceiling(Math.Log10(values.Max())));
                    if (hi <= lo)
                    {
                        hi = lo * 10;
                    }
                }
                else
                {
                    lo = 0;
                    hi = Nice(values.Max() * 1.08);
                }

                double Y(double v) => log
                    ? bottom - (Math.Log10(v) - Math.Log10(lo)) / (Math.Log10(hi) - Math.Log10(lo)) * (bottom - top)
                    : bottom - (v - lo) / (hi - lo) * (bottom - top);
                double X(int i) => connections.Length == 1 ? (left + right) / 2.0 : left + 20 + i * (right - left - 40) / (double)(connections.Length - 1);

                // axes, grid and ticks
                s.Append(CultureInfo.InvariantCulture, $"<text x=\"{(left + right) / 2}\" y=\"{top - 8}\" text-anchor=\"middle\" font-weight=\"bold\">{E(label)}</text>");
                var ticks = log
                    ? Enumerable.Range(0, (int)Math.Round(Math.Log10(hi / lo)) + 1).Select(e => lo * Math.Pow(10, e)).ToArray()
                    : Enumerable.Range(0, 6).Select(t => lo + t * (hi - lo) / 5).ToArray();
                foreach (var t in ticks)
                {
                    var y = Y(t);
                    s.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{y:0.#}\" x2=\"{right}\" y2=\"{y:0.#}\" stroke=\"#e5e5e5\"/>");
                    s.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\" fill=\"#333\">{E(Short(t))}</text>");
                }

                s.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#333\"/>");
                for (var i = 0; i < connections.Length; i++)
                {
                    s.Append(CultureInfo.InvariantCulture, $"<text x=\"{X(i):0.#}\" y=\"{bottom + 18}\" text-anchor=\"middle\">{connections[i]}</text>");
                }

                s.Append(CultureInfo.InvariantCulture, $"<text x=\"{(left + right) / 2}\" y=\"{bottom + 38}\" text-anchor=\"middle\" fill=\"#333\">connections (one call in flight each)</text>");

                // one line per system
                for (var n = 0; n < systems.Count; n++)
                {
                    var color = Colors[n % Colors.Length];
                    var dash = systems[n].Comparison == "proxy" ? " stroke-dasharray=\"6 3\"" : "";
                    var coords = new List<string>();
                    for (var i = 0; i < connections.Length; i++)
                    {
                        var p = points.FirstOrDefault(p => p.Comparison == systems[n].Comparison && p.System == systems[n].System && p.Connections == connections[i]);
                        if (p is null || metric(p) is not { Count: > 0 } v || v.Median <= 0)
                        {
                            continue;
                        }

                        var x = X(i) + (n - systems.Count / 2.0) * 3; // a little apart so the bars do not hide each other
                        coords.Add(string.Create(CultureInfo.InvariantCulture, $"{x:0.#},{Y(v.Median):0.#}"));
                        s.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" y1=\"{Y(Math.Max(v.Min, lo)):0.#}\" x2=\"{x:0.#}\" y2=\"{Y(v.Max):0.#}\" stroke=\"{color}\" stroke-width=\"1.5\" opacity=\"0.6\"/>");
                        s.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{x:0.#}\" cy=\"{Y(v.Median):0.#}\" r=\"3.5\" fill=\"{color}\"/>");
                    }

                    if (coords.Count > 1)
                    {
                        s.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{string.Join(' ', coords)}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>");
                    }
                }
            }

            // legend
            var lx = width - legendWidth;
            for (var n = 0; n < systems.Count; n++)
            {
                var y = top + 10 + n * 22;
                var color = Colors[n % Colors.Length];
                var dash = systems[n].Comparison == "proxy" ? " stroke-dasharray=\"6 3\"" : "";
                s.Append(CultureInfo.InvariantCulture, $"<line x1=\"{lx}\" y1=\"{y}\" x2=\"{lx + 28}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"2.5\"{dash}/>");
                var name = systems[n].Comparison == "proxy" ? $"{systems[n].System} (proxy bench)" : systems[n].System;
                s.Append(CultureInfo.InvariantCulture, $"<text x=\"{lx + 36}\" y=\"{y + 4}\">{E(name)}</text>");
            }

            s.Append("</svg>");
            return s.ToString();
        }

        /// <summary>SVG to PNG with headless chromium (Debian package chromium).</summary>
        private static async Task RenderAsync(string svg, string png, int width, int height, CancellationToken ct)
        {
            var chromium = Browsers.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("no chromium to turn the SVG charts into PNG (Debian package chromium); the SVG files are written");
            var profile = Directory.CreateTempSubdirectory("trellis-bench-chromium-");
            try
            {
                var info = new ProcessStartInfo(chromium)
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                foreach (var a in new[]
                {
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage", "--hide-scrollbars",
                    $"--user-data-dir={profile.FullName}", $"--screenshot={png}", $"--window-size={width},{height}", new Uri(Path.GetFullPath(svg)).AbsoluteUri,
                })
                {
                    info.ArgumentList.Add(a);
                }

                if (File.Exists(png))
                {
                    File.Delete(png);
                }

                using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start chromium");
                var stderr = process.StandardError.ReadToEndAsync(ct);
                _ = process.StandardOutput.ReadToEndAsync(ct);
                try
                {
                    await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(60), ct);
                }
                catch (TimeoutException)
                {
                    process.Kill(entireProcessTree: true);
                    throw new TimeoutException($"chromium did not render {svg} within 60 s");
                }

                if (process.ExitCode != 0 || !File.Exists(png))
                {
                    throw new InvalidOperationException($"chromium could not render {svg} (exit {process.ExitCode}): {(await stderr).Trim()}");
                }
            }
            finally
            {
                try
                {
                    profile.Delete(recursive: true);
                }
                catch (IOException)
                {
                    // left in /tmp
                }
            }
        }

        private static readonly string[] Browsers = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

        private static readonly double[] NiceSteps = [1, 2, 2.5, 5, 10];

        private static double Nice(double v)
        {
            var magnitude = Math.Pow(10, Math.Floor(Math.Log10(v)));
            foreach (var step in NiceSteps)
            {
                if (step * magnitude >= v)
                {
                    return step * magnitude;
                }
            }

            return 10 * magnitude;
        }

        private static string Short(double v) => v switch
        {
            >= 1e6 => (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
            >= 1e3 => (v / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "k",
            _ => v.ToString("0.##", CultureInfo.InvariantCulture),
        };

        private static string E(string text) => SecurityElement.Escape(text) ?? "";
    }
}
