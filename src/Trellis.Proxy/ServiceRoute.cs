using System.Text.Json;
using Microsoft.Extensions.Logging;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Governance;
using Trellis.Rpc.Registry;

namespace Trellis.Proxy;

/// <summary>
/// The instances of one service at the proxy and the balancer over them. Lists come from the registry watch; each
/// is saved to the snapshot directory, and a proxy that starts while the registry is unreachable serves from the
/// saved list. An empty list never replaces a non-empty one (a registry hiccup is not an outage).
/// </summary>
internal sealed partial class ServiceRoute : IAsyncDisposable
{
    private readonly ProxyServer _proxy;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RegistryResolver? _resolver;
    private Task? _watching;

    public ServiceRoute(ProxyServer proxy, string service)
    {
        _proxy = proxy;
        Service = service;
        var options = proxy.Options;
        var strategy = StrategyFor(options, service);
        Set = new EndpointSet<BackendPool>(strategy, DefaultOutliers, TimeSpan.Zero,
            instance => new BackendPool(proxy, instance),
            pool => _ = pool.DisposeAsync().AsTask());
    }

    public string Service { get; }

    /// <summary>The service's calls over the last minute (the admin page's statistics).</summary>
    public ServiceStats Stats { get; } = new();

    /// <summary>The instances as registered, before the config (offline, weights) applies: the admin page lists offline ones too.</summary>
    public IReadOnlyList<ServiceInstance> Registered => Volatile.Read(ref _raw);

    private static readonly OutlierPolicy DefaultOutliers = new();

    public EndpointSet<BackendPool> Set { get; }

    /// <summary>Some instance list (registry or snapshot) has been seen, or the registry answered.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Why the registry refuses this proxy the service's instances (it may not read them), or null.</summary>
    public string? Denied => Volatile.Read(ref _denied);

    private string? _denied;

    /// <summary>The service has had instances at some point (else a call to it is for an unknown service).</summary>
    public bool EverHadInstances { get; private set; }

    /// <summary>The service's config from the registry (the last good one; empty until one is set).</summary>
    public ServiceConfig Config => Volatile.Read(ref _config);

    private ServiceConfig _config = ServiceConfig.Empty;
    private GovernanceState _limits = GovernanceState.None;

    /// <summary>The rate and concurrency limits and circuit breakers in force: swapped whole when a config is applied.</summary>
    public GovernanceState Limits => Volatile.Read(ref _limits);

    private IReadOnlyList<ServiceInstance> _raw = [];
    private IConfigWatch? _configWatch;

    public static BalancerStrategy StrategyFor(ProxyOptions options, string service, string? configured = null)
    {
        var name = configured ?? (options.Services.TryGetValue(service, out var s) && s.Strategy is { } own ? own : options.Strategy);
        var strategy = BalancerStrategy.Parse(name);
        return options.Locality && (options.Host is not null || options.Zone.Length > 0)
            ? new LocalityStrategy(strategy, options.Host, options.Zone.Length > 0 ? options.Zone : null)
            : strategy;
    }

    /// <summary>How long a new route waits for the registry's list before it serves the saved one instead.</summary>
    internal static readonly TimeSpan SnapshotGrace = TimeSpan.FromMilliseconds(500);

    public void Start()
    {
        _watching = Task.Run(WatchAsync);
        if (_proxy.Snapshots?.Load(Service) is { Count: > 0 } saved)
        {
            // the saved list is for a registry that cannot be reached: a live list, even one that comes a moment
            // later, is the truth (the saved one may name instances long gone)
            _ = Task.Run(async () =>
            {
                await Task.WhenAny(_ready.Task, Task.Delay(SnapshotGrace, _stop.Token)).ConfigureAwait(false);
                lock (_stop)
                {
                    if (!_live && !_stop.IsCancellationRequested && Denied is null) // a proxy the registry refuses does not route from old lists
                    {
                        _fromSnapshot = true;
                        LogFromSnapshot(_proxy.Logger, Service, saved.Count);
                        Apply(saved, save: false);
                    }
                }
            });
        }
    }

    private bool _live;
    private bool _fromSnapshot;

