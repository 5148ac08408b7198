using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Rpc;

/// <summary>
/// One connection to a peer: calls are written under a lock and matched to replies by seqid. Seqids are
/// never reused while a call with that seqid is waiting (a timed-out call keeps its seqid until its late reply
/// comes or the connection ends), so wrap-around cannot pair a reply with the wrong call.
/// </summary>
/// <remarks>
/// A reply that matches no call, or names another method, means the stream cannot be trusted: the connection
/// is discarded and every call on it fails at once.
/// </remarks>
internal sealed class ClientConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly ThriftChannelOptions _options;
    private readonly ConcurrentDictionary<int, PendingCall> _pending = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly PooledBufferWriter _buffer = new(4096);
    private readonly TaskCompletionSource<Exception> _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _readLoop;
    private int _seqId;
    private int _active;

    private ClientConnection(Socket socket, Stream stream, ThriftChannelOptions options)
    {
        _socket = socket;
        _options = options;
        _stream = stream;
        _reader = PipeReader.Create(_stream);
        _writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
        _readLoop = Task.Run(ReadLoopAsync);
    }

    public static async Task<ClientConnection> ConnectAsync(ThriftChannelOptions options, CancellationToken cancellationToken)
    {
        var what = options.Endpoint.ToString();
        TlsCredentials? tls = null;
        if (options.Tls is { Enabled: true } settings && !options.Endpoint.IsUnix)
        {
            try
            {
                tls = settings.Load();
            }
            catch (TlsConfigurationException e)
            {
                throw new TTransportException(TTransportErrorKind.NotOpen, $"cannot connect to {what} with TLS: {e.Message}", e);
            }
        }

        var socket = await StreamIo.ConnectAsync(options.Endpoint, options.ConnectTimeout, what, cancellationToken).ConfigureAwait(false);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        if (tls is not null)
        {
            stream = await TlsHandshake.ConnectAsync(stream, tls, options.Endpoint, options.TlsPeerName, options.ConnectTimeout, what, cancellationToken).ConfigureAwait(false);
        }

        return new ClientConnection(socket, stream, options);
    }

    public bool IsBroken => _broken.Task.IsCompleted;

    /// <summary>Makes the next seqid <paramref name="next"/> (tests of wrap-around).</summary>
    internal void SeedSeqId(int next) => Volatile.Write(ref _seqId, next - 1);

    /// <summary>Calls taken by this connection and not yet given back.</summary>
    public int Active => Volatile.Read(ref _active);

    public void Reserve() => Interlocked.Increment(ref _active);

    public void Release() => Interlocked.Decrement(ref _active);

    public async Task CallAsync(RpcContext context, IThriftWritable arguments, IThriftStruct? result, CancellationToken cancellationToken)
    {
        var call = result is null ? null : new PendingCall(context.MethodName, result);
        var seqId = NextSeqId(call);
        context.SeqId = seqId;
        var name = _options.Multiplexed && context.Service.Length > 0 ? context.FullName : context.MethodName;
        THeaderInfo? info = null;
        if (_options.Encoding.Framing == ThriftFraming.Header)
        {
            info = new THeaderInfo();
            if (context.HasRequestHeaders)
            {
                foreach (var (key, value) in context.RequestHeaders)
                {
                    info.Add(key, value);
                }
            }

            RpcHeaders.Stamp(info, context.Deadline);
            if (_options.CallerProduct is { } product && !info.TryGet(RpcHeaders.CallerProduct, out _))
            {
                info.Set(RpcHeaders.CallerProduct, product);
            }

            if (_options.Headers is { Count: > 0 } always)
            {
                foreach (var (key, value) in always)
                {
                    if (!info.TryGet(key, out _))
                    {
                        info.Set(key, value);
                    }
                }
            }
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfBrokenBeforeSend();
            _buffer.Clear();
            ThriftMessages.Write(_buffer, _options.Encoding, new TMessageHeader(name, context.IsOneway ? TMessageType.Oneway : TMessageType.Call, seqId),
                arguments, info, _options.Limits);
            _writer.Write(_buffer.WrittenSpan);
            await _writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // the write failed: at most a partial frame left, which no server runs — the call was not sent
            _pending.TryRemove(seqId, out _);
            Break(new TTransportException(TTransportErrorKind.NotOpen, $"connection to {_options.Endpoint} lost: {e.Message}", e));
            throw new TTransportException(TTransportErrorKind.NotOpen, $"{context.FullName} not sent: the connection to {_options.Endpoint} failed while writing", e);
        }
        catch
        {
            _pending.TryRemove(seqId, out _); // not sent (e.g. over the frame limit or already broken): free the seqid
            throw;
        }
        finally
        {
            _writeLock.Release();
        }

        if (call is null)
        {
            return;
        }

        using var registration = cancellationToken.Register(static state =>
        {
            var c = (PendingCall)state!;
            c.Completion.TrySetCanceled();
        }, call);
        await call.Completion.Task.ConfigureAwait(false);
    }

    private int NextSeqId(PendingCall? call)
    {
        while (true)
        {
            var seqId = Interlocked.Increment(ref _seqId) & int.MaxValue;
            if (call is null)
            {
                if (!_pending.ContainsKey(seqId))
                {
                    return seqId;
                }

                continue;
            }

            if (_pending.TryAdd(seqId, call))
            {
                return seqId;
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        using var decoder = new ThriftFrameDecoder(_options.Encoding, _options.Limits);
        try
        {
            await StreamIo.ReadFramesAsync(_reader, decoder, OnReply).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Break(e as TException ?? new TTransportException(TTransportErrorKind.EndOfFile, $"connection to {_options.Endpoint} lost: {e.Message}", e));
        }
    }

    private void OnReply(in ThriftFrame frame)
    {
        var header = ThriftMessages.ReadHeader(frame, _options.Limits);
        if (!_pending.TryRemove(header.SeqId, out var call))
        {
            throw new TApplicationException(TApplicationExceptionType.BadSequenceId, $"reply with seqid {header.SeqId} matches no call");
        }

        if (header.Name != call.Method && !header.Name.EndsWith(":" + call.Method, StringComparison.Ordinal))
        {
            var error = new TApplicationException(TApplicationExceptionType.WrongMethodName, $"reply for '{MultiplexedName.ForEcho(header.Name)}' to a call of '{call.Method}'");
            call.Completion.TrySetException(error);
            throw error;
        }

        if (header.Type is not (TMessageType.Reply or TMessageType.Exception))
        {
            var error = new TApplicationException(TApplicationExceptionType.InvalidMessageType, $"reply of message type {(int)header.Type}");
            call.Completion.TrySetException(error);
            throw error;
        }

        if (call.Completion.Task.IsCompleted)
        {
            return; // timed out or cancelled: the late reply only frees its seqid
        }

        try
        {
            ThriftMessages.Read(frame, call.Result, out var exception, _options.Limits);
            if (exception is not null)
            {
                call.Completion.TrySetException(exception);
            }
            else
            {
                call.Completion.TrySetResult();
            }
        }
        catch (TProtocolException e)
        {
            call.Completion.TrySetException(e);
        }
    }

    /// <summary>A connection that broke before this call was written: the call was not sent, and may go elsewhere.</summary>
    private void ThrowIfBrokenBeforeSend()
    {
        if (_broken.Task.IsCompleted)
        {
            throw new TTransportException(TTransportErrorKind.NotOpen,
                $"not sent: the connection to {_options.Endpoint} had closed ({_broken.Task.Result.Message})", _broken.Task.Result);
        }
    }

    private void Break(Exception reason)
    {
        if (!_broken.TrySetResult(reason))
        {
            return;
        }

        foreach (var seqId in _pending.Keys)
        {
            if (_pending.TryRemove(seqId, out var call))
            {
                call.Completion.TrySetException(reason);
            }
        }

        StreamIo.ShutDown(_socket);
    }

    public async ValueTask DisposeAsync()
    {
        Break(new TTransportException(TTransportErrorKind.NotOpen, "the channel is closed"));
        // the shutdown ends the read loop; only then may the reader be completed (a PipeReader is not thread-safe)
        await _readLoop.ConfigureAwait(false);
        try
        {
            // completing the writer flushes what a broken call left behind: the peer may be long gone
            await _writer.CompleteAsync().ConfigureAwait(false);
            await _reader.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // closing a connection the peer already dropped is not an error
        }
        finally
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
            _buffer.Dispose();
        }
    }

    private sealed class PendingCall(string method, IThriftStruct result)
    {
        public string Method { get; } = method;
        public IThriftStruct Result { get; } = result;
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
