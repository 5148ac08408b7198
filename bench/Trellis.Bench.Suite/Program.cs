using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Trellis.Bench;
using Trellis.Bench.Suite;
using Trellis.Rpc;

// Every side-by-side comparison of bench/ in one run: the Trellis echo server vs Apache Thrift's C++ server and the
// bare Kestrel ceiling (this program re-launched with --role kestrel-echo), Unix
// socket vs TCP, direct vs the Trellis proxy vs HAProxy (Trellis.Bench.Proxy run as a step), and Trellis binary/compact
// serialization vs Google.Protobuf (Trellis.Bench.Serialization --timed run as a step). Writes a results file
// (Markdown and JSON) and PNG charts to bench/results/. See bench/README.md.
try
{
    return Cli.Value(args, "--role") switch
    {
        null => await Suite.RunAsync(args),
        "kestrel-echo" => await KestrelEcho.RunAsync(args), // a child of the suite: the bare Kestrel ceiling
        var other => Cli.Fail($"unknown role '{other}' (kestrel-echo, or none for the suite)"),
    };
}
catch (ArgumentException e)
{
    return Cli.Fail(e.Message);
}

namespace Trellis.Bench.Suite
{
    internal static partial class Suite
    {
        private const int StartupSeconds = 60;

        public static async Task<int> RunAsync(string[] args)
        {
            if (args.Contains("--help") || args.Contains("-h"))
            {
                Console.WriteLine("usage: dotnet run -c Release --project bench/Trellis.Bench.Suite -- [--quick] [--rounds N] [--seconds S] [--warmup S]");
                Console.WriteLine("       [--connections 1,16,64] [--payload BYTES] [--out DIR] [--no-charts] [--skip proxy,serialization]");
                return 0;
            }

            var quick = args.Contains("--quick");
            var options = new Options(
                quick,
                Cli.Int(args, "--rounds", quick ? 1 : 3, 1, 100),
                Cli.Double(args, "--seconds", quick ? 0.3 : 3.0),
                Cli.Double(args, "--warmup", quick ? 0.1 : 1.0),
                Cli.Ints(args, "--connections", quick ? "1,16" : "1,16,64", 1, 4096),
                Cli.Int(args, "--payload", 64, 1, 1024 * 1024),
                Cli.Value(args, "--skip")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? []);
            foreach (var s in options.Skip)
            {
                if (s is not ("proxy" or "serialization"))
                {
                    throw new ArgumentException($"--skip takes proxy and/or serialization, not '{s}'");
                }
            }

            var root = FindRoot() ?? throw new ArgumentException("run from inside the Trellis repository (Trellis.slnx not found above the current directory or the program)");
            var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
            var outDir = Cli.Value(args, "--out") ?? Path.Combine(root, "bench", "results", quick ? "quick" : "");
            var baseName = quick ? "latest" : stamp;
            var machine = MachineInfo.Read();
            var commandLine = "Trellis.Bench.Suite " + string.Join(' ', args);
            var started = DateTime.UtcNow;

            using var cancel = new CancellationTokenSource();
            void Interrupt(PosixSignalContext context)
            {
                context.Cancel = true;
                Console.Error.WriteLine($"{context.Signal}: stopping and killing the children");
                cancel.Cancel();
            }

            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
            var ct = cancel.Token;

            Console.WriteLine($"Trellis bench suite{(quick ? " (--quick: figures not meaningful, every reply still checked)" : "")}");
            Console.WriteLine($"Machine: {machine.Cpu}, {machine.Cores} cores, kernel {machine.Kernel}, {machine.DotNet}, load average {machine.LoadAverageStart}");
            Console.WriteLine($"Echo of {options.Payload} B, framed binary, one call in flight per connection, every reply checked; {options.Rounds} round(s) x {options.Seconds:0.###} s per point after {options.Warmup:0.###} s warm-up");
            Console.WriteLine();

            var failures = new List<string>();
            var points = new List<EchoPoint>();
            var serialization = new List<SerializationRow>();
            var serializationSizes = "";
            try
            {
                // 1. Trellis server vs the C++ server and the bare Kestrel ceiling (TCP), and the Trellis server on a Unix socket vs TCP
                await EchoServersAsync(root, options, machine, points, failures, ct);

                // 2. direct vs the Trellis proxy vs HAProxy: the proxy benchmark as a step
                if (!options.Skip.Contains("proxy"))
                {
                    await ProxyStepAsync(root, options, machine, points, failures, ct);
                }

                // 3. serialization: the serialization benchmark's --timed mode as a step
                if (!options.Skip.Contains("serialization"))
                {
                    serializationSizes = await SerializationStepAsync(root, options, serialization, failures, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("interrupted");
                return 130;
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException or SocketException or System.ComponentModel.Win32Exception)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                failures.Add(e.Message);
                Console.WriteLine();
                Console.WriteLine($"FAILED: {e.Message}");
                return 3;
            }

            machine.LoadAverageEnd = MachineInfo.LoadAverage();
            var ratios = Report.Ratios(points, serialization);
            var report = new Report(machine, commandLine, options, started, DateTime.UtcNow, points, serialization, serializationSizes, ratios, failures);
            report.PrintSummary(Console.Out);

            Directory.CreateDirectory(outDir);
            var md = Path.Combine(outDir, baseName + ".md");
            var json = Path.Combine(outDir, baseName + ".json");
            var charts = new List<string>();
            if (!args.Contains("--no-charts"))
            {
                try
                {
                    charts.AddRange(await Charts.WriteAsync(points, outDir, baseName, options, machine, ct));
                }
                catch (Exception e) when (e is InvalidOperationException or IOException or TimeoutException or System.ComponentModel.Win32Exception)
                {
                    failures.Add($"charts: {e.Message}");
                    Console.Error.WriteLine($"charts: {e.Message}");
                }
            }

            await File.WriteAllTextAsync(md, report.Markdown(charts.Select(Path.GetFileName).OfType<string>().ToList()), ct);
            await File.WriteAllTextAsync(json, report.Json(), ct);
            Console.WriteLine();
            Console.WriteLine($"Results: {md}");
            Console.WriteLine($"         {json}");
            foreach (var chart in charts)
            {
                Console.WriteLine($"         {chart}");
            }

            if (failures.Count > 0)
            {
                Console.WriteLine();
                Console.WriteLine($"FAILED ({failures.Count}):");
                foreach (var f in failures)
                {
                    Console.WriteLine($"  {f}");
                }

                return 1;
            }

            return 0;
        }

        /// <summary>The Trellis echo server (the proxy benchmark's server role, on TCP and a Unix socket), the Apache Thrift C++ TNonblockingServer and the bare Kestrel echo handler, under the same load.</summary>
        private static async Task EchoServersAsync(string root, Options options, MachineInfo machine, List<EchoPoint> points, List<string> failures, CancellationToken ct)
        {
            var cppDir = Path.Combine(root, "bench", "cpp-echo");
            Console.Error.WriteLine("building bench/cpp-echo (make) ...");
            var make = await RunAsync("make", ["-s", "-C", cppDir], root, TimeSpan.FromMinutes(5), ct);
            if (make.ExitCode != 0)
            {
                throw new InvalidOperationException($"building the C++ echo server failed (needs Debian packages libthrift-dev libevent-dev libboost-dev thrift-compiler g++ make; scripts/setup.sh installs them):\n{make.Output}");
            }

            machine.ThriftCpp = "Apache Thrift C++ " + (MachineInfo.Command("pkg-config", "--modversion", "thrift") ?? "?") + " TNonblockingServer (1 I/O thread)";
            var temp = Directory.CreateTempSubdirectory("trellis-bench-suite-");
            var children = new List<Child>();
            try
            {
                var startup = TimeSpan.FromSeconds(StartupSeconds);
                var cpp = Child.Start("c++ server", Path.Combine(cppDir, "build", "echo-server"), ["--port", "0", "--server", "nonblocking"]);
                children.Add(cpp);
                var socketPath = Path.Combine(temp.FullName, "echo.sock");
                var (file, prefix) = Sibling(root, "Trellis.Bench.Proxy");
                var trellis = Child.Start("trellis server", file, [.. prefix, "--role", "server", "--port", "0", "--unix", socketPath]);
                children.Add(trellis);
                var kestrel = Child.StartSelf("kestrel ceiling", ["--role", "kestrel-echo", "--port", "0"]);
                children.Add(kestrel);
                var cppPort = await cpp.ListeningAsync(startup, ct);
                var trellisPort = await trellis.ListeningAsync(startup, ct);
                var kestrelPort = await kestrel.ListeningAsync(startup, ct);
                await cpp.WaitAcceptingAsync(new IPEndPoint(IPAddress.Loopback, cppPort), startup, ct);
                await trellis.WaitAcceptingAsync(new IPEndPoint(IPAddress.Loopback, trellisPort), startup, ct);
                await trellis.WaitAcceptingAsync(new UnixDomainSocketEndPoint(socketPath), startup, ct);
                await kestrel.WaitAcceptingAsync(new IPEndPoint(IPAddress.Loopback, kestrelPort), startup, ct);
                Console.WriteLine($"Echo servers: trellis server pid {trellis.Pid} :{trellisPort} and {socketPath}; {machine.ThriftCpp} pid {cpp.Pid} :{cppPort}; " +
                    $"bare Kestrel echo handler pid {kestrel.Pid} :{kestrelPort}");

                EchoPath[] paths =
                [
                    new("trellis tcp", "server", RpcEndpoint.Tcp("127.0.0.1", trellisPort), 1, trellis),
                    new("c++ tcp", "server", RpcEndpoint.Tcp("127.0.0.1", cppPort), 2, cpp),
                    new("trellis unix", "transport", RpcEndpoint.Unix(socketPath), 3, trellis),
                    new("kestrel ceiling", "server", RpcEndpoint.Tcp("127.0.0.1", kestrelPort), 4, kestrel), // last: the other systems keep their chart colours
                ];
                foreach (var connections in options.Connections)
                {
                    points.AddRange(await MeasureAsync(paths, connections, options, ct));
                }

                // the servers' own counts must match what was sent (warm-up and failed calls included)
                var cppStats = await cpp.StopAsync(TimeSpan.FromSeconds(15));
                var trellisStats = await trellis.StopAsync(TimeSpan.FromSeconds(15));
                var kestrelStats = await kestrel.StopAsync(TimeSpan.FromSeconds(15));
                CheckCount("c++ server", cppStats, paths[1].Sent, failures);
                CheckCount("trellis server", trellisStats, paths[0].Sent + paths[2].Sent, failures);
                CheckCount("kestrel ceiling", kestrelStats, paths[3].Sent, failures);
                foreach (var path in paths.Where(p => p.Errors > 0))
                {
                    failures.Add($"{path.Name}: {path.Errors:N0} failed or wrong calls; first: {string.Join(" | ", path.FirstErrors)}");
                }
            }
            finally
            {
                foreach (var child in children)
                {
                    child.Dispose();
                }

                foreach (var child in children)
                {
                    await child.OutputDone.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
                }

                try
                {
                    temp.Delete(recursive: true);
                }
                catch (IOException)
                {
                    // left in /tmp
                }
            }
        }

        private static void CheckCount(string name, string? stats, long sent, List<string> failures)
        {
            var m = stats is null ? null : CallsRegex().Match(stats);
            if (m is null || !m.Success)
            {
                failures.Add($"{name}: no call count at the end (it did not stop cleanly)");
            }
            else if (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) != sent)
            {
                failures.Add($"{name}: counted {m.Groups[1].Value} calls, {sent} were sent");
            }
            else
            {
                Console.Error.WriteLine($"{name}: counted {sent:N0} calls, as many as were sent");
            }
        }

