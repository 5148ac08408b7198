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
public sealed partial class ZooKeeperRegistry : IServiceRegistry
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
