using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Trellis.Bench;
using Trellis.Bench.Balancer;
using Trellis.Proxy;
using Trellis.Proxy.Balancer;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Samples.Worker;
using Trellis.Thrift;

// `trellis balancer` over N single-threaded Python workers (samples/python-worker): throughput with 1, 2 and 4
// workers, and what the balancer itself costs per call (latency and CPU) against calling one worker directly. The
// driver (no --role) is the load generator; each balancer is this program again with --role balancer, which runs a
// WorkerBalancer whose workers are its own children.
try
{
    return Cli.Value(args, "--role") switch
    {
        null or "driver" => await Driver.RunAsync(args),
        "balancer" => await Roles.BalancerAsync(args),
        var other => Cli.Fail($"unknown role '{other}' (balancer, or none for the driver)"),
    };
}
catch (ArgumentException e)
{
    return Cli.Fail(e.Message);
}

namespace Trellis.Bench.Balancer
{
    /// <summary>CPU time used so far, in nanoseconds.</summary>
    internal static class CpuTime
    {
        /// <summary>This process, all threads, exact (getrusage).</summary>
        public static long Self() => (long)(Environment.CpuUsage.TotalTime.Ticks * (1_000_000_000.0 / TimeSpan.TicksPerSecond));

        /// <summary>
        /// Another process: the sum of its threads' run time (<c>/proc/PID/task/*/schedstat</c>, in ns; <c>/proc/PID/stat</c>
        /// counts in 10 ms ticks, too coarse for a few hundred calls), or null once it is gone. Threads that exited are
        /// not counted: meant for the single-threaded Python workers.
        /// </summary>
        public static long? Of(int pid)
        {
            try
            {
                long sum = 0;
                foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
                {
                    try
                    {
                        var text = File.ReadAllText(Path.Combine(task, "schedstat"));
                        var end = text.IndexOf(' ', StringComparison.Ordinal);
                        sum += long.Parse(end < 0 ? text.Trim() : text[..end], NumberStyles.Integer, CultureInfo.InvariantCulture);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // that thread just exited
                    }
                }

                return sum;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                return null;
            }
        }
    }

    /// <summary>The balancer role: a <see cref="WorkerBalancer"/> over Python workers, driven through stdin and stdout.</summary>
    /// <remarks>
    /// stdout: <c>ready ENDPOINT PID,PID…</c> once every worker is ready; <c>cpu SELF_NS WORKERS_NS READY</c> for each
    /// <c>cpu</c> line on stdin (this process's CPU time, its ready workers' summed CPU time, how many are ready);
    /// <c>stats key=value…</c> when stdin closes (or on SIGTERM), before it stops its workers and exits.
    /// </remarks>
    internal static class Roles
    {
        public const string Product = "bench";
        public const string Service = "Worker";