    private async Task WatchAsync()
    {
        var attempt = 0;
        while (!_stop.IsCancellationRequested)
        {
            RegistryResolver? resolver = null;
            try
            {
                var registry = await _proxy.Registry.WaitAsync(_stop.Token).ConfigureAwait(false);
                resolver = new RegistryResolver(registry, _proxy.Options.Product, Service, logger: _proxy.Logger);
                resolver.Updated += update => Apply(update.Instances, save: true);
                await resolver.StartAsync(_stop.Token).ConfigureAwait(false);
                (_resolver, resolver) = (resolver, null);
                if (registry is IConfigStore store)
                {
                    await WatchConfigAsync(store).ConfigureAwait(false);
                }

                lock (_stop)
                {
                    _live = true;
                    Apply(_resolver.Instances, save: true);
                }

                Volatile.Write(ref _denied, null);
                _ready.TrySetResult();
                return;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (e is UnauthorizedAccessException)
                {
                    // the registry refuses this proxy (ZooKeeper ACLs): callers are told so at once, not "no instances"
                    Volatile.Write(ref _denied, e.Message);
                    LogWatchRefused(_proxy.Logger, Service, e.Message);
                    _ready.TrySetResult();
                }
                else
                {
                    LogWatchFailed(_proxy.Logger, Service, e.Message);
                }

                attempt++;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(attempt, 6)))), _stop.Token)
                    .ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
            finally
            {
                if (resolver is not null)
                {
                    await resolver.DisposeAsync().ConfigureAwait(false); // a watch that failed to start is not left behind
                }
            }
        }
    }

    private async Task WatchConfigAsync(IConfigStore store)
    {
        try
        {
            _configWatch = await store.WatchConfigAsync(_proxy.Options.Product, Service, _stop.Token).ConfigureAwait(false);
            _configWatch.Changed += OnConfig;
            OnConfig(_configWatch.Current);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogConfigWatchFailed(_proxy.Logger, Service, e.Message);
        }
    }

    /// <summary>A config pushed through the registry: used when valid, else rejected with its problems and the last good one kept.</summary>
    private void OnConfig(byte[]? data)
    {
        ServiceConfig config;
        if (data is null || data.Length == 0)
        {
            config = ServiceConfig.Empty;
        }
        else
        {
            var (parsed, problems) = ServiceConfig.Parse(data);
            if (parsed is null)
            {
                LogConfigRejected(_proxy.Logger, Service, string.Join("; ", problems));
                return;
            }

            config = parsed;
        }

        lock (_stop)
        {
            Volatile.Write(ref _config, config);
            // new limits start afresh; unchanged ones keep their state (a push must not reset a bucket, a gate or a breaker)
            Volatile.Write(ref _limits, _limits.Next(config));
            Set.Reconfigure(StrategyFor(_proxy.Options, Service, config.Strategy), config.Outliers ?? DefaultOutliers,
                [.. config.Routes.Subsets.Select(selector => (Func<ServiceInstance, bool>)selector.Matches)], config.Apply(_raw));
        }

        LogConfigApplied(_proxy.Logger, Service, config.Offline.Count, config.Weights.Count, config.Methods.Count, config.Routes.Rules.Count);
    }

    private void Apply(IReadOnlyList<ServiceInstance> instances, bool save)
    {
        lock (_stop)
        {
            if (save && _fromSnapshot)
            {
                _fromSnapshot = false; // the registry's first list replaces the saved one, even when it is empty
            }
            else if (instances.Count == 0 && Set.Endpoints.Length > 0)
            {
                return; // empty protection: keep serving the last list
            }

            _raw = instances;
            Set.Update(Config.Apply(instances)); // instances taken offline stay out, configured weights apply
            if (instances.Count > 0)
            {
                EverHadInstances = true;
                _ready.TrySetResult();
                if (save)
                {
                    _proxy.Snapshots?.Save(Service, instances);
                }
            }
        }
    }

    public void Reload(ProxyOptions options) => Set.SetStrategy(StrategyFor(options, Service, Config.Strategy));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_watching is not null)
        {
            await _watching.ConfigureAwait(false);
        }

        if (_resolver is not null)
        {
            await _resolver.DisposeAsync().ConfigureAwait(false);
        }

        if (_configWatch is not null)
        {
            await _configWatch.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var pool in Set.Clear())
        {
            await pool.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Service}: the registry refuses this proxy: {Reason}")]
    private static partial void LogWatchRefused(ILogger logger, string service, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Service}: cannot watch the registry yet ({Reason}); serving the cached list, if any")]
    private static partial void LogWatchFailed(ILogger logger, string service, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Service}: config applied ({Offline} instances offline, {Weights} weights, {Methods} methods configured, {Routes} routes)")]
    private static partial void LogConfigApplied(ILogger logger, string service, int offline, int weights, int methods, int routes);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Service}: config rejected, the last good one stays: {Problems}")]
    private static partial void LogConfigRejected(ILogger logger, string service, string problems);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Service}: cannot watch its config: {Reason}")]
    private static partial void LogConfigWatchFailed(ILogger logger, string service, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Service}: no list from the registry yet; serving the {Count} instances saved in the snapshot")]
    private static partial void LogFromSnapshot(ILogger logger, string service, int count);
}

/// <summary>Instance lists on disk, one JSON file per service, replaced atomically.</summary>
internal sealed partial class SnapshotStore(string directory, string product, ILogger logger)
{
    private readonly string _directory = Path.Combine(directory, product);

    private string FileOf(string service) => Path.Combine(_directory, service + ".json");

    public void Save(string service, IReadOnlyList<ServiceInstance> instances)
    {
        try
        {
            Directory.CreateDirectory(_directory);
            var file = FileOf(service);
            var temp = file + "." + Environment.ProcessId + ".tmp";
            using (var stream = File.Create(temp))
            using (var json = new Utf8JsonWriter(stream))
            {
                json.WriteStartArray();
                foreach (var instance in instances)
                {
                    json.WriteRawValue(instance.ToJson());
                }

                json.WriteEndArray();
            }

            File.Move(temp, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogSaveFailed(logger, service, e.Message);
        }
    }

    public IReadOnlyList<ServiceInstance>? Load(string service)
    {
        try
        {
            var file = FileOf(service);
            if (!File.Exists(file))
            {
                return null;
            }

            using var document = JsonDocument.Parse(File.ReadAllBytes(file));
            var list = new List<ServiceInstance>();
            foreach (var element in document.RootElement.EnumerateArray())
            {
                if (ServiceInstance.TryParse(System.Text.Encoding.UTF8.GetBytes(element.GetRawText())) is { } instance && instance.Service == service)
                {
                    list.Add(instance);
                }
            }

            return list;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException)
        {
            LogLoadFailed(logger, service, e.Message);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Service}: cannot save the instance snapshot: {Reason}")]
    private static partial void LogSaveFailed(ILogger logger, string service, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Service}: the instance snapshot is unreadable, ignored: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string service, string reason);
}
