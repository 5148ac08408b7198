using System.Buffers;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Thrift.Tests.Support;

public static class Bytes
{
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

    public static byte[] Write(IThriftWritable value, ThriftProtocol protocol) => ThriftSerializer.Serialize(value, protocol);

    public static byte[] Message(ThriftEncoding encoding, TMessageHeader header, IThriftWritable body, THeaderInfo? info = null)
    {
        using var buffer = new PooledBufferWriter();
        ThriftMessages.Write(buffer, encoding, header, body, info);
        return buffer.WrittenSpan.ToArray();
    }

    public static DynStruct ReadStruct(byte[] bytes, ThriftProtocol protocol, ThriftLimits? limits = null) =>
        ThriftSerializer.Deserialize<DynStruct>(bytes, protocol, limits);

    /// <summary>Splits bytes into a multi-segment sequence, <paramref name="chunk"/> bytes a segment.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, int chunk)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        Segment? first = null, last = null;
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            var memory = bytes.AsMemory(i, Math.Min(chunk, bytes.Length - i));
            last = last is null ? first = new Segment(memory, 0) : last.Append(memory);
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long index)
        {
            Memory = memory;
            RunningIndex = index;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
