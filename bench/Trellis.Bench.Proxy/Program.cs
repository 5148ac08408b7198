using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Trellis.Bench;
using Trellis.Bench.Proxy;
using Trellis.Proxy;
using Trellis.Rpc;
using Trellis.Rpc.Registry;

// The cost of one proxy hop: echo calls direct to a Trellis server, through the Trellis proxy, and through HAProxy
// in TCP mode, in one run, with one load generator. Every role is its own process (this program re-launched with
// --role): the driver (load generator), the backend server, and the Trellis proxy; HAProxy is the Debian binary.
try
{
    return Cli.Value(args, "--role") switch
    {
        null or "driver" => await Driver.RunAsync(args),
        "server" => await Roles.ServerAsync(args),
        "proxy" => await Roles.ProxyAsync(args),
        var other => Cli.Fail($"unknown role '{other}' (server, proxy, or none for the driver)"),
    };
}
catch (ArgumentException e)
{
    return Cli.Fail(e.Message);
}

namespace Trellis.Bench.Proxy
{
    /// <summary>The two child roles: the backend server and the Trellis proxy. Each runs until stdin closes or SIGTERM/SIGINT.</summary>
    internal static class Roles
    {
        public const string Product = "bench";
        public const string Service = "Bench";

        public static async Task<int> ServerAsync(string[] args)
        {
            var port = Cli.Int(args, "--port", 0, 0, 65535);
            var handler = new EchoHandler();
            var options = new ThriftServerOptions { MaxConcurrentCalls = 100_000, Logger = new StderrLogger(Level(args)) };
            options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", port));
            if (Cli.Value(args, "--unix") is { } socketPath)
            {
                options.Endpoints.Add(RpcEndpoint.Unix(socketPath)); // also on a Unix socket (Trellis.Bench.Suite compares the two)
            }

            await using var server = new ThriftServer(options).AddService(new Bench.Dispatcher(handler));
            await server.StartAsync();
            Console.WriteLine($"listening {server.Endpoints[0].Port}");
            await StopSignal.WaitAsync();
            Console.WriteLine($"stats calls={handler.Calls}");
            return 0;
        }

        public static async Task<int> ProxyAsync(string[] args)
        {
            if (!args.Contains("--no-inline"))
            {
                ProxyServer.UseInlineSocketCompletions(); // as `trellis proxy` does
            }

            var backendPort = Cli.Int(args, "--backend-port", 0, 1, 65535);
            if (backendPort == 0)
            {
                throw new ArgumentException("--backend-port is required");
            }

            var logger = new StderrLogger(Level(args));
            await using var registry = new LocalRegistry(Cli.Required(args, "--registry"), logger: logger);
            await using var registration = await registry.RegisterAsync(new ServiceInstance
            {
                Product = Product,
                Service = Service,
                InstanceId = "b1",
                Host = "127.0.0.1",
                Port = backendPort,
                Framing = Cli.Value(args, "--backend-framing") ?? "framed",
            });
            var options = new ProxyOptions { Product = Product };
            if (Cli.Value(args, "--backend-connections") is { } n)
            {
                options.ConnectionsPerBackend = int.Parse(n, CultureInfo.InvariantCulture);
            }

            options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
            await using var proxy = new ProxyServer(options, registry, logger);
            await proxy.StartAsync();
            Console.WriteLine($"listening {proxy.Endpoints[0].Port}");
            await StopSignal.WaitAsync();
            var s = proxy.Stats;
            Console.WriteLine($"stats calls={s.Calls} replies={s.Replies} retries={s.Retries} timeouts={s.Timeouts} " +
                $"backend_failures={s.BackendFailures} bad_frames={s.BadFrames} no_instance={s.NoInstance} " +
                $"unknown_service={s.UnknownService} not_thrift={s.NotThriftConnections} open_connections={s.Connections} in_flight={s.InFlight} " +
                $"threadpool_work_items={ThreadPool.CompletedWorkItemCount}");
            return 0;
        }

        private static LogLevel Level(string[] args) => args.Contains("--verbose") ? LogLevel.Information : LogLevel.Warning;
    }

    internal sealed class EchoHandler : Bench.IAsync
    {
        private long _calls;

        public long Calls => Interlocked.Read(ref _calls);

