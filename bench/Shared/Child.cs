using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

// Shared by the multi-process bench harnesses (Trellis.Bench.Proxy, Trellis.Bench.Suite, Trellis.Bench.Balancer): a
// child process that announces its port on stdout. A harness whose role speaks more on stdout (the balancer's
// `ready ENDPOINT PIDS` and `cpu` answers) derives from it and takes those lines in OnLine.
namespace Trellis.Bench
{
    /// <summary>A child process whose stdout announces <c>listening PORT</c> or <c>ready PORT</c> (and at the end <c>stats ...</c>); other output is relayed to stderr.</summary>
    /// <remarks>Killed with its whole process tree on dispose.</remarks>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1852", Justification = "Trellis.Bench.Balancer derives from it; the harnesses that do not would have it sealed")]
    internal class Child : IDisposable
    {
        private readonly Process _process;
        private readonly TaskCompletionSource<int> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<string> _stats = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _stdout;
        private readonly Task _stderr;

        protected Child(string name, Process process)
        {
            Name = name;
            _process = process;
            _stdout = Task.Run(ReadStdoutAsync);
            _stderr = Task.Run(() => RelayAsync(_process.StandardError));
        }

        public string Name { get; }

        public int Pid => _process.Id;

        public bool HasExited => _process.HasExited;

        /// <summary>
        /// Waits until <paramref name="endpoint"/> (TCP or a Unix socket) takes a connection, failing if this child
        /// exits meanwhile; each probe is closed at once (a one-connection-at-a-time server such as TSimpleServer moves on).
        /// </summary>
        public async Task WaitAcceptingAsync(EndPoint endpoint, TimeSpan timeout, CancellationToken ct)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                if (HasExited)
                {
                    throw new InvalidOperationException($"{Name} exited before it accepted connections on {endpoint} (see its output above)");
                }

                try
                {
                    using var socket = endpoint is UnixDomainSocketEndPoint
                        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                        : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    attempt.CancelAfter(TimeSpan.FromSeconds(1));
                    await socket.ConnectAsync(endpoint, attempt.Token);
                    return;
                }
                catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    if (Stopwatch.GetTimestamp() > deadline)
                    {
                        throw new TimeoutException($"{Name} does not accept connections on {endpoint} after {timeout.TotalSeconds:F0} s");
                    }

                    await Task.Delay(50, ct);
                }
            }
        }

        /// <summary>The CPU time the process has used (user and system, all threads), or null once it is gone.</summary>
        public TimeSpan? Cpu
        {
            get
            {
                try
                {
                    _process.Refresh();
                    return _process.HasExited ? null : _process.TotalProcessorTime;
                }
                catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
                {
                    return null;
                }
            }
        }

        /// <summary>Starts <paramref name="file"/> with its stdin, stdout and stderr piped to this process.</summary>
        public static Child Start(string name, string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null) =>
            new(name, Launch(name, file, arguments, environment));

        /// <summary>This program again, with <paramref name="arguments"/>: the apphost directly, or <c>dotnet this.dll</c>.</summary>
        public static Child StartSelf(string name, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null) =>
            new(name, LaunchSelf(name, arguments, environment));

        /// <summary>The process of <see cref="Start"/>, for a derived class's own constructor.</summary>
        protected static Process Launch(string name, string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment)
        {
            var info = new ProcessStartInfo(file)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var argument in arguments)
            {
                info.ArgumentList.Add(argument);
            }

            foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            {
                info.Environment[key] = value;
            }

            return Process.Start(info) ?? throw new InvalidOperationException($"could not start {name} ({file})");
        }

        /// <summary>The process of <see cref="StartSelf"/>, for a derived class's own constructor.</summary>
        protected static Process LaunchSelf(string name, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment)
        {
            var host = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown");
            var all = new List<string>();
            if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            {
                var dll = typeof(Child).Assembly.Location;
                if (dll.Length == 0)
                {
                    throw new InvalidOperationException("run under dotnet, but the assembly has no file to hand to it");
                }

                all.Add(dll);
            }

            all.AddRange(arguments);
            return Launch(name, host, all, environment);
        }

        /// <summary>The port announced by <c>listening PORT</c> or <c>ready PORT</c>.</summary>
        public Task<int> ListeningAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
            _listening.Task.WaitAsync(timeout, cancellationToken);

        /// <summary>Closes stdin (the role's signal to stop) and returns its <c>stats</c> line, or null when it gives none in time.</summary>
        public async Task<string?> StopAsync(TimeSpan timeout)
        {
            try
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync().WaitAsync(timeout);
                await _stdout.WaitAsync(timeout);
            }
            catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException)
            {
                Console.Error.WriteLine($"[{Name}] did not stop within {timeout.TotalSeconds:F0} s of its stdin closing ({e.Message}); killing it");
                Kill();
            }

            return _stats.Task.IsCompletedSuccessfully ? _stats.Task.Result : null;
        }

        public void Kill()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: true);
                }

                _process.WaitForExit(5000);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
            {
                Console.Error.WriteLine($"[{Name}] kill: {e.Message}");
            }
        }

        public void Dispose()
        {
            Kill();
            _process.Dispose();
            GC.SuppressFinalize(this);
        }

        /// <summary>Writes <paramref name="line"/> to the process's stdin (a role's control channel) and flushes it.</summary>
        protected async Task WriteLineAsync(string line)
        {
            await _process.StandardInput.WriteLineAsync(line);
            await _process.StandardInput.FlushAsync();
        }

        /// <summary>A stdout line: the port announcement and the <c>stats</c> line are taken, anything else is relayed to stderr. A derived class takes its role's own lines first.</summary>
        protected virtual void OnLine(string line)
        {
            var announce = line.StartsWith("listening ", StringComparison.Ordinal) ? "listening ".Length
                : line.StartsWith("ready ", StringComparison.Ordinal) ? "ready ".Length : -1;
            if (announce > 0 && int.TryParse(line.AsSpan(announce), NumberStyles.Integer, CultureInfo.InvariantCulture, out var port))
            {
                _listening.TrySetResult(port);
            }
            else if (line.StartsWith("stats ", StringComparison.Ordinal))
            {
                _stats.TrySetResult(line["stats ".Length..]);
            }
            else
            {
                Console.Error.WriteLine($"[{Name}] {line}");
            }
        }

        /// <summary>Called once stdout has ended: whatever is still awaited from it will not come. A derived class fails its own waits too.</summary>
        protected virtual void OnEnd()
        {
            _listening.TrySetException(new InvalidOperationException($"{Name} ended before it announced its port"));
            _stats.TrySetCanceled();
        }

        private async Task ReadStdoutAsync()
        {
            try
            {
                while (await _process.StandardOutput.ReadLineAsync() is { } line)
                {
                    OnLine(line);
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // the process is gone
            }

            OnEnd();
        }

        private async Task RelayAsync(StreamReader reader)
        {
            try
            {
                while (await reader.ReadLineAsync() is { } line)
                {
                    Console.Error.WriteLine($"[{Name}] {line}");
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // the process is gone
            }
        }

        public Task OutputDone => Task.WhenAll(_stdout, _stderr);
    }
}
