using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Spectre.Console;
using Trellis.Cli.Demo;
using Trellis.Proxy;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;
using Trellis.ZooKeeper;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis demo</c>: the whole system on one machine in under a minute. Instances of a sample service (each its own
/// process) register in the embedded local registry (or ZooKeeper with <c>--zk</c>); a proxy routes a client's calls
/// over them; the calls' spread is shown live; then one instance stops gracefully, another is killed, a new one
/// starts, and the calls keep succeeding. Exit code 0 when every call succeeded.
/// </summary>
internal static class DemoCommand
{
    private const string Product = "demo";
    private const string Service = "Greeter";

    public static Command Create()
    {
        var zk = new Option<string?>("--zk") { Description = "Run on ZooKeeper (host:port,…) instead of the embedded local registry" };
        var seconds = new Option<int>("--seconds") { Description = "How long the scripted run lasts", DefaultValueFactory = _ => 40 };
        var follow = new Option<bool>("--follow") { Description = "Keep running after the script, until Ctrl-C" };
        var instances = new Option<int>("--instances") { Description = "Instances started at first (at least 3)", DefaultValueFactory = _ => 3 };
        var demo = new Command("demo", "Start a sample service, a proxy and a client; watch calls spread, survive a graceful stop and a crash") { zk, seconds, follow, instances };
        demo.SetAction(async (r, ct) =>
        {
            if (r.GetValue(seconds) is < 10 or > 3600 || r.GetValue(instances) is < 3 or > 20)
            {
                await Console.Error.WriteLineAsync("trellis demo: --seconds must be 10 to 3600 and --instances 3 to 20").ConfigureAwait(false);
                return 2;
            }

            return await new DemoRun(r.GetValue(zk), TimeSpan.FromSeconds(r.GetValue(seconds)), r.GetValue(follow), r.GetValue(instances)).RunAsync(ct).ConfigureAwait(false);
        });

        // one instance of the sample service, started by the demo as a child process
        var registryDir = new Option<string?>("--local-registry") { Description = "The local registry's directory" };
        var id = new Option<string>("--id") { Description = "Instance id", Required = true };
        var zone = new Option<string>("--zone") { Description = "Zone", DefaultValueFactory = _ => "" };
        var instance = new Command("instance", "Run one instance of the demo's sample service (started by trellis demo)") { zk, registryDir, id, zone };
        instance.Hidden = true;
        instance.SetAction(async (r, ct) => await RunInstanceAsync(r.GetValue(zk), r.GetValue(registryDir), r.GetValue(id)!, r.GetValue(zone)!).ConfigureAwait(false));
        demo.Subcommands.Add(instance);
        return demo;
    }

    private sealed class GreeterService(string instanceId) : Greeter.IAsync
    {
        public async Task<string> GreetAsync(string? name, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Random.Shared.Next(1, 4), cancellationToken).ConfigureAwait(false); // a little work
            return $"hello {name} from {instanceId}";
        }
    }

    /// <summary>An instance: serves, registers, says "ready", and stops gracefully on SIGTERM or when its parent goes (stdin closes).</summary>
    private static async Task<int> RunInstanceAsync(string? zk, string? registryDir, string id, string zone)
    {
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        _ = Task.Run(async () =>
        {
            // the demo holds our stdin: when it is gone (even killed), so are we
            await Console.In.ReadToEndAsync().ConfigureAwait(false);
            await stop.CancelAsync().ConfigureAwait(false);
        });

        await using var registry = await ConnectAsync(zk, registryDir).ConfigureAwait(false);
        var options = new ThriftServerOptions { Product = Product, DefaultService = Service };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        await using var server = new ThriftServer(options).AddService(new Greeter.Dispatcher(new GreeterService(id)));
        await using var host = new ServiceHost(server, registry.Inner, [Service], new ServiceHostOptions
        {
            Product = Product,
            InstanceId = id,
            AdvertisedHost = "127.0.0.1",
            Zone = zone,
            DeregisterDelay = TimeSpan.FromSeconds(1),
            DrainTimeout = TimeSpan.FromSeconds(5),
        });
        await host.StartAsync().ConfigureAwait(false);
        Console.WriteLine("ready " + server.Endpoints[0].Port);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // asked to stop
        }

        await host.StopAsync().ConfigureAwait(false); // deregister, let callers notice, drain the calls in flight
        return 0;
    }

    private static async Task<OwnedRegistry> ConnectAsync(string? zk, string? registryDir) =>
        zk is not null
            ? new OwnedRegistry(await ZooKeeperRegistry.ConnectAsync(new ZooKeeperOptions { ConnectString = zk }).ConfigureAwait(false))
            : new OwnedRegistry(new LocalRegistry(registryDir, lease: TimeSpan.FromSeconds(2)));

    /// <summary>A registry of either kind, closed with the demo.</summary>
    private sealed class OwnedRegistry(IServiceRegistry inner) : IAsyncDisposable
    {
        public IServiceRegistry Inner => inner;

        public ValueTask DisposeAsync() => inner is IAsyncDisposable d ? d.DisposeAsync() : ValueTask.CompletedTask;
    }

    /// <summary>The orchestration: the registry, instances as child processes, the proxy, the client, the script, the display.</summary>
    private sealed class DemoRun(string? zk, TimeSpan duration, bool follow, int initial)
    {
        private readonly string _registryDir = Path.Combine(Path.GetTempPath(), "trellis-demo-" + Guid.NewGuid().ToString("N")[..8]);
        private readonly Dictionary<string, Instance> _instances = new(StringComparer.Ordinal);
        private readonly List<string> _events = [];
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _ok;
        private long _failed;
        private readonly Dictionary<string, int> _failures = new(StringComparer.Ordinal);
        private readonly List<double> _latencies = [];

        private sealed class Instance(string id, string zone, Process process)
        {
            public string Id { get; } = id;
            public string Zone { get; } = zone;
            public Process Process { get; } = process;
            public string State { get; set; } = "starting";
            public long Calls;
            public long LastCalls;
            public double Rate;
        }

        public async Task<int> RunAsync(CancellationToken cancellationToken)
        {
            if (Console.IsOutputRedirected)
            {
                // a log, not a terminal: plain text, a line every two seconds
                AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
                AnsiConsole.Console.Profile.Width = 160; // a log line is not wrapped at 80 columns
            }

            var interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
            AnsiConsole.MarkupLine($"[bold]trellis demo[/]: {(zk is null ? $"the embedded local registry in [blue]{Markup.Escape(_registryDir)}[/]" : $"ZooKeeper at [blue]{Markup.Escape(zk)}[/]")}, product [blue]{Product}[/], service [blue]{Service}[/]");
            await using var registry = await ConnectAsync(zk, _registryDir).ConfigureAwait(false);
            ProxyServer? proxy = null;
            ThriftChannel? channel = null;
            using var stopCalls = new CancellationTokenSource();
            var callers = new List<Task>();
            try
            {
                // the service's config, as an operator would set it: greet is safe to retry elsewhere
                if (registry.Inner is Rpc.Governance.IConfigStore store)
                {
                    await store.SetConfigAsync(Product, Service, Encoding.UTF8.GetBytes("""{ "strategy": "round_robin", "methods": { "greet": { "idempotent": true, "retries": 2, "timeoutMs": 3000 } } }"""),
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                    Event("config: round robin; greet is idempotent, 2 retries, 3 s timeout");
                }

                for (var i = 1; i <= initial; i++)
                {
                    await StartInstanceAsync($"greeter-{i}", i % 2 == 1 ? "zone-a" : "zone-b").ConfigureAwait(false);
                }

                var options = new ProxyOptions { Product = Product, DefaultTimeout = TimeSpan.FromSeconds(5) };
                options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
                proxy = new ProxyServer(options, registry.Inner);
                await proxy.StartAsync(cancellationToken).ConfigureAwait(false);
                Event($"proxy listening on {proxy.Endpoints[0]}");

                channel = new ThriftChannel(new ThriftChannelOptions
                {
                    Endpoint = proxy.Endpoints[0],
                    Encoding = new ThriftEncoding(ThriftFraming.Header, ThriftProtocol.Binary),
                    Multiplexed = true,
                    PeerMultiplexesCalls = true,
                    DefaultTimeout = TimeSpan.FromSeconds(5),
                    CallerProduct = Product,
                });
                var client = new Greeter.Client(channel);
                for (var c = 0; c < 4; c++)
                {
                    var caller = "client-" + c;
                    callers.Add(Task.Run(() => CallLoopAsync(client, caller, stopCalls.Token), CancellationToken.None));
                }

                Event("client: 4 callers through the proxy");
                var script = new (double At, string What, Func<Task> Act)[]
                {
                    (0.30, "graceful stop of greeter-1", () => StopGracefullyAsync("greeter-1")),
                    (0.55, "kill -9 of greeter-2", () => KillAsync("greeter-2")),
                    (0.70, "start of greeter-" + (initial + 1), () => StartInstanceAsync($"greeter-{initial + 1}", "zone-a")),
                };
                var next = 0;
                var refresh = TimeSpan.FromMilliseconds(interactive ? 500 : 2000);
                async Task Loop(Action? draw)
                {
                    while (!cancellationToken.IsCancellationRequested && (follow || _clock.Elapsed < duration))
                    {
                        while (next < script.Length && _clock.Elapsed >= duration * script[next].At)
                        {
                            Event(script[next].What);
                            await script[next].Act().ConfigureAwait(false);
                            next++;
                        }

                        await Task.Delay(refresh, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                        Sample(refresh);
                        draw?.Invoke();
                        if (!interactive)
                        {
                            PrintLine();
                        }
                    }
                }

                if (interactive)
                {
                    await AnsiConsole.Live(Render()).AutoClear(false).StartAsync(async live => await Loop(() => live.UpdateTarget(Render())).ConfigureAwait(false)).ConfigureAwait(false);
                }
                else
                {
                    await Loop(null).ConfigureAwait(false);
                }
            }
            finally
            {
                await stopCalls.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(callers).ConfigureAwait(false);
                if (channel is not null)
                {
                    await channel.DisposeAsync().ConfigureAwait(false);
                }

                if (proxy is not null)
                {
                    await proxy.DisposeAsync().ConfigureAwait(false);
                }

                foreach (var instance in _instances.Values)
                {
                    try
                    {
                        instance.Process.StandardInput.Close(); // it stops gracefully
                        if (!instance.Process.WaitForExit(TimeSpan.FromSeconds(8)))
                        {
                            instance.Process.Kill(entireProcessTree: true);
                        }
                    }
                    catch (Exception e) when (e is InvalidOperationException or IOException)
                    {
                        // already gone
                    }

                    instance.Process.Dispose();
                }

                if (zk is null)
                {
                    try
                    {
                        Directory.Delete(_registryDir, recursive: true);
                    }
                    catch (IOException)
                    {
                        // a late writer; it is in the temp directory
                    }
                }
            }

            return Summary();
        }

        private async Task CallLoopAsync(Greeter.Client client, string caller, CancellationToken stop)
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var reply = await client.GreetAsync(caller + "#" + n++, CancellationToken.None).ConfigureAwait(false);
                    var from = reply[(reply.LastIndexOf(' ') + 1)..];
                    lock (_instances)
                    {
                        Interlocked.Increment(ref _ok);
                        if (_instances.TryGetValue(from, out var instance))
                        {
                            instance.Calls++;
                        }

                        _latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    }
                }
                catch (Exception e) when (e is TException or IOException or TimeoutException)
                {
                    lock (_instances)
                    {
                        _failed++;
                        _failures[e.Message] = _failures.GetValueOrDefault(e.Message) + 1;
                    }
                }

                await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
            }
        }

        private async Task StartInstanceAsync(string id, string zone)
        {
            var (file, prefix) = SelfCommand();
            var start = new ProcessStartInfo(file)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in prefix.Concat(["demo", "instance", "--id", id, "--zone", zone]).Concat(zk is null ? ["--local-registry", _registryDir] : ["--zk", zk]))
            {
                start.ArgumentList.Add(arg);
            }

            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start an instance");
            var instance = new Instance(id, zone, process);
            lock (_instances)
            {
                _instances[id] = instance;
            }

            _ = process.StandardError.ReadToEndAsync();
            var ready = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            if (ready is null || !ready.StartsWith("ready ", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"instance {id} did not start");
            }

            instance.State = "serving";
            Event($"{id} serving on 127.0.0.1:{ready[6..]} ({zone}, pid {process.Id})");
        }

        /// <summary>The command line that runs this same trellis (the apphost, or <c>dotnet trellis.dll</c>).</summary>
        private static (string File, string[] Prefix) SelfCommand()
        {
            var path = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell how trellis was started");
            return Path.GetFileNameWithoutExtension(path) == "dotnet"
                ? (path, [typeof(DemoCommand).Assembly.Location])
                : (path, []);
        }

        private async Task StopGracefullyAsync(string id)
        {
            var instance = _instances[id];
            instance.State = "stopping";
            if (Trellis.Proxy.Balancer.Posix.Kill(instance.Process.Id, Trellis.Proxy.Balancer.Posix.SigTerm) != 0) // deregister, drain, exit
            {
                Event($"{id}: SIGTERM failed (errno {Marshal.GetLastPInvokeError()})");
            }

            _ = instance.Process.WaitForExitAsync().ContinueWith(_ =>
            {
                instance.State = "stopped";
                Event($"{id} stopped gracefully");
            }, TaskScheduler.Default);
            await Task.CompletedTask.ConfigureAwait(false);
        }

        private Task KillAsync(string id)
        {
            var instance = _instances[id];
            instance.Process.Kill(); // SIGKILL: no goodbye, its record stays until the registry notices
            instance.State = "killed";
            return Task.CompletedTask;
        }

        private void Event(string what)
        {
            lock (_events)
            {
                _events.Add($"{_clock.Elapsed.TotalSeconds,5:F1}s  {what}");
            }
        }

        private void Sample(TimeSpan interval)
        {
            lock (_instances)
            {
                foreach (var instance in _instances.Values)
                {
                    instance.Rate = (instance.Calls - instance.LastCalls) / interval.TotalSeconds;
                    instance.LastCalls = instance.Calls;
                }
            }
        }

        private Table Render()
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Service}[/] through the proxy — {_clock.Elapsed.TotalSeconds:F0}s of {(follow ? "∞" : duration.TotalSeconds.ToString("F0", System.Globalization.CultureInfo.InvariantCulture))}s");
            table.AddColumns("instance", "zone", "state", "calls", "calls/s", "");
            lock (_instances)
            {
                var max = Math.Max(1, _instances.Values.Max(i => i.Rate));
                foreach (var i in _instances.Values.OrderBy(i => i.Id, StringComparer.Ordinal))
                {
                    var color = i.State switch { "serving" => "green", "killed" => "red", _ => "yellow" };
                    table.AddRow(i.Id, i.Zone, $"[{color}]{i.State}[/]", i.Calls.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                        i.Rate.ToString("F0", System.Globalization.CultureInfo.InvariantCulture), new string('█', (int)(20 * i.Rate / max)));
                }

                table.Caption($"ok [green]{_ok:N0}[/]   failed [{(_failed == 0 ? "green" : "red")}]{_failed:N0}[/]\n" + Markup.Escape(string.Join("\n", _events.TakeLast(6))));
            }

            return table;
        }

        private void PrintLine()
        {
            lock (_instances)
            {
                var spread = string.Join("  ", _instances.Values.OrderBy(i => i.Id, StringComparer.Ordinal).Select(i => $"{i.Id}[{i.State}] {i.Rate:F0}/s"));
                Console.WriteLine($"{_clock.Elapsed.TotalSeconds,5:F1}s  ok {_ok}  failed {_failed}  {spread}");
            }

            lock (_events)
            {
                foreach (var e in _events)
                {
                    Console.WriteLine("       " + e);
                }

                _events.Clear();
            }
        }

        private int Summary()
        {
            double p50, p99;
            lock (_instances)
            {
                _latencies.Sort();
                p50 = _latencies.Count > 0 ? _latencies[_latencies.Count / 2] : 0;
                p99 = _latencies.Count > 0 ? _latencies[Math.Min(_latencies.Count - 1, (int)(_latencies.Count * 0.99))] : 0;
            }

            var table = new Table().Border(TableBorder.Rounded).Title("[bold]summary[/]").AddColumns("instance", "zone", "final state", "calls", "share");
            foreach (var i in _instances.Values.OrderBy(i => i.Id, StringComparer.Ordinal))
            {
                table.AddRow(i.Id, i.Zone, i.State, i.Calls.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                    (_ok == 0 ? 0 : (double)i.Calls / _ok).ToString("P0", System.Globalization.CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"{_ok + _failed:N0} calls in {_clock.Elapsed.TotalSeconds:F0} s: [green]{_ok:N0} ok[/], [{(_failed == 0 ? "green" : "red")}]{_failed:N0} failed[/]; latency p50 {p50:F1} ms, p99 {p99:F1} ms");
            foreach (var (message, count) in _failures.OrderByDescending(f => f.Value).Take(5))
            {
                AnsiConsole.MarkupLine($"  [red]{count}×[/] {Markup.Escape(message)}");
            }

            if (_failed == 0)
            {
                AnsiConsole.MarkupLine("[green]every call succeeded[/]: through a graceful stop, a crash and a new instance, the proxy kept each call on a live instance.");
                return 0;
            }

            return 1;
        }
    }
}