        /// <summary>Opens and warms up every path's connections, then runs the rounds with the paths taking turns (rotating order).</summary>
        private static async Task<List<EchoPoint>> MeasureAsync(EchoPath[] paths, int connections, Options options, CancellationToken ct)
        {
            var channels = paths.Select(p => Enumerable.Range(0, connections).Select(_ => new ThriftChannel(new ThriftChannelOptions
            {
                Endpoint = p.Endpoint,
                Multiplexed = false, // plain "echo": the same bytes the C++ server expects
                PeerMultiplexesCalls = true,
                DefaultTimeout = TimeSpan.FromSeconds(5),
            })).ToArray()).ToArray();
            try
            {
                var clients = channels.Select(cs => cs.Select(c => new EchoService.Client(c)).ToArray()).ToArray();
                var result = paths.Select(p => new EchoPoint(p.Comparison, p.Name, connections)).ToArray();
                for (var p = 0; p < paths.Length; p++)
                {
                    var path = paths[p];
                    for (var i = 0; i < connections; i++)
                    {
                        var text = EchoLoad.Payload(options.Payload, 999_000 + i, 0);
                        Interlocked.Increment(ref path.Sent);
                        try
                        {
                            if (await clients[p][i].EchoAsync(text, ct) != text)
                            {
                                path.Error("first call: wrong reply");
                            }
                        }
                        catch (Exception e) when (!ct.IsCancellationRequested)
                        {
                            path.Error($"first call: {e.GetType().Name}: {e.Message}");
                        }
                    }

                    var pc = clients[p];
                    await EchoLoad.RunAsync(connections, (i, text, t) => pc[i].EchoAsync(text, t), options.Payload, path.Id, TimeSpan.FromSeconds(options.Warmup),
                        path.Error, () => Interlocked.Increment(ref path.Sent), ct);
                }

                for (var round = 0; round < options.Rounds; round++)
                {
                    for (var k = 0; k < paths.Length; k++)
                    {
                        var p = (round + k) % paths.Length;
                        var path = paths[p];
                        var pc = clients[p];
                        var cpu = path.Process.Cpu;
                        var r = await EchoLoad.RunAsync(connections, (i, text, t) => pc[i].EchoAsync(text, t), options.Payload, path.Id, TimeSpan.FromSeconds(options.Seconds),
                            path.Error, () => Interlocked.Increment(ref path.Sent), ct);
                        var cpuPerCall = cpu is { } before && path.Process.Cpu is { } after && r.Calls + r.Errors > 0
                            ? (after - before).TotalMicroseconds / (r.Calls + r.Errors) : double.NaN;
                        result[p].Rounds.Add(new EchoRound(round + 1, r.Rate, r.P50, r.P99, r.P999, cpuPerCall, r.Calls, r.Errors));
                        Console.Error.WriteLine($"{connections} conns, round {round + 1}/{options.Rounds}, {path.Name}: {r.Rate:N0} calls/s, p50 {r.P50:N0} p99 {r.P99:N0} p999 {r.P999:N0} µs, server CPU {cpuPerCall:0.0} µs/call, {r.Errors} errors");
                    }
                }

                return [.. result];
            }
            finally
            {
                foreach (var c in channels.SelectMany(c => c))
                {
                    await c.DisposeAsync();
                }
            }
        }

