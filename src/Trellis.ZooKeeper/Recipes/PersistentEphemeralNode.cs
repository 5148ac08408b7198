using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Trellis.ZooKeeper.Recipes;

/// <summary>
/// An ephemeral node that stays: created on start, re-created if it is deleted, restored with the same data
/// on every new session after an expiry, deleted on dispose. What a service instance registers itself with.
/// </summary>
/// <remarks>
/// A node of the same name owned by another session is taken for a leftover of a crashed predecessor with
/// the same instance id and deleted — once per owner; if another live session keeps re-creating it, two
/// instances share an id, which is logged as an error instead of fought over. A create whose connection
/// drops may have succeeded: the node is then looked up and its owner checked, never created twice.
/// </remarks>
public sealed partial class PersistentEphemeralNode : IAsyncDisposable
{
    private readonly ZooKeeperSessionManager _sessions;
    private readonly string _path;
    private readonly IReadOnlyList<Acl> _acl;
    private readonly AclProvider? _aclProvider;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly HashSet<long> _ownersDeleted = [];
    private readonly TaskCompletionSource _firstCreated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _data;
    private Task? _loop;
    private volatile bool _registered;

    public PersistentEphemeralNode(ZooKeeperSessionManager sessions, string path, byte[] data, IReadOnlyList<Acl>? acl = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        PathValidation.Validate(path);
        _sessions = sessions;
        _path = path;
        _data = data ?? [];
        _acl = acl ?? Acl.OpenUnsafe;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// A node whose ACL (and that of each missing parent) is chosen when it is created, e.g. copied from its parent.
    /// A create the server refuses (<see cref="NoAuthException"/>, <see cref="InvalidAclException"/>) before the node
    /// first exists fails <see cref="StartAsync"/> with that error instead of retrying unseen.
    /// </summary>
    public PersistentEphemeralNode(ZooKeeperSessionManager sessions, string path, byte[] data, AclProvider acl, ILogger? logger = null)
        : this(sessions, path, data, (IReadOnlyList<Acl>?)null, logger)
    {
        _aclProvider = acl ?? throw new ArgumentNullException(nameof(acl));
    }

    public string Path => _path;

    /// <summary>True while the node exists and belongs to the current session, as far as the client knows.</summary>
    public bool IsRegistered => _registered;

    /// <summary>Starts keeping the node; completes once it has been created the first time.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        _sessions.SessionStarted += _ => Poke();
        _sessions.StateChanged += (_, state) =>
        {
            if (state == SessionState.Connected)
            {
                Poke(); // after a reconnect: check the node is still ours
            }
            else
            {
                _registered = false;
            }
        };
        _loop = Task.Run(LoopAsync, CancellationToken.None); // runs until disposed, not until the start is cancelled
        Poke();
        await _firstCreated.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Changes the node's data, for every later re-creation too. Completes once the current node holds it (when
    /// the session is usable; otherwise the keeping loop writes it as soon as it can).
    /// </summary>
    public async Task UpdateAsync(byte[] data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        Volatile.Write(ref _data, data);
        try
        {
            var client = _sessions.Current;
            var stat = await client.ExistsAsync(_path, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (stat is not null && stat.EphemeralOwner == client.SessionId)
            {
                await client.SetDataAsync(_path, data, -1, cancellationToken).ConfigureAwait(false);
                return;
            }
        }
        catch (Exception e) when (e is KeeperException or ObjectDisposedException or InvalidOperationException)
        {
            // not now: the loop below writes it when it can
        }

        Poke();
    }

    private void Poke() => _signal.Release();

    private async Task LoopAsync()
    {
        var backoff = TimeSpan.FromMilliseconds(50);
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                while (_signal.CurrentCount > 0)
                {
                    await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false); // coalesce pokes
                }

                await EnsureAsync(_sessions.Current, _stopping.Token).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(50);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is KeeperException or ObjectDisposedException or InvalidOperationException)
            {
                // connection loss, expiry (a new session will poke), or a transient server error: retry later
                _registered = false;
                if (e is NoAuthException or InvalidAclException)
                {
                    // not something a retry fixes by itself: the first start fails with it; later, it is said loudly
                    if (!_firstCreated.TrySetException(e))
                    {
                        LogRefused(_logger, _path, e.Message);
                    }
                }
                else
                {
                    LogRetry(_logger, _path, e.Message);
                }
                try
                {
                    await Task.Delay(backoff, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 2000));
                Poke();
            }
        }
    }

    private async Task EnsureAsync(ZooKeeperClient client, CancellationToken cancellationToken)
    {
        while (true)
        {
            var data = Volatile.Read(ref _data);
            var stat = await client.ExistsAsync(_path, OnEvent, cancellationToken).ConfigureAwait(false);
            if (stat is not null)
            {
                if (stat.EphemeralOwner == client.SessionId)
                {
                    var current = await client.GetDataAsync(_path, cancellationToken: cancellationToken).ConfigureAwait(false);
                    if (!current.Data.AsSpan().SequenceEqual(data))
                    {
                        await client.SetDataAsync(_path, data, current.Stat.Version, cancellationToken).ConfigureAwait(false);
                    }

                    Registered();
                    return;
                }

                if (!_ownersDeleted.Add(stat.EphemeralOwner))
                {
                    LogContested(_logger, _path, stat.EphemeralOwner);
                    throw new NodeExistsException(_path, "owned by another live session");
                }

                LogStale(_logger, _path, stat.EphemeralOwner);
                try
                {
                    await client.DeleteAsync(_path, stat.Version, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NoNodeException or BadVersionException)
                {
                    // gone or changed meanwhile: look again
                }

                continue;
            }

            try
            {
                await client.CreateAsync(_path, data, CreateMode.Ephemeral, await AclForAsync(client, _path, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                Registered();
                return;
            }
            catch (NodeExistsException)
            {
                // someone (maybe our own create, answered late) made it: look at its owner
            }
            catch (NoNodeException)
            {
                await CreateParentsAsync(client, cancellationToken).ConfigureAwait(false);
            }
            catch (ConnectionLossException)
            {
                // the create may have happened: the loop checks the owner before creating again
                await client.WaitForConnectionAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Registered()
    {
        _registered = true;
        _firstCreated.TrySetResult();
    }

    private async Task CreateParentsAsync(ZooKeeperClient client, CancellationToken cancellationToken)
    {
        var parts = _path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var parent = "";
        for (var i = 0; i < parts.Length - 1; i++)
        {
            parent += "/" + parts[i];
            try
            {
                if (await client.ExistsAsync(parent, cancellationToken: cancellationToken).ConfigureAwait(false) is not null)
                {
                    continue; // no create (and no ACL to choose) for what is there: the node may not be ours to create under
                }

                await client.CreateAsync(parent, ReadOnlyMemory<byte>.Empty, CreateMode.Persistent, await AclForAsync(client, parent, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            }
            catch (NodeExistsException)
            {
                // already there
            }
        }
    }

    private Task<IReadOnlyList<Acl>> AclForAsync(ZooKeeperClient client, string path, CancellationToken cancellationToken) =>
        _aclProvider is null ? Task.FromResult(_acl) : _aclProvider(client, path, cancellationToken);

    private void OnEvent(WatchedEvent e)
    {
        if (e.Type is EventType.NodeDeleted or EventType.NodeDataChanged or EventType.NodeCreated)
        {
            if (e.Type == EventType.NodeDeleted)
            {
                _registered = false;
            }

            Poke();
        }
    }

    /// <summary>Deletes the node (if it is still ours) and stops.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        try
        {
            var client = _sessions.Current;
            var stat = await client.ExistsAsync(_path).ConfigureAwait(false);
            if (stat is not null && stat.EphemeralOwner == client.SessionId)
            {
                await client.DeleteAsync(_path, stat.Version).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is KeeperException or ObjectDisposedException or InvalidOperationException)
        {
            // the session is gone, and the ephemeral with it
        }

        _registered = false;
        _signal.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "ephemeral node {Path} not in place yet: {Reason}")]
    private static partial void LogRetry(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "ephemeral node {Path} cannot be restored: {Reason}")]
    private static partial void LogRefused(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "deleting {Path}, left by session 0x{Owner:x}")]
    private static partial void LogStale(ILogger logger, string path, long owner);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Path} is kept by another live session 0x{Owner:x}: two instances share this id")]
    private static partial void LogContested(ILogger logger, string path, long owner);
}
