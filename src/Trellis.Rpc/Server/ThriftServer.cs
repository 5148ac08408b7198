using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.Thrift.Services;

namespace Trellis.Rpc;

/// <summary>
/// Serves Thrift services on TCP and Unix sockets, for any stock Thrift client: framed, unframed or THeader,
/// binary or compact (told from each connection's first bytes), multiplexed or plain names. Calls from one
/// connection run concurrently and are answered by seqid as they finish.
/// </summary>
/// <remarks>
/// Stop is graceful (<see cref="StopAsync"/>): listeners close, calls in flight finish within a deadline,
/// then whatever still runs is cancelled and answered with an error, and connections close.
/// </remarks>
public sealed partial class ThriftServer : IAsyncDisposable
{
    private readonly ThriftServerOptions _options;
    private readonly Dictionary<string, ThriftServiceDispatcher> _services = new(StringComparer.Ordinal);
    private readonly RpcPipelineBuilder _stack = new();
    private readonly CallerListeners<ServerConnection> _listeners;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abortCalls = new();
    private int _inFlight;
    private TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ThriftServiceDispatcher? _default;
    private RpcHandler? _pipeline;
    private bool _started;

    public ThriftServer(ThriftServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Logger = options.Logger ?? NullLogger.Instance;
        if (options.Tls is { Enabled: true } tls)
        {
            // read and checked now: a bad certificate stops the start, not the first caller
            Tls = tls.Load();
            if (Tls.Certificate is null)
            {
                throw new TlsConfigurationException("a TLS server needs its certificate: set Trellis:Tls:CertificateFile (and KeyFile)");
            }
        }

        _listeners = new CallerListeners<ServerConnection>((socket, peer) => new ServerConnection(this, socket, peer));
    }

    internal ILogger Logger { get; }

    /// <summary>The TCP listeners' TLS material (null: plaintext).</summary>
    internal TlsCredentials? Tls { get; }

    internal ThriftServerOptions Options => _options;

    /// <summary>The endpoints actually bound (with the real port when 0 was asked for).</summary>
    public IReadOnlyList<RpcEndpoint> Endpoints => _listeners.Bound;

    /// <summary>Calls running now.</summary>
    public int CallsInFlight => Volatile.Read(ref _inFlight);

    /// <summary>Open client connections.</summary>
    public int ConnectionCount => _listeners.Count;

    /// <summary>True once <see cref="StopAsync"/> began.</summary>
    public bool IsStopping => _stopping.IsCancellationRequested;

    /// <summary>Adds a service (a generated <c>Dispatcher</c>).</summary>
    public ThriftServer AddService(ThriftServiceDispatcher dispatcher)
    {
        ArgumentNullException.ThrowIfNull(dispatcher);
        EnsureNotStarted();
        if (!_services.TryAdd(dispatcher.ServiceName, dispatcher))
        {
            throw new ArgumentException($"service {dispatcher.ServiceName} is already added", nameof(dispatcher));
        }

        return this;
    }

    /// <summary>Adds a server-side middleware in the given role (see <see cref="RpcStackRole"/>).</summary>
    public ThriftServer Use(RpcStackRole role, string name, Func<RpcHandler, RpcHandler> middleware)
    {
        EnsureNotStarted();
        _stack.Use(role, name, middleware);
        return this;
    }

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        EnsureNotStarted();
        if (_services.Count == 0)
        {
            throw new InvalidOperationException("add at least one service before starting the server");
        }

        if (_options.Endpoints.Count == 0)
        {
            throw new InvalidOperationException("configure at least one endpoint (TCP or Unix socket) to listen on");
        }

        _default = _options.DefaultService is { } name
            ? _services.GetValueOrDefault(name) ?? throw new InvalidOperationException($"the default service {name} is not one of the added services")
            : _services.Count == 1 ? _services.Values.Single() : null;
        _pipeline = _stack.Build(InvokeAsync);
        _started = true;
        _listeners.Start(_options.Endpoints, _options.UnixSocketMode, _options.FrameReadTimeout, _options.IdleTimeout, _stopping.Token);
        foreach (var bound in _listeners.Bound)
        {
            LogListening(Logger, bound);
        }

        return Task.CompletedTask;
    }

    internal RpcHandler Pipeline => _pipeline!;

    internal CancellationToken AbortCalls => _abortCalls.Token;

    internal ThriftServiceDispatcher? FindService(string? service) =>
        service is null ? _default : _services.GetValueOrDefault(service);

    /// <summary>Takes a slot for a call; false when the server is at its limit.</summary>
    internal bool TryEnterCall()
    {
        // compare-and-swap, not increment-then-undo: a refused call must never show in CallsInFlight, not even for
        // the moment before its undo (a sample could read one more call than the limit lets run)
        var current = Volatile.Read(ref _inFlight);
        while (current < _options.MaxConcurrentCalls)
        {
            var seen = Interlocked.CompareExchange(ref _inFlight, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    internal void ExitCall()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _stopping.IsCancellationRequested)
        {
            _drained.TrySetResult();
        }
    }

    private static async ValueTask InvokeAsync(RpcContext context)
    {
        var invocation = (Invocation)context.Items[Invocation.Key]!;
        context.Reply = await invocation.Invoker.InvokeAsync(invocation.Arguments, context.CancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Stops gracefully: no new connections; calls in flight get until <paramref name="drainTimeout"/> to finish;
    /// then those still running are cancelled and answered with a "shutting down" error; connections close.
    /// </summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        if (!_started || _stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _listeners.StopAcceptingAsync().ConfigureAwait(false);
        if (Volatile.Read(ref _inFlight) == 0)
        {
            _drained.TrySetResult();
        }

        try
        {
            await _drained.Task.WaitAsync(drainTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            LogDrainTimeout(Logger, Volatile.Read(ref _inFlight), drainTimeout.TotalMilliseconds);
            await _abortCalls.CancelAsync().ConfigureAwait(false);
            // a cancelled handler still answers (with an error); give the writes a moment
            await _drained.Task.WaitAsync(TimeSpan.FromSeconds(2)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }

        await _listeners.CloseAllAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _stopping.Dispose();
        _abortCalls.Dispose();
    }

    private void EnsureNotStarted()
    {
        if (_started)
        {
            throw new InvalidOperationException("the server has started");
        }
    }

    internal sealed record Invocation(ThriftMethodInvoker Invoker, Thrift.IThriftStruct Arguments)
    {
        public static readonly object Key = new();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Thrift server listening on {Endpoint}")]
    private static partial void LogListening(ILogger logger, RpcEndpoint endpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "stop deadline: {Count} calls still running after {Milliseconds} ms are cancelled")]
    private static partial void LogDrainTimeout(ILogger logger, int count, double milliseconds);
}
