using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Proxy;

/// <summary>
/// One connection to an instance. Calls get seqids of this connection (the caller's seqid is kept on the call and
/// restored on the reply), so calls from many application connections share it; replies are matched by seqid in
/// any order. A seqid stays taken until its reply arrives or the connection ends, even after its call timed out.
/// </summary>
internal sealed class BackendConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly SslStream? _tls;
    private readonly SocketReader _reader;
    private readonly SendQueue _send;
    private readonly Dictionary<int, Pending> _pending = [];
    private readonly ThriftLimits _limits;
    private readonly TaskCompletionSource<Exception> _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly THeaderInfo _header = new();
    private readonly Task _readLoop;
    private int _seqId;
    private int _expired;

    private BackendConnection(Socket socket, ServiceInstance instance, ThriftLimits limits, SslStream? tls = null)
    {
        _socket = socket;
        _tls = tls;
        Instance = instance;
        // what the proxy accepted from a caller must fit towards the instance even with THeader's header section added
        _limits = limits with { MaxFrameSize = (int)Math.Min(int.MaxValue, (long)limits.MaxFrameSize + THeaderInfo.MaxHeaderSectionSize + 64) };
        Encoding = EncodingOf(instance);
        Action<Exception> lost = e => Break(new TTransportException(TTransportErrorKind.EndOfFile, $"connection to {Instance.InstanceId} lost: {e.Message}", e));
        // with no reply due, the connection waits for data holding no buffer (a proxy routing 1,000 services keeps 1,000+
        // mostly idle connections); with calls outstanding it reads straight into its buffer. Count read without the
        // lock: a stale answer only picks the other way of waiting for this one read.
        Func<bool> idle = () => _pending.Count == 0;
        (_reader, _send) = tls is null ? (new SocketReader(socket, idle), new SendQueue(socket, lost)) : (new SocketReader(tls, idle), new SendQueue(tls, lost));
        _readLoop = Task.Run(ReadLoopAsync);
    }

    public ServiceInstance Instance { get; }

    public ThriftEncoding Encoding { get; }

    public bool IsBroken => _broken.Task.IsCompleted;

    /// <summary>Calls waiting for a reply (timed-out ones whose seqid is still taken included).</summary>
    public int Outstanding
    {
        get
        {
            lock (_pending)
            {
                return _pending.Count;
            }
        }
    }

    public static ThriftEncoding EncodingOf(ServiceInstance instance) => new(
        instance.Framing switch { "unframed" => ThriftFraming.Unframed, "header" => ThriftFraming.Header, _ => ThriftFraming.Framed },
        instance.Protocol == "compact" ? ThriftProtocol.Compact : ThriftProtocol.Binary);

    /// <summary>A connection a worker opened to the balancer's back address: the worker serves calls on it.</summary>
    public static BackendConnection FromSocket(Socket socket, ServiceInstance instance, ThriftLimits limits) => new(socket, instance, limits);

    /// <summary>Completes with the reason once the connection has ended.</summary>
    public Task<Exception> Closed => _broken.Task;

    public static async Task<BackendConnection> ConnectAsync(ServiceInstance instance, ProxyOptions options, CancellationToken cancellationToken)
    {
        var endpoint = instance.Endpoint();
        var what = $"{instance.InstanceId} at {endpoint}";
        var (tls, peerName) = TlsOptions.ForInstance(options.Tls, instance, endpoint);
        TlsCredentials? credentials = null;
        if (tls is not null)
        {
            try
            {
                credentials = tls.Load();
            }
            catch (TlsConfigurationException e)
            {
                throw new TTransportException(TTransportErrorKind.NotOpen, $"cannot connect to {what}: {e.Message}", e);
            }
        }

        var socket = await StreamIo.ConnectAsync(endpoint, options.ConnectTimeout, what, cancellationToken).ConfigureAwait(false);
        if (credentials is null)
        {
            return new BackendConnection(socket, instance, options.Limits);
        }

        try
        {
            // the server's certificate must name this route's service: trellis://{product}/{service}
            var stream = await TlsHandshake.ConnectAsync(new PeekingNetworkStream(socket, ownsSocket: false), credentials, endpoint, peerName, options.ConnectTimeout, what,
                cancellationToken).ConfigureAwait(false);
            return new BackendConnection(socket, instance, options.Limits, stream);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends a call; the task ends with the backend's reply (a oneway's at once, once queued).</summary>
    /// <exception cref="TTransportException">NotOpen: the call was not sent.</exception>
    public Task<BackendReply> SendAsync(ForwardCall call)
    {
        if (_broken.Task.IsCompleted)
        {
            throw new TTransportException(TTransportErrorKind.NotOpen, $"not sent: the connection to {Instance.InstanceId} had closed", _broken.Task.Result);
        }

        var pending = call.IsOneway ? null : new Pending(call.Method, call.Deadline);
        int seqId;
        bool busy;
        lock (_pending)
        {
            // other calls outstanding: more are likely on their way, so this one waits to share their send
            busy = _pending.Count > 0;
            do
            {
                seqId = ++_seqId & int.MaxValue;
            }
            while (_pending.ContainsKey(seqId));

            if (pending is not null)
            {
                _pending.Add(seqId, pending);
            }
        }

        bool queued;
        try
        {
            queued = _send.Write((this, call, seqId), static (output, s) => s.Item1.WriteCall(output, s.call, s.seqId), defer: busy);
        }
        catch
        {
            Forget(seqId);
            throw;
        }

        if (!queued)
        {
            Forget(seqId);
            throw new TTransportException(TTransportErrorKind.NotOpen, $"not sent: the connection to {Instance.InstanceId} had closed");
        }

        return pending?.Completion.Task ?? Task.FromResult(default(BackendReply));
    }

    private void Forget(int seqId)
    {
        lock (_pending)
        {
            _pending.Remove(seqId);
        }
    }

    private void WriteCall(PooledBufferWriter output, ForwardCall call, int seqId)
    {
        // a multiplexed instance takes service:method; one that serves a single service takes the bare name
        var name = !Instance.Multiplexed ? call.Method
            : call.Name.Length > call.Method.Length ? call.Name
            : call.Service + MultiplexedName.Separator + call.Method; // a bare name the balancer took for its service
        THeaderInfo? info = null;
        if (Encoding.Framing == ThriftFraming.Header)
        {
            // written under the send queue's lock: one header object per connection is enough
            info = _header;
            info.Clear();
            var trace = call.Trace;
            if (call.Headers is not null)
            {
                foreach (var (key, value) in call.Headers)
                {
                    if (trace is not null && (key == RpcHeaders.TraceParent || key == RpcHeaders.TraceState))
                    {
                        continue; // the proxy's own span is the backend's parent
                    }

                    info.Add(key, value);
                }
            }

            if (trace is not null)
            {
                info.Add(RpcHeaders.TraceParent, trace.Id!);
                if (trace.TraceStateString is { Length: > 0 } state)
                {
                    info.Add(RpcHeaders.TraceState, state);
                }
            }

            var left = Math.Max(0, (long)Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), call.Deadline).TotalMilliseconds);
            info.Set(RpcHeaders.Timeout, left.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Envelope.WriteFrame(output, Encoding.Framing, Encoding.Protocol, new TMessageHeader(name, call.Type, seqId),
            call.Body.Span, call.Protocol, info, _limits);
    }

    private async Task ReadLoopAsync()
    {
        using var decoder = new ThriftFrameDecoder(Encoding, _limits);
        try
        {
            await StreamIo.ReadFramesAsync(_reader, decoder, OnReply).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Break(e as TException ?? new TTransportException(TTransportErrorKind.EndOfFile, $"connection to {Instance.InstanceId} lost: {e.Message}", e));
        }
    }

    private void OnReply(in ThriftFrame frame)
    {
        var span = frame.Payload.Span;
        var type = Envelope.Read(span, frame.Protocol, _limits, out var nameUtf8, out var seqId, out var bodyOffset);
        Pending? call;
        lock (_pending)
        {
            if (_pending.Remove(seqId, out call) && call.Expired)
            {
                _expired--;
            }
        }

        if (call is null)
        {
            throw new TApplicationException(TApplicationExceptionType.BadSequenceId, $"{Instance.InstanceId} replied with seqid {seqId}, which matches no call");
        }

        if (type is not (TMessageType.Reply or TMessageType.Exception))
        {
            var error = new TApplicationException(TApplicationExceptionType.InvalidMessageType, $"{Instance.InstanceId} replied with message type {(int)type}");
            call.Completion.TrySetException(error);
            throw error;
        }

        if (!Envelope.NamesMethod(nameUtf8, call.Method))
        {
            var error = new TApplicationException(TApplicationExceptionType.WrongMethodName,
                $"{Instance.InstanceId} replied for '{MultiplexedName.ForEcho(System.Text.Encoding.UTF8.GetString(nameUtf8))}' to a call of '{call.Method}'");
            call.Completion.TrySetException(error);
            throw error;
        }

        if (call.Completion.Task.IsCompleted)
        {
            return; // timed out: the late reply only frees its seqid
        }

        List<KeyValuePair<string, string>>? headers = null;
        if (frame.Header is { Headers.Count: > 0 } info)
        {
            headers = [.. info.Headers];
        }

        var body = new PooledBody(span[bodyOffset..]);
        if (!call.Completion.TrySetResult(new BackendReply(type, body, frame.Protocol, headers)))
        {
            body.Dispose();
        }
    }

    /// <summary>Fails the calls whose deadline has passed (their seqids stay taken until a late reply or the end).</summary>
    public void Expire(long now)
    {
        List<Pending>? late = null;
        lock (_pending)
        {
            foreach (var call in _pending.Values)
            {
                if (!call.Expired && call.Deadline <= now)
                {
                    call.Expired = true;
                    _expired++;
                    (late ??= []).Add(call);
                }
            }
        }

        if (late is null)
        {
            return;
        }

        foreach (var call in late)
        {
            call.Completion.TrySetException(new TimeoutException($"{Instance.InstanceId} did not answer {call.Method} in time"));
        }

        if (!Instance.Multiplexed || Volatile.Read(ref _expired) > 1000)
        {
            // one call per connection: its late reply would be the next caller's; too many stuck seqids: start afresh
            Break(new TTransportException(TTransportErrorKind.TimedOut, $"{Instance.InstanceId} did not answer in time"));
        }
    }

    public void Break(Exception reason)
    {
        if (!_broken.TrySetResult(reason))
        {
            return;
        }

        List<Pending> calls;
        lock (_pending)
        {
            calls = [.. _pending.Values];
            _pending.Clear();
        }

        foreach (var call in calls)
        {
            call.Completion.TrySetException(reason);
        }

        StreamIo.ShutDown(_socket);
    }

    public async ValueTask DisposeAsync()
    {
        Break(new TTransportException(TTransportErrorKind.NotOpen, "the proxy closed the connection"));
        // the shutdown ends the read loop; only then may its buffer go back to the pool
        await _readLoop.ConfigureAwait(false);
        _reader.Dispose();
        _tls?.Dispose();
        _socket.Dispose();
        _send.Dispose();
    }

    private sealed class Pending(string method, long deadline)
    {
        public string Method { get; } = method;

        public long Deadline { get; } = deadline;

        public bool Expired { get; set; }

        // continuations run on the read loop: the reply is written to the caller straight away, without a thread-pool hop
        public TaskCompletionSource<BackendReply> Completion { get; } = new();
    }
}
