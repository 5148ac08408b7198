using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Rpc;

/// <summary>
/// A client channel to one endpoint, for generated clients (<c>new Echo.Client(channel)</c>). Against a
/// multiplexing peer (a Trellis server or proxy) calls share connections, matched by seqid; against a stock
/// Thrift server each connection carries one call at a time and connections are pooled. A broken connection
/// fails its calls at once and is replaced on the next call.
/// </summary>
/// <remarks>
/// Each call runs through the client pipeline (<see cref="Use"/>, ordered by <see cref="RpcStackRole"/>)
/// with a deadline (per call via <see cref="WithTimeout"/>, or <see cref="ThriftChannelOptions.DefaultTimeout"/>);
/// a call past it fails with <see cref="TTransportException"/> (<see cref="TTransportErrorKind.TimedOut"/>).
/// </remarks>
public sealed class ThriftChannel : IThriftChannel, IAsyncDisposable
{
    private static readonly AsyncLocal<TimeSpan?> NextTimeout = new();

    private readonly ThriftChannelOptions _options;
    private readonly RpcPipelineBuilder _stack = new();
    private readonly List<ClientConnection> _connections = [];
    private readonly SemaphoreSlim _capacity;
    private readonly object _lock = new();
    private RpcHandler? _pipeline;
    private TaskCompletionSource<ClientConnection>? _connecting;
    private bool _disposed;

    public ThriftChannel(ThriftChannelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        var perConnection = options.PeerMultiplexesCalls ? options.MaxCallsPerConnection : 1;
        _capacity = new SemaphoreSlim(options.MaxConnections * perConnection);
    }

    public RpcEndpoint Endpoint => _options.Endpoint;

    /// <summary>Adds a client middleware; must be called before the first call.</summary>
    public ThriftChannel Use(RpcStackRole role, string name, Func<RpcHandler, RpcHandler> middleware)
    {
        if (_pipeline is not null)
        {
            throw new InvalidOperationException("the channel has made calls: its pipeline is fixed");
        }

        _stack.Use(role, name, middleware);
        return this;
    }

    /// <summary>Sets the budget of the next call made on this async flow: <c>using (ThriftChannel.WithTimeout(…)) await client.XAsync();</c>.</summary>
    public static IDisposable WithTimeout(TimeSpan timeout)
    {
        var previous = NextTimeout.Value;
        NextTimeout.Value = timeout;
        return new Restore(previous);
    }

    /// <summary>The budget a caller set with <see cref="WithTimeout"/> on this async flow, if any.</summary>
    internal static TimeSpan? CallerTimeout => NextTimeout.Value;

    private sealed class Restore(TimeSpan? previous) : IDisposable
    {
        public void Dispose() => NextTimeout.Value = previous;
    }

    public async ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        ArgumentNullException.ThrowIfNull(method);
        var context = NewContext(method, TMessageType.Call, arguments, cancellationToken);
        context.Result = result;
        if (RpcTelemetry.ClientActive)
        {
            await ObservedAsync(method, context).ConfigureAwait(false);
            return;
        }

