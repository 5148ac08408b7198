using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Trellis.Bench;
using Trellis.Bench.Scale;
using Trellis.Proxy;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Testing;
using Trellis.ZooKeeper;

// Scale of one Trellis proxy: 1,000 services x 10 instances in the registry (ZooKeeper and the local registry),
// 10,000 idle client connections, and 100 registry changes per second under load. The proxy is its own process
// (this program again with --role proxy: a real ProxyServer, nothing else but a small probe on stdin/stdout), so
// its memory, threads and CPU are its own. See README.md.
try
{
    return Cli.Value(args, "--role") switch
    {
        null => await Driver.RunAsync(args),
        "proxy" => await ProxyRole.RunAsync(args),
        var other => Cli.Fail($"unknown role '{other}'"),
    };
}
catch (ArgumentException e)
{
    return Cli.Fail(e.Message);
}

namespace Trellis.Bench.Scale
{
    /// <summary>Raises the soft open-file limit to the hard one (10,000 connections need 10,000 descriptors on each side).</summary>
    internal static class FileLimit
    {
        [StructLayout(LayoutKind.Sequential)]
        private struct RLimit
        {
            public ulong Current;
            public ulong Max;
        }

        private const int RlimitNofile = 7;

        [DllImport("libc", SetLastError = true)]
        private static extern int getrlimit(int resource, out RLimit limit);

        [DllImport("libc", SetLastError = true)]
        private static extern int setrlimit(int resource, ref RLimit limit);

        /// <summary>The soft limit after raising it as far as allowed.</summary>
        public static ulong Raise()
        {
            if (getrlimit(RlimitNofile, out var limit) != 0)
            {
                return 0;
            }

            if (limit.Current < limit.Max)
            {
                var raised = limit with { Current = limit.Max };
                if (setrlimit(RlimitNofile, ref raised) == 0)
                {
                    return raised.Current;
                }
            }

            return limit.Current;
        }
    }

    /// <summary>Figures of a process from /proc.</summary>
    internal static class ProcStatus
    {
        public static long RssKb(int pid) => Field(pid, "VmRSS:");

        public static long Threads(int pid) => Field(pid, "Threads:");

        private static long Field(int pid, string name)
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(name, StringComparison.Ordinal))
                {
                    return long.Parse(line[name.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }

            return -1;
        }

        /// <summary>The process's threads by name (/proc/PID/task/*/comm), the most common first: "name ×N, …".</summary>
        public static string ThreadNames(int pid, int top = 4)
        {
            var names = new List<string>();
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    names.Add(File.ReadAllText(Path.Combine(task, "comm")).Trim());
                }
                catch (IOException)
                {
                    // the thread ended
                }
            }

