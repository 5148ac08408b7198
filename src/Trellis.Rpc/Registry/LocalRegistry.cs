using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Trellis.Rpc.Registry;

/// <summary>
/// A registry for one machine without ZooKeeper: each instance is a JSON file under a runtime directory,
/// laid out like the ZooKeeper tree. A registration holds a lease by touching its file; a file not touched
/// within the lease, or whose process is gone, is ignored (its owner crashed). Watchers, in any process,
/// learn of changes from file-system events, with a periodic rescan as a safety net.
/// </summary>
/// <remarks>Files are written atomically (temp file, then rename), so a reader never sees half a record.</remarks>
public sealed partial class LocalRegistry : IServiceRegistry, Governance.IConfigStore, IRegistryBrowser
{
    private readonly string _root;
    private readonly TimeSpan _lease;
    private readonly ILogger _logger;

    public LocalRegistry(string? root = null, TimeSpan? lease = null, ILogger? logger = null)
    {
        _root = root ?? DefaultRoot();
        _lease = lease ?? TimeSpan.FromSeconds(5);
        _logger = logger ?? NullLogger.Instance;
        if (_lease < TimeSpan.FromMilliseconds(300))
        {
            throw new ArgumentOutOfRangeException(nameof(lease), "a lease shorter than 300 ms cannot be kept reliably");
        }
    }

    public string Root => _root;

