using System.Net;
using System.Net.Sockets;

namespace Trellis.Testing;

/// <summary>
/// A loopback TCP proxy in front of a real server that injects faults on demand: drop every connection,
/// cut a connection right after the client's next write reached the server (so the reply is lost), rewrite
/// the server's next chunk (a malformed or mismatched reply), or stop forwarding altogether (a black hole).
/// </summary>
public sealed class TcpFaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly Task _accepting;
    private volatile Func<byte[], bool>? _cutAfterClientWrite;
    private volatile Tuple<Func<byte[], bool>, Func<byte[], byte[]>>? _rewrite;

    private TcpFaultProxy(IPEndPoint target)
    {
        _target = target;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = Task.Run(AcceptAsync);
    }

    public static TcpFaultProxy Start(string targetAddress)
    {
        var colon = targetAddress.LastIndexOf(':');
        return new TcpFaultProxy(new IPEndPoint(IPAddress.Parse(targetAddress[..colon]), int.Parse(targetAddress[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture)));
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>While true, nothing is forwarded in either direction: the peer looks alive but silent.</summary>
    public bool BlackHole { get; set; }

    /// <summary>Connections accepted so far.</summary>
    public int Accepted { get; private set; }

    public void DropAll()
    {
        lock (_pairs)
        {
            foreach (var (client, server) in _pairs)
            {
                client.Close();
                server.Close();
            }

            _pairs.Clear();
        }
    }

    /// <summary>
    /// The next client chunk that <paramref name="matches"/> is delivered to the server, and the client's side of
    /// the connection is cut at once, so the client never sees the reply (the server still acts on the request).
    /// </summary>
    public void CutAfterClientWrite(Func<byte[], bool> matches) => _cutAfterClientWrite = matches;

    /// <summary>Rewrites the server's next chunk that <paramref name="matches"/> (a malformed or mismatched reply).</summary>
    public void RewriteNextServerChunk(Func<byte[], bool> matches, Func<byte[], byte[]> rewrite) => _rewrite = Tuple.Create(matches, rewrite);

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Accepted++;
            var server = new TcpClient { NoDelay = true };
            try
            {
                await server.ConnectAsync(_target, _stopping.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                client.Close();
                server.Dispose();
                continue;
            }

            client.NoDelay = true;
            lock (_pairs)
            {
                _pairs.Add((client, server));
            }

            _ = PumpAsync(client, server, toServer: true);
            _ = PumpAsync(server, client, toServer: false);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to, bool toServer)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            while (true)
            {
                var read = await input.ReadAsync(buffer, _stopping.Token);
                if (read == 0)
                {
                    break;
                }

                while (BlackHole)
                {
                    await Task.Delay(20, _stopping.Token);
                }

                var chunk = buffer[..read];
                if (!toServer && _rewrite is { } rewrite && rewrite.Item1(chunk))
                {
                    _rewrite = null;
                    chunk = rewrite.Item2(chunk);
                }

                var cut = toServer && _cutAfterClientWrite is { } matches && matches(chunk) &&
                          Interlocked.CompareExchange(ref _cutAfterClientWrite, null, matches) == matches;
                if (cut)
                {
                    from.Client.Close(); // the client loses the connection before any reply can reach it
                }

                await output.WriteAsync(chunk, _stopping.Token);
                if (cut)
                {
                    await Task.Delay(200, _stopping.Token); // the server reads and acts on the request
                    to.Close();
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // one side went away: take the other one down too
        }

        from.Close();
        to.Close();
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        DropAll();
        await _accepting;
        _stopping.Dispose();
    }
}
