using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Trellis.Rpc;
using Trellis.Thrift;

namespace Trellis.Proxy;

/// <summary>
/// One application connection: detects framing and protocol from the first bytes, cuts frames, reads each
/// message's envelope only, hands the call to the proxy, and writes replies as they come back (in any order).
/// </summary>
/// <remarks>
/// A frame that breaks a limit or is not Thrift closes this connection (the stream cannot be trusted any more); a
/// well-formed message the proxy cannot route gets a TApplicationException with its seqid, and the connection goes on.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "CloseAsync releases everything; RunAsync always ends in it")]
internal sealed partial class FrontendConnection : ICallerConnection
{
    private readonly ProxyServer _proxy;
    private readonly Socket _socket;
    private readonly SslStream? _tls;
    private readonly SocketReader _reader;
    private readonly SendQueue _send;
    private readonly CancellationTokenSource _closed = new();
    private readonly object _flow = new();
    private TaskCompletionSource? _room;
    private ThriftEncoding _encoding;
    private int _inFlight;
    private readonly ReadDeadlines _deadlines = new();

    public FrontendConnection(ProxyServer proxy, Socket socket, string peer)
    {
        _proxy = proxy;
        _socket = socket;
        Peer = peer;
        _tls = TlsFor(proxy, socket);
        // most application connections are idle most of the time: they hold a receive buffer only while bytes are in it
        _reader = _tls is null ? new SocketReader(socket, SocketReader.Always) : new SocketReader(_tls, SocketReader.Always);
        _send = _tls is null ? new SendQueue(socket, broken => _ = CloseAsync()) : new SendQueue(_tls, broken => _ = CloseAsync());
    }