            return string.Join(", ", names.GroupBy(n => n).OrderByDescending(g => g.Count()).Take(top).Select(g => $"{g.Key} ×{g.Count()}"));
        }

        /// <summary>utime + stime in seconds.</summary>
        public static double CpuSeconds(int pid)
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // after "pid (comm) ": state is field 3, utime field 14, stime field 15
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return ticks / 100.0; // USER_HZ is 100 on Linux
        }
    }

    /// <summary>
    /// The proxy under measurement: a real <see cref="ProxyServer"/> on TCP and a Unix socket, with ZooKeeper
    /// (<c>--zk</c>) or the local registry (<c>--local</c>). Commands on stdin, answers on stdout:
    /// <c>mem</c> (a full GC, then the managed heap), <c>routes</c> (services routed and instances in them),
    /// <c>expect ID SERVICE INSTANCE present:W|absent</c> (answers <c>armed ID</c>, then <c>applied ID TICKS</c> with the
    /// Stopwatch timestamp at which the proxy's balancer first showed it; polled every millisecond).
    /// </summary>
    internal static class ProxyRole
    {
        private static readonly Lock Out = new();

        private static void Say(string line)
        {
            lock (Out)
            {
                Console.Out.WriteLine(line);
                Console.Out.Flush();
            }
        }

        private sealed record Expectation(string Id, string Service, string Instance, int? Weight);

        public static async Task<int> RunAsync(string[] args)
        {
            ProxyServer.UseInlineSocketCompletions(); // as `trellis proxy` does
            FileLimit.Raise();
            var logger = new StderrLogger(args.Contains("--verbose") ? LogLevel.Information : LogLevel.Warning);
            var options = new ProxyOptions { Product = Driver.Product };
            options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
            options.Listen.Add(RpcEndpoint.Unix(Cli.Required(args, "--uds")));
            Func<CancellationToken, Task<IServiceRegistry>> connect = Cli.Value(args, "--zk") is { } zk
                ? async ct => await ZooKeeperRegistry.ConnectAsync(new ZooKeeperOptions { ConnectString = zk, SessionTimeout = TimeSpan.FromSeconds(20) }, ct)
                : ct => Task.FromResult<IServiceRegistry>(new LocalRegistry(Cli.Required(args, "--local"), logger: logger));
            await using var proxy = new ProxyServer(options, connect, logger);
            await proxy.StartAsync();
            while (!proxy.RegistryConnected)
            {
                await Task.Delay(10);
            }

            var tcp = proxy.Endpoints.First(e => !e.IsUnix);
            Say($"listening {tcp.Port}");

            var pending = new List<Expectation>();
            var wake = new SemaphoreSlim(0);
            var poller = new Thread(() =>
            {
                while (true)
                {
                    Expectation[] now;
                    lock (pending)
                    {
                        now = [.. pending];
                    }

                    if (now.Length == 0)
                    {
                        wake.Wait();
                        continue;
                    }

                    var routes = proxy.Routes;
                    var stamp = Stopwatch.GetTimestamp();
                    foreach (var e in now)
                    {
                        var endpoints = routes.TryGetValue(e.Service, out var list) ? list : [];
                        var found = endpoints.FirstOrDefault(x => x.Instance.InstanceId == e.Instance);
                        if (e.Weight is { } w ? found is not null && found.Instance.Weight == w : found is null)
                        {
                            lock (pending)
                            {
                                pending.Remove(e);
                            }

                            Say($"applied {e.Id} {stamp}");
                        }
                    }

                    Thread.Sleep(1);
                }
            })
            { IsBackground = true, Name = "scale probe" };
            poller.Start();

            string? line;
            while ((line = await Console.In.ReadLineAsync()) is not null)
            {
                var parts = line.Split(' ');
                switch (parts[0])
                {
                    case "mem":
                        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                        GC.WaitForPendingFinalizers();
                        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                        Say($"mem {GC.GetTotalMemory(false)}");
                        break;
                    case "routes":
                        var routes = proxy.Routes;
                        Say($"routes {routes.Count} {routes.Values.Sum(r => r.Count)}");
                        break;
                    case "expect":
                        var weight = parts[4].StartsWith("present:", StringComparison.Ordinal) ? int.Parse(parts[4]["present:".Length..], CultureInfo.InvariantCulture) : (int?)null;
                        lock (pending)
                        {
                            pending.Add(new Expectation(parts[1], parts[2], parts[3], weight));
                        }

                        wake.Release();
                        Say($"armed {parts[1]}");
                        break;
                    case "stats":
                        var s = proxy.Stats;
                        Say($"stats calls={s.Calls} replies={s.Replies} timeouts={s.Timeouts} backend_failures={s.BackendFailures} " +
                            $"no_instance={s.NoInstance} unknown_service={s.UnknownService} open_connections={s.Connections} backend_connections={proxy.BackendConnectionCount}");
                        break;
                    default:
                        break;
                }
            }

            return 0;
        }
    }

    /// <summary>The backend: a real Trellis server with one service, so it answers the bare <c>echo</c> the proxy sends to a non-multiplexed instance.</summary>
    internal sealed class EchoHandler : Echo.IAsync
    {
        private long _calls;

        public long Calls => Interlocked.Read(ref _calls);

        public Task<string> EchoAsync(string? text, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult(text ?? "");
        }
    }

    /// <summary>A minimal framed-binary caller: one call at a time, any <c>service:method</c> name, every reply checked.</summary>
    internal sealed class RawCaller : IDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private int _seq;

        private RawCaller(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
        }

        public static async Task<RawCaller> ConnectAsync(EndPoint endpoint)
        {
            var socket = endpoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endpoint);
            return new RawCaller(socket);
        }

        /// <summary>Calls <c>service:echo(text)</c>; null when the reply is the text, else what went wrong.</summary>
        public async Task<string?> EchoAsync(string service, string text, CancellationToken cancellationToken)
        {
            var seq = ++_seq;
            var name = Encoding.UTF8.GetBytes(service + ":echo");
            var payload = Encoding.UTF8.GetBytes(text);
            var frame = new byte[4 + 4 + 4 + name.Length + 4 + 1 + 2 + 4 + payload.Length + 1];
            var p = 4;
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(p), 0x80010001); p += 4;
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(p), name.Length); p += 4;
            name.CopyTo(frame, p); p += name.Length;
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(p), seq); p += 4;
            frame[p++] = 11;
            BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(p), 1); p += 2;
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(p), payload.Length); p += 4;
            payload.CopyTo(frame, p); p += payload.Length;
            frame[p++] = 0;
            BinaryPrimitives.WriteInt32BigEndian(frame, p - 4);
            await _stream.WriteAsync(frame, cancellationToken);

            var header = new byte[4];
            await _stream.ReadExactlyAsync(header, cancellationToken);
            var length = BinaryPrimitives.ReadInt32BigEndian(header);
            if (length is <= 0 or > 1 << 20)
            {
                return $"bad frame length {length}";
            }

            var body = new byte[length];
            await _stream.ReadExactlyAsync(body, cancellationToken);
            var r = 0;
            var version = BinaryPrimitives.ReadUInt32BigEndian(body); r += 4;
            var nameLength = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(r)); r += 4 + nameLength;
            var replySeq = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(r)); r += 4;
            if ((version & 0xff) != 2)
            {
                // an exception: its message is the first string field
                return $"exception from {service}: {Encoding.UTF8.GetString(body, r, body.Length - r).Trim('\0')}";
            }

            if (replySeq != seq)
            {
                return $"seqid {replySeq}, expected {seq}";
            }

            if (body[r] != 11 || BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(r + 1)) != 0)
            {
                return "no success field";
            }

            var textLength = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(r + 3));
            var got = Encoding.UTF8.GetString(body, r + 7, textLength);
            return got == text ? null : $"reply '{got}' to '{text}'";
        }

        public void Dispose() => _stream.Dispose();
    }

    /// <summary>The proxy role, seen from the driver: its stdout lines are answers to commands and probe results.</summary>
    internal sealed class ProxyChild : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly Dictionary<string, TaskCompletionSource<string>> _waiting = new(StringComparer.Ordinal);
        private readonly Lock _lock = new();
        private readonly Task _reader;
        private readonly Task _errors;
        private readonly TaskCompletionSource<int> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private ProxyChild(Process process)
        {
            _process = process;
            _reader = Task.Run(ReadAsync);
            _errors = Task.Run(async () =>
            {
                string? line;
                while ((line = await _process.StandardError.ReadLineAsync()) is not null)
                {
                    Console.Error.WriteLine($"[proxy] {line}");
                }
            });
        }

        public int Pid => _process.Id;

        public int TcpPort { get; private set; }

        public static async Task<ProxyChild> StartAsync(IEnumerable<string> arguments)
        {
            var host = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown");
            var info = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            {
                info.ArgumentList.Add(typeof(ProxyChild).Assembly.Location);
            }

            info.ArgumentList.Add("--role");
            info.ArgumentList.Add("proxy");
            foreach (var argument in arguments)
            {
                info.ArgumentList.Add(argument);
            }

            var child = new ProxyChild(Process.Start(info) ?? throw new InvalidOperationException("could not start the proxy role"));
            child.TcpPort = await child._listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            return child;
        }

        private async Task ReadAsync()
        {
            string? line;
            while ((line = await _process.StandardOutput.ReadLineAsync()) is not null)
            {
                var parts = line.Split(' ', 2);
                if (parts[0] == "listening")
                {
                    _listening.TrySetResult(int.Parse(parts[1], CultureInfo.InvariantCulture));
                    continue;
                }

                // "mem X", "routes X Y", "stats ...": keyed by the word; "armed ID", "applied ID T": keyed by word and id
                var key = parts[0] is "armed" or "applied" ? parts[0] + " " + parts[1].Split(' ')[0] : parts[0];
                TaskCompletionSource<string>? waiter;
                lock (_lock)
                {
                    if (!_waiting.Remove(key, out waiter))
                    {
                        waiter = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                        _waiting[key] = waiter; // the answer came first
                    }
                }

                var value = parts.Length < 2 ? "" : parts[0] is "armed" or "applied" ? (parts[1].Split(' ', 2) is [_, var rest] ? rest : "") : parts[1];
                waiter.TrySetResult(value);
            }

            _listening.TrySetException(new InvalidOperationException("the proxy role exited before listening"));
        }

        private Task<string> Await(string key)
        {
            lock (_lock)
            {
                if (_waiting.Remove(key, out var done))
                {
                    return done.Task;
                }

                var waiter = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting[key] = waiter;
                return waiter.Task;
            }
        }

        private void Send(string line)
        {
            lock (_lock)
            {
                _process.StandardInput.WriteLine(line);
                _process.StandardInput.Flush();
            }
        }

        public async Task<string> AskAsync(string command)
        {
            var answer = Await(command);
            Send(command);
            return await answer.WaitAsync(TimeSpan.FromSeconds(60));
        }

        /// <summary>Arms a probe; the returned task completes with the Stopwatch timestamp at which the proxy showed the change.</summary>
        public async Task<Task<long>> ExpectAsync(string id, string service, string instance, int? weight)
        {
            var armed = Await("armed " + id);
            var applied = Await("applied " + id);
            Send($"expect {id} {service} {instance} {(weight is { } w ? "present:" + w.ToString(CultureInfo.InvariantCulture) : "absent")}");
            await armed.WaitAsync(TimeSpan.FromSeconds(30));
            return applied.ContinueWith(t => long.Parse(t.Result, CultureInfo.InvariantCulture), TaskScheduler.Default);
        }

        public long RssKb => ProcStatus.RssKb(Pid);

        public long Threads => ProcStatus.Threads(Pid);

        public double CpuSeconds => ProcStatus.CpuSeconds(Pid);

        public async Task<long> HeapAsync() => long.Parse(await AskAsync("mem"), CultureInfo.InvariantCulture);

        public async ValueTask DisposeAsync()
        {
            try
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
                _process.Kill(entireProcessTree: true);
            }

            await Task.WhenAny(Task.WhenAll(_reader, _errors), Task.Delay(2000));
            _process.Dispose();
        }
    }
}