        public static async Task<int> BalancerAsync(string[] args)
        {
            if (!args.Contains("--no-inline"))
            {
                ProxyServer.UseInlineSocketCompletions(); // as `trellis balancer` does, before any socket exists
            }

            var workers = Cli.Int(args, "--workers", 1, 1, 256);
            var listen = RpcEndpoint.Parse(Cli.Required(args, "--listen"));
            var python = Cli.Required(args, "--python");
            var script = Cli.Required(args, "--script");
            var logger = new StderrLogger(args.Contains("--verbose") ? LogLevel.Information : LogLevel.Warning);
            var options = new BalancerOptions
            {
                Service = Service,
                Command = $"'{python}' '{script}' --socket {{socket}}",
                Workers = workers,
                SocketDirectory = Cli.Required(args, "--socket-dir"),
                StopTimeout = TimeSpan.FromSeconds(3),
            };
            var front = new ProxyOptions { Product = Product, DefaultTimeout = TimeSpan.FromSeconds(10) };
            front.Listen.Add(listen);
            var registration = new BalancerRegistration { DeregisterDelay = TimeSpan.Zero, DrainTimeout = TimeSpan.FromSeconds(5) };
            await using var balancer = new WorkerBalancer(options, front, (IServiceRegistry?)null, registration, logger);
            await balancer.StartAsync();

            var until = Stopwatch.GetTimestamp() + 60 * Stopwatch.Frequency;
            while (balancer.Workers.Count(w => w.State == WorkerState.Ready) < workers)
            {
                if (Stopwatch.GetTimestamp() > until)
                {
                    Console.Error.WriteLine($"error: {balancer.Workers.Count(w => w.State == WorkerState.Ready)} of {workers} workers ready after 60 s");
                    return 3;
                }

                await Task.Delay(20);
            }

            Console.WriteLine($"ready {balancer.Endpoints[0]} {string.Join(',', ReadyPids(balancer))}");
            await Control.RunAsync(line =>
            {
                if (line != "cpu")
                {
                    return null;
                }

                var pids = ReadyPids(balancer);
                var workersNs = pids.Sum(pid => CpuTime.Of(pid) ?? 0);
                return string.Create(CultureInfo.InvariantCulture, $"cpu {CpuTime.Self()} {workersNs} {pids.Count}");
            });

            var s = balancer.Stats;
            var all = balancer.Workers;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stats calls={s.Calls} replies={s.Replies} timeouts={s.Timeouts} backend_failures={s.BackendFailures} unknown_service={s.UnknownService} " +
                $"bad_frames={s.BadFrames} overloaded={balancer.Overloaded} queued={balancer.Queued} restarts={balancer.Restarts} recycled={balancer.Recycled} " +
                $"killed={balancer.Killed} ready={all.Count(w => w.State == WorkerState.Ready)} worker_calls={string.Join('/', all.Select(w => w.Calls))}"));
            return 0; // disposing the balancer stops the workers (SIGTERM, SIGKILL after 3 s)
        }

        private static List<int> ReadyPids(WorkerBalancer balancer) =>
            [.. balancer.Workers.Where(w => w.State == WorkerState.Ready && w.Pid > 0).Select(w => w.Pid)];
    }

    /// <summary>Answers lines on stdin until it closes (the driver closed it or died) or SIGTERM / SIGINT arrives.</summary>
    internal static class Control
    {
        public static async Task RunAsync(Func<string, string?> answer)
        {
            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            var reader = new Thread(() =>
            {
                try
                {
                    while (Console.In.ReadLine() is { } line)
                    {
                        if (answer(line.Trim()) is { } reply)
                        {
                            Console.WriteLine(reply);
                        }
                    }
                }
                catch (IOException)
                {
                    // a broken stdin is an end too
                }

                stop.TrySetResult();
            })
            { IsBackground = true, Name = "stdin control" };
            reader.Start();
            await stop.Task;
        }
    }

    /// <summary>A balancer role process: <see cref="ReadyAsync"/>, then <see cref="CpuAsync"/> per round, then <see cref="StopForCountersAsync"/>.</summary>
    /// <remarks>The shared <see cref="Child"/> (bench/Shared) with this role's own stdout lines: <c>ready ENDPOINT PIDS</c> and the <c>cpu</c> answers.</remarks>
    internal sealed class BalancerChild : Child
    {
        private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly SemaphoreSlim _query = new(1, 1);
        private TaskCompletionSource<string>? _cpu;

        private BalancerChild(string name, Process process, int workers)
            : base(name, process) => Workers = workers;

        public int Workers { get; }

        public RpcEndpoint? Endpoint { get; private set; }

        /// <summary>This program again (the apphost, or <c>dotnet this.dll</c>) with <paramref name="arguments"/>.</summary>
        public static BalancerChild StartSelf(string name, int workers, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment) =>
            new(name, LaunchSelf(name, arguments, environment), workers);

        /// <summary>Waits for <c>ready ENDPOINT PIDS</c>; returns the workers' pids.</summary>
        public async Task<string> ReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            var line = await _ready.Task.WaitAsync(timeout, cancellationToken);
            var parts = line.Split(' ', 2);
            Endpoint = RpcEndpoint.Parse(parts[0]);
            return parts.Length > 1 ? parts[1] : "";
        }

        /// <summary>The balancer process's CPU time and its workers' (ns), and how many workers are ready.</summary>
        public async Task<(long Self, long Workers, int Ready)> CpuAsync()
        {
            await _query.WaitAsync();
            try
            {
                var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                Volatile.Write(ref _cpu, answer);
                await WriteLineAsync("cpu");
                var parts = (await answer.Task.WaitAsync(TimeSpan.FromSeconds(10))).Split(' ');
                return (long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
            }
            finally
            {
                _query.Release();
            }
        }

        /// <summary><see cref="Child.StopAsync"/>, its <c>stats</c> line read as key → value (null when it gives none in time).</summary>
        public async Task<Dictionary<string, string>?> StopForCountersAsync(TimeSpan timeout) =>
            await StopAsync(timeout) is { } stats
                ? stats.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : "", StringComparer.Ordinal)
                : null;

        protected override void OnLine(string line)
        {
            if (line.StartsWith("ready ", StringComparison.Ordinal))
            {
                _ready.TrySetResult(line["ready ".Length..]);
            }
            else if (line.StartsWith("cpu ", StringComparison.Ordinal))
            {
                Volatile.Read(ref _cpu)?.TrySetResult(line["cpu ".Length..]);
            }
            else
            {
                base.OnLine(line); // stats, or relayed to stderr
            }
        }

        protected override void OnEnd()
        {
            _ready.TrySetException(new InvalidOperationException($"{Name} ended before its workers were ready (see its output above)"));
            Volatile.Read(ref _cpu)?.TrySetException(new InvalidOperationException($"{Name} ended"));
            base.OnEnd();
        }
    }

    /// <summary>What the callers call: <c>echo</c> of a short unique string, or <c>sleep(ms)</c>; <see cref="Check"/>(text sent, reply) is null when the reply is right, else what is wrong.</summary>
    internal sealed record Workload(string Name, string Title, Func<Worker.Client, string, CancellationToken, Task<string>> Call, Func<string, string, string?> Check);

    /// <summary>One way to the workers with its own callers' connections (each one call at a time).</summary>
    internal sealed class BenchPath(string name, int workers, int connections, RpcEndpoint endpoint, BalancerChild? balancer, Child? direct, int id)
    {
        public string Name { get; } = name;

        public int Workers { get; } = workers;

        public int Connections { get; } = connections;

        public RpcEndpoint Endpoint { get; } = endpoint;

        /// <summary>The balancer on this path (null: direct to one worker).</summary>
        public BalancerChild? Balancer { get; } = balancer;

        /// <summary>The worker called directly (null: through a balancer).</summary>
        public Child? Direct { get; } = direct;

        /// <summary>Distinguishes this path's echo payloads from the others'.</summary>
        public int Id { get; } = id;

        public List<(ThriftChannel Channel, Worker.Client Client)> Open { get; } = [];

        /// <summary>Calls sent this way in all (warm-up and failed calls included), to compare with the balancer's counters.</summary>
        public long Sent;

        public long Errors;

        public ConcurrentQueue<string> FirstErrors { get; } = new();

        public string Label => Balancer is null ? $"direct (1 worker, {Connections} conn)" : $"balancer {Workers} worker{(Workers == 1 ? "" : "s")}, {Connections} conn{(Connections == 1 ? "" : "s")}";

        public void Connect()
        {
            for (var i = 0; i < Connections; i++)
            {
                var channel = new ThriftChannel(new ThriftChannelOptions
                {
                    Endpoint = Endpoint,
                    Encoding = ThriftEncoding.FramedBinary,
                    // direct: a stock TSimpleServer (bare names, one call at a time on its one connection);
                    // balancer: a Trellis front end, named Worker:method as a Trellis caller does
                    Multiplexed = Balancer is not null,
                    PeerMultiplexesCalls = Balancer is not null,
                    MaxConnections = 1,
                    DefaultTimeout = TimeSpan.FromSeconds(10), // a stall shows as failed calls, not a hung run
                });
                Open.Add((channel, new Worker.Client(channel)));
            }
        }

        public void Error(string what)
        {
            if (Interlocked.Increment(ref Errors) <= 10)
            {
                FirstErrors.Enqueue(what);
            }
        }
    }

    /// <summary>
    /// One round's (or the rounds' median) figures. CPU: µs per call of the balancer process, of the worker processes
    /// (the one called directly, or the balancer's), and of the load generator (this process); NaN where none.
    /// </summary>
    internal readonly record struct Figures(double Rate, double P50, double P99, double BalancerCpu, double WorkerCpu, double DriverCpu, long Calls, long Errors);

    internal static class Load
    {
        /// <summary>
        /// Every connection of the path one call at a time for <paramref name="duration"/> (the shared
        /// <see cref="EchoLoad"/> loop, payloads <c>{path}.{conn}.{seq}</c>), with the CPU each process used meanwhile.
        /// </summary>
        public static async Task<Figures> RunAsync(BenchPath path, Workload workload, TimeSpan duration, CancellationToken cancellationToken)
        {
            var prefixes = Enumerable.Range(0, path.Open.Count).Select(i => string.Create(CultureInfo.InvariantCulture, $"{path.Id}.{i}.")).ToArray();
            var (balancerBefore, workersBefore) = await CpuAsync(path);
            var driverBefore = CpuTime.Self();
            var r = await EchoLoad.RunAsync(
                path.Open.Count,
                (i, text, ct) => workload.Call(path.Open[i].Client, text, ct),
                (i, seq) => prefixes[i] + seq.ToString(CultureInfo.InvariantCulture),
                workload.Check,
                duration,
                what => path.Error($"{workload.Name}: {what}"),
                () => Interlocked.Increment(ref path.Sent),
                cancellationToken);
            var driverNs = CpuTime.Self() - driverBefore;
            var (balancerAfter, workersAfter) = await CpuAsync(path);

            var calls = r.Calls + r.Errors;
            double PerCall(long? before, long? after) => before is { } b && after is { } a && calls > 0 ? (a - b) / 1000.0 / calls : double.NaN;
            return new Figures(r.Rate, r.P50, r.P99,
                PerCall(balancerBefore, balancerAfter), PerCall(workersBefore, workersAfter), PerCall(0, driverNs), r.Calls, r.Errors);
        }

        /// <summary>The balancer's and the workers' CPU time so far (ns); null where unknown.</summary>
        private static async Task<(long? Balancer, long? Workers)> CpuAsync(BenchPath path)
        {
            if (path.Balancer is { } balancer)
            {
                var (self, workers, ready) = await balancer.CpuAsync();
                return (self, ready == path.Workers ? workers : null);
            }

            return (null, path.Direct is { } direct ? CpuTime.Of(direct.Pid) : null);
        }
    }

    internal static class Driver
    {
        /// <summary>Balancer counters that a clean run leaves at 0.</summary>
        private static readonly string[] MustBeZero = ["timeouts", "backend_failures", "unknown_service", "bad_frames", "overloaded", "queued", "restarts", "recycled", "killed"];

        public static async Task<int> RunAsync(string[] args)
        {
            var quick = args.Contains("--quick");
            var rounds = Cli.Int(args, "--rounds", quick ? 1 : 3, 1, 100);
            var seconds = Cli.Double(args, "--seconds", quick ? 0.5 : 3.0);
            var warmup = Cli.Double(args, "--warmup", quick ? 0.2 : 1.0);
            var workerCounts = Cli.Ints(args, "--workers", "1,2,4", 1, 64);
            var connections = Cli.Int(args, "--connections", 8, 1, 1024);
            var sleepMs = Cli.Int(args, "--sleep-ms", 5, 0, 10_000);
            var frontKind = Cli.Value(args, "--front") ?? "unix";
            if (frontKind is not ("unix" or "tcp"))
            {
                throw new ArgumentException($"--front takes unix or tcp, not '{frontKind}'");
            }

            var python = Cli.Value(args, "--python") ?? "/usr/bin/python3";
            var balancerEnvironment = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var assignment in Cli.Values(args, "--balancer-env"))
            {
                var eq = assignment.IndexOf('=', StringComparison.Ordinal);
                balancerEnvironment[eq > 0 ? assignment[..eq] : throw new ArgumentException($"--balancer-env takes NAME=VALUE, not '{assignment}'")] = assignment[(eq + 1)..];
            }

            var script = Path.Combine(AppContext.BaseDirectory, "samples", "python-worker", "worker.py");
            if (!File.Exists(script))
            {
                Console.Error.WriteLine($"error: {script} is missing (the build copies samples/python-worker next to the program)");
                return 2;
            }

            if (await PythonVersionAsync(python) is not { } pythonVersion)
            {
                Console.Error.WriteLine($"error: {python} cannot import Apache Thrift's `thrift` module. The workers need Debian's python3-thrift");
                Console.Error.WriteLine("       for /usr/bin/python3 (sudo apt-get install -y python3-thrift thrift-compiler; scripts/setup.sh does it), or pass --python PATH.");
                return 2;
            }

            Workload[] workloads =
            [
                new("echo", "echo of a short string (`{path}.{conn}.{seq}`, ~10 B, every reply compared): a handler that does nothing, so per-call costs (Python's, the balancer's, the caller's) are all there is",
                    (client, text, ct) => client.EchoAsync(text, ct), EchoLoad.SameText),
                new($"sleep({sleepMs})", $"sleep({sleepMs}): a {sleepMs} ms handler that holds its worker but not a core: pure scaling (at most {(sleepMs == 0 ? "∞" : (1000.0 / sleepMs).ToString("0", CultureInfo.InvariantCulture))} calls/s per worker)",
                    (client, _, ct) => client.SleepAsync(sleepMs, ct), (_, reply) => reply == $"slept {sleepMs}" ? null : $"wrong reply: '{reply}', not 'slept {sleepMs}'"),
            ];

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

            var temp = Directory.CreateTempSubdirectory("trellis-bench-bal-");
            var children = new List<Child>();
            var paths = new List<BenchPath>();
            var clock = Stopwatch.StartNew();
            try
            {
                var startup = TimeSpan.FromSeconds(60);
                var verbose = args.Contains("--verbose") ? new[] { "--verbose" } : [];
                var noInline = args.Contains("--no-inline") ? new[] { "--no-inline" } : [];

                // the worker called directly: started by this process, on its own socket
                var directSocket = Path.Combine(temp.FullName, "direct.sock");
                var direct = Child.Start("direct worker", python, [script, "--socket", directSocket]);
                children.Add(direct);

                // one balancer per worker count (and one of 1 worker for the sequential comparison), all started at once
                var balancers = new Dictionary<int, BalancerChild>();
                foreach (var n in workerCounts.Append(1).Distinct().Order())
                {
                    var listen = frontKind == "unix" ? $"unix://{Path.Combine(temp.FullName, $"b{n}.sock")}" : "tcp://127.0.0.1:0";
                    var child = BalancerChild.StartSelf($"balancer-{n}", n,
                        ["--role", "balancer", "--workers", n.ToString(CultureInfo.InvariantCulture), "--listen", listen,
                         "--socket-dir", Path.Combine(temp.FullName, $"w{n}"), "--python", python, "--script", script, .. verbose, .. noInline], balancerEnvironment);
                    children.Add(child);
                    balancers[n] = child;
                }

                await direct.WaitAcceptingAsync(new UnixDomainSocketEndPoint(directSocket), startup, ct);
                var pidsOf = new Dictionary<int, string>();
                foreach (var (n, child) in balancers)
                {
                    pidsOf[n] = await child.ReadyAsync(startup, ct);
                }

                var started = clock.Elapsed.TotalSeconds;
                var id = 1;
                paths.Add(new BenchPath("direct", 1, 1, RpcEndpoint.Unix(directSocket), null, direct, id++));
                paths.Add(new BenchPath("balancer", 1, 1, balancers[1].Endpoint!, balancers[1], null, id++));
                var sequential = paths.Count;
                foreach (var n in workerCounts)
                {
                    paths.Add(new BenchPath("balancer", n, connections, balancers[n].Endpoint!, balancers[n], null, id++));
                }

                foreach (var path in paths)
                {
                    path.Connect();
                }

                Console.WriteLine($"Balancer bench: Python workers (samples/python-worker: TSimpleServer, framed binary; {pythonVersion}) behind `trellis balancer` (WorkerBalancer, worker_pool_size 1); {Environment.ProcessorCount} cores");
                Console.WriteLine($"Each row: median of {rounds} × {seconds:0.###} s (after {warmup:0.###} s warm-up); the rows take turns within a round. Callers: Trellis ThriftChannel, one call at a time per connection; front end on {frontKind}{(noInline.Length > 0 ? "" : ", inline socket completions as `trellis balancer`")}" +
                    (balancerEnvironment.Count > 0 ? $"; balancer environment: {string.Join(' ', balancerEnvironment.Select(e => $"{e.Key}={e.Value}"))}" : ""));
                Console.WriteLine($"Processes: load generator pid {Environment.ProcessId}; direct worker pid {direct.Pid} on {directSocket}; " +
                    string.Join("; ", balancers.Select(b => $"balancer-{b.Key} pid {b.Value.Pid} on {b.Value.Endpoint} (workers {pidsOf[b.Key]})")) +
                    $"; all up in {started:F1} s");

                var tables = new List<(Workload Workload, Figures[] Rows)>();
                foreach (var workload in workloads)
                {
                    tables.Add((workload, await MeasureAsync(paths, workload, rounds, seconds, warmup, ct)));
                }

                foreach (var (workload, rows) in tables)
                {
                    Console.WriteLine();
                    Console.WriteLine($"### {workload.Title}");
                    Console.WriteLine();
                    Console.WriteLine("| path | workers | conns | calls/s | vs direct | vs 1 worker | p50 µs | added p50 | p99 µs | balancer CPU µs/call | workers CPU µs/call | load-gen CPU µs/call | failed |");
                    Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                    var directRow = rows[0];
                    var one = Enumerable.Range(sequential, paths.Count - sequential).FirstOrDefault(p => paths[p].Workers == 1, -1);
                    for (var p = 0; p < paths.Count; p++)
                    {
                        var (path, f) = (paths[p], rows[p]);
                        var vsDirect = p < sequential ? Share(f.Rate, directRow.Rate) : "";
                        var vsOne = p >= sequential && one >= 0 ? Share(f.Rate, rows[one].Rate) : "";
                        var added = p == 0 ? "—" : p < sequential ? Added(f.P50, directRow.P50) : "";
                        Console.WriteLine($"| {path.Name} | {path.Workers} | {path.Connections} | {N(f.Rate)} | {vsDirect} | {vsOne} | {N(f.P50)} | {added} | {N(f.P99)} | {C(f.BalancerCpu)} | {C(f.WorkerCpu)} | {C(f.DriverCpu)} | {f.Errors} |");
                    }
                }

                Console.WriteLine();
                Console.WriteLine("Summary:");
                foreach (var (workload, rows) in tables)
                {
                    var (d, b) = (rows[0], rows[1]);
                    Console.WriteLine($"- {workload.Name}, balancer overhead per call (1 worker, 1 connection, sequential): p50 {Added(b.P50, d.P50)} ({N(d.P50)} → {N(b.P50)} µs), " +
                        $"calls/s {Share(b.Rate, d.Rate)} direct ({N(d.Rate)} → {N(b.Rate)}), balancer CPU {C(b.BalancerCpu)} µs/call (the worker's own: {C(d.WorkerCpu)} µs/call direct, {C(b.WorkerCpu)} via the balancer)");
                    var concurrent = Enumerable.Range(sequential, paths.Count - sequential).ToArray();
                    var baseline = concurrent.FirstOrDefault(p => paths[p].Workers == 1, -1);
                    Console.WriteLine($"- {workload.Name}, {connections} connections: " + string.Join(", ", concurrent.Select(p =>
                        $"{paths[p].Workers} worker{(paths[p].Workers == 1 ? "" : "s")} {N(rows[p].Rate)} calls/s{(baseline >= 0 && p != baseline ? $" ({Share(rows[p].Rate, rows[baseline].Rate)})" : "")}")) +
                        $"; balancer CPU {string.Join(" / ", concurrent.Select(p => C(rows[p].BalancerCpu)))} µs/call");
                }

                // stop the balancers gracefully to read their counters, and compare them with what was sent
                Console.WriteLine();
                var failed = false;
                foreach (var (n, child) in balancers)
                {
                    var sent = paths.Where(p => p.Balancer == child).Sum(p => Interlocked.Read(ref p.Sent));
                    var stats = await child.StopForCountersAsync(TimeSpan.FromSeconds(20));
                    if (stats is null)
                    {
                        Console.WriteLine($"balancer-{n}: sent {sent:N0}; no counters (it did not stop cleanly)");
                        failed = true;
                        continue;
                    }

                    var problems = new List<string>();
                    long Get(string key) => stats.TryGetValue(key, out var v) && long.TryParse(v, CultureInfo.InvariantCulture, out var x) ? x : -1;
                    if (Get("calls") != sent || Get("replies") != sent)
                    {
                        problems.Add($"it took {Get("calls")} calls and replied {Get("replies")}, not the {sent} sent");
                    }

                    foreach (var key in MustBeZero.Where(k => Get(k) != 0))
                    {
                        problems.Add($"{key}={Get(key)}");
                    }

                    failed |= problems.Count > 0;
                    Console.WriteLine($"balancer-{n}: sent {sent:N0} (warm-up included); counters: {string.Join(' ', stats.Select(kv => $"{kv.Key}={kv.Value}"))}" +
                        (problems.Count > 0 ? $" — WRONG: {string.Join("; ", problems)}" : " — consistent"));
                }

                foreach (var path in paths.Where(p => p.Errors > 0))
                {
                    failed = true;
                    Console.WriteLine($"{path.Label}: {path.Errors:N0} failed or wrong calls; first ones:");
                    foreach (var what in path.FirstErrors)
                    {
                        Console.WriteLine($"  {what}");
                    }
                }

                Console.WriteLine($"Total time {clock.Elapsed.TotalSeconds:F1} s{(failed ? "; FAILED" : "")}");
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
                foreach (var (channel, _) in paths.SelectMany(p => p.Open))
                {
                    await channel.DisposeAsync();
                }

                for (var i = children.Count - 1; i >= 0; i--)
                {
                    children[i].Dispose(); // the balancers' whole trees: their workers too
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
        /// Warms every path up with this workload (on the first workload this opens the connections), then runs the
        /// rounds, the paths taking turns in a rotating order so the machine's noise falls on all of them alike.
        /// Each figure: its median over the rounds.
        /// </summary>
        private static async Task<Figures[]> MeasureAsync(List<BenchPath> paths, Workload workload, int rounds, double seconds, double warmup, CancellationToken ct)
        {
            foreach (var path in paths)
            {
                var w = await Load.RunAsync(path, workload, TimeSpan.FromSeconds(warmup), ct);
                Console.Error.WriteLine($"{workload.Name}, warm-up, {path.Label}: {N(w.Rate)} calls/s, p50 {N(w.P50)} µs, {w.Errors} failed");
            }

            var results = paths.Select(_ => new List<Figures>()).ToArray();
            for (var round = 0; round < rounds; round++)
            {
                for (var k = 0; k < paths.Count; k++)
                {
                    var p = (round + k) % paths.Count;
                    var f = await Load.RunAsync(paths[p], workload, TimeSpan.FromSeconds(seconds), ct);
                    results[p].Add(f);
                    Console.Error.WriteLine($"{workload.Name}, round {round + 1}/{rounds}, {paths[p].Label}: {N(f.Rate)} calls/s, p50 {N(f.P50)} p99 {N(f.P99)} µs, " +
                        $"CPU µs/call balancer {C(f.BalancerCpu)} workers {C(f.WorkerCpu)} load-gen {C(f.DriverCpu)}, {f.Errors} failed");
                }
            }

            return [.. results.Select(r => new Figures(
                EchoLoad.Median(r.Select(f => f.Rate)), EchoLoad.Median(r.Select(f => f.P50)), EchoLoad.Median(r.Select(f => f.P99)),
                EchoLoad.Median(r.Select(f => f.BalancerCpu)), EchoLoad.Median(r.Select(f => f.WorkerCpu)), EchoLoad.Median(r.Select(f => f.DriverCpu)),
                r.Sum(f => f.Calls), r.Sum(f => f.Errors)))];
        }

        private static string N(double value) => double.IsNaN(value) ? "n/a" : value.ToString("N0", CultureInfo.InvariantCulture);

        private static string C(double value) => double.IsNaN(value) ? "—" : value.ToString("0.0", CultureInfo.InvariantCulture);

        private static string Share(double value, double of) =>
            double.IsNaN(value) || double.IsNaN(of) || of <= 0 ? "n/a" : (value / of).ToString("0.00", CultureInfo.InvariantCulture) + "×";

        private static string Added(double value, double baseline) =>
            double.IsNaN(value) || double.IsNaN(baseline) ? "n/a" : (value - baseline).ToString("+0;-0;+0", CultureInfo.InvariantCulture) + " µs";

        /// <summary>The interpreter's and python3-thrift's versions, or null when it cannot import <c>thrift</c>.</summary>
        private static async Task<string?> PythonVersionAsync(string python)
        {
            try
            {
                var info = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                info.ArgumentList.Add("-c");
                info.ArgumentList.Add("import sys, thrift\ntry:\n    from importlib.metadata import version; v = version('thrift')\nexcept Exception:\n    v = '?'\nprint('python %s, thrift %s' % (sys.version.split()[0], v))");
                using var process = Process.Start(info);
                if (process is null)
                {
                    return null;
                }

                var output = await process.StandardOutput.ReadToEndAsync();
                await process.StandardError.ReadToEndAsync();
                await process.WaitForExitAsync();
                return process.ExitCode == 0 ? $"{python}: {output.Trim()}" : null;
            }
            catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                return null;
            }
        }

    }
}