        public Task<string> EchoAsync(string? text, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult(text ?? "");
        }
    }

    /// <summary>One way to the backend, with its own channels (one per connection).</summary>
    internal sealed class BenchPath(string name, int port, int id, Child? hop)
    {
        public string Name { get; } = name;

        public int Port { get; } = port;

        /// <summary>Distinguishes this path's payloads from the others'.</summary>
        public int Id { get; } = id;

        /// <summary>The proxy process on this path (null: direct), whose CPU time per call is reported.</summary>
        public Child? Hop { get; } = hop;

        /// <summary>Calls sent this way in all (warm-up and failed calls included), to compare with the children's counts.</summary>
        public long Sent;

        public long Errors;

        public ConcurrentQueue<string> FirstErrors { get; } = new();

        public void Error(string what)
        {
            if (Interlocked.Increment(ref Errors) <= 10)
            {
                FirstErrors.Enqueue(what);
            }
        }
    }

    /// <summary>One round's (or the rounds' median) figures; <see cref="HopCpu"/>: the proxy process's CPU µs per call, NaN when direct.</summary>
    internal readonly record struct Figures(double Rate, double P50, double P99, double P999, double HopCpu, long Calls, long Errors);

    /// <summary>Connections each with one call in flight, for a while; every reply compared with what was sent.</summary>
    internal static class Load
    {
        public static List<(ThriftChannel Channel, Bench.Client Client)> Open(BenchPath path, int connections) =>
            Enumerable.Range(0, connections).Select(_ =>
            {
                var channel = new ThriftChannel(new ThriftChannelOptions
                {
                    Endpoint = RpcEndpoint.Tcp("127.0.0.1", path.Port),
                    Multiplexed = true, // "Bench:echo" on all three paths: the proxy routes by it, the server accepts it
                    PeerMultiplexesCalls = true,
                    DefaultTimeout = TimeSpan.FromSeconds(5), // a stall shows up as failed calls, not a hung run
                });
                return (channel, new Bench.Client(channel));
            }).ToList();

        public static async Task<Figures> RunAsync(BenchPath path, IReadOnlyList<Bench.Client> clients, int size, TimeSpan duration, CancellationToken cancellationToken)
        {
            var cpu = path.Hop?.Cpu;
            var r = await EchoLoad.RunAsync(clients.Count, (i, text, ct) => clients[i].EchoAsync(text, ct), size, path.Id, duration,
                path.Error, () => Interlocked.Increment(ref path.Sent), cancellationToken);
            var hopCpu = cpu is { } before && path.Hop!.Cpu is { } after ? (after - before).TotalMicroseconds : double.NaN;
            var calls = r.Calls + r.Errors;
            return new Figures(r.Rate, r.P50, r.P99, r.P999, calls == 0 ? double.NaN : hopCpu / calls, r.Calls, r.Errors);
        }

        /// <summary>Exactly <paramref name="size"/> ASCII characters, starting with the connection and sequence number, so a reply meant for another call cannot pass.</summary>
        public static string Payload(int size, int connection, long seq) => EchoLoad.Payload(size, connection, seq);
    }