namespace Trellis.Bench.Scale
{
    /// <summary>Writes instance records into the registry under test, as many instances would.</summary>
    internal interface IRegistryWriter : IAsyncDisposable
    {
        string Name { get; }

        IReadOnlyList<string> ProxyArguments { get; }

        Task PopulateAsync(IReadOnlyList<ServiceInstance> instances);

        Task AddAsync(ServiceInstance instance);

        Task UpdateAsync(ServiceInstance instance);

        Task RemoveAsync(string service, string instanceId);
    }

    /// <summary>ZooKeeper: a real server started here; records are ephemeral nodes of the driver's session, created in multi batches.</summary>
    internal sealed class ZooKeeperWriter(ZooKeeperEnsemble ensemble, ZooKeeperClient client) : IRegistryWriter
    {
        public string Name => "ZooKeeper";

        public IReadOnlyList<string> ProxyArguments => ["--zk", ensemble.ConnectString];

        public static async Task<ZooKeeperWriter> StartAsync()
        {
            var ensemble = await ZooKeeperEnsemble.StartAsync(size: 1, tickTimeMs: 500);
            var client = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(20) });
            return new ZooKeeperWriter(ensemble, client);
        }

        public async Task PopulateAsync(IReadOnlyList<ServiceInstance> instances)
        {
            foreach (var path in new[] { RegistryPaths.Root, $"{RegistryPaths.Root}/{Driver.Product}", $"{RegistryPaths.Root}/{Driver.Product}/services" })
            {
                await client.CreateAsync(path, Array.Empty<byte>());
            }

            // one multi per 20 services (their two directories and their instances): ~70 KB, well under jute.maxbuffer
            var batches = instances.GroupBy(i => i.Service).Chunk(20).Select(services => services.SelectMany(service => new[]
            {
                Op.Create(RegistryPaths.Service(Driver.Product, service.Key), Array.Empty<byte>()),
                Op.Create(RegistryPaths.Instances(Driver.Product, service.Key), Array.Empty<byte>()),
            }.Concat(service.Select(i => Op.Create(RegistryPaths.Instance(i.Product, i.Service, i.InstanceId), i.ToJson(), CreateMode.Ephemeral)))).ToList()).ToList();
            using var gate = new SemaphoreSlim(8);
            await Task.WhenAll(batches.Select(async batch =>
            {
                await gate.WaitAsync();
                try
                {
                    await client.MultiAsync(batch);
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        public Task AddAsync(ServiceInstance instance) =>
            client.CreateAsync(RegistryPaths.Instance(instance.Product, instance.Service, instance.InstanceId), instance.ToJson(), CreateMode.Ephemeral);

        public Task UpdateAsync(ServiceInstance instance) =>
            client.SetDataAsync(RegistryPaths.Instance(instance.Product, instance.Service, instance.InstanceId), instance.ToJson());

        public Task RemoveAsync(string service, string instanceId) => client.DeleteAsync(RegistryPaths.Instance(Driver.Product, service, instanceId));

        public async ValueTask DisposeAsync()
        {
            await client.DisposeAsync();
            await ensemble.DisposeAsync();
        }
    }

    /// <summary>The local registry: one file per instance in a temp directory, each registration renewing its lease as an instance does.</summary>
    internal sealed class LocalWriter(string root) : IRegistryWriter
    {
        private readonly LocalRegistry _registry = new(root);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IRegistration> _registrations = new(StringComparer.Ordinal);

        public string Name => "local registry";

        public IReadOnlyList<string> ProxyArguments => ["--local", root];

        public async Task PopulateAsync(IReadOnlyList<ServiceInstance> instances)
        {
            foreach (var instance in instances)
            {
                await AddAsync(instance);
            }
        }

        public async Task AddAsync(ServiceInstance instance) =>
            _registrations[instance.Service + "/" + instance.InstanceId] = await _registry.RegisterAsync(instance);

        public Task UpdateAsync(ServiceInstance instance) => _registrations[instance.Service + "/" + instance.InstanceId].UpdateAsync(instance);

        public async Task RemoveAsync(string service, string instanceId)
        {
            if (_registrations.TryRemove(service + "/" + instanceId, out var registration))
            {
                await registration.DeregisterAsync();
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var registration in _registrations.Values)
            {
                await registration.DeregisterAsync();
            }

            await _registry.DisposeAsync();
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // a temp directory left behind is harmless
            }
        }
    }

    internal sealed record Row(string Part, string Figure, string Measured, string Goal, string Verdict);

    internal static class Driver
    {
        public const string Product = "scale";

        private static readonly List<Row> Rows = [];
        private static readonly List<string> Failures = [];
        private static int _probeIds;
        private static int[] _ports = [];
        private static string? _hold; // --hold FILE: with everything routed, wait until FILE exists (to inspect the proxy)

        private static void Add(string part, string figure, string measured, string goal = "", bool? met = null) =>
            Rows.Add(new Row(part, figure, measured, goal, met switch { true => "met", false => "NOT met", null => "" }));

        private static void Fail(string message)
        {
            Failures.Add(message);
            Console.Error.WriteLine($"FAIL: {message}");
        }

        private static void Say(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

        public static ServiceInstance Record(string service, string id, int weight = 100) => new()
        {
            Product = Product,
            Service = service,
            InstanceId = id,
            Host = "127.0.0.1",
            Port = _ports[(int)((uint)HashCode.Combine(service, id) % (uint)_ports.Length)],
            Multiplexed = false, // the proxy sends the bare method name, which the one-service backend takes
            Weight = weight,
            Pid = Environment.ProcessId,
            StartedAt = DateTimeOffset.UtcNow,
            Version = "1.0.0",
            Tags = new Dictionary<string, string> { ["build"] = "scale-bench" },
        };

        private static string Svc(int i) => $"svc{i:D4}";

        public static async Task<int> RunAsync(string[] args)
        {
            var quick = args.Contains("--quick");
            var services = Cli.Int(args, "--services", quick ? 100 : 1000, 1, 10_000);
            var perService = Cli.Int(args, "--instances", 10, 1, 100);
            var connections = Cli.Int(args, "--connections", quick ? 1000 : 10_000, 0, 100_000);
            var changes = Cli.Int(args, "--changes", quick ? 5 : 100, 1, 100_000);
            var churnSeconds = Cli.Double(args, "--churn-seconds", quick ? 3 : 30);
            var churnRate = Cli.Int(args, "--churn-rate", 100, 1, 10_000);
            var idleSeconds = Cli.Double(args, "--idle-seconds", quick ? 1 : 5);
            _hold = Cli.Value(args, "--hold");
            var registries = (Cli.Value(args, "--registry") ?? "zk,local").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var limit = FileLimit.Raise();
            Say($"{services} services x {perService} instances, {connections} idle connections, churn {churnRate}/s for {churnSeconds} s; " +
                $"{Environment.ProcessorCount} cores, open-file limit {limit}");
            if (limit < (ulong)connections + 1000)
            {
                Fail($"the open-file limit {limit} is below the {connections} connections asked for (raise the hard limit: ulimit -Hn)");
                return 1;
            }

            var temp = Directory.CreateTempSubdirectory("trellis-scale-").FullName;
            var servers = new List<ThriftServer>();
            var handlers = new List<EchoHandler>();
            try
            {
                for (var i = 0; i < 4; i++)
                {
                    var handler = new EchoHandler();
                    var options = new ThriftServerOptions { MaxConcurrentCalls = 100_000 };
                    options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
                    var server = new ThriftServer(options).AddService(new Echo.Dispatcher(handler));
                    await server.StartAsync();
                    servers.Add(server);
                    handlers.Add(handler);
                }

                _ports = [.. servers.Select(s => s.Endpoints[0].Port)];
                var idleDone = false;
                foreach (var kind in registries)
                {
                    await using IRegistryWriter writer = kind switch
                    {
                        "zk" or "zookeeper" => await ZooKeeperWriter.StartAsync(),
                        "local" => new LocalWriter(Path.Combine(temp, "registry")),
                        _ => throw new ArgumentException($"--registry takes zk and local, not '{kind}'"),
                    };
                    await RunRegistryAsync(writer, Path.Combine(temp, $"proxy-{kind}.sock"), services, perService, changes, idleSeconds,
                        idleDone ? 0 : connections, churnSeconds, churnRate);
                    idleDone = true;
                }
            }
            finally
            {
                foreach (var server in servers)
                {
                    await server.DisposeAsync();
                }

                try
                {
                    Directory.Delete(temp, recursive: true);
                }
                catch (IOException)
                {
                    // harmless
                }
            }

            Console.WriteLine();
            Console.WriteLine($"## Trellis proxy at scale ({(quick ? "quick run: scaled down, figures not comparable with the goals" : "full run")}; {Environment.ProcessorCount} cores, shared machine)");
            Console.WriteLine();
            Console.WriteLine("| part | figure | measured | goal | |");
            Console.WriteLine("|---|---|---:|---|---|");
            foreach (var row in Rows)
            {
                Console.WriteLine($"| {row.Part} | {row.Figure} | {row.Measured} | {row.Goal} | {row.Verdict} |");
            }

            Console.WriteLine();
            if (Failures.Count > 0)
            {
                Console.WriteLine($"{Failures.Count} correctness failure(s):");
                foreach (var failure in Failures.Take(20))
                {
                    Console.WriteLine($"  - {failure}");
                }

                return 1;
            }

            Console.WriteLine("correctness: every service routed with all its instances, every change applied, no call failed");
            return 0;
        }

        private static async Task RunRegistryAsync(IRegistryWriter writer, string uds, int services, int perService, int changes, double idleSeconds,
            int connections, double churnSeconds, int churnRate)
        {
            var part = writer.Name;
            var all = Enumerable.Range(0, services).SelectMany(s => Enumerable.Range(0, perService).Select(i => Record(Svc(s), $"i{i}"))).ToList();
            var started = Stopwatch.GetTimestamp();
            await writer.PopulateAsync(all);
            Say($"{part}: {all.Count} instances registered in {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s");

            await using var proxy = await ProxyChild.StartAsync([.. writer.ProxyArguments, "--uds", uds]);
            var tcp = new IPEndPoint(IPAddress.Loopback, proxy.TcpPort);

            // baseline: one service routed (the code paths are loaded), then the others
            using (var first = await RawCaller.ConnectAsync(tcp))
            {
                if (await first.EchoAsync(Svc(0), "warm", CancellationToken.None) is { } problem)
                {
                    Fail($"{part}: {Svc(0)}: {problem}");
                }
            }

            var heap0 = await proxy.HeapAsync();
            var rss0 = proxy.RssKb;
            var threads0 = proxy.Threads;

            started = Stopwatch.GetTimestamp();
            var next = 0;
            var failed = 0;
            await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
            {
                using var caller = await RawCaller.ConnectAsync(tcp);
                int s;
                while ((s = Interlocked.Increment(ref next)) < services)
                {
                    if (await caller.EchoAsync(Svc(s), "hello " + s, CancellationToken.None) is { } problem)
                    {
                        if (Interlocked.Increment(ref failed) <= 5)
                        {
                            Fail($"{part}: first call to {Svc(s)}: {problem}");
                        }
                    }
                }
            }));
            var routeSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;

            // every service routed with every instance (the first list may still be arriving for the last ones)
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            int[] routes;
            while (true)
            {
                routes = [.. (await proxy.AskAsync("routes")).Split(' ').Select(x => int.Parse(x, CultureInfo.InvariantCulture))];
                if ((routes[0] == services && routes[1] == all.Count) || DateTime.UtcNow > deadline)
                {
                    break;
                }

                await Task.Delay(100);
            }

            var allRoutedSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var complete = routes[0] == services && routes[1] == all.Count;
            if (!complete)
            {
                Fail($"{part}: the proxy routes {routes[0]} services with {routes[1]} instances, expected {services} with {all.Count}" +
                    (failed > 0 ? $"; {failed} first calls failed" : ""));
            }

            var heap1 = await proxy.HeapAsync();
            var rss1 = proxy.RssKb;
            var threads1 = proxy.Threads;
            var added = Math.Max(1, routes[1] - perService); // the instances routed after the baseline's one service
            Say($"{part}: {services} services routed in {routeSeconds:F1} s (all instances in {allRoutedSeconds:F1} s); heap {heap0 / 1e6:F1} -> {heap1 / 1e6:F1} MB, " +
                $"RSS {rss0 / 1024.0:F1} -> {rss1 / 1024.0:F1} MB, threads {threads0} -> {threads1}");
            Add(part, $"services routed (first call each, 16 callers)", $"{routes[0]:N0} / {routes[1]:N0} instances in {allRoutedSeconds:F1} s", $"{services:N0} / {all.Count:N0}", routes[0] == services && routes[1] == all.Count);
            Add(part, "proxy RSS with all routed", $"{rss1 / 1024.0:F1} MB", all.Count >= 10_000 ? "< 100 MB for 10k instances" : "", all.Count >= 10_000 ? rss1 < 100 * 1024 : null);
            Add(part, "managed heap with all routed (after full GC)", $"{heap1 / 1e6:F1} MB");
            Add(part, $"RSS per instance (Δ over {added:N0})", $"{(rss1 - rss0) * 1024.0 / added:N0} B", "< 10 KB (100 MB / 10k)", (rss1 - rss0) * 1024.0 / added < 10_240);
            Add(part, $"heap per instance (Δ over {added:N0})", $"{(heap1 - heap0) / (double)added:N0} B");
            Add(part, "proxy threads: 1 service -> all routed", $"{threads0} -> {threads1}", "no thread per service", threads1 - threads0 < 20);
            Say($"{part}: the proxy's threads by name: {ProcStatus.ThreadNames(proxy.Pid)}");
            if (_hold is not null)
            {
                Say($"{part}: holding with everything routed: the proxy is PID {proxy.Pid}; create {_hold} to go on");
                while (!File.Exists(_hold))
                {
                    await Task.Delay(200);
                }

                File.Delete(_hold);
            }

            if (!complete)
            {
                Say($"{part}: not every service is routed; the rest of this registry's parts are skipped");
                return;
            }

            // idle CPU with everything routed and nothing changing
            var cpu0 = proxy.CpuSeconds;
            await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
            var idleCpu = (proxy.CpuSeconds - cpu0) / idleSeconds;
            Add(part, $"proxy CPU while idle ({idleSeconds:F0} s, nothing changing)", $"{idleCpu * 100:F1}% of a core");

            // update latency: add an instance, change its weight, remove it, on random services; one change at a time
            List<double> adds = [], updates = [], removes = [];
            var random = new Random(11);
            for (var c = 0; c < changes; c++)
            {
                var service = Svc(random.Next(services));
                var id = $"x{c}";
                adds.Add(await ChangeAsync(proxy, part, service, id, 50, () => writer.AddAsync(Record(service, id, 50))));
                updates.Add(await ChangeAsync(proxy, part, service, id, 70, () => writer.UpdateAsync(Record(service, id, 70))));
                removes.Add(await ChangeAsync(proxy, part, service, id, null, () => writer.RemoveAsync(service, id)));
            }

            LatencyRows(part, $"update latency, {changes * 3} changes one at a time on random services", adds, updates, removes);

            // idle again, after the changes: the first window can include the runtime's own settling (tiered JIT, GC)
            cpu0 = proxy.CpuSeconds;
            await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
            Add(part, $"proxy CPU while idle, second window ({idleSeconds:F0} s)", $"{(proxy.CpuSeconds - cpu0) / idleSeconds * 100:F1}% of a core");

            if (connections > 0)
            {
                await IdleConnectionsAsync(proxy, "TCP 127.0.0.1", tcp, connections);
                await IdleConnectionsAsync(proxy, "Unix socket", new UnixDomainSocketEndPoint(uds), connections);
            }

            await ChurnAsync(proxy, writer, part, tcp, Math.Min(services, 5), churnSeconds, churnRate);
            Say($"{part}: proxy {await proxy.AskAsync("stats")}");
        }

        /// <summary>
        /// Added and updated instances are judged against the goal; removals are shown apart: the proxy's resolver holds a
        /// removed instance for 500 ms on purpose (flapping protection, RegistryResolver's removalHoldDown), so a removal
        /// shows after 500 ms plus the propagation time.
        /// </summary>
        private static void LatencyRows(string part, string what, List<double> adds, List<double> updates, List<double> removes)
        {
            var (p50, p99, max) = Percentiles([.. adds, .. updates]);
            Add(part, $"{what}: add + update p50 / p99 / max", $"{p50:F1} / {p99:F1} / {max:F1} ms", "< 100 ms", p99 < 100);
            var (r50, r99, rmax) = Percentiles(removes);
            Add(part, $"{what}: remove p50 / p99 / max (incl. the 500 ms hold-down)", $"{r50:F1} / {r99:F1} / {rmax:F1} ms", "≤ 500 ms hold-down + 100 ms", r99 < 600);
        }

        private static async Task<double> ChangeAsync(ProxyChild proxy, string part, string service, string id, int? weight, Func<Task> change)
        {
            var probe = Interlocked.Increment(ref _probeIds).ToString(CultureInfo.InvariantCulture);
            var applied = await proxy.ExpectAsync(probe, service, id, weight);
            var t0 = Stopwatch.GetTimestamp();
            await change();
            try
            {
                var t1 = await applied.WaitAsync(TimeSpan.FromSeconds(10));
                return Math.Max(0, Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
            }
            catch (TimeoutException)
            {
                Fail($"{part}: {service}/{id} {(weight is { } w ? "with weight " + w : "removed")}: not applied at the proxy within 10 s");
                return 10_000;
            }
        }

        private static (double P50, double P99, double Max) Percentiles(List<double> values)
        {
            if (values.Count == 0)
            {
                return (0, 0, 0);
            }

            var sorted = values.Order().ToArray();
            return (sorted[(int)(sorted.Length * 0.50)], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))], sorted[^1]);
        }

        private static async Task<int> OpenConnectionsAsync(ProxyChild proxy)
        {
            var stats = await proxy.AskAsync("stats");
            var field = stats.Split(' ').First(f => f.StartsWith("open_connections=", StringComparison.Ordinal));
            return int.Parse(field["open_connections=".Length..], CultureInfo.InvariantCulture);
        }

        private static async Task IdleConnectionsAsync(ProxyChild proxy, string transport, EndPoint endpoint, int count)
        {
            var part = $"{count:N0} idle connections, {transport}";
            var open0 = await OpenConnectionsAsync(proxy);
            var heap0 = await proxy.HeapAsync();
            var rss0 = proxy.RssKb;
            var threads0 = proxy.Threads;
            var sockets = new Socket[count];
            var started = Stopwatch.GetTimestamp();
            var next = -1;
            var backlogFull = 0;
            await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    var socket = endpoint is UnixDomainSocketEndPoint
                        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                        : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    for (var attempt = 0; ; attempt++)
                    {
                        try
                        {
                            await socket.ConnectAsync(endpoint);
                            break;
                        }
                        catch (SocketException e) when (e.SocketErrorCode is SocketError.TryAgain or SocketError.WouldBlock && attempt < 2000)
                        {
                            // a Unix socket's backlog (512) is full: the proxy has not accepted the burst yet
                            Interlocked.Increment(ref backlogFull);
                            await Task.Delay(5);
                        }
                    }

                    sockets[i] = socket;
                }
            }));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            int open;
            while ((open = await OpenConnectionsAsync(proxy)) < open0 + count && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            var connectSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            if (open < open0 + count)
            {
                Fail($"{part}: the proxy counts {open - open0} open connections of {count}");
            }

            await Task.Delay(1000); // let the accept burst settle
            var heap1 = await proxy.HeapAsync();
            var rss1 = proxy.RssKb;
            var threads1 = proxy.Threads;

            // a call with them all open
            var calls = new List<double>();
            using (var caller = await RawCaller.ConnectAsync(endpoint))
            {
                for (var i = 0; i < 20; i++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    if (await caller.EchoAsync(Svc(0), "busy " + i, CancellationToken.None) is { } problem)
                    {
                        Fail($"{part}: a call with the connections open: {problem}");
                    }

                    calls.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
            }

            foreach (var socket in sockets)
            {
                socket?.Dispose();
            }

            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (await OpenConnectionsAsync(proxy) > open0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            var rss2 = proxy.RssKb;
            var threads2 = proxy.Threads;
            var perConnection = (rss1 - rss0) * 1024.0 / count;
            var (p50, _, max) = Percentiles(calls);
            Say($"{part}: opened in {connectSeconds:F1} s ({backlogFull} connects retried: backlog full); RSS {rss0 / 1024.0:F1} -> {rss1 / 1024.0:F1} -> {rss2 / 1024.0:F1} MB (closed), threads {threads0} -> {threads1} -> {threads2}");
            Add(part, "RSS per idle connection ((RSS with N − RSS before) / N)", $"{perConnection / 1024:F1} KB", "< 20 KB", perConnection < 20 * 1024);
            Add(part, "managed heap per idle connection (after full GC)", $"{(heap1 - heap0) / (double)count / 1024:F1} KB");
            Add(part, "proxy threads: before -> N open -> closed", $"{threads0} -> {threads1} -> {threads2}", "no thread per connection", threads1 - threads0 < 20);
            Add(part, "20 calls with all N open: p50 / max", $"{p50:F2} / {max:F2} ms", "prompt", max < 100);
        }

        private static async Task ChurnAsync(ProxyChild proxy, IRegistryWriter writer, string part, EndPoint tcp, int churnServices, double seconds, int rate)
        {
            // each of 4 slots per churned service cycles: add (weight 50) -> update (weight 70) -> remove
            // enough slots that one comes round again only after ~800 ms: a removal takes the 500 ms hold-down to show
            var perService = Math.Max(4, (int)Math.Ceiling(rate * 0.8 / churnServices));
            var slots = Enumerable.Range(0, churnServices * perService).Select(i => (Service: Svc(i % churnServices), Id: $"churn{i / churnServices}", Step: 0, Busy: Task.CompletedTask)).ToArray();
            var latencies = new List<double>();
            List<double> adds = [], updates = [], removes = [];
            var skipped = 0;
            using var stop = new CancellationTokenSource();
            long calls = 0, failedCalls = 0;
            var callLatencies = new List<double>();
            var load = Enumerable.Range(0, 4).Select(async n =>
            {
                using var caller = await RawCaller.ConnectAsync(tcp);
                var mine = new List<double>();
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    string? problem;
                    try
                    {
                        problem = await caller.EchoAsync(Svc((n + i) % churnServices), $"churn {n}.{i}", CancellationToken.None);
                    }
                    catch (Exception e) when (e is IOException or SocketException)
                    {
                        problem = e.Message;
                    }

                    mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    Interlocked.Increment(ref calls);
                    if (problem is not null)
                    {
                        Interlocked.Increment(ref failedCalls);
                        Fail($"{part}: a call during churn: {problem}");
                        if (problem.Contains("frame", StringComparison.Ordinal) || problem.Contains("reset", StringComparison.Ordinal))
                        {
                            break;
                        }
                    }
                }

                lock (callLatencies)
                {
                    callLatencies.AddRange(mine);
                }
            }).ToArray();

            var cpu0 = proxy.CpuSeconds;
            var started = Stopwatch.GetTimestamp();
            var interval = Stopwatch.Frequency / rate;
            var total = (int)(seconds * rate);
            var changeTasks = new List<Task>();
            for (var k = 0; k < total; k++)
            {
                var due = started + k * interval;
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait);
                }

                var index = k % slots.Length;
                if (!slots[index].Busy.IsCompleted)
                {
                    skipped++; // its previous change is still in flight
                    continue;
                }

                var (service, id, step, _) = slots[index];
                Task<double> change = (step % 3) switch
                {
                    0 => ChangeAsync(proxy, part, service, id, 50, () => writer.AddAsync(Record(service, id, 50))),
                    1 => ChangeAsync(proxy, part, service, id, 70, () => writer.UpdateAsync(Record(service, id, 70))),
                    _ => ChangeAsync(proxy, part, service, id, null, () => writer.RemoveAsync(service, id)),
                };
                var kindList = (step % 3) switch { 0 => adds, 1 => updates, _ => removes };
                var recorded = change.ContinueWith(t =>
                {
                    lock (latencies)
                    {
                        latencies.Add(t.Result);
                        kindList.Add(t.Result);
                    }
                }, TaskScheduler.Default);
                slots[index] = (service, id, step + 1, recorded);
                changeTasks.Add(recorded);
            }

            await Task.WhenAll(changeTasks);
            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpu = (proxy.CpuSeconds - cpu0) / elapsed;
            await stop.CancelAsync();
            await Task.WhenAll(load);
            var (c50, c99, cmax) = Percentiles(callLatencies);
            var name = $"{part}, churn";
            Say($"{name}: {latencies.Count} changes in {elapsed:F1} s ({skipped} skipped), {calls} calls, {failedCalls} failed; proxy CPU {cpu * 100:F1}%");
            Add(name, $"changes applied ({rate}/s asked, {churnServices} services)", $"{latencies.Count:N0} in {elapsed:F1} s = {latencies.Count / elapsed:F0}/s" + (skipped > 0 ? $" ({skipped} skipped: previous still pending)" : ""), $"{rate}/s", latencies.Count / elapsed >= rate * 0.9);
            LatencyRows(name, "update latency", adds, updates, removes);
            Add(name, "proxy CPU (utime+stime / wall, incl. the calls and the 1 ms probe)", $"{cpu * 100:F1}% of a core");
            Add(name, "calls through the proxy meanwhile (4 callers): failed / total", $"{failedCalls:N0} / {calls:N0}", "0 failed", failedCalls == 0);
            Add(name, "those calls p50 / p99 / max", $"{c50:F2} / {c99:F2} / {cmax:F1} ms");

            // leave the churned services as they were: remove what is still registered
            for (var i = 0; i < slots.Length; i++)
            {
                if (slots[i].Step % 3 != 0)
                {
                    try
                    {
                        await writer.RemoveAsync(slots[i].Service, slots[i].Id);
                    }
                    catch (NoNodeException)
                    {
                        // already gone
                    }
                }
            }
        }
    }
}
