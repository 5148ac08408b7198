using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.ZooKeeper;
using Trellis.ZooKeeper.Recipes;

namespace Trellis.Rpc.Registry;

/// <summary>
/// The production registry: one ZooKeeper session per process (through <see cref="ZooKeeperSessionManager"/>),
/// instances as ephemeral nodes that survive reconnects and are restored after session expiry, services
/// watched with coalescing caches. Records that do not parse are skipped (and logged), never fatal.
/// </summary>
public sealed partial class ZooKeeperRegistry : IServiceRegistry, Governance.IConfigStore, IRegistryBrowser
{
    private readonly ZooKeeperSessionManager _sessions;
    private readonly ILogger _logger;
    private readonly bool _ownsSessions;

    public ZooKeeperRegistry(ZooKeeperSessionManager sessions, ILogger? logger = null)
    {
        _sessions = sessions ?? throw new ArgumentNullException(nameof(sessions));
        _logger = logger ?? NullLogger.Instance;
    }

    private ZooKeeperRegistry(ZooKeeperSessionManager sessions, ILogger? logger, bool owns) : this(sessions, logger) => _ownsSessions = owns;

    /// <summary>Connects a session of its own.</summary>
    public static async Task<ZooKeeperRegistry> ConnectAsync(ZooKeeperOptions options, CancellationToken cancellationToken = default)
    {
        var sessions = new ZooKeeperSessionManager(options);
        await sessions.StartAsync(cancellationToken).ConfigureAwait(false);
        return new ZooKeeperRegistry(sessions, options.Logger, owns: true);
    }

    public ZooKeeperSessionManager Sessions => _sessions;

    public Task<IRegistration> RegisterAsync(ServiceInstance instance, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return RegisterAtAsync(RegistryPaths.Instances(instance.Product, instance.Service), instance, cancellationToken);
    }

    public Task<IRegistration> RegisterProxyAsync(ServiceInstance proxy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        return RegisterAtAsync(RegistryPaths.Proxies(proxy.Product, proxy.Zone), proxy, cancellationToken);
    }

    private async Task<IRegistration> RegisterAtAsync(string directory, ServiceInstance instance, CancellationToken cancellationToken)
    {
        if (instance.Validate() is { } problem)
        {
            throw new ArgumentException($"instance record is not valid: {problem}", nameof(instance));
        }

        var path = directory + "/" + instance.InstanceId;
        var node = new PersistentEphemeralNode(_sessions, path, instance.ToJson(), logger: _logger);
        await node.StartAsync(cancellationToken).ConfigureAwait(false);
        LogRegistered(_logger, path);
        return new Registration(node, instance);
    }

    public Task<IServiceWatch> WatchAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        if (!RegistryPaths.IsName(product) || !RegistryPaths.IsName(service))
        {
            throw new ArgumentException("product and service must be names without '/'");
        }

