using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Trellis.ZooKeeper.Jute;

namespace Trellis.ZooKeeper.Protocol;

/// <summary>
/// One TCP connection of a session: a writer loop that batches queued packets into socket writes, a reader
/// loop that matches replies to requests in order (ZooKeeper answers a session's requests in the order they
/// were sent), and a pinger that keeps the session alive and notices a silent server.
/// </summary>
/// <remarks>
/// The first failure of any loop ends the connection: every request not yet answered fails with
/// <see cref="ConnectionLossException"/> (marked "may have been applied" for writes already sent), and
/// <see cref="Completion"/> finishes so the client can reconnect.
/// </remarks>
internal sealed partial class Connection : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly IConnectionOwner _owner;
    private readonly Channel<byte[]> _outgoing = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentQueue<PendingRequest> _pending = new();
    private readonly ConcurrentQueue<TaskCompletionSource?> _authReplies = new();
    private readonly ConcurrentDictionary<byte[], PendingRequest> _byPacket = new(ReferenceEqualityComparer.Instance);
    private readonly object _queueLock = new();
    private readonly CancellationTokenSource _cts = new();
    private readonly TaskCompletionSource<Exception> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _readTimeout;
    private readonly TimeSpan _pingInterval;
    private readonly int _maxPacket;
    private long _lastSent = Stopwatch.GetTimestamp();
    private long _lastReceived = Stopwatch.GetTimestamp();
    private bool _dead;

    public Connection(Socket socket, IConnectionOwner owner, TimeSpan negotiatedTimeout, int maxPacket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _owner = owner;
        _maxPacket = maxPacket;
        // As the Java client: silence for two thirds of the session timeout means the server is gone;
        // a ping after a third keeps a quiet session alive.
        _readTimeout = negotiatedTimeout * 2 / 3;
        _pingInterval = negotiatedTimeout / 3;
    }

    /// <summary>Finishes with the reason once the connection is over.</summary>
    public Task<Exception> Completion => _closed.Task;

    public void Start(ReadOnlyMemory<byte> alreadyRead)
    {
        _ = Task.Run(() => ReadLoopAsync(alreadyRead));
        _ = Task.Run(WriteLoopAsync);
        _ = Task.Run(PingLoopAsync);
    }

    /// <summary>Queues a request; false if the connection is already over.</summary>
    public bool TryEnqueue(PendingRequest request)
    {
        lock (_queueLock)
        {
            if (_dead)
            {
                return false;
            }

            request.AssignXid(_owner.NextXid());
            _pending.Enqueue(request);
            _byPacket[request.Packet] = request;
            _outgoing.Writer.TryWrite(request.Packet);
            return true;
        }
    }

    /// <summary>Queues a packet that has a reserved xid (ping, auth, set-watches); no reply is matched to it.</summary>
    public void SendControl(byte[] packet, TaskCompletionSource? authReply = null, bool isAuth = false)
    {
        lock (_queueLock)
        {
            if (_dead)
            {
                authReply?.TrySetException(new ConnectionLossException(null, "connection lost before authentication was confirmed"));
                return;
            }

            if (isAuth)
            {
                _authReplies.Enqueue(authReply);
            }

            _outgoing.Writer.TryWrite(packet);
        }
    }

    public void Abort(Exception reason)
    {
        List<PendingRequest> failed;
        lock (_queueLock)
        {
            if (_dead)
            {
                return;
            }

            _dead = true;
            _outgoing.Writer.TryComplete();
            failed = [.. _pending];
            _pending.Clear();
        }

        _cts.Cancel();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // already reset by the peer: nothing left to shut down
        }
        catch (ObjectDisposedException)
        {
            // closed by a loop that failed first
        }

        _stream.Dispose();
        foreach (var request in failed)
        {
            request.Completion.TrySetException(new ConnectionLossException(request.Path, reason.Message)
            {
                MayHaveBeenApplied = request.Sent && request.IsWrite,
            });
        }

        while (_authReplies.TryDequeue(out var auth))
        {
            auth?.TrySetException(new ConnectionLossException(null, reason.Message));
        }

        _closed.TrySetResult(reason);
    }

    private async Task WriteLoopAsync()
    {
        var batch = new ArrayBufferWriter<byte>(16 * 1024);
        var inBatch = new List<byte[]>();
        try
        {
            var reader = _outgoing.Reader;
            while (await reader.WaitToReadAsync(_cts.Token).ConfigureAwait(false))
            {
                batch.ResetWrittenCount();
                inBatch.Clear();
                while (batch.WrittenCount < 64 * 1024 && reader.TryRead(out var packet))
                {
                    batch.Write(packet);
                    inBatch.Add(packet);
                }

                await _stream.WriteAsync(batch.WrittenMemory, _cts.Token).ConfigureAwait(false);
                Volatile.Write(ref _lastSent, Stopwatch.GetTimestamp());
                foreach (var packet in inBatch)
                {
                    if (_byPacket.TryRemove(packet, out var request))
                    {
                        request.Sent = true;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            Abort(e is OperationCanceledException ? new IOException("connection closed") : e);
        }
    }

    private async Task PingLoopAsync()
    {
        var ping = BuildPing();
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(10, _pingInterval.TotalMilliseconds / 4)), _cts.Token).ConfigureAwait(false);
                if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastReceived)) > _readTimeout)
                {
                    Abort(new TimeoutException($"no reply from the server in {_readTimeout.TotalMilliseconds:F0} ms"));
                    return;
                }

                if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastSent)) >= _pingInterval)
                {
                    SendControl(ping);
                    Volatile.Write(ref _lastSent, Stopwatch.GetTimestamp());
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the connection ended; the reader or writer reported why
        }
    }

    private static byte[] BuildPing()
    {
        var packet = new byte[12];
        BinaryPrimitives.WriteInt32BigEndian(packet, 8);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), Xid.Ping);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(8), (int)OpCode.Ping);
        return packet;
    }

    private async Task ReadLoopAsync(ReadOnlyMemory<byte> alreadyRead)
    {
        var buffer = new byte[64 * 1024];
        var filled = alreadyRead.Length;
        alreadyRead.CopyTo(buffer);
        try
        {
            while (true)
            {
                // hand every whole packet in the buffer to the session
                var offset = 0;
                while (filled - offset >= 4)
                {
                    var length = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(offset));
                    if (length < 0 || length > _maxPacket)
                    {
                        throw new ZooKeeperProtocolException($"reply of {length} bytes is outside 0..{_maxPacket} (jute.maxbuffer)");
                    }

                    if (filled - offset - 4 < length)
                    {
                        if (length + 4 > buffer.Length)
                        {
                            var bigger = new byte[Math.Max(length + 4, buffer.Length * 2)];
                            buffer.AsSpan(offset, filled - offset).CopyTo(bigger);
                            filled -= offset;
                            offset = 0;
                            buffer = bigger;
                        }

                        break;
                    }

                    OnPacket(buffer.AsSpan(offset + 4, length));
                    offset += 4 + length;
                }

                if (offset > 0)
                {
                    buffer.AsSpan(offset, filled - offset).CopyTo(buffer);
                    filled -= offset;
                }

                var read = await _stream.ReadAsync(buffer.AsMemory(filled), _cts.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException("the server closed the connection");
                }

                filled += read;
                Volatile.Write(ref _lastReceived, Stopwatch.GetTimestamp());
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or ZooKeeperProtocolException)
        {
            if (e is ZooKeeperProtocolException)
            {
                LogProtocolError(_owner.Logger, e.Message);
            }

            Abort(e is OperationCanceledException ? new IOException("connection closed") : e);
        }
    }

    public void Dispose()
    {
        Abort(new IOException("disposed"));
        _cts.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ZooKeeper protocol error, reconnecting: {Reason}")]
    private static partial void LogProtocolError(ILogger logger, string reason);

    private void OnPacket(ReadOnlySpan<byte> packet)
    {
        var reader = new JuteReader(packet);
        var xid = reader.Int();
        var zxid = reader.Long();
        var err = (ErrorCode)reader.Int();
        if (zxid > 0)
        {
            _owner.SeenZxid(zxid);
        }

        switch (xid)
        {
            case Xid.Ping:
            case Xid.SetWatches:
                return;
            case Xid.Notification:
                var type = (EventType)reader.Int();
                reader.Int(); // keeper state: always SyncConnected for node events
                _owner.OnNotification(type, reader.String() ?? "/");
                return;
            case Xid.Auth:
                _authReplies.TryDequeue(out var waiter);
                if (err == ErrorCode.Ok)
                {
                    waiter?.TrySetResult();
                }
                else
                {
                    waiter?.TrySetException(KeeperException.Create(err, null, err == ErrorCode.AuthFailed ? ZooKeeperClient.AuthRefused : null));
                    _owner.OnAuthFailed(err);
                }

                return;
        }

        if (!_pending.TryDequeue(out var request))
        {
            throw new ZooKeeperProtocolException($"reply with xid {xid} but no request is waiting");
        }

        if (request.Xid != xid)
        {
            // put it back: Abort fails it with the rest
            request.Completion.TrySetException(new ConnectionLossException(request.Path, $"reply xid {xid} does not match request xid {request.Xid}")
            {
                MayHaveBeenApplied = request.IsWrite,
            });
            throw new ZooKeeperProtocolException($"reply xid {xid} does not match request xid {request.Xid}");
        }

        try
        {
            request.OnReply?.Invoke(err);
            if (err != ErrorCode.Ok && !request.ParseOnError)
            {
                request.Completion.TrySetException(KeeperException.Create(err, request.Path));
                return;
            }

            var result = request.Parse is null ? null : request.Parse(ref reader);
            if (result is Exception failure)
            {
                // a transaction reports its failing operation inside an OK reply
                request.Completion.TrySetException(failure);
            }
            else if (err != ErrorCode.Ok)
            {
                request.Completion.TrySetException(KeeperException.Create(err, request.Path));
            }
            else
            {
                request.Completion.TrySetResult(result);
            }
        }
        catch (ZooKeeperProtocolException)
        {
            request.Completion.TrySetException(new ConnectionLossException(request.Path, "malformed reply") { MayHaveBeenApplied = request.IsWrite });
            throw;
        }
    }
}

/// <summary>What a connection needs from its session.</summary>
internal interface IConnectionOwner
{
    ILogger Logger { get; }
    int NextXid();
    void SeenZxid(long zxid);
    void OnNotification(EventType type, string serverPath);
    void OnAuthFailed(ErrorCode code);
}