        /// <summary>Runs Trellis.Bench.Proxy (direct, Trellis proxy, HAProxy) with the suite's settings and reads its per-round lines.</summary>
        private static async Task ProxyStepAsync(string root, Options options, MachineInfo machine, List<EchoPoint> points, List<string> failures, CancellationToken ct)
        {
            var (file, prefix) = Sibling(root, "Trellis.Bench.Proxy");
            string[] arguments = [.. prefix, "--rounds", I(options.Rounds), "--seconds", D(options.Seconds), "--warmup", D(options.Warmup),
                "--connections", string.Join(',', options.Connections), "--payload", I(options.Payload)];
            Console.Error.WriteLine($"running the proxy benchmark: {Path.GetFileName(file)} {string.Join(' ', arguments.Skip(prefix.Length))}");
            var run = await RunAsync(file, arguments, root, TimeSpan.FromMinutes(30), ct, echoStderr: true);
            var byKey = new Dictionary<(string, int), EchoPoint>();
            foreach (var line in run.Output.Split('\n'))
            {
                var m = ProxyRoundRegex().Match(line);
                if (m.Success)
                {
                    var connections = int.Parse(m.Groups["c"].Value, CultureInfo.InvariantCulture);
                    var name = m.Groups["path"].Value;
                    if (!byKey.TryGetValue((name, connections), out var point))
                    {
                        byKey[(name, connections)] = point = new EchoPoint("proxy", name, connections);
                        points.Add(point);
                    }

                    point.Rounds.Add(new EchoRound(int.Parse(m.Groups["r"].Value, CultureInfo.InvariantCulture), Num(m.Groups["rate"].Value), Num(m.Groups["p50"].Value),
                        Num(m.Groups["p99"].Value), Num(m.Groups["p999"].Value), Num(m.Groups["cpu"].Value), 0, long.Parse(m.Groups["e"].Value, CultureInfo.InvariantCulture)));
                }
                else if (HaproxyRegex().Match(line) is { Success: true } h)
                {
                    machine.Haproxy = h.Groups[1].Value;
                }
            }

            var logFile = Path.Combine(Path.GetTempPath(), $"trellis-bench-suite-proxy-{Environment.ProcessId}.log");
            if (run.ExitCode != 0)
            {
                await File.WriteAllTextAsync(logFile, run.Output, ct);
                failures.Add($"the proxy benchmark exited with {run.ExitCode} (its output: {logFile})");
            }
            else if (byKey.Count != 3 * options.Connections.Length || byKey.Values.Any(p => p.Rounds.Count != options.Rounds))
            {
                await File.WriteAllTextAsync(logFile, run.Output, ct);
                failures.Add($"the proxy benchmark's output did not have every round of direct, trellis proxy and haproxy tcp (its output: {logFile})");
            }
        }