    internal static class Driver
    {
        public static async Task<int> RunAsync(string[] args)
        {
            var quick = args.Contains("--quick");
            var rounds = Cli.Int(args, "--rounds", quick ? 1 : 3, 1, 100);
            var seconds = Cli.Double(args, "--seconds", quick ? 1.0 : 3.0);
            var warmup = Cli.Double(args, "--warmup", quick ? 0.3 : 1.0);
            var size = Cli.Int(args, "--payload", 64, 1, 16 * 1024 * 1024);
            var connectionCounts = (Cli.Value(args, "--connections") ?? "1,16,64").Split(',')
                .Select(c => int.TryParse(c, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 4096
                    ? n
                    : throw new ArgumentException($"--connections takes counts from 1 to 4096 separated by commas, not '{c}'"))
                .ToArray();
            var verbose = args.Contains("--verbose");

            var given = Cli.Value(args, "--haproxy");
            var haproxy = given ?? FindHaproxy();
            if (haproxy is null || !File.Exists(haproxy))
            {
                Console.Error.WriteLine(given is null
                    ? "error: haproxy was not found (looked on PATH, /usr/sbin, /usr/local/sbin and /sbin). This benchmark needs it as the reference proxy hop:"
                    : $"error: --haproxy {given}: no such file. This benchmark needs haproxy as the reference proxy hop:");
                Console.Error.WriteLine("       install the Debian package 'haproxy' (sudo apt-get install -y haproxy), or pass --haproxy /path/to/haproxy.");
                return 2;
            }

            using var cancel = new CancellationTokenSource();
            void Interrupt(PosixSignalContext context)
            {
                context.Cancel = true; // stop measuring and clean up in the finally below
                Console.Error.WriteLine($"{context.Signal}: stopping and killing the children");
                cancel.Cancel();
            }

            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
            var ct = cancel.Token;

            var temp = Directory.CreateTempSubdirectory("trellis-bench-proxy-");
            var children = new List<Child>();
            try
            {
                var startup = TimeSpan.FromSeconds(30);
                var extra = verbose ? new[] { "--verbose" } : [];
                var server = Child.StartSelf("server", ["--role", "server", "--port", "0", .. extra]);
                children.Add(server);
                var backendPort = await server.ListeningAsync(startup, ct);

                var registryDir = Path.Combine(temp.FullName, "registry");
                string[] proxyExtra = [.. extra, .. args.Contains("--no-inline") ? new[] { "--no-inline" } : [],
                    .. Cli.Value(args, "--backend-framing") is { } framing ? new[] { "--backend-framing", framing } : [],
                    .. Cli.Value(args, "--backend-connections") is { } conns ? new[] { "--backend-connections", conns } : []];
                var proxyEnvironment = new Dictionary<string, string>();
                foreach (var assignment in Cli.Values(args, "--proxy-env"))
                {
                    var eq = assignment.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new ArgumentException($"--proxy-env takes NAME=VALUE, not '{assignment}'");
                    }

                    proxyEnvironment[assignment[..eq]] = assignment[(eq + 1)..];
                }

                var proxy = Child.StartSelf("proxy", ["--role", "proxy", "--backend-port", backendPort.ToString(CultureInfo.InvariantCulture), "--registry", registryDir, .. proxyExtra], proxyEnvironment);
                children.Add(proxy);
                var proxyPort = await proxy.ListeningAsync(startup, ct);

                var haproxyPort = FreePort();
                var config = Path.Combine(temp.FullName, "haproxy.cfg");
                await File.WriteAllTextAsync(config, HaproxyConfig(haproxyPort, backendPort), ct);
                var ha = Child.Start("haproxy", haproxy, ["-f", config, "-db"]);
                children.Add(ha);

                await server.WaitAcceptingAsync(new IPEndPoint(IPAddress.Loopback, backendPort), startup, ct);
                await proxy.WaitAcceptingAsync(new IPEndPoint(IPAddress.Loopback, proxyPort), startup, ct);
                await ha.WaitAcceptingAsync(new IPEndPoint(IPAddress.Loopback, haproxyPort), startup, ct);

                BenchPath[] paths =
                [
                    new("direct", backendPort, 1, null),
                    new("trellis proxy", proxyPort, 2, proxy),
                    new("haproxy tcp", haproxyPort, 3, ha),
                ];

                Console.WriteLine($"Proxy hop: echo of {size} B, framed binary, name Bench:echo; {Environment.ProcessorCount} cores; median of {rounds} x {seconds:0.###} s per path (after {warmup:0.###} s warm-up)");
                Console.WriteLine($"Processes: driver (load) pid {Environment.ProcessId}, server pid {server.Pid} :{backendPort}, trellis proxy pid {proxy.Pid} :{proxyPort} (ProxyOptions defaults), {await HaproxyVersionAsync(haproxy)} pid {ha.Pid} :{haproxyPort}");
                Console.WriteLine();

                var table = new List<(int Connections, Figures[] ByPath)>();
                foreach (var connections in connectionCounts)
                {
                    table.Add((connections, await MeasureAsync(paths, connections, size, rounds, seconds, warmup, ct)));
                }

                Console.WriteLine("| conns | path | calls/s | share of direct | p50 µs | added p50 | p99 µs | p999 µs | hop CPU µs/call | errors |");
                Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
                foreach (var (connections, byPath) in table)
                {
                    var direct = byPath[0];
                    for (var p = 0; p < paths.Length; p++)
                    {
                        var f = byPath[p];
                        var share = p == 0 ? "1.00×" : Share(f.Rate, direct.Rate);
                        var added = p == 0 ? "—" : Added(f.P50, direct.P50);
                        Console.WriteLine($"| {connections} | {paths[p].Name} | {N(f.Rate)} | {share} | {N(f.P50)} | {added} | {N(f.P99)} | {N(f.P999)} | {(p == 0 ? "—" : f.HopCpu.ToString("0.0", CultureInfo.InvariantCulture))} | {f.Errors} |");
                    }
                }

                Console.WriteLine();
                foreach (var (connections, byPath) in table)
                {
                    var (direct, trellis, ha2) = (byPath[0], byPath[1], byPath[2]);
                    Console.WriteLine($"{connections} conn{(connections == 1 ? "" : "s")}: Trellis hop {Share(trellis.Rate, direct.Rate)} of direct / HAProxy hop {Share(ha2.Rate, direct.Rate)} of direct " +
                        $"(Trellis = {Share(trellis.Rate, ha2.Rate)} HAProxy's calls/s); added p50: Trellis {Added(trellis.P50, direct.P50)}, HAProxy {Added(ha2.P50, direct.P50)}; " +
                        $"hop CPU per call: Trellis {trellis.HopCpu.ToString("0.0", CultureInfo.InvariantCulture)} µs, HAProxy {ha2.HopCpu.ToString("0.0", CultureInfo.InvariantCulture)} µs");
                }

                // stop the roles gracefully to read their counters, and compare them with what was sent
                Console.WriteLine();
                var proxyStats = await proxy.StopAsync(TimeSpan.FromSeconds(15));
                var serverStats = await server.StopAsync(TimeSpan.FromSeconds(15));
                Console.WriteLine($"Sent (warm-up included): {string.Join(", ", paths.Select(p => $"{p.Name} {p.Sent:N0}"))}; total {paths.Sum(p => p.Sent):N0}");
                Console.WriteLine($"Server counters: {serverStats ?? "(none: it did not stop cleanly)"}");
                Console.WriteLine($"Trellis proxy counters: {proxyStats ?? "(none: it did not stop cleanly)"}");

                var failed = false;
                foreach (var path in paths.Where(p => p.Errors > 0))
                {
                    failed = true;
                    Console.WriteLine($"{path.Name}: {path.Errors:N0} failed or wrong calls; first ones:");
                    foreach (var what in path.FirstErrors)
                    {
                        Console.WriteLine($"  {what}");
                    }
                }

                return failed ? 1 : 0;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("interrupted");
                return 130;
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException or SocketException or System.ComponentModel.Win32Exception)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 3;
            }
            finally
            {
                for (var i = children.Count - 1; i >= 0; i--)
                {
                    children[i].Dispose();
                }

                foreach (var child in children)
                {
                    await child.OutputDone.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
                }

                try
                {
                    temp.Delete(recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"could not delete {temp.FullName}: {e.Message}");
                }
            }
        }

