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
/// <remarks>
/// With <c>waitForData</c> (the proxy's application side: thousands of connections, most of them idle) a read with
/// nothing buffered first waits for data with a one-byte <c>MSG_PEEK</c> receive, holding no buffer, and rents the
/// buffer only once bytes are there; the buffer goes back to the pool whenever everything in it has been consumed.
/// An idle connection then holds no buffer at all (16 KB less each), for one more non-blocking system call per read.
/// The predicate is asked before each read: a connection to an instance waits that way only while no reply is
/// due, so a busy one reads straight into its buffer. Kestrel's <c>WaitForDataBeforeAllocatingBuffer</c> makes the same trade.
/// </remarks>
internal sealed class SocketReader : IDisposable
{
    /// <summary>Where every reader's peek lands: what it holds is never looked at, so one byte serves them all.</summary>
    private static readonly Memory<byte> PeekByte = new byte[1];

    private readonly Socket? _socket;
    private readonly Stream? _stream;
    private readonly int _initialSize;
    private readonly Func<bool>? _waitForData;
    private byte[] _buffer = [];
    private int _start;
    private int _end;
    private bool _disposed;

    /// <param name="socket">The connection.</param>
    /// <param name="waitForData">Asked before a read with nothing buffered: true to wait for data without a buffer (null: never).</param>
    /// <param name="initialSize">The buffer rented first; it grows for bigger frames.</param>
    public SocketReader(Socket socket, Func<bool>? waitForData = null, int initialSize = 16 * 1024)
    {
        _socket = socket;
        _waitForData = waitForData;
        _initialSize = initialSize;
    }

    /// <summary>Reads <paramref name="stream"/> (a TLS connection's <see cref="System.Net.Security.SslStream"/>, which takes zero-byte reads too).</summary>
    public SocketReader(Stream stream, Func<bool>? waitForData = null, int initialSize = 16 * 1024)
    {
        _stream = stream;
        _waitForData = waitForData;
        _initialSize = initialSize;
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

        if (_start == _end && _waitForData is not null && _waitForData())
        {
            ReturnBuffer(); // everything in it is consumed: an idle connection keeps none
            // a one-byte peek, not a zero-byte receive: the runtime may complete a zero-byte receive at once, with no
            // data, when it believes the socket readable, and the buffer would then be held for the whole wait. Under
            // TLS the stream's zero-byte read comes down to the same peek (the SslStream wraps a PeekingNetworkStream)
            _ = _stream is null
                ? await WaitForDataAsync(_socket!).ConfigureAwait(false)
                : await _stream.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);
        }

        MakeRoom();
        var received = _stream is null
            ? await _socket!.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None).ConfigureAwait(false)
            : await _stream.ReadAsync(_buffer.AsMemory(_end)).ConfigureAwait(false);
        _end += received;
        return (Buffered, received == 0);
    }

    /// <summary>
    /// Completes when the socket has data to read (or has reached its end), consuming nothing and holding no buffer:
    /// a one-byte <c>MSG_PEEK</c> receive.
    /// </summary>
    internal static ValueTask<int> WaitForDataAsync(Socket socket, CancellationToken cancellationToken = default) =>
        socket.ReceiveAsync(PeekByte, SocketFlags.Peek, cancellationToken);

    /// <summary>Waits for data without a buffer before every read with nothing buffered.</summary>
    public static readonly Func<bool> Always = static () => true;

    /// <summary>Whether a receive buffer is rented now (an idle reader with <c>waitForData</c> holds none).</summary>
    internal bool HoldsBuffer => _buffer.Length > 0;

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

    private void ReturnBuffer()
    {
        var buffer = _buffer;
        _buffer = [];
        _start = _end = 0;
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void MakeRoom()
    {
        if (_buffer.Length == 0)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
            _buffer = ArrayPool<byte>.Shared.Rent(_initialSize);
            return;
        }

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
        Volatile.Write(ref _disposed, true);
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
