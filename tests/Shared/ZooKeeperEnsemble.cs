using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Testing;

/// <summary>
/// Real ZooKeeper 3.8 servers (Debian's package) for tests: one standalone server or an ensemble, on free
/// loopback ports with their own temp directories. Servers can be killed, stopped and restarted; the
/// leader can be found. Every JVM is watched by a shell that kills it when the test process goes away,
/// so nothing outlives a crashed or killed test run. Missing Java or ZooKeeper fails loudly.
/// </summary>
public sealed class ZooKeeperEnsemble : IAsyncDisposable
{
    public const string Jar = "/usr/share/java/zookeeper.jar";
    public const string ConfDir = "/etc/zookeeper/conf";

    private readonly string _root;
    private readonly List<Server> _servers = [];

    private ZooKeeperEnsemble(string root) => _root = root;

    public IReadOnlyList<Server> Servers => _servers;

    /// <summary>All servers, as a client connect string.</summary>
    public string ConnectString => string.Join(",", _servers.Select(s => s.Address));

    /// <summary>Starts <paramref name="size"/> servers and waits until they serve (a leader is elected).</summary>
    /// <param name="tickTimeMs">ZooKeeper's tick: sessions may be as short as two ticks, so tests can expire them quickly.</param>
    public static async Task<ZooKeeperEnsemble> StartAsync(int size = 1, int tickTimeMs = 200)
    {
        if (!File.Exists(Jar) || !File.Exists("/usr/bin/java"))
        {
            throw new InvalidOperationException($"ZooKeeper ({Jar}) or Java is missing: run scripts/setup.sh (Debian package zookeeper)");
        }

        var root = Path.Combine(Path.GetTempPath(), "trellis-zk-" + Guid.NewGuid().ToString("N")[..12]);
        var ensemble = new ZooKeeperEnsemble(root);
        try
        {
            var ports = LoopbackPorts.Free(size * 3);
            for (var i = 0; i < size; i++)
            {
                ensemble._servers.Add(new Server(i + 1, Path.Combine(root, $"server{i + 1}"), ports[i * 3], ports[i * 3 + 1], ports[i * 3 + 2]));
            }

            foreach (var server in ensemble._servers)
            {
                server.WriteConfig(ensemble._servers, tickTimeMs);
                server.Start();
            }

            await ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60));
            return ensemble;
        }
        catch
        {
            await ensemble.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every running server answers <c>srvr</c> with a mode, and one is leader (or standalone).</summary>
    public async Task WaitUntilServingAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var modes = new List<string?>();
            foreach (var server in _servers.Where(s => s.IsRunning))
            {
                modes.Add(await server.ModeAsync());
            }

            if (modes.Count > 0 && modes.All(m => m is not null) && modes.Any(m => m is "leader" or "standalone"))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"ZooKeeper did not start serving in {timeout}: modes {string.Join(",", modes)}; logs under {_root}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The server that leads now (waits for an election).</summary>
    public async Task<Server> LeaderAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            foreach (var server in _servers.Where(s => s.IsRunning))
            {
                if (await server.ModeAsync() is "leader" or "standalone")
                {
                    return server;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("no ZooKeeper leader");
            }

            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            server.Kill();
        }

        await Task.Yield();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // a JVM may still hold a file for a moment; the temp directory is harmless
        }
    }

    /// <summary>One ZooKeeper server process.</summary>
    public sealed class Server
    {
        private Process? _watchdog;
        private int _javaPid;

        internal Server(int id, string directory, int clientPort, int peerPort, int electionPort)
        {
            Id = id;
            Directory = directory;
            ClientPort = clientPort;
            PeerPort = peerPort;
            ElectionPort = electionPort;
        }

        public int Id { get; }
        public string Directory { get; }
        public int ClientPort { get; }
        public int PeerPort { get; }
        public int ElectionPort { get; }
        public string Address => $"127.0.0.1:{ClientPort}";
        public bool IsRunning => _watchdog is { HasExited: false };

        internal void WriteConfig(IReadOnlyList<Server> all, int tickTimeMs)
        {
            var data = Path.Combine(Directory, "data");
            System.IO.Directory.CreateDirectory(data);
            var config = new StringBuilder()
                .AppendLine($"tickTime={tickTimeMs}")
                .AppendLine($"dataDir={data}")
                .AppendLine($"clientPort={ClientPort}")
                .AppendLine("clientPortAddress=127.0.0.1")
                .AppendLine("admin.enableServer=false")
                .AppendLine("4lw.commands.whitelist=*")
                .AppendLine("maxSessionTimeout=120000")
                .AppendLine("initLimit=20")
                .AppendLine("syncLimit=10")
                .AppendLine("jute.maxbuffer=1048575");
            if (all.Count > 1)
            {
                foreach (var s in all)
                {
                    config.AppendLine($"server.{s.Id}=127.0.0.1:{s.PeerPort}:{s.ElectionPort}");
                }

                File.WriteAllText(Path.Combine(data, "myid"), Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            File.WriteAllText(Path.Combine(Directory, "zoo.cfg"), config.ToString());
        }

        /// <summary>Starts (or restarts) the server with its existing data.</summary>
        public void Start()
        {
            if (IsRunning)
            {
                throw new InvalidOperationException($"server {Id} is running");
            }

            var main = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
            var java = $"java -Xmx256m -XX:+UseSerialGC -Dzookeeper.jmx.log4j.disable=true -Dzookeeper.extendedTypesEnabled=true -cp {ConfDir}:{Jar} {main} {Path.Combine(Directory, "zoo.cfg")}";
            // The shell runs java, prints its pid, and kills it the moment the test process is gone.
            var script = $"{java} >> '{Path.Combine(Directory, "server.log")}' 2>&1 & child=$!; echo $child; " +
                         $"while kill -0 {Environment.ProcessId} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; kill -9 $child 2>/dev/null";
            var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(script);
            _watchdog = Process.Start(psi)!;
            _javaPid = int.Parse(_watchdog.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);
        }

        /// <summary>SIGKILL: no goodbye to peers or clients.</summary>
        public void Kill() => Signal("KILL");

        /// <summary>SIGTERM: the JVM shuts down.</summary>
        public void Stop() => Signal("TERM");

        public async Task RestartAsync()
        {
            Kill();
            Start();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (await ModeAsync() is null)
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"server {Id} did not come back");
                }

                await Task.Delay(100);
            }
        }

        private void Signal(string signal)
        {
            if (_watchdog is null || _watchdog.HasExited)
            {
                return;
            }

            using (var kill = Process.Start("kill", $"-{signal} {_javaPid}"))
            {
                kill.WaitForExit();
            }

            if (!_watchdog.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                _watchdog.Kill(entireProcessTree: true);
            }

            _watchdog.Dispose();
            _watchdog = null;
        }

        /// <summary>The server's mode from the <c>srvr</c> four-letter word (leader, follower, standalone), or null.</summary>
        public async Task<string?> ModeAsync()
        {
            var reply = await FourLetterWordAsync("srvr");
            var line = reply?.Split('\n').FirstOrDefault(l => l.StartsWith("Mode: ", StringComparison.Ordinal));
            return line?.Substring(6).Trim();
        }

        public async Task<string?> FourLetterWordAsync(string word)
        {
            try
            {
                using var client = new TcpClient();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.ConnectAsync(IPAddress.Loopback, ClientPort, timeout.Token);
                var stream = client.GetStream();
                await stream.WriteAsync(Encoding.ASCII.GetBytes(word), timeout.Token);
                using var reader = new StreamReader(stream, Encoding.ASCII);
                return await reader.ReadToEndAsync(timeout.Token);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                return null;
            }
        }
    }
}
