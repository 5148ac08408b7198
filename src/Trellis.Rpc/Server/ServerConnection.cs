using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.Logging;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Rpc;

/// <summary>
/// One client connection: detects framing and protocol from the first bytes, cuts frames, starts each call
/// without waiting for the previous one, and writes replies (same framing, protocol and seqid) as calls finish.
/// </summary>
/// <remarks>
/// A frame that is not valid Thrift, or exceeds a limit, closes the connection (the stream cannot be trusted
/// any more); a frame that is valid Thrift but wrong (unknown method, bad message type, bad arguments) gets a
/// TApplicationException with its seqid, and the connection goes on.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "CloseAsync releases everything; RunAsync always ends in it")]
internal sealed partial class ServerConnection : ICallerConnection
{
    private readonly ThriftServer _server;
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly SslStream? _tls;
    private readonly PipeReader _reader;
    private readonly SendQueue _send;
    private readonly CancellationTokenSource _closed = new();
    private readonly string _peer;
    private ThriftEncoding _encoding;
    private int _callsInFlight;
    private CallerIdentity? _identity;

    public ServerConnection(ThriftServer server, Socket socket, string peer)
    {
        _server = server;
        _socket = socket;
        _peer = peer;
        var network = new PeekingNetworkStream(socket);
        if (server.Tls is not null && socket.AddressFamily != AddressFamily.Unix)
        {
            // TLS on TCP listeners: reads and replies go through the encrypting stream once the handshake is done
            _tls = new SslStream(network, leaveInnerStreamOpen: false);
            _stream = _tls;
            _send = new SendQueue(_tls, broken => _ = CloseAsync());
        }
        else
        {
            _stream = network;
            // replies are batched: those finished while a send is in progress go out together in the next one
            _send = new SendQueue(socket, broken => _ = CloseAsync());
        }

        // zero-byte reads: a connection waiting for its next call holds no buffer (idle callers cost ~2 KB, not 16+)
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4096, useZeroByteReads: true));
    }

    /// <summary>The caller as its certificate names it (TLS with a client certificate), or null.</summary>
    public CallerIdentity? Identity => _identity;

    private ILogger Logger => _server.Logger;

    public async Task RunAsync()
    {
        var options = _server.Options;
        // closing (a stop, a read deadline from the server's housekeeping) wakes a pending read
        using var onClose = _closed.Token.Register(static r => ((PipeReader)r!).CancelPendingRead(), _reader);
        try
        {
            if (_tls is not null && !await AuthenticateAsync().ConfigureAwait(false))
            {
                return;
            }

            _identity ??= PeerCredentials.Of(_socket); // a caller on the Unix socket: the kernel says who it is

            var (status, encoding, reason) = await StreamIo.DetectAsync(_reader, options.Limits).ConfigureAwait(false);
            if (status != ThriftDetectStatus.Detected)
            {
                if (status == ThriftDetectStatus.Rejected)
                {
                    ConnectionLog.NotThrift(Logger, _peer, reason!);
                }

                return;
            }

            _encoding = encoding;
            _deadlines.Pending(false);
            using var decoder = new ThriftFrameDecoder(_encoding, options.Limits, options.StrictRead);
            while (true)
            {
                var result = await _reader.ReadAsync().ConfigureAwait(false);
                _deadlines.Activity();
                if (result.IsCanceled)
                {
                    return; // closing
                }

                var buffer = result.Buffer;
                try
                {
                    while (decoder.TryReadFrame(ref buffer, out var frame))
                    {
                        HandleFrame(frame);
                    }
                }
                catch (TException e) when (e is TProtocolException or TApplicationException)
                {
                    ConnectionLog.BadFrame(Logger, _peer, e.Message);
                    return;
                }

                _deadlines.Pending(!buffer.IsEmpty);
                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the peer went away, or the server is closing the connection
        }
        finally
        {
            await CloseAsync().ConfigureAwait(false);
            await ReleaseAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The TLS handshake, within the frame-read timeout (the read deadline covers it too); false: refused (logged once).</summary>
    private async Task<bool> AuthenticateAsync()
    {
        try
        {
            _identity = await TlsHandshake.AcceptAsync(_tls!, _server.Tls!, _server.Options.FrameReadTimeout, _closed.Token).ConfigureAwait(false);
            return true;
        }
        catch (AuthenticationException e)
        {
            ConnectionLog.TlsRefused(Logger, _peer, e.Message);
            return false;
        }
    }

    private readonly ReadDeadlines _deadlines = new();

    /// <summary>Called by the server's housekeeping tick: closes the connection when a read deadline has passed.</summary>
    public void CheckDeadlines(long now)
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }

        var options = _server.Options;
        if (_deadlines.Expired(now, Volatile.Read(ref _callsInFlight), options.FrameReadTimeout, options.IdleTimeout) is { } reason)
        {
            ConnectionLog.Timeout(Logger, _peer, reason);
            _ = CloseAsync();
        }
    }

    private void HandleFrame(in ThriftFrame frame)
    {
        var header = ThriftMessages.ReadHeader(frame, _server.Options.Limits, _server.Options.StrictRead);
        var protocol = frame.Protocol;
        var headerInfo = frame.Header;
        if (header.Type is not (TMessageType.Call or TMessageType.Oneway))
        {
            Fail(header, headerInfo, protocol, TApplicationExceptionType.InvalidMessageType,
                $"message type {(int)header.Type} is not a call; a server takes CALL and ONEWAY");
            return;
        }

        if (!MultiplexedName.TryParse(header.Name, out var service, out var method, out var nameError))
        {
            Fail(header, headerInfo, protocol, TApplicationExceptionType.UnknownMethod, nameError!);
            return;
        }

        var dispatcher = _server.FindService(service);
        if (dispatcher is null || !dispatcher.TryGetInvoker(method, out var invoker))
        {
            var what = dispatcher is null
                ? service is null ? "no default service: call as service:method" : $"unknown service '{MultiplexedName.ForEcho(service)}'"
                : $"unknown method '{MultiplexedName.ForEcho(method)}' of service {dispatcher.ServiceName}";
            Fail(header, headerInfo, protocol, TApplicationExceptionType.UnknownMethod, what);
            return;
        }

        var arguments = invoker.CreateArguments();
        try
        {
            ThriftMessages.Read(frame, arguments, out _, _server.Options.Limits, _server.Options.StrictRead);
        }
        catch (TProtocolException e)
        {
            // the frame is consumed whole, so the stream is still in step: answer and go on
            Fail(header, headerInfo, protocol, TApplicationExceptionType.ProtocolError, $"bad arguments for {method}: {e.Message}");
            return;
        }

        if (_server.Options.Product is { } product && headerInfo is not null && headerInfo.TryGet(RpcHeaders.CallerProduct, out var caller)
            && Governance.ProductIsolation.Refusal(caller, product) is { } refusal)
        {
            Fail(header, headerInfo, protocol, TApplicationExceptionType.InternalError, refusal);
            return;
        }

        if (!_server.TryEnterCall())
        {
            Fail(header, headerInfo, protocol, RpcErrors.Overloaded(_server.Options.MaxConcurrentCalls));
            return;
        }

        var context = new RpcContext(service ?? dispatcher.ServiceName, method, header.Type)
        {
            Method = invoker.Method,
            SeqId = header.SeqId,
            Peer = _peer,
            Caller = _identity,
        };
        if (headerInfo is not null)
        {
            foreach (var (key, value) in headerInfo.Headers)
            {
                context.RequestHeaders[key] = value;
            }

            if (RpcHeaders.TryGetTimeout(headerInfo, out var timeout))
            {
                context.Deadline = DateTimeOffset.UtcNow + timeout;
            }
        }

        context.Items[ThriftServer.Invocation.Key] = new ThriftServer.Invocation(invoker, arguments);
        var reply = new ReplyShape(header, protocol, headerInfo is null ? null : new ReplyHeaderShape(headerInfo.Flags, headerInfo.Transforms.Count > 0));
        Interlocked.Increment(ref _callsInFlight);
        _ = RunCallAsync(context, reply);
    }

    private readonly record struct ReplyHeaderShape(ushort Flags, bool Zlib);

    private readonly record struct ReplyShape(TMessageHeader Request, ThriftProtocol Protocol, ReplyHeaderShape? Header);

    private async Task RunCallAsync(RpcContext context, ReplyShape shape)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(_server.AbortCalls, _closed.Token);
        if (context.Deadline is { } deadline)
        {
            var left = deadline - DateTimeOffset.UtcNow;
            cancel.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }

        context.CancellationToken = cancel.Token;
        IThriftWritable? reply;
        TMessageType type;
        // telemetry only when someone listens: a server span (child of the caller's traceparent) and the duration
        string? observed = null;
        System.Diagnostics.Activity? activity = null;
        var started = 0L;
        Exception? failure = null;
        if (RpcTelemetry.ServerActive)
        {
            observed = context.Method is { } m ? RpcTelemetry.MethodName(m) : RpcTelemetry.MethodName(context.Service, context.MethodName);
            started = System.Diagnostics.Stopwatch.GetTimestamp();
            activity = RpcTelemetry.StartServer(observed, context);
        }

        try
        {
            await _server.Pipeline(context).ConfigureAwait(false);
            reply = context.Reply;
            type = TMessageType.Reply;
        }
        catch (Exception e)
        {
            failure = e;
            reply = e switch
            {
                TApplicationException app => app,
                OperationCanceledException when _server.AbortCalls.IsCancellationRequested => RpcErrors.ShuttingDown(),
                OperationCanceledException when context.Deadline is not null => RpcErrors.DeadlineExceeded(context.MethodName),
                _ => new TApplicationException(TApplicationExceptionType.InternalError, $"{context.MethodName} failed: {e.GetType().Name}: {e.Message}"),
            };
            type = TMessageType.Exception;
            if (e is not TApplicationException)
            {
                LogHandlerFailed(Logger, e, context.FullName);
            }
        }
        finally
        {
            if (Interlocked.Decrement(ref _callsInFlight) == 0)
            {
                _deadlines.Activity(); // idle from the last answer on
            }
        }

        if (observed is not null)
        {
            RpcTelemetry.Finish(RpcTelemetry.ServerDuration, observed, started, activity, failure is null ? null : reply as Exception ?? failure);
        }

        try
        {
            if (!context.IsOneway && reply is not null)
            {
                Write(new TMessageHeader(context.MethodName, type, context.SeqId), shape, reply, context);
            }
        }
        finally
        {
            _server.ExitCall();
        }
    }

    private void Fail(in TMessageHeader request, THeaderInfo? info, ThriftProtocol protocol, TApplicationExceptionType type, string message) =>
        Fail(request, info, protocol, new TApplicationException(type, message));

    private void Fail(in TMessageHeader request, THeaderInfo? info, ThriftProtocol protocol, TApplicationException error)
    {
        if (request.Type == TMessageType.Oneway)
        {
            return; // nobody listens for a oneway's reply
        }

        var shape = new ReplyShape(request, protocol, info is null ? null : new ReplyHeaderShape(info.Flags, info.Transforms.Count > 0));
        Write(new TMessageHeader(request.Name, TMessageType.Exception, request.SeqId), shape, error, context: null);
    }

    private void Write(TMessageHeader header, ReplyShape shape, IThriftWritable body, RpcContext? context)
    {
        THeaderInfo? info = null;
        if (shape.Header is { } h)
        {
            info = new THeaderInfo { Flags = h.Flags };
            if (h.Zlib)
            {
                info.Transforms.Add(THeaderTransform.Zlib);
            }

            if (context is { ResponseHeaders.Count: > 0 })
            {
                foreach (var (key, value) in context.ResponseHeaders)
                {
                    info.Add(key, value);
                }
            }
        }

        var reply = new Reply(new ThriftEncoding(_encoding.Framing, shape.Protocol), header, body, info, _server.Options.Limits);
        // false when the client went away: its calls' results have nowhere to go
        _send.Write(reply, static (output, r) =>
        {
            var mark = output.WrittenCount;
            try
            {
                ThriftMessages.Write(output, r.Encoding, r.Header, r.Body, r.Info, r.Limits);
            }
            catch (TException e)
            {
                // the reply itself is too big or unwritable: tell the caller instead
                output.Truncate(mark);
                ThriftMessages.Write(output, r.Encoding, r.Header with { Type = TMessageType.Exception },
                    new TApplicationException(TApplicationExceptionType.InternalError, $"reply not sent: {e.Message}"), r.Info, r.Limits);
            }
        });
    }

    private readonly record struct Reply(ThriftEncoding Encoding, TMessageHeader Header, IThriftWritable Body, THeaderInfo? Info, ThriftLimits Limits);

    /// <summary>Asks the connection to close, from any thread: the read loop wakes and releases everything on its way out.</summary>
    public async Task CloseAsync()
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }

        await _closed.CancelAsync().ConfigureAwait(false); // wakes a pending read
        await _send.DrainAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); // answers already made still go out
        StreamIo.ShutDown(_socket);
    }

    /// <summary>The read loop's last step: only it touches the reader (a PipeReader is not thread-safe).</summary>
    private async Task ReleaseAsync()
    {
        try
        {
            await _reader.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // already closed by the peer
        }
        finally
        {
            _stream.Dispose();
            _send.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string method);
}
