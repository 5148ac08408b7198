using System.Buffers;
using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>
/// Reads a socket into one pooled buffer and hands out what has arrived as a single-segment sequence: the
/// leanest way to cut frames off a stream (no pipe, no stream wrapper, no allocation per read). Bytes not consumed
/// stay for the next read, moved to the front (or into a larger buffer) when space runs out. Not thread-safe: the
/// read loop owns it. Over a TLS connection it reads the decrypting stream instead of the socket: the plain path stays
/// a direct socket receive (a null test, no virtual call, no wrapper).
/// </summary>
internal sealed class SocketReader : IDisposable
{
    private readonly Socket? _socket;
    private readonly Stream? _stream;
    private byte[] _buffer;
    private int _start;
    private int _end;

    public SocketReader(Socket socket, int initialSize = 16 * 1024)
    {
        _socket = socket;
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    }

    /// <summary>Reads <paramref name="stream"/> (a TLS connection's <see cref="System.Net.Security.SslStream"/>).</summary>
    public SocketReader(Stream stream, int initialSize = 16 * 1024)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    }

    /// <summary>
    /// What has arrived and is not consumed. With <paramref name="more"/> (the usual case) it first waits for at least
    /// one more byte; without, it returns what is buffered at once if there is anything. <c>Completed</c>: the peer
    /// closed its side (nothing more will come).
    /// </summary>
    public async ValueTask<(ReadOnlySequence<byte> Data, bool Completed)> ReadAsync(bool more = true)
    {
        if (!more && _end > _start)
        {
            return (Buffered, false);
        }

        MakeRoom();
        var received = _stream is null
            ? await _socket!.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None).ConfigureAwait(false)
            : await _stream.ReadAsync(_buffer.AsMemory(_end)).ConfigureAwait(false);
        _end += received;
        return (Buffered, received == 0);
    }

    private ReadOnlySequence<byte> Buffered => new(_buffer, _start, _end - _start);

    /// <summary>Everything before <paramref name="consumed"/> (a position in the last data returned) is done with.</summary>
    public void AdvanceTo(SequencePosition consumed)
    {
        _start = consumed.GetInteger();
        if (_start == _end)
        {
            _start = _end = 0;
        }
    }

    private void MakeRoom()
    {
        if (_end < _buffer.Length)
        {
            return;
        }

        var kept = _end - _start;
        if (_start > 0 && kept < _buffer.Length / 2)
        {
            _buffer.AsSpan(_start, kept).CopyTo(_buffer); // slide what is left to the front
        }
        else
        {
            // a frame bigger than the buffer: grow (the decoder has already checked the frame against the size limit)
            var bigger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            _buffer.AsSpan(_start, kept).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        _start = 0;
        _end = kept;
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
