using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Trellis.ZooKeeper.Recipes;

/// <summary>
/// A local, consistent copy of a node's children and their data (a service's instances), kept current by a
/// persistent recursive watch. Bursts of changes are coalesced into one update; after every reconnect and
/// every new session the whole view is reloaded, since changes made while disconnected are not replayed
/// to persistent watches. Readers get immutable snapshots.
/// </summary>
public sealed partial class ChildrenCache : IAsyncDisposable
{
    private readonly ZooKeeperSessionManager _sessions;
    private readonly string _path;
    private readonly TimeSpan _coalesce;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Watcher _watcher;
    private ImmutableDictionary<string, NodeData> _current = ImmutableDictionary<string, NodeData>.Empty.WithComparers(StringComparer.Ordinal);
    private bool _fullReload = true;
    private ZooKeeperClient? _watchedOn;
    private Task? _loop;
    private bool _refusalLogged;

    public ChildrenCache(ZooKeeperSessionManager sessions, string path, TimeSpan? coalesce = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        PathValidation.Validate(path);
        _sessions = sessions;
        _path = path;
        _coalesce = coalesce ?? TimeSpan.FromMilliseconds(10);
        _logger = logger ?? NullLogger.Instance;
        _watcher = OnEvent;
    }

    /// <summary>Child name → data, as of the last update.</summary>
    public IReadOnlyDictionary<string, NodeData> Current => Volatile.Read(ref _current);

    /// <summary>Raised after each update that changed the view, with the new snapshot (on the cache's own loop).</summary>
    public event Action<IReadOnlyDictionary<string, NodeData>>? Changed;

    /// <summary>Loads the view; completes after the first full load, or fails with <see cref="NoAuthException"/> when the session may not read it.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        _sessions.SessionStarted += OnSessionStarted;
        _sessions.StateChanged += OnStateChanged;
        _loop = Task.Run(LoopAsync, CancellationToken.None); // runs until disposed, not until the start is cancelled
        Reload();
        await _loaded.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private void OnSessionStarted(ZooKeeperClient client) => Reload();

    private void OnStateChanged(ZooKeeperClient client, SessionState state)
    {
        if (state == SessionState.Connected)
        {
            Reload();
        }
    }

    private void Reload()
    {
        lock (_lock)
        {
            _fullReload = true;
        }

        try
        {
            _signal.Release();
        }
        catch (ObjectDisposedException)
        {
            // an event raised while the cache was being disposed: nothing left to reload
        }
    }

    private void OnEvent(WatchedEvent e)
    {
        lock (_lock)
        {
            if (e.Path == _path)
            {
                _fullReload = true;
            }
            else if (e.Path.StartsWith(_path == "/" ? "/" : _path + "/", StringComparison.Ordinal))
            {
                var rest = e.Path[(_path == "/" ? 1 : _path.Length + 1)..];
                if (!rest.Contains('/', StringComparison.Ordinal))
                {
                    _dirty.Add(rest); // deeper descendants are not part of this view
                }
            }
        }

        _signal.Release();
    }

    private async Task LoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                await Task.Delay(_coalesce, _stopping.Token).ConfigureAwait(false);
                while (_signal.CurrentCount > 0)
                {
                    await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                }

                bool full;
                string[] dirty;
                lock (_lock)
                {
                    full = _fullReload;
                    dirty = [.. _dirty];
                    _fullReload = false;
                    _dirty.Clear();
                }

                await UpdateAsync(_sessions.Current, full, dirty, _stopping.Token).ConfigureAwait(false);
                _refusalLogged = false;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is KeeperException or ObjectDisposedException or InvalidOperationException)
            {
                // keep the last good view; reload once the session is usable again
                if (e is NoAuthException)
                {
                    // the session may not read the node: the first load fails with it (not an empty view that looks
                    // like "no children"); later (the ACL changed) the last view stays and this is said loudly
                    if (!_loaded.TrySetException(e) && !_refusalLogged)
                    {
                        _refusalLogged = true; // once until it reads again: retries come every second
                        LogRefused(_logger, _path, e.Message);
                    }
                }
                else
                {
                    LogRetry(_logger, _path, e.Message);
                }
                lock (_lock)
                {
                    _fullReload = true;
                }

                try
                {
                    await Task.Delay(e is NoAuthException ? 1000 : 100, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                _signal.Release();
            }
        }
    }

    private async Task UpdateAsync(ZooKeeperClient client, bool full, string[] dirty, CancellationToken cancellationToken)
    {
        if (!ReferenceEquals(_watchedOn, client))
        {
            await client.AddWatchAsync(_path, AddWatchMode.PersistentRecursive, _watcher, cancellationToken).ConfigureAwait(false);
            _watchedOn = client;
            full = true;
        }

        var next = Volatile.Read(ref _current);
        if (full)
        {
            IReadOnlyList<string> names;
            try
            {
                names = (await client.GetChildrenAsync(_path, cancellationToken: cancellationToken).ConfigureAwait(false)).Children;
            }
            catch (NoNodeException)
            {
                names = [];
            }

            var reads = names.Select(async name => (name, data: await TryGetAsync(client, name, cancellationToken).ConfigureAwait(false))).ToList();
            var builder = ImmutableDictionary.CreateBuilder<string, NodeData>(StringComparer.Ordinal);
            foreach (var (name, data) in await Task.WhenAll(reads).ConfigureAwait(false))
            {
                if (data is not null)
                {
                    builder[name] = data;
                }
            }

            next = builder.ToImmutable();
        }
        else
        {
            foreach (var name in dirty)
            {
                var data = await TryGetAsync(client, name, cancellationToken).ConfigureAwait(false);
                next = data is null ? next.Remove(name) : next.SetItem(name, data);
            }
        }

        var previous = Interlocked.Exchange(ref _current, next);
        _loaded.TrySetResult();
        if (!Same(previous, next))
        {
            Changed?.Invoke(next);
        }
    }

    private async Task<NodeData?> TryGetAsync(ZooKeeperClient client, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.GetDataAsync(_path == "/" ? "/" + name : _path + "/" + name, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (NoNodeException)
        {
            return null;
        }
    }

    private static bool Same(ImmutableDictionary<string, NodeData> a, ImmutableDictionary<string, NodeData> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && other.Stat.Mzxid == kv.Value.Stat.Mzxid && other.Stat.Czxid == kv.Value.Stat.Czxid);

    public async ValueTask DisposeAsync()
    {
        // unsubscribed first: a disposed cache must neither stay reachable from the session manager nor have a
        // reconnect call into its disposed semaphore (which would stop the other caches' handlers from running)
        _sessions.SessionStarted -= OnSessionStarted;
        _sessions.StateChanged -= OnStateChanged;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _watchedOn?.RemovePersistentWatch(_path, _watcher);
        _signal.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "cache of {Path} cannot be refreshed: {Reason}")]
    private static partial void LogRefused(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "cache of {Path} not refreshed yet: {Reason}")]
    private static partial void LogRetry(ILogger logger, string path, string reason);
}
