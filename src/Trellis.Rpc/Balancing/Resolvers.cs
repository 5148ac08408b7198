using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Balancing;

/// <summary>An instance-set change, as a diff (Kitex's resolver results).</summary>
public sealed record ResolverUpdate(
    IReadOnlyList<ServiceInstance> Instances,
    IReadOnlyList<ServiceInstance> Added,
    IReadOnlyList<ServiceInstance> Removed,
    IReadOnlyList<ServiceInstance> Changed);

/// <summary>Pushes the instances of one service (grpc-dotnet's Resolver).</summary>
public interface IInstanceResolver : IAsyncDisposable
{
    IReadOnlyList<ServiceInstance> Instances { get; }

    /// <summary>Raised after each change, in order.</summary>
    event Action<ResolverUpdate>? Updated;

    Task StartAsync(CancellationToken cancellationToken = default);
}

/// <summary>A fixed list (direct mode without a registry), changeable by code.</summary>
public sealed class StaticResolver(IEnumerable<ServiceInstance> instances) : IInstanceResolver
{
    private readonly Diff _diff = new(instances);

    public IReadOnlyList<ServiceInstance> Instances => _diff.Current;

    public event Action<ResolverUpdate>? Updated;

    public Task StartAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>Replaces the list (a rolling restart in tests, an operator's change).</summary>
    public void Set(IEnumerable<ServiceInstance> instances)
    {
        if (_diff.Apply([.. instances]) is { } update)
        {
            Updated?.Invoke(update);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// Instances from a registry watch (ZooKeeper or local), with two protections: an empty list replacing a
/// non-empty one is taken for a registry hiccup and ignored (unless <paramref name="emptyProtection"/> is off),
/// and a removed instance is kept for <paramref name="removalHoldDown"/> in case it comes straight back (flapping;
/// Finagle's stabilizer). A draining instance is never held: it is updated at once.
/// </summary>
public sealed partial class RegistryResolver(IServiceRegistry registry, string product, string service,
    bool emptyProtection = true, TimeSpan? removalHoldDown = null, ILogger? logger = null) : IInstanceResolver
{
    private readonly TimeSpan _holdDown = removalHoldDown ?? TimeSpan.FromMilliseconds(500);
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly Diff _diff = new([]);
    private readonly object _lock = new();
    private readonly Dictionary<string, (ServiceInstance Instance, DateTime Until)> _held = new(StringComparer.Ordinal);
    private IServiceWatch? _watch;
    private Timer? _timer;
    private string? _proxiesZone;

    /// <summary>The central proxies of a zone (<c>/trellis/{product}/proxies/{zone}</c>) instead of a service's instances.</summary>
    public static RegistryResolver ForCentralProxies(IServiceRegistry registry, string product, string zone, ILogger? logger = null) =>
        new(registry, product, "proxy", logger: logger) { _proxiesZone = zone ?? throw new ArgumentNullException(nameof(zone)) };

    public IReadOnlyList<ServiceInstance> Instances => _diff.Current;

    public event Action<ResolverUpdate>? Updated;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        _watch = _proxiesZone is { } zone
            ? await registry.WatchProxiesAsync(product, zone, cancellationToken).ConfigureAwait(false)
            : await registry.WatchAsync(product, service, cancellationToken).ConfigureAwait(false);
        // armed only while a removal is held, for when the first one runs out: an idle resolver costs no timer ticks
        _timer = new Timer(_ => Publish(null), null, Timeout.Infinite, Timeout.Infinite);
        _watch.Changed += OnChanged;
        OnChanged(_watch.Instances);
    }

    private void OnChanged(IReadOnlyList<ServiceInstance> instances) => Publish(instances);

    private void Publish(IReadOnlyList<ServiceInstance>? latest)
    {
        ResolverUpdate? update;
        lock (_lock)
        {
            var now = DateTime.UtcNow;
            var current = _diff.Current;
            if (latest is null)
            {
                latest = _lastSeen;
            }
            else if (latest.Count == 0 && current.Count > 0 && emptyProtection)
            {
                LogEmptyIgnored(_logger, product, service, current.Count);
                return;
            }
            else
            {
                _lastSeen = latest;
            }

            var present = latest.Select(i => i.InstanceId).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in current.Where(i => !present.Contains(i.InstanceId) && !i.Draining))
            {
                _held.TryAdd(gone.InstanceId, (gone, now + _holdDown));
            }

            foreach (var back in present)
            {
                _held.Remove(back);
            }

            foreach (var expired in _held.Where(h => h.Value.Until <= now).Select(h => h.Key).ToList())
            {
                _held.Remove(expired);
            }

            update = _diff.Apply([.. latest, .. _held.Values.Select(h => h.Instance)]);
            if (_held.Count > 0)
            {
                var due = _held.Values.Min(h => h.Until) - now;
                Rearm(due < MinimumTick ? MinimumTick : due);
            }
        }

        if (update is not null)
        {
            Updated?.Invoke(update);
        }
    }

    private IReadOnlyList<ServiceInstance> _lastSeen = [];

    private static readonly TimeSpan MinimumTick = TimeSpan.FromMilliseconds(10);

    private void Rearm(TimeSpan due)
    {
        try
        {
            _timer?.Change(due, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // the resolver is being disposed: nothing is held for anyone any more
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }

        if (_watch is not null)
        {
            await _watch.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Product}/{Service}: the registry reports no instances; keeping the last {Count} (empty protection)")]
    private static partial void LogEmptyIgnored(ILogger logger, string product, string service, int count);
}

/// <summary>Keeps the current list and turns a new one into a diff (null when nothing changed).</summary>
internal sealed class Diff(IEnumerable<ServiceInstance> initial)
{
    private readonly object _lock = new();

    public IReadOnlyList<ServiceInstance> Current { get; private set; } = [.. initial];

    public ResolverUpdate? Apply(IReadOnlyList<ServiceInstance> next)
    {
        lock (_lock)
        {
            var before = Current.ToDictionary(i => i.InstanceId, StringComparer.Ordinal);
            var after = next.GroupBy(i => i.InstanceId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
            var added = after.Values.Where(i => !before.ContainsKey(i.InstanceId)).ToList();
            var removed = before.Values.Where(i => !after.ContainsKey(i.InstanceId)).ToList();
            // by content: records read anew compare unequal by reference (their tags dictionaries)
            var changed = after.Values.Where(i => before.TryGetValue(i.InstanceId, out var old) && !old.ToJson().AsSpan().SequenceEqual(i.ToJson())).ToList();
            if (added.Count == 0 && removed.Count == 0 && changed.Count == 0)
            {
                return null;
            }

            Current = [.. after.Values.OrderBy(i => i.InstanceId, StringComparer.Ordinal)];
            return new ResolverUpdate(Current, added, removed, changed);
        }
    }
}
