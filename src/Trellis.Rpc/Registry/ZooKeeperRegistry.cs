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
/// <remarks>
/// With a <see cref="RegistryAclPolicy"/>, the nodes it creates carry digest ACLs: <c>/trellis</c> and a product's node
/// the policy's, every node below a product's node its parent's. Without one, nodes are created open (world:anyone ALL),
/// as before ACLs. Whatever ZooKeeper refuses for lack of permission is a <see cref="RegistryAccessDeniedException"/>
/// naming the identity, the action and the node — a watch the session may not read fails at once, never as an empty list.
/// </remarks>
public sealed partial class ZooKeeperRegistry : IServiceRegistry, Governance.IConfigStore, IRegistryBrowser
{
    private readonly ZooKeeperSessionManager _sessions;
    private readonly ILogger _logger;
    private readonly bool _ownsSessions;
    private readonly RegistryAclPolicy? _acls;
    private readonly string _identity;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _warnedOpen = new(StringComparer.Ordinal);

    /// <summary>A registry on a session manager; <paramref name="acls"/> is the ACL policy of the nodes it creates (null: open nodes, as before ACLs).</summary>
    public ZooKeeperRegistry(ZooKeeperSessionManager sessions, ILogger? logger = null, RegistryAclPolicy? acls = null)
        : this(sessions, logger, acls, acls?.Identity ?? "this session", owns: false) // the manager's credentials are not ours to read
    {
    }

    private ZooKeeperRegistry(ZooKeeperSessionManager sessions, ILogger? logger, RegistryAclPolicy? acls, string? identity, bool owns)
    {
        _sessions = sessions ?? throw new ArgumentNullException(nameof(sessions));
        _logger = logger ?? NullLogger.Instance;
        _acls = acls;
        _identity = identity ?? RegistryAclPolicy.Anonymous;
        _ownsSessions = owns;
    }

    /// <summary>Connects a session of its own.</summary>
    public static Task<ZooKeeperRegistry> ConnectAsync(ZooKeeperOptions options, CancellationToken cancellationToken = default) =>
        ConnectAsync(options, null, cancellationToken);

    /// <summary>Connects a session of its own (with <see cref="ZooKeeperOptions.Authentication"/>), creating nodes under <paramref name="acls"/>.</summary>
    public static async Task<ZooKeeperRegistry> ConnectAsync(ZooKeeperOptions options, RegistryAclPolicy? acls, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var sessions = new ZooKeeperSessionManager(options);
        await sessions.StartAsync(cancellationToken).ConfigureAwait(false);
        return new ZooKeeperRegistry(sessions, options.Logger, acls, acls?.Identity ?? RegistryAclPolicy.IdentityOf(options.Authentication), owns: true);
    }

    public ZooKeeperSessionManager Sessions => _sessions;

    /// <summary>The ACL policy of the nodes this registry creates (null: open nodes).</summary>
    public RegistryAclPolicy? Acls => _acls;

