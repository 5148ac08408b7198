using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.ZooKeeper.Jute;
using Trellis.ZooKeeper.Protocol;

namespace Trellis.ZooKeeper;

/// <summary>
/// A ZooKeeper session over a list of servers. Reconnects to another server within the session timeout and
/// keeps the session, re-arming every watch (batched SetWatches2) and resending credentials. A server that
/// has not seen the client's last zxid refuses it, and the next one is tried. When the server says the
/// session expired, the client stops: <see cref="SessionState.Expired"/> is terminal, and the owner decides
/// what to do (a new client is a new session) — nothing is silently re-created.
/// </summary>
/// <remarks>
/// Thread-safe. Operations wait for a connection (up to the session timeout) rather than failing while the
/// client reconnects. Watchers and <see cref="StateChanged"/> run one at a time on one event loop, in the
/// order the server produced them; a slow watcher delays later events, never replies.
/// </remarks>
public sealed partial class ZooKeeperClient : IAsyncDisposable, IConnectionOwner
{
    private const int ProtocolVersion = 0;

    /// <summary>Why an <see cref="AuthFailedException"/> ends the session (no credentials in it).</summary>
    internal const string AuthRefused = "the ZooKeeper server refused this session's credentials (an unknown scheme, or ones it could not verify); the session is closed";
    private static readonly ReplyParser StatParser = static (ref JuteReader r) => r.Stat();

    private readonly ZooKeeperOptions _options;
    private readonly ConnectString _connectString;
    private readonly WatchManager _watches = new();
    private readonly List<(string Scheme, byte[] Auth)> _auth;
    private readonly Channel<Action> _events = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _closing = new();
    private readonly object _stateLock = new();
    private readonly Task _run;
    private readonly Task _eventLoop;
    private TaskCompletionSource<Connection> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Connection? _connection;
    private SessionState _state = SessionState.Connecting;
    private long _sessionId;
    private byte[] _password;
    private long _lastZxid;
    private int _xid;
    private int _negotiatedTimeoutMs;

    public ZooKeeperClient(ZooKeeperOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _connectString = ConnectString.Parse(options.ConnectString);
        _auth = [.. options.Authentication];
        _sessionId = options.SessionId;
        _password = options.SessionPassword ?? new byte[16];
        _lastZxid = options.LastZxidSeen;
        Logger = options.Logger ?? NullLogger.Instance;
        _eventLoop = Task.Run(EventLoopAsync);
        _run = Task.Run(RunAsync);
    }