        await Pipeline(context).ConfigureAwait(false);
    }

    public async ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
    {
        ArgumentNullException.ThrowIfNull(method);
        var context = NewContext(method, TMessageType.Oneway, arguments, cancellationToken);
        if (RpcTelemetry.ClientActive)
        {
            await ObservedAsync(method, context).ConfigureAwait(false);
            return;
        }

        await Pipeline(context).ConfigureAwait(false);
    }

    private object? _port;

    /// <summary>
    /// A call with someone listening: a client span, current while the pipeline runs (so the connection stamps its
    /// context as <c>traceparent</c>), and <c>rpc.client.call.duration</c>.
    /// </summary>
    private async ValueTask ObservedAsync(Thrift.Services.ThriftMethod method, RpcContext context)
    {
        var name = RpcTelemetry.MethodName(method);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var activity = RpcTelemetry.StartClient(name, _options.Endpoint);
        Exception? error = null;
        try
        {
            await Pipeline(context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
            throw;
        }
        finally
        {
            var endpoint = _options.Endpoint;
            RpcTelemetry.Finish(RpcTelemetry.ClientDuration, name, started, activity, error,
                endpoint.IsUnix ? endpoint.UnixPath : endpoint.Host, endpoint.IsUnix ? null : _port ??= endpoint.Port);
        }
    }

    private RpcContext NewContext(ThriftMethod method, TMessageType type, IThriftWritable arguments, CancellationToken cancellationToken) =>
        new(_options.Multiplexed ? method.ServiceName : "", method.Name, type)
        {
            Method = method,
            Arguments = arguments,
            Deadline = DateTimeOffset.UtcNow + (NextTimeout.Value ?? _options.DefaultTimeout),
            CancellationToken = cancellationToken,
            Peer = _options.Endpoint.ToString(),
        };

    private RpcHandler Pipeline
    {
        get
        {
            lock (_lock)
            {
                return _pipeline ??= _stack.Build(SendAsync);
            }
        }
    }

    /// <summary>The terminal handler: a connection, the call, the reply — within the deadline.</summary>
    private async ValueTask SendAsync(RpcContext context)
    {
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        if (context.Deadline is { } deadline)
        {
            var left = deadline - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TTransportException(TTransportErrorKind.TimedOut, $"{context.FullName}: the deadline passed before the call was sent");
            }

            budget.CancelAfter(left);
        }

        try
        {
            await _capacity.WaitAsync(budget.Token).ConfigureAwait(false);
            try
            {
                var connection = await AcquireAsync(budget.Token).ConfigureAwait(false);
                try
                {
                    await connection.CallAsync(context, context.Arguments!, context.IsOneway ? null : context.Result, budget.Token).ConfigureAwait(false);
                }
                finally
                {
                    connection.Release();
                }
            }
            finally
            {
                _capacity.Release();
            }
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested && budget.IsCancellationRequested)
        {
            throw new TTransportException(TTransportErrorKind.TimedOut, $"{context.FullName} to {_options.Endpoint} timed out");
        }
        catch (TApplicationException e) when (RpcErrors.IsDeadlineExceeded(e))
        {
            // the server saw the propagated deadline pass a moment before our own timer did: the same timeout
            throw new TTransportException(TTransportErrorKind.TimedOut, $"{context.FullName} to {_options.Endpoint} timed out (at the server)", e);
        }
    }

    private async Task<ClientConnection> AcquireAsync(CancellationToken cancellationToken)
    {
        var perConnection = _options.PeerMultiplexesCalls ? _options.MaxCallsPerConnection : 1;
        while (true)
        {
            Task<ClientConnection> connecting;
            var mine = false;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _connections.RemoveAll(c =>
                {
                    if (c.IsBroken && c.Active == 0)
                    {
                        _ = c.DisposeAsync().AsTask();
                        return true;
                    }

                    return false;
                });
                var usable = _connections.Where(c => !c.IsBroken && c.Active < perConnection).MinBy(c => c.Active);
                if (usable is not null)
                {
                    usable.Reserve();
                    return usable;
                }

                // one connection is opened at a time; callers who need one wait for it, then look again
                if (_connecting is null)
                {
                    _connecting = new TaskCompletionSource<ClientConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
                    mine = true;
                }

                connecting = _connecting.Task;
            }

            if (mine)
            {
                await OpenAsync().ConfigureAwait(false);
            }

            try
            {
                await connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch when (!mine)
            {
                // the opener reports the failure; a waiter tries (and fails) on its own next round
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }

                await Task.Yield();
            }
        }
    }

    /// <summary>Opens a connection and completes <see cref="_connecting"/> with it (or with the failure), outside the lock.</summary>
    private async Task OpenAsync()
    {
        TaskCompletionSource<ClientConnection> done;
        lock (_lock)
        {
            done = _connecting!;
        }

        try
        {
            var connection = await ClientConnection.ConnectAsync(_options, CancellationToken.None).ConfigureAwait(false);
            lock (_lock)
            {
                _connecting = null;
                if (_disposed)
                {
                    _ = connection.DisposeAsync().AsTask();
                    done.TrySetException(new ObjectDisposedException(nameof(ThriftChannel)));
                    return;
                }

                _connections.Add(connection);
            }

            done.TrySetResult(connection);
        }
        catch (Exception e)
        {
            lock (_lock)
            {
                _connecting = null;
            }

            done.TrySetException(e);
        }
    }

    /// <summary>Makes the next seqid on every open connection <paramref name="next"/> (tests of wrap-around).</summary>
    internal void SeedSeqIds(int next)
    {
        lock (_lock)
        {
            _connections.ForEach(c => c.SeedSeqId(next));
        }
    }

    /// <summary>Open connections (for tests and the admin page).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (_lock)
            {
                return _connections.Count(c => !c.IsBroken);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        ClientConnection[] all;
        lock (_lock)
        {
            _disposed = true;
            all = [.. _connections];
            _connections.Clear();
        }

        foreach (var connection in all)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _capacity.Dispose();
    }
}