        return WatchAtAsync(RegistryPaths.Instances(product, service), cancellationToken);
    }

    public Task<IServiceWatch> WatchProxiesAsync(string product, string zone, CancellationToken cancellationToken = default)
    {
        if (!RegistryPaths.IsName(product) || (zone.Length > 0 && !RegistryPaths.IsName(zone)))
        {
            throw new ArgumentException("product and zone must be names without '/'");
        }

        return WatchAtAsync(RegistryPaths.Proxies(product, zone), cancellationToken);
    }

    private async Task<IServiceWatch> WatchAtAsync(string path, CancellationToken cancellationToken)
    {
        var watch = new Watch(new ChildrenCache(_sessions, path, logger: _logger), _logger);
        await watch.StartAsync(cancellationToken).ConfigureAwait(false);
        return watch;
    }

    public async Task<Governance.StoredConfig?> GetConfigAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        CheckNames(product, service);
        try
        {
            var node = await _sessions.Current.GetDataAsync(RegistryPaths.Config(product, service), cancellationToken: cancellationToken).ConfigureAwait(false);
            return new Governance.StoredConfig(node.Data, node.Stat.Version);
        }
        catch (NoNodeException)
        {
            return null;
        }
    }

    public async Task<int> SetConfigAsync(string product, string service, ReadOnlyMemory<byte> data, int? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        CheckNames(product, service);
        var client = _sessions.Current;
        var path = RegistryPaths.Config(product, service);
        try
        {
            var version = (await client.SetDataAsync(path, data, expectedVersion ?? -1, cancellationToken).ConfigureAwait(false)).Version;
            await RecordHistoryAsync(client, product, service, data, cancellationToken).ConfigureAwait(false);
            return version;
        }
        catch (NoNodeException) when (expectedVersion is null or -1)
        {
            var parent = "";
            foreach (var part in RegistryPaths.Service(product, service).Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                parent += "/" + part;
                try
                {
                    await client.CreateAsync(parent, ReadOnlyMemory<byte>.Empty, CreateMode.Persistent, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (NodeExistsException)
                {
                    // already there
                }
            }

            await client.CreateAsync(path, data, CreateMode.Persistent, cancellationToken: cancellationToken).ConfigureAwait(false);
            await RecordHistoryAsync(client, product, service, data, cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (BadVersionException)
        {
            throw new InvalidOperationException($"the config of {product}/{service} changed since version {expectedVersion}: read it again");
        }
    }

    public async Task<Governance.IConfigWatch> WatchConfigAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        CheckNames(product, service);
        // the service's directory holds "instances" and "config": its children cache sees the config node's data
        var watch = new ConfigWatch(new ChildrenCache(_sessions, RegistryPaths.Service(product, service), logger: _logger));
        await watch.StartAsync(cancellationToken).ConfigureAwait(false);
        return watch;
    }

    public Task<IReadOnlyList<string>> ListProductsAsync(CancellationToken cancellationToken = default) => ChildrenAsync(RegistryPaths.Root, cancellationToken);

    public Task<IReadOnlyList<string>> ListServicesAsync(string product, CancellationToken cancellationToken = default)
    {
        CheckNames(product, "x");
        return ChildrenAsync($"{RegistryPaths.Root}/{product}/services", cancellationToken);
    }

    private async Task<IReadOnlyList<string>> ChildrenAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return [.. (await _sessions.Current.GetChildrenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false)).Children.Order(StringComparer.Ordinal)];
        }
        catch (NoNodeException)
        {
            return [];
        }
    }

    private static string HistoryOf(string product, string service) => RegistryPaths.Service(product, service) + "/config-history";

    /// <summary>Keeps what was written as a sequential node under <c>config-history</c>, trimmed to the last <see cref="Governance.ConfigHistory.Kept"/>.</summary>
    private static async Task RecordHistoryAsync(ZooKeeperClient client, string product, string service, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var history = HistoryOf(product, service);
        try
        {
            await client.CreateAsync(history, ReadOnlyMemory<byte>.Empty, CreateMode.Persistent, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (NodeExistsException)
        {
            // there already
        }

        await client.CreateAsync(history + "/v-", data, CreateMode.PersistentSequential, cancellationToken: cancellationToken).ConfigureAwait(false);
        var names = (await client.GetChildrenAsync(history, cancellationToken: cancellationToken).ConfigureAwait(false)).Children.Order(StringComparer.Ordinal).ToList();
        foreach (var old in names.Take(Math.Max(0, names.Count - Governance.ConfigHistory.Kept)))
        {
            try
            {
                await client.DeleteAsync($"{history}/{old}", cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (NoNodeException)
            {
                // another writer trimmed it
            }
        }
    }

    public async Task<IReadOnlyList<Governance.ConfigHistoryEntry>> GetConfigHistoryAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        CheckNames(product, service);
        var client = _sessions.Current;
        var history = HistoryOf(product, service);
        IReadOnlyList<string> names;
        try
        {
            names = (await client.GetChildrenAsync(history, cancellationToken: cancellationToken).ConfigureAwait(false)).Children;
        }
        catch (NoNodeException)
        {
            return [];
        }

        var entries = new List<Governance.ConfigHistoryEntry>();
        foreach (var name in names.OrderDescending(StringComparer.Ordinal))
        {
            try
            {
                var node = await client.GetDataAsync($"{history}/{name}", cancellationToken: cancellationToken).ConfigureAwait(false);
                entries.Add(new Governance.ConfigHistoryEntry(name, DateTimeOffset.FromUnixTimeMilliseconds(node.Stat.Ctime), node.Data));
            }
            catch (NoNodeException)
            {
                // trimmed meanwhile
            }
        }

        return entries;
    }

    private static void CheckNames(string product, string service)
    {
        if (!RegistryPaths.IsName(product) || !RegistryPaths.IsName(service))
        {
            throw new ArgumentException("product and service must be names without '/'");
        }
    }

    private sealed class ConfigWatch(ChildrenCache cache) : Governance.IConfigWatch
    {
        private byte[]? _current;

        public byte[]? Current => Volatile.Read(ref _current);

        public event Action<byte[]?>? Changed;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            cache.Changed += children => Publish(children.TryGetValue("config", out var node) ? node.Data : null);
            await cache.StartAsync(cancellationToken).ConfigureAwait(false);
            Publish(cache.Current.TryGetValue("config", out var node) ? node.Data : null);
        }

        private void Publish(byte[]? data)
        {
            if (Governance.StoredConfig.Differ(Interlocked.Exchange(ref _current, data), data))
            {
                Changed?.Invoke(data);
            }
        }

        public ValueTask DisposeAsync() => cache.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_ownsSessions)
        {
            await _sessions.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Registration(PersistentEphemeralNode node, ServiceInstance instance) : IRegistration
    {
        private int _done;

        public ServiceInstance Instance { get; private set; } = instance;

        public async Task UpdateAsync(ServiceInstance instance, CancellationToken cancellationToken = default)
        {
            ArgumentNullException.ThrowIfNull(instance);
            Instance = instance;
            await node.UpdateAsync(instance.ToJson(), cancellationToken).ConfigureAwait(false);
        }

        public async Task DeregisterAsync(CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                await node.DisposeAsync().ConfigureAwait(false);
            }
        }

        public async ValueTask DisposeAsync() => await DeregisterAsync().ConfigureAwait(false);
    }

    private sealed class Watch(ChildrenCache cache, ILogger logger) : IServiceWatch
    {
        private IReadOnlyList<ServiceInstance> _instances = [];

        public IReadOnlyList<ServiceInstance> Instances => Volatile.Read(ref _instances);

        public event Action<IReadOnlyList<ServiceInstance>>? Changed;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            cache.Changed += snapshot =>
            {
                Volatile.Write(ref _instances, Parse(snapshot));
                Changed?.Invoke(Instances);
            };
            await cache.StartAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _instances, Parse(cache.Current));
        }

        private List<ServiceInstance> Parse(IReadOnlyDictionary<string, NodeData> snapshot)
        {
            var list = new List<ServiceInstance>(snapshot.Count);
            foreach (var (name, data) in snapshot.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (ServiceInstance.TryParse(data.Data) is { } instance)
                {
                    list.Add(instance);
                }
                else
                {
                    LogBadRecord(logger, name);
                }
            }

            return list;
        }

        public ValueTask DisposeAsync() => cache.DisposeAsync();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "registered {Path}")]
    private static partial void LogRegistered(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "skipping instance {Name}: its record is not a valid instance")]
    private static partial void LogBadRecord(ILogger logger, string name);
}
