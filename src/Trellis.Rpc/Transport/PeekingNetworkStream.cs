using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>
/// A <see cref="NetworkStream"/> whose zero-byte read waits for data with a one-byte <c>MSG_PEEK</c> receive. A
/// pipe reader with zero-byte reads (the server's) issues one before renting its buffer, so that a connection waiting
/// for its next call holds none; but on Linux the runtime may complete a zero-byte receive at once, with no data,
/// after an earlier read, and the buffer is then held for the whole wait (see <see cref="SocketReader"/>). Under TLS
/// it is the stream an <see cref="System.Net.Security.SslStream"/> wraps, whose own zero-byte read comes down to it.
/// </summary>
internal sealed class PeekingNetworkStream(Socket socket, bool ownsSocket = true) : NetworkStream(socket, ownsSocket)
{
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        buffer.IsEmpty ? WaitAsync(cancellationToken) : base.ReadAsync(buffer, cancellationToken);

    private async ValueTask<int> WaitAsync(CancellationToken cancellationToken)
    {
        await SocketReader.WaitForDataAsync(Socket, cancellationToken).ConfigureAwait(false);
        return 0; // a zero-byte read returns 0 whether data came or the stream ended: the next read tells which
    }
}