    public string Peer { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    private ILogger Logger => _proxy.Logger;

    public async Task RunAsync()
    {
        var options = _proxy.Options;
        try
        {
            if (_tls is not null && !await AuthenticateAsync().ConfigureAwait(false))
            {
                return;
            }

            ReadPeerCredentials();
            if (!await DetectAsync().ConfigureAwait(false))
            {
                return;
            }

            using var decoder = new ThriftFrameDecoder(_encoding, options.Limits);
            _lookAtBuffered = true; // the bytes detection looked at may hold whole calls already
            while (true)
            {
                await WaitForRoomAsync().ConfigureAwait(false);
                var (buffer, completed) = await _reader.ReadAsync(more: !_lookAtBuffered).ConfigureAwait(false);
                _lookAtBuffered = false;
                _deadlines.Activity();
                if (_closed.IsCancellationRequested)
                {
                    return;
                }

                var full = false;
                try
                {
                    while (!(full = InFlight >= options.MaxInFlightPerConnection) && decoder.TryReadFrame(ref buffer, out var frame))
                    {
                        HandleFrame(frame);
                    }
                }
                catch (TException e) when (e is TProtocolException or TApplicationException)
                {
                    _proxy.Stats.BadFrame();
                    ConnectionLog.BadFrame(Logger, Peer, e.Message);
                    return;
                }

                _deadlines.Pending(!buffer.IsEmpty && !full);
                _reader.AdvanceTo(buffer.Start);
                _lookAtBuffered = full; // whole frames may be left: look at them again, without waiting for more bytes, once there is room
                if (completed && !full)
                {
                    // the caller closed its side, or a graceful stop shut our receiving side: its answers may still be read
                    await LetCallsFinishAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the application went away, or the proxy is closing the connection
        }
        finally
        {
            await CloseAsync().ConfigureAwait(false);
            await ReleaseAsync().ConfigureAwait(false);
        }
    }

    private bool _lookAtBuffered;

    /// <summary>Called by the proxy's housekeeping tick: closes the connection when a read deadline has passed.</summary>
    public void CheckDeadlines(long now)
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }

        var options = _proxy.Options;
        if (_deadlines.Expired(now, InFlight, options.FrameReadTimeout, options.IdleTimeout) is { } reason)
        {
            ConnectionLog.Timeout(Logger, Peer, reason);
            _ = CloseAsync();
        }
    }

    private async Task<bool> DetectAsync()
    {
        var (status, encoding, reason) = await StreamIo.DetectAsync(_reader, _proxy.Options.Limits).ConfigureAwait(false);
        if (status == ThriftDetectStatus.Rejected)
        {
            _proxy.Stats.NotThrift();
            ConnectionLog.NotThrift(Logger, Peer, reason!);
        }

        _encoding = encoding;
        _deadlines.Pending(false);
        return status == ThriftDetectStatus.Detected;
    }

    private void HandleFrame(in ThriftFrame frame)
    {
        var options = _proxy.Options;
        var payload = frame.Payload.Span;
        var type = Envelope.Read(payload, frame.Protocol, options.Limits, out var nameUtf8, out var seqId, out var bodyOffset);
        var name = _proxy.Names.Get(nameUtf8);
        var info = frame.Header;
        if (type is not (TMessageType.Call or TMessageType.Oneway))
        {
            Fail(new TMessageHeader(name.Name, type, seqId), frame.Protocol, info?.Flags ?? 0, new TApplicationException(TApplicationExceptionType.InvalidMessageType,
                $"message type {(int)type} is not a call; the proxy takes CALL and ONEWAY"));
            return;
        }

        if ((name.Service ?? (name.IsBare ? options.DefaultService : null)) is not { } service)
        {
            Fail(new TMessageHeader(name.Name, type, seqId), frame.Protocol, info?.Flags ?? 0, new TApplicationException(TApplicationExceptionType.UnknownMethod, name.Error!));
            return;
        }

        var method = name.Method;
        var now = Stopwatch.GetTimestamp();
        options.Services.TryGetValue(service, out var own);
        if (!Govern(new TMessageHeader(name.Name, type, seqId), frame.Protocol, info, service, method, out var admission))
        {
            return; // refused or answered by the rules
        }

        var (config, callerProduct) = (admission.Config, admission.CallerProduct);
        var timeout = (config is not null && config.Methods.TryGetValue(method, out var configured) ? configured.Timeout : null)
            ?? config?.Timeout ?? own?.Timeout ?? options.DefaultTimeout;
        List<KeyValuePair<string, string>>? headers = null;
        if (info is not null)
        {
            if (RpcHeaders.TryGetTimeout(info, out var callerTimeout) && callerTimeout < timeout)
            {
                timeout = callerTimeout;
            }

            foreach (var pair in info.Headers)
            {
                if (pair.Key != RpcHeaders.Timeout)
                {
                    (headers ??= []).Add(pair);
                }
            }
        }

        // a caller that did not say its product is a caller of this proxy's product (a proxy serves one product)
        IReadOnlyList<KeyValuePair<string, string>>? forwarded = headers;
        if (callerProduct is null)
        {
            if (headers is null)
            {
                forwarded = _proxy.ProductHeader; // shared: no list per call
            }
            else
            {
                headers.Add(_proxy.ProductHeader[0]);
            }
        }

        var call = new ForwardCall
        {
            Client = this,
            Name = name.Name,
            Service = service,
            ServiceOptions = own,
            Method = method,
            Type = type,
            SeqId = seqId,
            Protocol = frame.Protocol,
            Body = new PooledBody(payload[bodyOffset..]),
            Headers = forwarded,
            HeaderFlags = info?.Flags ?? 0,
            HeaderZlib = info is { Transforms.Count: > 0 },
            Deadline = now + (long)(timeout.TotalSeconds * Stopwatch.Frequency),
            MethodGate = admission.MethodGate,
            ServiceGate = admission.ServiceGate,
            Breakers = admission.Breakers,
            Subset = admission.Subset,
            ForceSubset = admission.Force,
        };
        Interlocked.Increment(ref _inFlight);
        _proxy.Forward(call);
    }

    /// <summary>The proxy is done with a call (answered or not).</summary>
    public void Done()
    {
        var left = Interlocked.Decrement(ref _inFlight);
        if (left == 0)
        {
            _deadlines.Activity(); // idle from the last answer on
        }

        if (left <= _proxy.Options.MaxInFlightPerConnection / 2)
        {
            lock (_flow)
            {
                _room?.TrySetResult();
                _room = null;
            }
        }
    }

    private Task WaitForRoomAsync()
    {
        if (InFlight < _proxy.Options.MaxInFlightPerConnection)
        {
            return Task.CompletedTask;
        }

        lock (_flow)
        {
            if (InFlight <= _proxy.Options.MaxInFlightPerConnection / 2)
            {
                return Task.CompletedTask;
            }

            _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _room.Task.WaitAsync(_closed.Token);
        }
    }

    private async Task LetCallsFinishAsync()
    {
        while (InFlight > 0 && !_closed.IsCancellationRequested)
        {
            await Task.Delay(10, _closed.Token).ConfigureAwait(false);
        }

        await _send.DrainAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
    }

    public void Reply(ForwardCall call, in BackendReply reply)
    {
        call.Release();
        var state = (call, reply, _encoding.Framing, _proxy.Options.Limits);
        try
        {
            _send.Write(state, static (output, s) =>
            {
                THeaderInfo? info = null;
                if (s.Framing == ThriftFraming.Header)
                {
                    info = new THeaderInfo { Flags = s.call.HeaderFlags };
                    if (s.call.HeaderZlib)
                    {
                        info.Transforms.Add(THeaderTransform.Zlib);
                    }

                    if (s.reply.Headers is not null)
                    {
                        foreach (var (key, value) in s.reply.Headers)
                        {
                            info.Add(key, value);
                        }
                    }
                }

                Envelope.WriteFrame(output, s.Framing, s.call.Protocol, new TMessageHeader(s.call.Name, s.reply.Type, s.call.SeqId),
                    s.reply.Body.Span, s.reply.Protocol, info, s.Limits);
            });
        }
        catch (TException e)
        {
            // the reply cannot be re-encoded or framed for this caller (too big, malformed): tell it so
            Fail(call, new TApplicationException(TApplicationExceptionType.InternalError, $"reply not forwarded: {e.Message}"));
        }
    }

    public void Fail(ForwardCall call, TApplicationException error)
    {
        if (call.Trace is { } trace)
        {
            ProxyTelemetry.Failed(trace, error);
        }

        call.Release();
        Fail(new TMessageHeader(call.Name, call.Type, call.SeqId), call.Protocol, call.HeaderFlags, error);
    }

    private void Fail(in TMessageHeader request, ThriftProtocol protocol, ushort flags, TApplicationException error)
    {
        if (request.Type == TMessageType.Oneway)
        {
            return; // nobody listens for a oneway's answer
        }

        var encoding = new ThriftEncoding(_encoding.Framing, protocol);
        var state = (new TMessageHeader(request.Name, TMessageType.Exception, request.SeqId), encoding, flags, error, _proxy.Options.Limits);
        _send.Write(state, static (output, s) => ThriftMessages.Write(output, s.encoding, s.Item1, s.error,
            s.encoding.Framing == ThriftFraming.Header ? new THeaderInfo { Flags = s.flags } : null, s.Limits));
    }

    /// <summary>Graceful stop: read no more calls; the ones in flight are answered, then the connection closes.</summary>
    public void StopReading()
    {
        StreamIo.ShutDown(_socket, SocketShutdown.Receive); // the pending read ends with "completed": answer what was taken
    }

    /// <summary>Asks the connection to close, from any thread: the read loop wakes and releases everything on its way out.</summary>
    public async Task CloseAsync()
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }

        await _closed.CancelAsync().ConfigureAwait(false); // stops waits for room and for calls to finish
        StreamIo.ShutDown(_socket); // wakes a pending read
    }

    /// <summary>The read loop's last step: only it owns the receive buffer.</summary>
    private Task ReleaseAsync()
    {
        _reader.Dispose();
        _send.Dispose();
        _tls?.Dispose();
        _socket.Dispose();
        return Task.CompletedTask;
    }
}
