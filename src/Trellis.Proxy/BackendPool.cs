using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Proxy;

/// <summary>
/// The proxy's connections to one instance. A multiplexed (Trellis) instance gets a few connections carrying every
/// call pipelined; a stock Thrift server (one call at a time per connection) gets a pool of connections, each lent
/// to one call, with callers queueing (until their deadline) when all are busy.
/// </summary>
internal sealed class BackendPool : IAsyncDisposable
{
    private readonly ProxyServer _proxy;
    private readonly ProxyOptions _options;
    private readonly BackendConnection?[] _shared;
    private readonly Task<BackendConnection>?[] _connecting;
    private readonly Stack<BackendConnection> _idle = new();
    private readonly SemaphoreSlim? _slots;
    private readonly CancellationTokenSource _closed = new();
    private int _next;

    public BackendPool(ProxyServer proxy, ServiceInstance instance)
    {
        _proxy = proxy;
        _options = proxy.Options;
        Instance = instance;
        Pipelined = instance.Multiplexed;
        var n = Pipelined ? _options.ConnectionsPerBackend : 0;
        _shared = new BackendConnection?[n];
        _connecting = new Task<BackendConnection>?[n];
        if (!Pipelined)
        {
            var size = instance.MaxConcurrency > 0 ? Math.Min(instance.MaxConcurrency, _options.MaxPoolPerBackend) : _options.MaxPoolPerBackend;
            _slots = new SemaphoreSlim(size, size);
        }
    }

    public ServiceInstance Instance { get; }

    /// <summary>Calls share connections (the instance answers many per connection, in any order).</summary>
    public bool Pipelined { get; }

    public Task<BackendReply> SendAsync(ForwardCall call)
    {
        if (!Pipelined)
        {
            return LendAsync(call);
        }

        var shared = SharedAsync();
        return shared.IsCompletedSuccessfully ? shared.Result.SendAsync(call) : SendWhenConnectedAsync(shared, call);
    }

    private static async Task<BackendReply> SendWhenConnectedAsync(ValueTask<BackendConnection> connecting, ForwardCall call) =>
        await (await connecting.ConfigureAwait(false)).SendAsync(call).ConfigureAwait(false);

    private async Task<BackendReply> LendAsync(ForwardCall call)
    {
        var left = System.Diagnostics.Stopwatch.GetElapsedTime(System.Diagnostics.Stopwatch.GetTimestamp(), call.Deadline);
        bool got;
        try
        {
            got = left > TimeSpan.Zero && await _slots!.WaitAsync(left, _closed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_closed.IsCancellationRequested)
        {
            throw new TTransportException(TTransportErrorKind.NotOpen, $"{Instance.InstanceId} left the instance list before the call was sent");
        }

        if (!got)
        {
            throw new TimeoutException($"no free connection to {Instance.InstanceId} before the deadline");
        }

        BackendConnection? lent = null;
        try
        {
            lent = TakeIdle() ?? await ConnectAsync().ConfigureAwait(false);
            var reply = await lent.SendAsync(call).ConfigureAwait(false);
            GiveBack(lent);
            lent = null;
            return reply;
        }
        finally
        {
            if (lent is not null)
            {
                _ = _proxy.RetireAsync(lent); // its call failed: the stream may be out of step
            }

            _slots!.Release();
        }
    }

    private BackendConnection? TakeIdle()
    {
        lock (_idle)
        {
            while (_idle.TryPop(out var connection))
            {
                if (!connection.IsBroken)
                {
                    return connection;
                }

                _ = _proxy.RetireAsync(connection);
            }
        }

        return null;
    }

    private void GiveBack(BackendConnection connection)
    {
        lock (_idle)
        {
            if (!_closed.IsCancellationRequested && !connection.IsBroken)
            {
                _idle.Push(connection);
                return;
            }
        }

        _ = _proxy.RetireAsync(connection);
    }

    private ValueTask<BackendConnection> SharedAsync()
    {
        var slot = (int)((uint)Interlocked.Increment(ref _next) % (uint)_shared.Length);
        var connection = Volatile.Read(ref _shared[slot]);
        if (connection is { IsBroken: false })
        {
            return new ValueTask<BackendConnection>(connection);
        }

        return new ValueTask<BackendConnection>(ReconnectAsync(slot));
    }

    private Task<BackendConnection> ReconnectAsync(int slot)
    {
        lock (_shared)
        {
            var connection = _shared[slot];
            if (connection is { IsBroken: false })
            {
                return Task.FromResult(connection);
            }

            var connecting = _connecting[slot];
            if (connecting is null || connecting.IsCompleted)
            {
                if (connection is not null)
                {
                    _ = _proxy.RetireAsync(connection);
                    _shared[slot] = null;
                }

                // a failed connect is not remembered: the next call tries again (ejection keeps the rate down)
                _connecting[slot] = connecting = ConnectSharedAsync(slot);
            }

            return connecting;
        }
    }

    private async Task<BackendConnection> ConnectSharedAsync(int slot)
    {
        var connection = await ConnectAsync().ConfigureAwait(false);
        lock (_shared)
        {
            _shared[slot] = connection;
        }

        return connection;
    }

    private async Task<BackendConnection> ConnectAsync()
    {
        try
        {
            _closed.Token.ThrowIfCancellationRequested();
            var connection = await BackendConnection.ConnectAsync(Instance, _options, _closed.Token).ConfigureAwait(false);
            _proxy.Track(connection);
            return connection;
        }
        catch (OperationCanceledException) when (_closed.IsCancellationRequested)
        {
            // the instance left the list while a call was connecting to it: nothing was sent, another instance can take it
            throw new TTransportException(TTransportErrorKind.NotOpen, $"{Instance.InstanceId} left the instance list before the call was sent");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _closed.CancelAsync().ConfigureAwait(false);
        List<BackendConnection> all;
        lock (_shared)
        {
            all = [.. _shared.OfType<BackendConnection>()];
            Array.Clear(_shared);
        }

        lock (_idle)
        {
            all.AddRange(_idle);
            _idle.Clear();
        }

        foreach (var connection in all)
        {
            await _proxy.RetireAsync(connection).ConfigureAwait(false);
        }
    }
}