    /// <summary><c>$XDG_RUNTIME_DIR/trellis</c>, else <c>/tmp/trellis-{user}</c>.</summary>
    public static string DefaultRoot() =>
        Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } runtime
            ? Path.Combine(runtime, "trellis")
            : Path.Combine(Path.GetTempPath(), "trellis-" + Environment.UserName);

    private string Directory(string product, string service) => Under(RegistryPaths.Instances(product, service));

    private string Under(string registryPath) => _root + registryPath[RegistryPaths.Root.Length..];

    public Task<IRegistration> RegisterAsync(ServiceInstance instance, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return RegisterAtAsync(Directory(instance.Product, instance.Service), instance);
    }

    public Task<IRegistration> RegisterProxyAsync(ServiceInstance proxy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        return RegisterAtAsync(Under(RegistryPaths.Proxies(proxy.Product, proxy.Zone)), proxy);
    }

    private Task<IRegistration> RegisterAtAsync(string directory, ServiceInstance instance)
    {
        if (instance.Validate() is { } problem)
        {
            throw new ArgumentException($"instance record is not valid: {problem}", nameof(instance));
        }

        System.IO.Directory.CreateDirectory(directory);
        var registration = new Registration(this, Path.Combine(directory, instance.InstanceId + ".json"), instance);
        registration.Write();
        LogRegistered(_logger, registration.File);
        return Task.FromResult<IRegistration>(registration);
    }

    public Task<IServiceWatch> WatchAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        if (!RegistryPaths.IsName(product) || !RegistryPaths.IsName(service))
        {
            throw new ArgumentException("product and service must be names without '/'");
        }

        return WatchAtAsync(Directory(product, service));
    }

    public Task<IServiceWatch> WatchProxiesAsync(string product, string zone, CancellationToken cancellationToken = default)
    {
        if (!RegistryPaths.IsName(product) || (zone.Length > 0 && !RegistryPaths.IsName(zone)))
        {
            throw new ArgumentException("product and zone must be names without '/'");
        }

        return WatchAtAsync(Under(RegistryPaths.Proxies(product, zone)));
    }

    private async Task<IServiceWatch> WatchAtAsync(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var watch = new Watch(this, directory);
        await watch.StartAsync().ConfigureAwait(false);
        return watch;
    }

    private string ConfigFile(string product, string service)
    {
        if (!RegistryPaths.IsName(product) || !RegistryPaths.IsName(service))
        {
            throw new ArgumentException("product and service must be names without '/'");
        }

        return Under(RegistryPaths.Config(product, service)) + ".json";
    }

    /// <summary>The local registry's config version: a hash of the content (it keeps no counter).</summary>
    private static int VersionOf(byte[] data) => BitConverter.ToInt32(System.Security.Cryptography.SHA256.HashData(data), 0);

    public Task<Governance.StoredConfig?> GetConfigAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        var file = ConfigFile(product, service);
        try
        {
            var data = System.IO.File.ReadAllBytes(file);
            return Task.FromResult<Governance.StoredConfig?>(new Governance.StoredConfig(data, VersionOf(data)));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<Governance.StoredConfig?>(null);
        }
    }

    public async Task<int> SetConfigAsync(string product, string service, ReadOnlyMemory<byte> data, int? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        var file = ConfigFile(product, service);
        if (expectedVersion is { } expected && await GetConfigAsync(product, service, cancellationToken).ConfigureAwait(false) is { } current && current.Version != expected)
        {
            throw new InvalidOperationException($"the config of {product}/{service} changed since version {expected}: read it again");
        }

        var bytes = data.ToArray();
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var temp = $"{file}.{Environment.ProcessId}.tmp";
        await System.IO.File.WriteAllBytesAsync(temp, bytes, cancellationToken).ConfigureAwait(false);
        System.IO.File.Move(temp, file, overwrite: true); // readers see the old file or the new one, never half of one
        var history = file[..^".json".Length] + "-history";
        System.IO.Directory.CreateDirectory(history);
        await System.IO.File.WriteAllBytesAsync(Path.Combine(history, $"v-{DateTime.UtcNow.Ticks:D19}.json"), bytes, cancellationToken).ConfigureAwait(false);
        foreach (var old in System.IO.Directory.GetFiles(history, "v-*.json").Order(StringComparer.Ordinal).SkipLast(Governance.ConfigHistory.Kept))
        {
            System.IO.File.Delete(old);
        }

        return VersionOf(bytes);
    }

    public Task<IReadOnlyList<Governance.ConfigHistoryEntry>> GetConfigHistoryAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        var history = ConfigFile(product, service)[..^".json".Length] + "-history";
        IReadOnlyList<Governance.ConfigHistoryEntry> entries = System.IO.Directory.Exists(history)
            ? [.. System.IO.Directory.GetFiles(history, "v-*.json").OrderDescending(StringComparer.Ordinal).Select(f => new Governance.ConfigHistoryEntry(
                Path.GetFileNameWithoutExtension(f), new DateTimeOffset(System.IO.File.GetLastWriteTimeUtc(f), TimeSpan.Zero), System.IO.File.ReadAllBytes(f)))]
            : [];
        return Task.FromResult(entries);
    }

    public Task<Governance.IConfigWatch> WatchConfigAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        var watch = new ConfigFileWatch(this, product, service);
        watch.Start();
        return Task.FromResult<Governance.IConfigWatch>(watch);
    }

    /// <summary>Reads the config file every 200 ms (a local registry is one machine's; a poll is simple and sure).</summary>
    private sealed class ConfigFileWatch(LocalRegistry registry, string product, string service) : Governance.IConfigWatch
    {
        private readonly CancellationTokenSource _stopping = new();
        private byte[]? _current;
        private Task? _loop;

        public byte[]? Current => Volatile.Read(ref _current);

        public event Action<byte[]?>? Changed;

        public void Start()
        {
            _current = registry.GetConfigAsync(product, service).Result?.Data;
            _loop = Task.Run(LoopAsync);
        }

        private async Task LoopAsync()
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
            try
            {
                while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
                {
                    var data = (await registry.GetConfigAsync(product, service).ConfigureAwait(false))?.Data;
                    if (Governance.StoredConfig.Differ(Volatile.Read(ref _current), data))
                    {
                        Volatile.Write(ref _current, data);
                        Changed?.Invoke(data);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // disposed
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            if (_loop is not null)
            {
                await _loop.ConfigureAwait(false);
            }

            _stopping.Dispose();
        }
    }

    public Task<IReadOnlyList<string>> ListProductsAsync(CancellationToken cancellationToken = default) => Task.FromResult(Names(_root));

    public Task<IReadOnlyList<string>> ListServicesAsync(string product, CancellationToken cancellationToken = default) =>
        Task.FromResult(RegistryPaths.IsName(product) ? Names(Path.Combine(_root, product, "services")) : throw new ArgumentException("product must be a name without '/'"));

    private static IReadOnlyList<string> Names(string directory) =>
        System.IO.Directory.Exists(directory) ? [.. System.IO.Directory.GetDirectories(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)] : [];

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Stops renewing a registration without removing its file: what a crash leaves behind (for tests).</summary>
    internal static void Abandon(IRegistration registration) => ((Registration)registration).Abandon();

    /// <summary>The live instances in a directory: valid records, touched within the lease, whose process exists.</summary>
    private List<ServiceInstance> Scan(string directory)
    {
        var list = new List<ServiceInstance>();
        if (!System.IO.Directory.Exists(directory))
        {
            return list;
        }

        foreach (var file in System.IO.Directory.EnumerateFiles(directory, "*.json").Order(StringComparer.Ordinal))
        {
            try
            {
                var info = new FileInfo(file);
                if (DateTime.UtcNow - info.LastWriteTimeUtc > _lease)
                {
                    continue; // the lease ran out: its owner stopped renewing it
                }

                var instance = ServiceInstance.TryParse(File.ReadAllBytes(file));
                if (instance is null)
                {
                    LogBadRecord(_logger, file);
                    continue;
                }

                if (instance.Pid > 0 && !ProcessExists(instance.Pid))
                {
                    continue; // the owner is gone, lease or not
                }

                list.Add(instance);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // removed or replaced while reading: the next scan sees the new state
            }
        }

        return list;
    }

    private static bool ProcessExists(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private sealed class Registration : IRegistration
    {
        private readonly LocalRegistry _registry;
        private readonly Timer _heartbeat;
        private int _done;

        public Registration(LocalRegistry registry, string file, ServiceInstance instance)
        {
            _registry = registry;
            File = file;
            Instance = instance;
            var period = registry._lease / 3;
            _heartbeat = new Timer(_ => Touch(), null, period, period);
        }

        public string File { get; }

        public ServiceInstance Instance { get; private set; }

        public void Write()
        {
            var temp = File + "." + Environment.ProcessId + ".tmp";
            System.IO.File.WriteAllBytes(temp, Instance.ToJson());
            System.IO.File.Move(temp, File, overwrite: true);
        }

        private void Touch()
        {
            try
            {
                if (Volatile.Read(ref _done) == 0)
                {
                    System.IO.File.SetLastWriteTimeUtc(File, DateTime.UtcNow);
                }
            }
            catch (FileNotFoundException)
            {
                // removed behind our back: put it back, as the ZooKeeper registry does
                Write();
            }
            catch (IOException)
            {
                // a transient failure: the next beat retries well within the lease
            }
        }

        public Task UpdateAsync(ServiceInstance instance, CancellationToken cancellationToken = default)
        {
            ArgumentNullException.ThrowIfNull(instance);
            Instance = instance;
            Write();
            return Task.CompletedTask;
        }

        /// <summary>Stops renewing without removing the file: what a crash leaves behind (for tests).</summary>
        internal void Abandon()
        {
            Interlocked.Exchange(ref _done, 1);
            _heartbeat.Dispose();
        }

        public async Task DeregisterAsync(CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _done, 1) != 0)
            {
                return;
            }

            await _heartbeat.DisposeAsync().ConfigureAwait(false);
            try
            {
                System.IO.File.Delete(File);
            }
            catch (DirectoryNotFoundException)
            {
                // the registry directory itself is gone: nothing left to withdraw
            }
        }

        public async ValueTask DisposeAsync() => await DeregisterAsync().ConfigureAwait(false);
    }

    private sealed class Watch(LocalRegistry registry, string directory) : IServiceWatch
    {
        private readonly FileSystemWatcher _watcher = new(directory, "*.json") { NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite };
        private readonly SemaphoreSlim _signal = new(0);
        private readonly CancellationTokenSource _stopping = new();
        private IReadOnlyList<ServiceInstance> _instances = [];
        private string _fingerprint = "";
        private Task? _loop;

        public IReadOnlyList<ServiceInstance> Instances => Volatile.Read(ref _instances);

        public event Action<IReadOnlyList<ServiceInstance>>? Changed;

        public Task StartAsync()
        {
            FileSystemEventHandler poke = (_, _) => _signal.Release();
            _watcher.Created += poke;
            _watcher.Changed += poke;
            _watcher.Deleted += poke;
            _watcher.Renamed += (_, _) => _signal.Release();
            _watcher.EnableRaisingEvents = true;
            Refresh();
            _loop = Task.Run(LoopAsync);
            return Task.CompletedTask;
        }

        private async Task LoopAsync()
        {
            // events when files change; a rescan at least every third of the lease, for leases that run out
            var rescan = registry._lease / 3;
            while (!_stopping.IsCancellationRequested)
            {
                try
                {
                    await _signal.WaitAsync(rescan, _stopping.Token).ConfigureAwait(false);
                    await Task.Delay(20, _stopping.Token).ConfigureAwait(false); // coalesce a burst
                    while (_signal.CurrentCount > 0)
                    {
                        await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Refresh();
            }
        }

        private void Refresh()
        {
            var instances = registry.Scan(directory);
            var fingerprint = string.Join("\n", instances.Select(i => System.Text.Encoding.UTF8.GetString(i.ToJson())));
            if (fingerprint == _fingerprint)
            {
                return;
            }

            _fingerprint = fingerprint;
            Volatile.Write(ref _instances, instances);
            Changed?.Invoke(instances);
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            _watcher.Dispose();
            if (_loop is not null)
            {
                await _loop.ConfigureAwait(false);
            }

            _signal.Dispose();
            _stopping.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "registered {File}")]
    private static partial void LogRegistered(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "skipping {File}: not a valid instance record")]
    private static partial void LogBadRecord(ILogger logger, string file);
}