        /// <summary>Runs Trellis.Bench.Serialization --timed and reads its per-round lines; returns its "sizes:" line.</summary>
        private static async Task<string> SerializationStepAsync(string root, Options options, List<SerializationRow> rows, List<string> failures, CancellationToken ct)
        {
            var (file, prefix) = Sibling(root, "Trellis.Bench.Serialization");
            var perRow = options.Quick ? 0.05 : Math.Clamp(options.Seconds / 3, 0.1, 2);
            string[] arguments = [.. prefix, "--timed", "--rounds", I(options.Rounds), "--seconds", D(perRow)];
            Console.Error.WriteLine($"running the serialization benchmark: {Path.GetFileName(file)} {string.Join(' ', arguments.Skip(prefix.Length))}");
            var run = await RunAsync(file, arguments, root, TimeSpan.FromMinutes(10), ct);
            var sizes = "";
            foreach (var line in run.Output.Split('\n'))
            {
                var parts = line.Trim().Split(' ');
                if (parts is ["timed", var round, var name, var ns, var bytes])
                {
                    var row = rows.FirstOrDefault(r => r.Name == name);
                    if (row is null)
                    {
                        rows.Add(row = new SerializationRow(name));
                    }

                    row.Rounds.Add((int.Parse(round, CultureInfo.InvariantCulture), Num(ns), Num(bytes)));
                }
                else if (line.StartsWith("sizes:", StringComparison.Ordinal))
                {
                    sizes = line.Trim();
                }
            }

            if (run.ExitCode != 0 || rows.Count != 6)
            {
                failures.Add($"the serialization benchmark failed (exit {run.ExitCode}, {rows.Count} rows): {run.Output.Trim()}");
            }

            return sizes;
        }