    /// <summary>Creates a client and waits for its first connection.</summary>
    public static async Task<ZooKeeperClient> ConnectAsync(ZooKeeperOptions options, CancellationToken cancellationToken = default)
    {
        var client = new ZooKeeperClient(options);
        try
        {
            await client.WaitForConnectionAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public ILogger Logger { get; }

    public SessionState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    public long SessionId => Interlocked.Read(ref _sessionId);

    /// <summary>The session's password: with <see cref="SessionId"/>, enough to reattach to the session. Never logged.</summary>
    public ReadOnlyMemory<byte> SessionPassword => _password;

    /// <summary>The timeout the server granted.</summary>
    public TimeSpan NegotiatedTimeout => TimeSpan.FromMilliseconds(Volatile.Read(ref _negotiatedTimeoutMs));

    /// <summary>The highest zxid seen: a server that has not reached it will not take this session.</summary>
    public long LastZxid => Interlocked.Read(ref _lastZxid);

    /// <summary>The server (<c>host:port</c>) the session is connected through now, or null while disconnected.</summary>
    public string? ConnectedServer { get; private set; }

    /// <summary>The chroot of the connect string, or null.</summary>
    public string? Chroot => _connectString.Chroot;

    /// <summary>Watches registered now (one-shot and persistent).</summary>
    public int WatchCount => _watches.Count;

    /// <summary>Every state change, in order, on the event loop.</summary>
    public event Action<SessionState>? StateChanged;

    /// <summary>Waits until connected (or throws if the session ended).</summary>
    public async Task WaitForConnectionAsync(CancellationToken cancellationToken = default) =>
        await ConnectedAsync(cancellationToken).ConfigureAwait(false);

    // ------------------------------------------------------------------ operations

    /// <summary>Creates a node and returns its path (for sequential nodes, with the counter the server appended).</summary>
    public async Task<string> CreateAsync(string path, ReadOnlyMemory<byte> data, CreateMode mode = CreateMode.Persistent,
        IReadOnlyList<Acl>? acl = null, CancellationToken cancellationToken = default) =>
        (await CreateWithStatAsync(path, data, mode, acl, ttl: null, cancellationToken).ConfigureAwait(false)).Path;

    public async Task<(string Path, Stat Stat)> CreateWithStatAsync(string path, ReadOnlyMemory<byte> data, CreateMode mode = CreateMode.Persistent,
        IReadOnlyList<Acl>? acl = null, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path, isSequentialPrefix: mode.IsSequential());
        if (mode.IsTtl() != ttl.HasValue)
        {
            throw new ArgumentException("a TTL is given exactly for the TTL create modes", nameof(ttl));
        }

        var op = mode.IsTtl() ? OpCode.CreateTtl : mode == CreateMode.Container ? OpCode.CreateContainer : OpCode.Create2;
        var serverPath = ToServer(path);
        var packet = Packet(op, w =>
        {
            w.String(serverPath);
            w.Buffer(data.Span);
            w.Acls(acl ?? Acl.OpenUnsafe);
            w.Int((int)mode);
            if (ttl is { } t)
            {
                w.Long((long)t.TotalMilliseconds);
            }
        });
        var result = await SubmitAsync(new PendingRequest(op, path, isWrite: true, packet,
            (ref JuteReader r) => (r.String(), r.Stat())), cancellationToken).ConfigureAwait(false);
        var (created, stat) = ((string?, Stat))result!;
        return (FromServer(created ?? serverPath), stat);
    }

    /// <summary>Deletes a node; <paramref name="version"/> −1 matches any version.</summary>
    public async Task DeleteAsync(string path, int version = -1, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        await SubmitAsync(new PendingRequest(OpCode.Delete, path, isWrite: true, Packet(OpCode.Delete, w =>
        {
            w.String(serverPath);
            w.Int(version);
        }), null), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The node's metadata, or null when it does not exist. A watcher fires when it is created, changed or deleted.</summary>
    public async Task<Stat?> ExistsAsync(string path, Watcher? watcher = null, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        var request = new PendingRequest(OpCode.Exists, path, isWrite: false, Packet(OpCode.Exists, w =>
        {
            w.String(serverPath);
            w.Bool(watcher is not null);
        }), StatParser)
        {
            OnReply = watcher is null ? null : code =>
            {
                if (code == ErrorCode.Ok) _watches.AddData(path, watcher);
                else if (code == ErrorCode.NoNode) _watches.AddExist(path, watcher);
            },
        };
        try
        {
            return (Stat?)await SubmitAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (NoNodeException)
        {
            return null;
        }
    }

    public async Task<NodeData> GetDataAsync(string path, Watcher? watcher = null, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        var request = new PendingRequest(OpCode.GetData, path, isWrite: false, Packet(OpCode.GetData, w =>
        {
            w.String(serverPath);
            w.Bool(watcher is not null);
        }), static (ref JuteReader r) => new NodeData(r.Buffer() ?? [], r.Stat()))
        {
            OnReply = watcher is null ? null : code =>
            {
                if (code == ErrorCode.Ok) _watches.AddData(path, watcher);
            },
        };
        return (NodeData)(await SubmitAsync(request, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Replaces a node's data; <paramref name="version"/> −1 matches any version.</summary>
    public async Task<Stat> SetDataAsync(string path, ReadOnlyMemory<byte> data, int version = -1, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        return (Stat)(await SubmitAsync(new PendingRequest(OpCode.SetData, path, isWrite: true, Packet(OpCode.SetData, w =>
        {
            w.String(serverPath);
            w.Buffer(data.Span);
            w.Int(version);
        }), StatParser), cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>The node's children (names) and its metadata. A watcher fires when the list changes or the node goes.</summary>
    public async Task<NodeChildren> GetChildrenAsync(string path, Watcher? watcher = null, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        var request = new PendingRequest(OpCode.GetChildren2, path, isWrite: false, Packet(OpCode.GetChildren2, w =>
        {
            w.String(serverPath);
            w.Bool(watcher is not null);
        }), static (ref JuteReader r) => new NodeChildren(r.Strings(), r.Stat()))
        {
            OnReply = watcher is null ? null : code =>
            {
                if (code == ErrorCode.Ok) _watches.AddChild(path, watcher);
            },
        };
        return (NodeChildren)(await SubmitAsync(request, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Makes the connected server catch up with the leader, so a following read sees every write committed before it.</summary>
    public async Task SyncAsync(string path, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        await SubmitAsync(new PendingRequest(OpCode.Sync, path, isWrite: false, Packet(OpCode.Sync, w => w.String(serverPath)),
            static (ref JuteReader r) => r.String()), cancellationToken).ConfigureAwait(false);
    }

    public async Task<(IReadOnlyList<Acl> Acl, Stat Stat)> GetAclAsync(string path, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        var serverPath = ToServer(path);
        return ((IReadOnlyList<Acl>, Stat))(await SubmitAsync(new PendingRequest(OpCode.GetAcl, path, isWrite: false,
            Packet(OpCode.GetAcl, w => w.String(serverPath)),
            static (ref JuteReader r) => ((IReadOnlyList<Acl>)r.Acls(), r.Stat())), cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<Stat> SetAclAsync(string path, IReadOnlyList<Acl> acl, int version = -1, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        ArgumentNullException.ThrowIfNull(acl);
        var serverPath = ToServer(path);
        return (Stat)(await SubmitAsync(new PendingRequest(OpCode.SetAcl, path, isWrite: true, Packet(OpCode.SetAcl, w =>
        {
            w.String(serverPath);
            w.Acls(acl);
            w.Int(version);
        }), StatParser), cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>
    /// Adds credentials to the session (and to every later connection of it), e.g. <c>("digest", "user:password")</c>.
    /// Completes when the server has taken them. The credentials are never logged.
    /// </summary>
    public async Task AddAuthAsync(string scheme, byte[] auth, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        ArgumentNullException.ThrowIfNull(auth);
        lock (_auth)
        {
            _auth.Add((scheme, auth));
        }

        var connection = await ConnectedAsync(cancellationToken).ConfigureAwait(false);
        var reply = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.SendControl(AuthPacket(scheme, auth), reply, isAuth: true);
        await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A watch that stays: every change of the node (and, recursively, of its descendants) is reported until removed.</summary>
    public async Task AddWatchAsync(string path, AddWatchMode mode, Watcher watcher, CancellationToken cancellationToken = default)
    {
        PathValidation.Validate(path);
        ArgumentNullException.ThrowIfNull(watcher);
        var serverPath = ToServer(path);
        await SubmitAsync(new PendingRequest(OpCode.AddWatch, path, isWrite: false, Packet(OpCode.AddWatch, w =>
        {
            w.String(serverPath);
            w.Int((int)mode);
        }), null)
        {
            OnReply = code =>
            {
                if (code == ErrorCode.Ok) _watches.AddPersistent(path, watcher, mode);
            },
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops delivering a persistent watch's events to <paramref name="watcher"/> (the server drops the watch with the session).</summary>
    public void RemovePersistentWatch(string path, Watcher watcher) => _watches.RemovePersistent(path, watcher);

    /// <summary>Runs operations as one transaction: all apply or none. On failure the exception's <c>Results</c> says which failed.</summary>
    public async Task<IReadOnlyList<OpResult>> MultiAsync(IEnumerable<Op> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        var ops = operations.ToList();
        foreach (var op in ops)
        {
            op.Validate();
        }

        var packet = Packet(OpCode.Multi, w =>
        {
            foreach (var op in ops)
            {
                w.Int((int)op.Code);
                w.Bool(false);
                w.Int(-1);
                op.Write(w, ToServer);
            }

            w.Int(-1);
            w.Bool(true);
            w.Int(-1);
        });
        var request = new PendingRequest(OpCode.Multi, null, isWrite: true, packet, (ref JuteReader r) => ReadMultiResults(ref r, ops))
        {
            ParseOnError = true,
        };
        return (IReadOnlyList<OpResult>)(await SubmitAsync(request, cancellationToken).ConfigureAwait(false))!;
    }

    private object ReadMultiResults(ref JuteReader reader, List<Op> ops)
    {
        var results = new List<OpResult>();
        while (true)
        {
            var type = (OpCode)reader.Int();
            var done = reader.Bool();
            var err = (ErrorCode)reader.Int();
            if (done)
            {
                break;
            }

            results.Add(type switch
            {
                OpCode.Create or OpCode.Create2 or OpCode.CreateContainer or OpCode.CreateTtl =>
                    new OpResult.Created(FromServer(reader.String() ?? "/"), type == OpCode.Create ? null : reader.Stat()),
                OpCode.Delete => new OpResult.Deleted(),
                OpCode.SetData => new OpResult.DataSet(reader.Stat()),
                OpCode.Check => new OpResult.Checked(),
                OpCode.Error => new OpResult.Failed((ErrorCode)reader.Int()),
                _ => throw new ZooKeeperProtocolException($"unexpected multi result type {(int)type}"),
            });
        }

        var failure = results.OfType<OpResult.Failed>().FirstOrDefault(f => f.Code != ErrorCode.Ok && f.Code != ErrorCode.RuntimeInconsistency)
                      ?? results.OfType<OpResult.Failed>().FirstOrDefault();
        if (failure is not null)
        {
            var index = results.IndexOf(failure);
            var error = KeeperException.Create(failure.Code, index < ops.Count ? ops[index].Path : null, $"operation {index + 1} of the transaction failed");
            error.Results = results;
            return error;
        }

        return results;
    }

    // ------------------------------------------------------------------ requests

    private byte[] Packet(OpCode op, Action<JuteWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        var w = new JuteWriter(buffer);
        w.Int(0);          // length, filled in below
        w.Int(0);          // xid, assigned when queued
        w.Int((int)op);
        body(w);
        var packet = buffer.WrittenSpan.ToArray();
        if (packet.Length - 4 > _options.MaxPacketSize)
        {
            throw new MarshallingErrorException(null,
                $"the request is {packet.Length - 4} bytes, more than the {_options.MaxPacketSize}-byte packet limit (jute.maxbuffer)");
        }

        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length - 4);
        return packet;
    }

    private static byte[] AuthPacket(string scheme, byte[] auth)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        var w = new JuteWriter(buffer);
        w.Int(0);
        w.Int(Xid.Auth);
        w.Int((int)OpCode.Auth);
        w.Int(0);
        w.String(scheme);
        w.Buffer(auth);
        var packet = buffer.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length - 4);
        return packet;
    }

    private async Task<object?> SubmitAsync(PendingRequest request, CancellationToken cancellationToken)
    {
        while (true)
        {
            var connection = await ConnectedAsync(cancellationToken).ConfigureAwait(false);
            if (connection.TryEnqueue(request))
            {
                return await request.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            // the connection ended between the two lines: wait for the next one
            await Task.Yield();
        }
    }

    /// <summary>The live connection; waits up to the session timeout while reconnecting.</summary>
    private async Task<Connection> ConnectedAsync(CancellationToken cancellationToken)
    {
        Task<Connection> connected;
        lock (_stateLock)
        {
            ThrowIfTerminal();
            connected = _connected.Task;
        }

        try
        {
            return await connected.WaitAsync(_options.SessionTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_stateLock)
            {
                ThrowIfTerminal();
            }

            throw new ConnectionLossException(null, $"no ZooKeeper server reachable within {_options.SessionTimeout.TotalSeconds:F1} s");
        }
    }

    private void ThrowIfTerminal()
    {
        switch (_state)
        {
            case SessionState.Expired:
                throw new SessionExpiredException(null, $"session 0x{Interlocked.Read(ref _sessionId):x} expired");
            case SessionState.AuthFailed:
                throw new AuthFailedException(null, AuthRefused);
            case SessionState.Closed:
                throw new ObjectDisposedException(nameof(ZooKeeperClient), "the ZooKeeper client is closed");
        }
    }

    // ------------------------------------------------------------------ paths

    private string ToServer(string path) =>
        _connectString.Chroot is not { } chroot ? path : path == "/" ? chroot : chroot + path;

    private string FromServer(string serverPath)
    {
        if (_connectString.Chroot is not { } chroot)
        {
            return serverPath;
        }

        if (serverPath == chroot)
        {
            return "/";
        }

        return serverPath.StartsWith(chroot + "/", StringComparison.Ordinal) ? serverPath[chroot.Length..] : serverPath;
    }

    // ------------------------------------------------------------------ IConnectionOwner

    int IConnectionOwner.NextXid()
    {
        // positive and wrapping: negative xids are the protocol's reserved ones
        var xid = Interlocked.Increment(ref _xid) & int.MaxValue;
        return xid == 0 ? Interlocked.Increment(ref _xid) & int.MaxValue : xid;
    }

    void IConnectionOwner.SeenZxid(long zxid)
    {
        long current;
        do
        {
            current = Interlocked.Read(ref _lastZxid);
            if (zxid <= current)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _lastZxid, zxid, current) != current);
    }

    void IConnectionOwner.OnNotification(EventType type, string serverPath)
    {
        var e = new WatchedEvent(type, FromServer(serverPath));
        var watchers = _watches.Materialize(e);
        if (watchers.Count > 0)
        {
            Post(() =>
            {
                foreach (var watcher in watchers)
                {
                    try
                    {
                        watcher(e);
                    }
                    catch (Exception ex)
                    {
                        LogWatcherFailed(Logger, ex, e.Type, e.Path);
                    }
                }
            });
        }
    }

    void IConnectionOwner.OnAuthFailed(ErrorCode code)
    {
        SetState(SessionState.AuthFailed);
        _connection?.Abort(new IOException("authentication failed"));
    }

    private void Post(Action action) => _events.Writer.TryWrite(action);

    private async Task EventLoopAsync()
    {
        await foreach (var action in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            action();
        }
    }

    private void SetState(SessionState state)
    {
        lock (_stateLock)
        {
            if (_state == state || _state is SessionState.Expired or SessionState.AuthFailed or SessionState.Closed)
            {
                return;
            }

            _state = state;
            if (state != SessionState.Connected && _connected.Task.IsCompleted)
            {
                _connected = new TaskCompletionSource<Connection>(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            if (state is SessionState.Expired or SessionState.AuthFailed or SessionState.Closed)
            {
                var error = state switch
                {
                    SessionState.Expired => (Exception)new SessionExpiredException(null, $"session 0x{Interlocked.Read(ref _sessionId):x} expired"),
                    SessionState.AuthFailed => new AuthFailedException(null, AuthRefused),
                    _ => new ObjectDisposedException(nameof(ZooKeeperClient), "the ZooKeeper client is closed"),
                };
                _connected.TrySetException(error);
                _connected.Task.Exception?.Handle(_ => true);
            }
        }

        var sessionId = Interlocked.Read(ref _sessionId);
        LogState(Logger, sessionId, state);
        Post(() =>
        {
            try
            {
                StateChanged?.Invoke(state);
            }
            catch (Exception ex)
            {
                LogWatcherFailed(Logger, ex, EventType.None, "(session state)");
            }
        });
    }

    // ------------------------------------------------------------------ the session loop

    private async Task RunAsync()
    {
        var servers = _options.ShuffleServers ? _connectString.Servers.OrderBy(_ => Random.Shared.Next()).ToList() : [.. _connectString.Servers];
        var next = 0;
        var failuresInARow = 0;
        while (!_closing.IsCancellationRequested)
        {
            var (host, port) = servers[next];
            next = (next + 1) % servers.Count;
            Connection? connection = null;
            try
            {
                connection = await ConnectToAsync(host, port).ConfigureAwait(false);
            }
            catch (SessionExpiredException)
            {
                SetState(SessionState.Expired);
                return;
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException or ZooKeeperProtocolException)
            {
                if (_closing.IsCancellationRequested)
                {
                    return;
                }

                LogConnectFailed(Logger, host, port, e.Message);
            }

            if (connection is null)
            {
                // a full cycle of failures: back off, with jitter, before the next round
                if (++failuresInARow % servers.Count == 0)
                {
                    var round = failuresInARow / servers.Count;
                    var delay = Math.Min(2000, 50 * (1 << Math.Min(round, 6)));
                    await Task.Delay(delay / 2 + Random.Shared.Next(delay / 2 + 1), _closing.Token).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                }

                continue;
            }

            failuresInARow = 0;
            var reason = await connection.Completion.ConfigureAwait(false);
            lock (_stateLock)
            {
                _connection = null;
                ConnectedServer = null;
            }

            if (_closing.IsCancellationRequested || State is SessionState.AuthFailed)
            {
                return;
            }

            var sessionId = Interlocked.Read(ref _sessionId);
            LogDisconnected(Logger, sessionId, reason.Message);
            SetState(SessionState.Disconnected);
        }
    }

    private async Task<Connection> ConnectToAsync(string host, int port)
    {
        var attemptTimeout = _options.ConnectionAttemptTimeout ??
            TimeSpan.FromMilliseconds(Math.Max(1000, _options.SessionTimeout.TotalMilliseconds / _connectString.Servers.Count));
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
        attempt.CancelAfter(attemptTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new DnsEndPoint(host, port), attempt.Token).ConfigureAwait(false);

            // the handshake: ConnectRequest plus the readOnly flag the Java client appends
            var buffer = new ArrayBufferWriter<byte>(64);
            var w = new JuteWriter(buffer);
            w.Int(0);
            w.Int(ProtocolVersion);
            w.Long(Interlocked.Read(ref _lastZxid));
            w.Int((int)_options.SessionTimeout.TotalMilliseconds);
            w.Long(Interlocked.Read(ref _sessionId));
            w.Buffer(_password);
            w.Bool(false);
            var request = buffer.WrittenSpan.ToArray();
            BinaryPrimitives.WriteInt32BigEndian(request, request.Length - 4);
            await socket.SendAsync(request, SocketFlags.None, attempt.Token).ConfigureAwait(false);

            var (response, rest) = await ReadHandshakeAsync(socket, attempt.Token).ConfigureAwait(false);
            var reader = new JuteReader(response);
            reader.Int(); // protocol version
            var timeout = reader.Int();
            var sessionId = reader.Long();
            var password = reader.Buffer() ?? [];
            if (timeout <= 0)
            {
                socket.Dispose();
                throw new SessionExpiredException(null, $"session 0x{Interlocked.Read(ref _sessionId):x} expired");
            }

            Interlocked.Exchange(ref _sessionId, sessionId);
            _password = password;
            Volatile.Write(ref _negotiatedTimeoutMs, timeout);

            var connection = new Connection(socket, this, TimeSpan.FromMilliseconds(timeout), _options.MaxPacketSize);
            // credentials and watches go first, so every request after them runs with them in place
            lock (_auth)
            {
                foreach (var (scheme, auth) in _auth)
                {
                    connection.SendControl(AuthPacket(scheme, auth), authReply: null, isAuth: true);
                }
            }

            foreach (var packet in SetWatchesPackets())
            {
                connection.SendControl(packet);
            }

            connection.Start(rest);
            lock (_stateLock)
            {
                if (_state is SessionState.Closed or SessionState.AuthFailed)
                {
                    connection.Abort(new IOException("closing"));
                    return connection;
                }

                _connection = connection;
                ConnectedServer = $"{host}:{port}";
                _connected.TrySetResult(connection);
            }

            LogConnected(Logger, sessionId, host, port, timeout);
            SetState(SessionState.Connected);
            return connection;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<(byte[] Response, byte[] Remainder)> ReadHandshakeAsync(Socket socket, CancellationToken cancellationToken)
    {
        var received = new List<byte>();
        var chunk = new byte[4096];
        while (true)
        {
            if (received.Count >= 4)
            {
                var length = BinaryPrimitives.ReadInt32BigEndian(received.ToArray().AsSpan(0, 4));
                if (length is < 0 or > 4096)
                {
                    throw new ZooKeeperProtocolException($"connect response of {length} bytes");
                }

                if (received.Count >= 4 + length)
                {
                    var all = received.ToArray();
                    return (all[4..(4 + length)], all[(4 + length)..]);
                }
            }

            var read = await socket.ReceiveAsync(chunk, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                // a server that is behind our last zxid, or not serving (no quorum), hangs up here
                throw new IOException("the server closed the connection during the handshake");
            }

            received.AddRange(chunk.AsSpan(0, read));
        }
    }

    /// <summary>SetWatches2 packets for every watch, each under 128 KiB of paths, as the Java client batches them.</summary>
    private List<byte[]> SetWatchesPackets()
    {
        var (data, exist, child, persistent, recursive) = _watches.Snapshot();
        var packets = new List<byte[]>();
        var lists = new[] { data, exist, child, persistent, recursive };
        if (lists.All(l => l.Count == 0))
        {
            return packets;
        }

        const int MaxBatchBytes = 128 * 1024;
        var batch = new List<string>[5];
        void Flush()
        {
            if (batch.All(b => b is null || b.Count == 0))
            {
                return;
            }

            var buffer = new ArrayBufferWriter<byte>(1024);
            var w = new JuteWriter(buffer);
            w.Int(0);
            w.Int(Xid.SetWatches);
            w.Int((int)OpCode.SetWatches2);
            w.Long(Interlocked.Read(ref _lastZxid));
            foreach (var b in batch)
            {
                w.Strings(b ?? []);
            }

            var packet = buffer.WrittenSpan.ToArray();
            BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length - 4);
            packets.Add(packet);
            for (var i = 0; i < batch.Length; i++)
            {
                batch[i] = [];
            }
        }

        for (var i = 0; i < batch.Length; i++)
        {
            batch[i] = [];
        }

        var size = 0;
        for (var kind = 0; kind < lists.Length; kind++)
        {
            foreach (var path in lists[kind])
            {
                var serverPath = ToServer(path);
                if (size + serverPath.Length > MaxBatchBytes)
                {
                    Flush();
                    size = 0;
                }

                batch[kind].Add(serverPath);
                size += serverPath.Length;
            }
        }

        Flush();
        return packets;
    }

    // ------------------------------------------------------------------ closing

    /// <summary>Closes the session: the server deletes its ephemeral nodes at once.</summary>
    /// <remarks>
    /// Idempotent and safe to call concurrently (a session manager renewing an expired session and its own disposal
    /// may both close the same client): the later calls wait for the first close.
    /// </remarks>
    public ValueTask DisposeAsync()
    {
        var closing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _disposal, closing.Task, null) is { } first)
        {
            return new ValueTask(first);
        }

        _ = CloseAndSignalAsync(closing);
        return new ValueTask(closing.Task);
    }

    private Task? _disposal;

    private async Task CloseAndSignalAsync(TaskCompletionSource closing)
    {
        try
        {
            await CloseSessionAsync().ConfigureAwait(false);
            closing.TrySetResult();
        }
        catch (Exception e)
        {
            closing.TrySetException(e);
        }
    }

    private async Task CloseSessionAsync()
    {
        Connection? connection;
        lock (_stateLock)
        {
            if (_state == SessionState.Closed)
            {
                return;
            }

            connection = _state == SessionState.Connected ? _connection : null;
        }

        if (connection is not null)
        {
            try
            {
                var close = new PendingRequest(OpCode.CloseSession, null, isWrite: true, Packet(OpCode.CloseSession, _ => { }), null);
                if (connection.TryEnqueue(close))
                {
                    await close.Completion.Task.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is KeeperException or TimeoutException)
            {
                // the session ends anyway: the server expires it after its timeout
            }
        }

        SetState(SessionState.Closed);
        await _closing.CancelAsync().ConfigureAwait(false);
        connection?.Abort(new IOException("closed"));
        lock (_stateLock)
        {
            _connection?.Abort(new IOException("closed"));
        }

        await _run.ConfigureAwait(false);
        _events.Writer.TryComplete();
        await _eventLoop.ConfigureAwait(false);
        _closing.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "ZooKeeper session 0x{SessionId:x} connected to {Host}:{Port}, timeout {TimeoutMs} ms")]
    private static partial void LogConnected(ILogger logger, long sessionId, string host, int port, int timeoutMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ZooKeeper session 0x{SessionId:x} disconnected: {Reason}")]
    private static partial void LogDisconnected(ILogger logger, long sessionId, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ZooKeeper server {Host}:{Port} not reached: {Reason}")]
    private static partial void LogConnectFailed(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "ZooKeeper session 0x{SessionId:x} is {State}")]
    private static partial void LogState(ILogger logger, long sessionId, SessionState state);

    [LoggerMessage(Level = LogLevel.Error, Message = "a ZooKeeper watcher failed on {Type} {Path}")]
    private static partial void LogWatcherFailed(ILogger logger, Exception exception, EventType type, string path);
}
