using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>A caller's connection as a server or proxy keeps it: run until it ends, checked for read deadlines, closed on stop.</summary>
internal interface ICallerConnection
{
    Task RunAsync();

    void CheckDeadlines(long now);

    Task CloseAsync();
}

/// <summary>
/// What a server and a proxy do alike with the sockets callers connect to: bind every endpoint (all or none), accept
/// until stopped, keep the open connections, check their read deadlines on one housekeeping tick, and on stop close
/// the listeners and remove the Unix socket files.
/// </summary>
internal sealed class CallerListeners<TConnection> where TConnection : class, ICallerConnection
{
    private readonly List<Socket> _listeners = [];
    private readonly List<RpcEndpoint> _bound = [];
    private readonly List<Task> _loops = [];
    private readonly HashSet<TConnection> _connections = [];
    private readonly Func<Socket, string, TConnection> _accept;

    /// <param name="accept">Makes the connection for an accepted socket and the peer's name.</param>
    public CallerListeners(Func<Socket, string, TConnection> accept) => _accept = accept;

    /// <summary>The endpoints bound (TCP port 0 resolved to the port taken).</summary>
    public IReadOnlyList<RpcEndpoint> Bound => _bound;

    public int Count
    {
        get
        {
            lock (_connections)
            {
                return _connections.Count;
            }
        }
    }

    public TConnection[] Open()
    {
        lock (_connections)
        {
            return [.. _connections];
        }
    }

    /// <summary>Binds every endpoint (none stays bound when one fails), then accepts and housekeeps until <paramref name="stopping"/>.</summary>
    public void Start(IEnumerable<RpcEndpoint> endpoints, UnixFileMode unixMode, TimeSpan frameReadTimeout, TimeSpan idleTimeout, CancellationToken stopping)
    {
        try
        {
            foreach (var endpoint in endpoints)
            {
                var (socket, bound) = ListenSockets.Bind(endpoint, unixMode);
                _listeners.Add(socket);
                _bound.Add(bound);
            }
        }
        catch
        {
            foreach (var socket in _listeners)
            {
                socket.Dispose();
            }

            throw;
        }

        for (var i = 0; i < _listeners.Count; i++)
        {
            var (socket, bound) = (_listeners[i], _bound[i]);
            _loops.Add(Task.Run(() => StreamIo.AcceptLoopAsync(socket, bound, Accepted, stopping), CancellationToken.None));
        }

        _loops.Add(Task.Run(() => ReadDeadlines.HousekeepAsync(frameReadTimeout, idleTimeout, now =>
        {
            foreach (var connection in Open())
            {
                connection.CheckDeadlines(now);
            }
        }, stopping), CancellationToken.None));
    }

    private void Accepted(Socket socket, string peer)
    {
        var connection = _accept(socket, peer);
        lock (_connections)
        {
            _connections.Add(connection);
        }

        _ = RunAsync(connection);
    }

    private async Task RunAsync(TConnection connection)
    {
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            lock (_connections)
            {
                _connections.Remove(connection);
            }
        }
    }

    /// <summary>After the stopping token fired: closes the listeners, removes the socket files, waits for the loops.</summary>
    public async Task StopAcceptingAsync()
    {
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        foreach (var endpoint in _bound.Where(e => e.IsUnix))
        {
            UnixSocketFiles.Remove(endpoint.UnixPath!);
        }

        await Task.WhenAll(_loops).ConfigureAwait(false);
    }

    /// <summary>Asks every open connection to close.</summary>
    public async Task CloseAllAsync()
    {
        foreach (var connection in Open())
        {
            await connection.CloseAsync().ConfigureAwait(false);
        }
    }
}
