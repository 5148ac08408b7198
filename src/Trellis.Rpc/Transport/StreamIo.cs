using System.IO.Pipelines;
using System.Net.Sockets;
using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>
/// The socket and stream steps servers, clients, the proxy and the balancer share: connecting with a timeout,
/// accepting, telling a connection's encoding from its first bytes, and cutting a stream into frames.
/// </summary>
internal static class StreamIo
{
    /// <summary>A connected socket, or <see cref="TTransportException"/> NotOpen (refused, unreachable, timed out).</summary>
    public static async Task<Socket> ConnectAsync(RpcEndpoint endpoint, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        var socket = endpoint.NewClientSocket();
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout);
            await socket.ConnectAsync(endpoint.ToEndPoint(), limit.Token).ConfigureAwait(false);
            return socket;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            // NotOpen, like a refused connect: nothing was sent, so the call may go to another instance
            throw new TTransportException(TTransportErrorKind.NotOpen, $"connecting to {what} timed out after {timeout.TotalMilliseconds:F0} ms");
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new TTransportException(TTransportErrorKind.NotOpen, $"cannot connect to {what}: {e.Message}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Shuts a socket down, waking its pending reads; one the peer or a dispose already closed is left as it is.</summary>
    public static void ShutDown(Socket socket, SocketShutdown how = SocketShutdown.Both)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // already down
        }
    }

    /// <summary>Accepts until <paramref name="stopping"/> or the listener closes; TCP sockets get Nagle off.</summary>
    public static async Task AcceptLoopAsync(Socket listener, RpcEndpoint endpoint, Action<Socket, string> accepted, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (!endpoint.IsUnix)
            {
                socket.NoDelay = true;
            }

            accepted(socket, endpoint.IsUnix ? "unix:" + endpoint.UnixPath : "tcp://" + socket.RemoteEndPoint);
        }
    }

    /// <summary>
    /// Reads until the first bytes tell the encoding (leaving them unconsumed), or they are not Thrift
    /// (<see cref="ThriftDetectStatus.Rejected"/> with a reason), or the stream ends or is cancelled first
    /// (<see cref="ThriftDetectStatus.NeedMoreData"/>).
    /// </summary>
    public static async Task<(ThriftDetectStatus Status, ThriftEncoding Encoding, string? Reason)> DetectAsync(PipeReader reader, ThriftLimits limits,
        CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                return (ThriftDetectStatus.NeedMoreData, default, null);
            }

            var status = ThriftEncodingDetector.Detect(result.Buffer, out var encoding, out var reason, limits);
            switch (status)
            {
                case ThriftDetectStatus.Detected:
                    reader.AdvanceTo(result.Buffer.Start);
                    return (status, encoding, null);
                case ThriftDetectStatus.Rejected:
                    return (status, default, reason);
                default:
                    if (result.IsCompleted)
                    {
                        return (ThriftDetectStatus.NeedMoreData, default, null);
                    }

                    reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                    break;
            }
        }
    }

    public delegate void FrameHandler(in ThriftFrame frame);

    /// <summary>
    /// Hands every frame of the stream to <paramref name="onFrame"/> (the frame is valid during the call only) until the
    /// peer closes (an <see cref="IOException"/>) or a frame breaks a limit (the decoder's <see cref="TProtocolException"/>).
    /// </summary>
    public static async Task ReadFramesAsync(PipeReader reader, ThriftFrameDecoder decoder, FrameHandler onFrame)
    {
        while (true)
        {
            var result = await reader.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            while (decoder.TryReadFrame(ref buffer, out var frame))
            {
                onFrame(frame);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                throw new IOException("the peer closed the connection");
            }
        }
    }

    /// <summary>The same over a <see cref="SocketReader"/> (the proxy's connections).</summary>
    public static async Task ReadFramesAsync(SocketReader reader, ThriftFrameDecoder decoder, FrameHandler onFrame)
    {
        while (true)
        {
            var (buffer, completed) = await reader.ReadAsync().ConfigureAwait(false);
            while (decoder.TryReadFrame(ref buffer, out var frame))
            {
                onFrame(frame);
            }

            reader.AdvanceTo(buffer.Start);
            if (completed)
            {
                throw new IOException("the peer closed the connection");
            }
        }
    }

    /// <summary>The same as <see cref="DetectAsync(PipeReader, ThriftLimits, CancellationToken)"/> over a <see cref="SocketReader"/>.</summary>
    public static async Task<(ThriftDetectStatus Status, ThriftEncoding Encoding, string? Reason)> DetectAsync(SocketReader reader, ThriftLimits limits)
    {
        while (true)
        {
            var (buffer, completed) = await reader.ReadAsync().ConfigureAwait(false);
            var status = ThriftEncodingDetector.Detect(buffer, out var encoding, out var reason, limits);
            if (status != ThriftDetectStatus.NeedMoreData)
            {
                return (status, encoding, reason);
            }

            if (completed)
            {
                return (ThriftDetectStatus.NeedMoreData, default, null);
            }
        }
    }
}
