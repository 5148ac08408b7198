using System.Buffers;
using Trellis.Thrift.Buffers;

namespace Trellis.Thrift;

/// <summary>Whole-struct serialization, outside any message envelope (TSerializer/TDeserializer).</summary>
public static class ThriftSerializer
{
    public static void Serialize<T>(T value, IBufferWriter<byte> output, ThriftProtocol protocol = ThriftProtocol.Binary)
        where T : IThriftWritable
    {
        ArgumentNullException.ThrowIfNull(value);
        switch (protocol)
        {
            case ThriftProtocol.Binary:
                var binary = new ThriftBinaryWriter(output);
                value.Write(ref binary);
                binary.Flush();
                break;
            case ThriftProtocol.Compact:
                var compact = new ThriftCompactWriter(output);
                value.Write(ref compact);
                compact.Flush();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "unknown protocol");
        }
    }

    public static byte[] Serialize<T>(T value, ThriftProtocol protocol = ThriftProtocol.Binary)
        where T : IThriftWritable
    {
        using var buffer = new PooledBufferWriter();
        Serialize(value, buffer, protocol);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads one struct that must fill <paramref name="data"/> exactly.</summary>
    public static T Deserialize<T>(ReadOnlySpan<byte> data, ThriftProtocol protocol = ThriftProtocol.Binary, ThriftLimits? limits = null)
        where T : IThriftStruct, new()
    {
        var value = new T();
        DeserializeInto(value, data, protocol, limits);
        return value;
    }

    public static T Deserialize<T>(in ReadOnlySequence<byte> data, ThriftProtocol protocol = ThriftProtocol.Binary, ThriftLimits? limits = null)
        where T : IThriftStruct, new()
    {
        if (data.IsSingleSegment)
        {
            return Deserialize<T>(data.FirstSpan, protocol, limits);
        }

        var length = checked((int)data.Length);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            data.CopyTo(rented);
            return Deserialize<T>(rented.AsSpan(0, length), protocol, limits);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static void DeserializeInto<T>(T value, ReadOnlySpan<byte> data, ThriftProtocol protocol = ThriftProtocol.Binary, ThriftLimits? limits = null)
        where T : IThriftStruct
    {
        ArgumentNullException.ThrowIfNull(value);
        int consumed;
        switch (protocol)
        {
            case ThriftProtocol.Binary:
                var binary = new ThriftBinaryReader(data, limits);
                value.Read(ref binary);
                consumed = binary.Position;
                break;
            case ThriftProtocol.Compact:
                var compact = new ThriftCompactReader(data, limits);
                value.Read(ref compact);
                consumed = compact.Position;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "unknown protocol");
        }

        if (consumed != data.Length)
        {
            throw new TProtocolException(TProtocolErrorKind.InvalidData, $"{data.Length - consumed} bytes left over after the struct");
        }
    }
}