        /// <summary>
        /// Opens every path's connections and warms them up, then runs the rounds, the paths taking turns (in a
        /// rotating order) so the machine's noise falls on all of them alike. Each figure: its median over the rounds.
        /// </summary>
        private static async Task<Figures[]> MeasureAsync(BenchPath[] paths, int connections, int size, int rounds, double seconds, double warmup, CancellationToken ct)
        {
            var open = paths.Select(p => Load.Open(p, connections)).ToArray();
            try
            {
                var results = paths.Select(_ => new List<Figures>()).ToArray();
                for (var p = 0; p < paths.Length; p++)
                {
                    var clients = open[p].Select(o => o.Client).ToList();
                    var first = Stopwatch.GetTimestamp();
                    foreach (var (client, i) in clients.Select((c, i) => (c, i)))
                    {
                        var text = Load.Payload(size, 999_000 + i, 0);
                        Interlocked.Increment(ref paths[p].Sent);
                        try
                        {
                            // connects; through the proxy the first call also waits for the service's instance list
                            if (await client.EchoAsync(text, ct) != text)
                            {
                                paths[p].Error("warm-up: wrong reply");
                            }
                        }
                        catch (Exception e) when (!ct.IsCancellationRequested)
                        {
                            paths[p].Error($"warm-up: {e.GetType().Name}: {e.Message}");
                        }
                    }

                    var firstCalls = Stopwatch.GetElapsedTime(first).TotalMilliseconds;

                    var w = await Load.RunAsync(paths[p], clients, size, TimeSpan.FromSeconds(warmup), ct);
                    Console.Error.WriteLine($"{connections} conns, warm-up, {paths[p].Name}: first call on each connection (one by one) {firstCalls:F1} ms in all; then {N(w.Rate)} calls/s, p50 {N(w.P50)} µs, {w.Errors} errors");
                }

                for (var round = 0; round < rounds; round++)
                {
                    for (var k = 0; k < paths.Length; k++)
                    {
                        var p = (round + k) % paths.Length;
                        var f = await Load.RunAsync(paths[p], open[p].Select(o => o.Client).ToList(), size, TimeSpan.FromSeconds(seconds), ct);
                        results[p].Add(f);
                        Console.Error.WriteLine($"{connections} conns, round {round + 1}/{rounds}, {paths[p].Name}: {N(f.Rate)} calls/s, p50 {N(f.P50)} p99 {N(f.P99)} p999 {N(f.P999)} µs, hop CPU {f.HopCpu:0.0} µs/call, {f.Errors} errors");
                    }
                }

                return results.Select(r => new Figures(
                    Median(r.Select(f => f.Rate)), Median(r.Select(f => f.P50)), Median(r.Select(f => f.P99)), Median(r.Select(f => f.P999)), Median(r.Select(f => f.HopCpu)),
                    r.Sum(f => f.Calls), r.Sum(f => f.Errors))).ToArray();
            }
            finally
            {
                foreach (var (channel, _) in open.SelectMany(o => o))
                {
                    await channel.DisposeAsync();
                }
            }
        }