        /// <summary>How to start a sibling bench program built in the same configuration: its apphost, or <c>dotnet its.dll</c>.</summary>
        private static (string File, string[] Prefix) Sibling(string root, string project)
        {
            var self = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)); // bin/CONFIG/TFM
            var configuration = self.Parent?.Name ?? "Release";
            var dir = Path.Combine(root, "bench", project, "bin", configuration, self.Name);
            var host = Path.Combine(dir, project);
            if (File.Exists(host))
            {
                return (host, []);
            }

            var dll = Path.Combine(dir, project + ".dll");
            return File.Exists(dll)
                ? ("dotnet", [dll])
                : throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build Trellis.slnx -c {configuration})");
        }

        /// <summary>Runs a program to its end; stdout and stderr together (stderr also shown live when <paramref name="echoStderr"/>).</summary>
        private static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> arguments, string workingDirectory, TimeSpan timeout, CancellationToken ct, bool echoStderr = false)
        {
            var info = new ProcessStartInfo(file)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                WorkingDirectory = workingDirectory,
            };
            foreach (var a in arguments)
            {
                info.ArgumentList.Add(a);
            }

            using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
            var output = new System.Text.StringBuilder();
            var gate = new object();
            async Task Pump(StreamReader reader, bool show)
            {
                while (await reader.ReadLineAsync(CancellationToken.None) is { } line)
                {
                    lock (gate)
                    {
                        output.AppendLine(line);
                    }

                    if (show)
                    {
                        Console.Error.WriteLine($"  | {line}");
                    }
                }
            }

            var pumps = Task.WhenAll(Pump(process.StandardOutput, false), Pump(process.StandardError, echoStderr));
            try
            {
                await process.WaitForExitAsync(ct).WaitAsync(timeout, ct);
                await pumps.WaitAsync(TimeSpan.FromSeconds(10), ct);
            }
            catch
            {
                try
                {
                    process.Kill(entireProcessTree: true); // SIGTERM lets the proxy benchmark kill its own children first, but a hung one must go
                }
                catch (InvalidOperationException)
                {
                    // already gone
                }

                throw;
            }

            lock (gate)
            {
                return (process.ExitCode, output.ToString());
            }
        }

        private static string? FindRoot()
        {
            foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    if (File.Exists(Path.Combine(dir.FullName, "Trellis.slnx")))
                    {
                        return dir.FullName;
                    }
                }
            }

            return null;
        }

        private static double Num(string text) =>
            double.TryParse(text.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;

        private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);

        private static string D(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

        [GeneratedRegex(@"^(?<c>\d+) conns, round (?<r>\d+)/\d+, (?<path>[^:]+): (?<rate>\S+) calls/s, p50 (?<p50>\S+) p99 (?<p99>\S+) p999 (?<p999>\S+) µs, hop CPU (?<cpu>\S+) µs/call, (?<e>\d+) errors")]
        private static partial Regex ProxyRoundRegex();

        [GeneratedRegex(@"(haproxy \S+) pid")]
        private static partial Regex HaproxyRegex();

        [GeneratedRegex(@"calls=(\d+)")]
        private static partial Regex CallsRegex();
    }

    internal sealed record Options(bool Quick, int Rounds, double Seconds, double Warmup, int[] Connections, int Payload, string[] Skip);

    /// <summary>One echo system measured by the suite's own load: its endpoint and the process whose CPU time is read.</summary>
    internal sealed class EchoPath(string name, string comparison, RpcEndpoint endpoint, int id, Child process)
    {
        public string Name { get; } = name;

        public string Comparison { get; } = comparison;

        public RpcEndpoint Endpoint { get; } = endpoint;

        public int Id { get; } = id;

        public Child Process { get; } = process;

        public long Sent;

        public long Errors;

        public System.Collections.Concurrent.ConcurrentQueue<string> FirstErrors { get; } = new();

        public void Error(string what)
        {
            if (Interlocked.Increment(ref Errors) <= 5)
            {
                FirstErrors.Enqueue(what);
            }
        }
    }
}