    /// <summary>Who this registry's session is, in messages: a digest user name, or <see cref="RegistryAclPolicy.Anonymous"/>.</summary>
    public string Identity => _identity;

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
        var node = _acls is null
            ? new PersistentEphemeralNode(_sessions, path, instance.ToJson(), logger: _logger)
            : new PersistentEphemeralNode(_sessions, path, instance.ToJson(), AclForAsync, _logger);
        try
        {
            await node.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await node.DisposeAsync().ConfigureAwait(false); // nothing keeps trying behind the caller's back
            if (e is NoAuthException refused)
            {
                throw Denied("create", refused.Path ?? path, refused);
            }

            throw;
        }

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
        await CheckReadableAsync(path, cancellationToken).ConfigureAwait(false);
        var watch = new Watch(new ChildrenCache(_sessions, path, logger: _logger), _logger);
        await StartOrDisposeAsync(watch.StartAsync, watch, path, cancellationToken).ConfigureAwait(false);
        return watch;
    }

    /// <summary>
    /// Fails at once when the session may not read the product's node: a watch of a node that does not exist (yet)
    /// would otherwise look like "no instances" to a caller who may not see them anyway.
    /// </summary>
    private async Task CheckReadableAsync(string path, CancellationToken cancellationToken)
    {
        if (ProductNodeOf(path) is not { } product)
        {
            return;
        }

        try
        {
            await _sessions.Current.GetDataAsync(product, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (NoNodeException)
        {
            // no product yet: nothing to read, nothing refused
        }
        catch (NoAuthException e)
        {
            throw Denied("read", product, e);
        }
    }

    private async Task StartOrDisposeAsync(Func<CancellationToken, Task> start, IAsyncDisposable owner, string path, CancellationToken cancellationToken)
    {
        try
        {
            await start(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await owner.DisposeAsync().ConfigureAwait(false); // a watch that did not start is not left running
            if (e is NoAuthException refused)
            {
                throw Denied("read", refused.Path ?? path, refused);
            }

            throw;
        }
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
        catch (NoAuthException e)
        {
            throw Denied("read", RegistryPaths.Config(product, service), e);
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
                await CreateIfMissingAsync(client, parent, cancellationToken).ConfigureAwait(false);
            }

            await CreateAsync(client, path, data, CreateMode.Persistent, cancellationToken).ConfigureAwait(false);
            await RecordHistoryAsync(client, product, service, data, cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (NoAuthException e)
        {
            throw Denied("write", e.Path ?? path, e);
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
        var path = RegistryPaths.Service(product, service);
        await CheckReadableAsync(path, cancellationToken).ConfigureAwait(false);
        var watch = new ConfigWatch(new ChildrenCache(_sessions, path, logger: _logger));
        await StartOrDisposeAsync(watch.StartAsync, watch, path, cancellationToken).ConfigureAwait(false);
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
        catch (NoAuthException e)
        {
            throw Denied("read", path, e);
        }
    }

    private static string HistoryOf(string product, string service) => RegistryPaths.Service(product, service) + "/config-history";

    /// <summary>Keeps what was written as a sequential node under <c>config-history</c>, trimmed to the last <see cref="Governance.ConfigHistory.Kept"/>.</summary>
    private async Task RecordHistoryAsync(ZooKeeperClient client, string product, string service, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var history = HistoryOf(product, service);
        await CreateIfMissingAsync(client, history, cancellationToken).ConfigureAwait(false);
        await CreateAsync(client, history + "/v-", data, CreateMode.PersistentSequential, cancellationToken).ConfigureAwait(false);
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
        catch (NoAuthException e)
        {
            throw Denied("read", history, e);
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
            catch (NoAuthException e)
            {
                throw Denied("read", $"{history}/{name}", e);
            }
        }

        return entries;
    }

    // ------------------------------------------------------------------ ACLs

    private RegistryAccessDeniedException Denied(string action, string path, Exception inner) => new(_identity, action, path, inner);

    /// <summary><c>/trellis/{product}</c> for a path at or under a product's node, else null.</summary>
    private static string? ProductNodeOf(string path)
    {
        if (!path.StartsWith(RegistryPaths.Root + "/", StringComparison.Ordinal))
        {
            return null;
        }

        var slash = path.IndexOf('/', RegistryPaths.Root.Length + 1);
        return slash < 0 ? path : path[..slash];
    }

    /// <summary>
    /// The ACL of a node about to be created: open without a policy; the policy's for <c>/trellis</c> and a product's
    /// node; otherwise the parent's, so that a tree keeps what <c>trellis registry acl</c> set on it (the policy's when
    /// the parent's cannot be read whole).
    /// </summary>
    private async Task<IReadOnlyList<Acl>> AclForAsync(ZooKeeperClient client, string path, CancellationToken cancellationToken)
    {
        if (_acls is not { } policy)
        {
            return Acl.OpenUnsafe;
        }

        if (ProductNodeOf(path) is not { } productNode)
        {
            return policy.ForRoot();
        }

        var product = productNode[(RegistryPaths.Root.Length + 1)..];
        if (path == productNode)
        {
            return policy.ForProduct(product);
        }

        try
        {
            var (acl, _) = await client.GetAclAsync(path[..path.LastIndexOf('/')], cancellationToken).ConfigureAwait(false);
            if (acl.Count > 0 && !acl.Any(RegistryAclPolicy.IsRedacted))
            {
                if ((RegistryAclPolicy.IsOpen(acl) || (Governance.ProductIsolation.IsOnline(product) && acl.Any(a => a.Scheme == "world"))) && _warnedOpen.TryAdd(product, true))
                {
                    LogOpenProduct(_logger, product, RegistryAclPolicy.Describe(acl));
                }

                return acl;
            }
        }
        catch (Exception e) when (e is NoNodeException or NoAuthException)
        {
            // the parent went, or its ACL is not ours to read: the policy's
        }

        return policy.ForProduct(product);
    }

    private async Task CreateAsync(ZooKeeperClient client, string path, ReadOnlyMemory<byte> data, CreateMode mode, CancellationToken cancellationToken)
    {
        try
        {
            await client.CreateAsync(path, data, mode, await AclForAsync(client, path, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (NoAuthException e)
        {
            throw Denied("create", path, e);
        }
    }

    /// <summary>
    /// Creates a persistent node unless it is there: looked at first, since a create of a node that exists is refused
    /// (NoAuth, not NodeExists) where its parent does not let this identity create.
    /// </summary>
    private async Task CreateIfMissingAsync(ZooKeeperClient client, string path, CancellationToken cancellationToken)
    {
        if (await client.ExistsAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        try
        {
            await CreateAsync(client, path, ReadOnlyMemory<byte>.Empty, CreateMode.Persistent, cancellationToken).ConfigureAwait(false);
        }
        catch (NodeExistsException)
        {
            // created meanwhile
        }
    }

    /// <summary>A node's ACL, or null when there is no such node.</summary>
    public async Task<IReadOnlyList<Acl>?> GetAclAsync(string path, CancellationToken cancellationToken = default)
    {
        try
        {
            return (await _sessions.Current.GetAclAsync(path, cancellationToken).ConfigureAwait(false)).Acl;
        }
        catch (NoNodeException)
        {
            return null;
        }
        catch (NoAuthException e)
        {
            throw Denied("read the ACL of", path, e);
        }
    }

    /// <summary>
    /// Applies <paramref name="policy"/> to a product (<c>trellis registry acl</c>): creates <c>/trellis</c> and the
    /// product's node when missing, closes an open <c>/trellis</c> (world:anyone may then only read it), and sets the
    /// product's ACL on every node of its tree whose ACL differs. The tree is listed before anything in it changes (the
    /// new ACL may not let this identity read it). What is refused is collected, not thrown: the rest is still done.
    /// </summary>
    public async Task<AclRepair> SecureProductAsync(string product, RegistryAclPolicy policy, bool dryRun = false, CancellationToken cancellationToken = default)
    {
        CheckNames(product, "x");
        ArgumentNullException.ThrowIfNull(policy);
        var client = _sessions.Current;
        var changes = new List<AclChange>();
        var refused = new List<RegistryAccessDeniedException>();
        var productNode = RegistryPaths.Root + "/" + product;
        var wanted = policy.ForProduct(product);

        var nodes = new List<string>();
        var queue = new Queue<string>([productNode]);
        while (queue.TryDequeue(out var parent))
        {
            IReadOnlyList<string> children;
            try
            {
                children = (await client.GetChildrenAsync(parent, cancellationToken: cancellationToken).ConfigureAwait(false)).Children;
            }
            catch (NoNodeException)
            {
                continue;
            }
            catch (NoAuthException e)
            {
                refused.Add(Denied("read", parent, e));
                continue;
            }

            foreach (var child in children.Order(StringComparer.Ordinal))
            {
                nodes.Add(parent + "/" + child);
                queue.Enqueue(parent + "/" + child);
            }
        }

        async Task EnsureAsync(string path, IReadOnlyList<Acl> acl, Func<IReadOnlyList<Acl>, bool> differs, bool create)
        {
            IReadOnlyList<Acl> current;
            try
            {
                current = (await client.GetAclAsync(path, cancellationToken).ConfigureAwait(false)).Acl;
            }
            catch (NoNodeException)
            {
                if (!create)
                {
                    return; // an instance that went meanwhile
                }

                try
                {
                    if (!dryRun)
                    {
                        await client.CreateAsync(path, ReadOnlyMemory<byte>.Empty, CreateMode.Persistent, acl, cancellationToken).ConfigureAwait(false);
                    }

                    changes.Add(new AclChange(path, [], acl));
                }
                catch (NodeExistsException)
                {
                    // created meanwhile, with whatever its creator chose: the next run checks it
                }
                catch (NoAuthException e)
                {
                    refused.Add(Denied("create", path, e));
                }

                return;
            }
            catch (NoAuthException e)
            {
                refused.Add(Denied("read the ACL of", path, e));
                return;
            }

            if (!differs(current))
            {
                return;
            }

            try
            {
                if (!dryRun)
                {
                    await client.SetAclAsync(path, acl, -1, cancellationToken).ConfigureAwait(false);
                }

                changes.Add(new AclChange(path, current, acl));
            }
            catch (NoNodeException)
            {
                // gone meanwhile
            }
            catch (NoAuthException e)
            {
                refused.Add(Denied("change the ACL of", path, e));
            }
        }

        await EnsureAsync(RegistryPaths.Root, policy.ForRoot(), RegistryAclPolicy.IsOpen, create: true).ConfigureAwait(false);
        await EnsureAsync(productNode, wanted, acl => !RegistryAclPolicy.Same(acl, wanted), create: true).ConfigureAwait(false);
        foreach (var node in nodes)
        {
            await EnsureAsync(node, wanted, acl => !RegistryAclPolicy.Same(acl, wanted), create: false).ConfigureAwait(false);
        }

        return new AclRepair(2 + nodes.Count, changes, refused);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "ZooKeeper ACLs: product {Product} is not secured ({Acl}), and nodes created in it copy that: secure it with `trellis registry acl`")]
    private static partial void LogOpenProduct(ILogger logger, string product, string acl);

    [LoggerMessage(Level = LogLevel.Information, Message = "registered {Path}")]
    private static partial void LogRegistered(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "skipping instance {Name}: its record is not a valid instance")]
    private static partial void LogBadRecord(ILogger logger, string name);
}