        private static double Median(IEnumerable<double> values)
        {
            var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
            return sorted.Length == 0 ? double.NaN
                : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
                : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }

        private static string N(double value) => double.IsNaN(value) ? "n/a" : value.ToString("N0", CultureInfo.InvariantCulture);

        private static string Share(double value, double of) =>
            double.IsNaN(value) || double.IsNaN(of) || of <= 0 ? "n/a" : (value / of).ToString("0.00", CultureInfo.InvariantCulture) + "×";

        private static string Added(double value, double baseline) =>
            double.IsNaN(value) || double.IsNaN(baseline) ? "n/a" : (value - baseline).ToString("+0;-0;+0", CultureInfo.InvariantCulture) + " µs";

        private static string HaproxyConfig(int port, int backendPort) => string.Create(CultureInfo.InvariantCulture, $"""
            # written by Trellis.Bench.Proxy: one TCP hop from 127.0.0.1:{port} to the backend at 127.0.0.1:{backendPort}
            global
                maxconn 4096

            defaults
                mode tcp
                timeout connect 5s
                timeout client 10m
                timeout server 10m

            frontend bench_in
                bind 127.0.0.1:{port}
                maxconn 4096
                default_backend bench_out

            backend bench_out
                server backend 127.0.0.1:{backendPort} maxconn 4096

            """);

        private static string? FindHaproxy()
        {
            var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Concat(["/usr/sbin", "/usr/local/sbin", "/sbin"]);
            return dirs.Select(d => Path.Combine(d, "haproxy")).FirstOrDefault(File.Exists);
        }

        private static async Task<string> HaproxyVersionAsync(string haproxy)
        {
            try
            {
                using var process = Process.Start(new ProcessStartInfo(haproxy, "-v") { RedirectStandardOutput = true, UseShellExecute = false });
                if (process is null)
                {
                    return "haproxy";
                }

                var first = await process.StandardOutput.ReadLineAsync() ?? "haproxy";
                await process.WaitForExitAsync();
                var words = first.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return words.Length >= 3 ? $"haproxy {words[2]}" : first;
            }
            catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                return "haproxy";
            }
        }

        private static int FreePort()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return ((IPEndPoint)listener.LocalEndPoint!).Port;
        }

    }
}
