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

    // One file-system watcher for all of this registry's watches: on Linux each FileSystemWatcher is an inotify
    // instance (and a thread), and a user may have only 128 of those, so a watcher per watched service stopped at ~120.
    // It watches the whole root, is created with the first watch and disposed with the last one, and hands each event
    // to the watches of the directory it concerns.
    private readonly Lock _watchesLock = new();
    private readonly Dictionary<string, List<Watch>> _watches = new(PathComparer);
    private FileSystemWatcher? _watcher;

    private static StringComparison PathComparison => OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private static StringComparer PathComparer => StringComparer.FromComparison(PathComparison);

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
        var watch = new Watch(this, Path.GetFullPath(directory));
        Attach(watch);
        try
        {
            // created after the watch is attached: the watcher's events for the new directories poke it, and the last
            // of them comes once the watcher covers the directory (see Dispatch), so nothing written meanwhile is missed
            System.IO.Directory.CreateDirectory(directory);
            await watch.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await watch.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return watch;
    }

    /// <summary>Adds a watch to the dispatch table, starting the shared file-system watcher with the first one.</summary>
    private void Attach(Watch watch)
    {
        lock (_watchesLock)
        {
            if (_watcher is null)
            {
                // the root may not exist yet (a consumer that starts before any provider): a watcher needs it
                var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(_root));
                System.IO.Directory.CreateDirectory(root);
                var watcher = new FileSystemWatcher(root)
                {
                    // names only: records are replaced by a rename, so a name event is a content change; a lease
                    // renewal only touches the file's time, and must not wake anyone (the periodic rescan finds a
                    // lease that ran out). Directories, to hear of service directories created or removed.
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName,
                    IncludeSubdirectories = true,
                };
                watcher.Created += (_, e) => Dispatch(e.FullPath);
                watcher.Deleted += (_, e) => Dispatch(e.FullPath);
                watcher.Renamed += (_, e) =>
                {
                    Dispatch(e.OldFullPath);
                    Dispatch(e.FullPath);
                };
                watcher.Error += (_, e) => OnWatcherError(e.GetException());
                try
                {
                    watcher.EnableRaisingEvents = true; // on Linux: fails when the user's inotify limits are used up
                }
                catch
                {
                    watcher.Dispose();
                    throw;
                }

                _watcher = watcher;
            }

            if (!_watches.TryGetValue(watch.Directory, out var list))
            {
                _watches[watch.Directory] = list = [];
            }

            list.Add(watch);
        }
    }

    /// <summary>Removes a watch from the dispatch table; the last one out disposes the file-system watcher.</summary>
    private void Detach(Watch watch)
    {
        FileSystemWatcher? unused = null;
        lock (_watchesLock)
        {
            if (!_watches.TryGetValue(watch.Directory, out var list) || !list.Remove(watch))
            {
                return;
            }

            if (list.Count == 0)
            {
                _watches.Remove(watch.Directory);
            }

            if (_watches.Count == 0)
            {
                unused = _watcher;
                _watcher = null;
            }
        }

        unused?.Dispose();
    }

    /// <summary>Hands a file-system event to the watches it concerns (on the watcher's thread: only pokes them).</summary>
    private void Dispatch(string path)
    {
        var name = Path.GetFileName(path.AsSpan());
        if (name.EndsWith(".tmp", StringComparison.Ordinal))
        {
            return; // a record being written: the rename that publishes it follows
        }

        lock (_watchesLock)
        {
            if (name.EndsWith(".json", StringComparison.Ordinal))
            {
                // a record created, replaced or removed: its directory's watches read that file again
                if (Path.GetDirectoryName(path) is { } directory && _watches.TryGetValue(directory, out var list))
                {
                    foreach (var watch in list)
                    {
                        watch.Poke(name.ToString());
                    }
                }

                return;
            }

            // a directory created, removed or renamed: the watches at or under it rescan everything. The watcher covers
            // a new directory (and what is already under it) before it raises its Created event, so the rescan this
            // causes also sees files written there before the watcher did.
            foreach (var (directory, list) in _watches)
            {
                if (directory.Length >= path.Length && directory.StartsWith(path, PathComparison)
                    && (directory.Length == path.Length || directory[path.Length] == Path.DirectorySeparatorChar))
                {
                    foreach (var watch in list)
                    {
                        watch.Poke(null);
                    }
                }
            }
        }
    }

    /// <summary>Events were lost (an inotify queue overflow): every watch reads everything again.</summary>
    private void OnWatcherError(Exception error)
    {
        LogWatcherError(_logger, error);
        lock (_watchesLock)
        {
            foreach (var list in _watches.Values)
            {
                foreach (var watch in list)
                {
                    watch.Poke(null);
                }
            }
        }
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

    /// <summary>Looks at the config file every 200 ms, reading it when its time or size changed (a local registry is one machine's; a poll is simple and sure).</summary>
    private sealed class ConfigFileWatch(LocalRegistry registry, string product, string service) : Governance.IConfigWatch
    {
        private readonly CancellationTokenSource _stopping = new();
        private byte[]? _current;
        private Task? _loop;

        public byte[]? Current => Volatile.Read(ref _current);

        public event Action<byte[]?>? Changed;

        private (long Ticks, long Length) _seen;

        public void Start()
        {
            _seen = Stamp(registry.ConfigFile(product, service)); // before the read: a change in between is seen again
            _current = registry.GetConfigAsync(product, service).Result?.Data;
            _loop = Task.Run(LoopAsync);
        }

        private async Task LoopAsync()
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
            var file = registry.ConfigFile(product, service);
            try
            {
                while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
                {
                    // a look at the file's time and size first: a proxy polls every service it routes five times a
                    // second, and reading a file that is not there throws (thousands of exceptions a second at 1,000
                    // services). A config is replaced by a rename, so a new version has a new time.
                    var stamp = Stamp(file);
                    if (stamp == _seen)
                    {
                        continue;
                    }

                    _seen = stamp;
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

        /// <summary>The file's time and size, or (0, -1) when there is none.</summary>
        private static (long Ticks, long Length) Stamp(string file)
        {
            var info = new FileInfo(file);
            return info.Exists ? (info.LastWriteTimeUtc.Ticks, info.Length) : (0, -1);
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

    /// <summary>
    /// Whether a process exists. On Linux a look at <c>/proc</c>: a rescan asks this for every instance, and
    /// <see cref="Process.GetProcessById(int)"/> opens and parses the process's files each time.
    /// </summary>
    private static bool ProcessExists(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            return System.IO.Directory.Exists($"/proc/{pid}");
        }

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

    /// <summary>
    /// One watched directory. It keeps each file's parsed record, read again only when the file's name is in an event
    /// (records are replaced by a rename) or its size changed; a rescan, on an event or every third of the lease, only
    /// looks at each file's time (the lease) and whether its process exists.
    /// </summary>
    private sealed class Watch(LocalRegistry registry, string directory) : IServiceWatch
    {
        private readonly SemaphoreSlim _signal = new(0);
        private readonly CancellationTokenSource _stopping = new();
        private readonly Dictionary<string, Record> _records = new(PathComparer); // by file name; only the loop uses it
        private readonly Lock _staleLock = new();
        private HashSet<string> _stale = new(PathComparer); // file names to read again, from events
        private bool _allStale;
        private IReadOnlyList<ServiceInstance> _instances = [];
        private Task? _loop;

        public string Directory => directory;

        public IReadOnlyList<ServiceInstance> Instances => Volatile.Read(ref _instances);

        public event Action<IReadOnlyList<ServiceInstance>>? Changed;

        public Task StartAsync()
        {
            Refresh();
            _loop = Task.Run(LoopAsync);
            return Task.CompletedTask;
        }

        /// <summary>From the registry's watcher: a file (or, null, everything) changed; rescan soon.</summary>
        public void Poke(string? file)
        {
            lock (_staleLock)
            {
                if (file is null)
                {
                    _allStale = true;
                }
                else
                {
                    _stale.Add(file);
                }
            }

            try
            {
                _signal.Release();
            }
            catch (ObjectDisposedException)
            {
                // an event that raced the watch's disposal
            }
        }

        private async Task LoopAsync()
        {
            // events when files change; a rescan at least every third of the lease, for leases that run out
            var rescan = registry._lease / 3;
            while (!_stopping.IsCancellationRequested)
            {
                try
                {
                    if (await _signal.WaitAsync(rescan, _stopping.Token).ConfigureAwait(false))
                    {
                        await Task.Delay(20, _stopping.Token).ConfigureAwait(false); // coalesce a burst
                        while (_signal.CurrentCount > 0)
                        {
                            await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                        }
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
            // take the names to read again before reading: an event from here on marks its file again for the next round
            HashSet<string> stale;
            bool allStale;
            lock (_staleLock)
            {
                stale = _stale;
                allStale = _allStale;
                if (stale.Count > 0)
                {
                    _stale = new(PathComparer);
                }

                _allStale = false;
            }

            var instances = Scan(stale, allStale);
            var current = Volatile.Read(ref _instances);
            if (instances.Count == current.Count && instances.Zip(current).All(pair => ReferenceEquals(pair.First, pair.Second)))
            {
                return; // the same record objects: nothing changed (a record read again but equal keeps its old object)
            }

            Volatile.Write(ref _instances, instances);
            Changed?.Invoke(instances);
        }

        /// <summary>The live instances: valid records, touched within the lease, whose process exists; by file name.</summary>
        private List<ServiceInstance> Scan(HashSet<string> stale, bool allStale)
        {
            var list = new List<ServiceInstance>();
            var seen = new HashSet<string>(PathComparer);
            var lastPid = 0;
            var lastPidExists = false;
            var now = DateTime.UtcNow;
            FileInfo[] files;
            try
            {
                files = new DirectoryInfo(directory).GetFiles("*.json");
            }
            catch (DirectoryNotFoundException)
            {
                files = []; // removed (with every instance in it); an event when it comes back
            }

            Array.Sort(files, (x, y) => string.CompareOrdinal(x.Name, y.Name));
            foreach (var info in files)
            {
                var name = info.Name;
                seen.Add(name);
                try
                {
                    var length = info.Length;
                    if (now - info.LastWriteTimeUtc > registry._lease)
                    {
                        if (allStale || stale.Contains(name))
                        {
                            _records.Remove(name); // replaced meanwhile: read it again should its lease be renewed
                        }

                        continue; // the lease ran out: its owner stopped renewing it
                    }

                    _records.TryGetValue(name, out var record);
                    if (record is null || allStale || stale.Contains(name) || record.Length != length)
                    {
                        record = Read(info, length, record);
                        _records[name] = record;
                    }

                    if (record.Instance is not { } instance)
                    {
                        continue;
                    }

                    if (instance.Pid > 0)
                    {
                        if (instance.Pid != lastPid)
                        {
                            lastPid = instance.Pid;
                            lastPidExists = ProcessExists(instance.Pid);
                        }

                        if (!lastPidExists)
                        {
                            continue; // the owner is gone, lease or not
                        }
                    }

                    list.Add(instance);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // removed or replaced while reading: the event that did it brings another scan, which reads it again
                    _records.Remove(name);
                }
            }

            if (seen.Count < _records.Count)
            {
                foreach (var gone in _records.Keys.Where(name => !seen.Contains(name)).ToList())
                {
                    _records.Remove(gone);
                }
            }

            return list;
        }

        /// <summary>Reads and parses a file; a record equal to the one it had keeps that object, so nothing is seen to change.</summary>
        private Record Read(FileInfo info, long length, Record? previous)
        {
            var instance = ServiceInstance.TryParse(File.ReadAllBytes(info.FullName));
            if (instance is null)
            {
                if (previous is not { Instance: null } || previous.Length != length)
                {
                    LogBadRecord(registry._logger, info.FullName); // once per version of the file, not every rescan
                }

                return new Record(null, length);
            }

            return previous?.Instance is { } old && old.ToJson().AsSpan().SequenceEqual(instance.ToJson())
                ? new Record(old, length)
                : new Record(instance, length);
        }

        public async ValueTask DisposeAsync()
        {
            registry.Detach(this);
            await _stopping.CancelAsync().ConfigureAwait(false);
            if (_loop is not null)
            {
                await _loop.ConfigureAwait(false);
            }

            _signal.Dispose();
            _stopping.Dispose();
        }

        /// <summary>A file's parsed record (null: not a valid one) and the size it had when read.</summary>
        private sealed record Record(ServiceInstance? Instance, long Length);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "registered {File}")]
    private static partial void LogRegistered(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "skipping {File}: not a valid instance record")]
    private static partial void LogBadRecord(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the local registry's file watcher lost events; every watch rescans")]
    private static partial void LogWatcherError(ILogger logger, Exception error);
}
