using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Governance;

/// <summary>
/// A resolver with the service's config applied, for direct-mode clients: instances taken offline are left out and
/// configured weights replace registered ones, following every change of either the instances or the config. A config
/// with problems is rejected (logged) and the last good one kept, as at the proxies.
/// </summary>
public sealed partial class ConfiguredResolver(IInstanceResolver inner, IConfigStore store, string product, string service, ILogger? logger = null) : IInstanceResolver
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly Diff _diff = new([]);
    private readonly object _lock = new();
    private IConfigWatch? _watch;
    private ServiceConfig _config = ServiceConfig.Empty;

    public IReadOnlyList<ServiceInstance> Instances => _diff.Current;

    /// <summary>The config in force (the last good one).</summary>
    public ServiceConfig Config => Volatile.Read(ref _config);

    public event Action<ResolverUpdate>? Updated;

    /// <summary>Raised with each new config put in force.</summary>
    public event Action<ServiceConfig>? ConfigChanged;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        inner.Updated += _ => Publish();
        await inner.StartAsync(cancellationToken).ConfigureAwait(false);
        _watch = await store.WatchConfigAsync(product, service, cancellationToken).ConfigureAwait(false);
        _watch.Changed += OnConfig;
        OnConfig(_watch.Current);
    }

    private void OnConfig(byte[]? data)
    {
        var (config, problems) = data is null || data.Length == 0 ? (ServiceConfig.Empty, []) : ServiceConfig.Parse(data);
        if (config is null)
        {
            LogRejected(_logger, product, service, string.Join("; ", problems));
            return;
        }

        Volatile.Write(ref _config, config);
        Publish();
        ConfigChanged?.Invoke(config);
    }

    private void Publish()
    {
        ResolverUpdate? update;
        lock (_lock)
        {
            update = _diff.Apply(Config.Apply(inner.Instances));
        }

        if (update is not null)
        {
            Updated?.Invoke(update);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_watch is not null)
        {
            await _watch.DisposeAsync().ConfigureAwait(false);
        }

        await inner.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Product}/{Service}: config rejected, the last good one stays: {Problems}")]
    private static partial void LogRejected(ILogger logger, string product, string service, string problems);
}
