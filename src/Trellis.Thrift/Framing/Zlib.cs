using System.IO.Compression;
using System.Runtime.InteropServices;
using Trellis.Thrift.Buffers;

namespace Trellis.Thrift;

/// <summary>The THeader zlib transform: RFC 1950 streams, with a bound on what decompression may produce.</summary>
internal static class Zlib
{
    public static void Compress(ReadOnlySpan<byte> source, PooledBufferWriter destination)
    {
        using var sink = new BufferWriterStream(destination);
        using (var zlib = new ZLibStream(sink, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(source);
        }
    }

    /// <summary>Inflates <paramref name="source"/> into <paramref name="destination"/>, failing as soon as the output passes <paramref name="maxSize"/>.</summary>
    public static void Decompress(ReadOnlyMemory<byte> source, PooledBufferWriter destination, int maxSize)
    {
        using var input = AsStream(source);
        using var zlib = new ZLibStream(input, CompressionMode.Decompress);
        var total = 0;
        try
        {
            while (true)
            {
                var span = destination.GetSpan(16 * 1024);
                // Never ask for more than one byte past the bound: a zlib bomb stops right there.
                var room = (int)Math.Min(span.Length, (long)maxSize - total + 1);
                var read = zlib.Read(span.Slice(0, room));
                if (read == 0)
                {
                    return;
                }

                total += read;
                if (total > maxSize)
                {
                    throw new TProtocolException(TProtocolErrorKind.SizeLimit,
                        $"zlib payload inflates past the limit of {maxSize} bytes");
                }

                destination.Advance(read);
            }
        }
        catch (InvalidDataException e)
        {
            throw new TProtocolException(TProtocolErrorKind.InvalidData, "zlib payload is corrupt: " + e.Message, e);
        }
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(memory.ToArray(), writable: false);

    private sealed class BufferWriterStream(PooledBufferWriter output) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer) => output.Write(buffer);
    }
}
