using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Trellis.Thrift;

/// <summary>
/// Apache Thrift's binary protocol, always written strict (the message header carries the version),
/// big-endian, to an <see cref="IBufferWriter{T}"/>. No allocation per value.
/// </summary>
public ref struct ThriftBinaryWriter : IThriftWriter
{
    internal const uint Version1 = 0x80010000;

    private OutputSpan _out;

    public ThriftBinaryWriter(IBufferWriter<byte> output) => _out = new OutputSpan(output);

    public void WriteMessageBegin(in TMessageHeader message)
    {
        WriteI32(unchecked((int)(Version1 | (uint)message.Type)));
        WriteString(message.Name);
        WriteI32(message.SeqId);
    }

    public readonly void WriteMessageEnd() { }

    public readonly ThriftStructScope WriteStructBegin() => default;

    public readonly void WriteStructEnd(ThriftStructScope scope) { }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteFieldBegin(TType type, short id)
    {
        var span = _out.Reserve(3);
        span[0] = (byte)type;
        BinaryPrimitives.WriteInt16BigEndian(span.Slice(1), id);
        _out.Advance(3);
    }

    public readonly void WriteFieldEnd() { }

    public void WriteFieldStop() => _out.WriteByte((byte)TType.Stop);

    public void WriteListBegin(TType elementType, int count)
    {
        if (count < 0)
        {
            ThrowHelper.NegativeCount("list", count);
        }

        var span = _out.Reserve(5);
        span[0] = (byte)elementType;
        BinaryPrimitives.WriteInt32BigEndian(span.Slice(1), count);
        _out.Advance(5);
    }

    public readonly void WriteListEnd() { }

    public void WriteSetBegin(TType elementType, int count) => WriteListBegin(elementType, count);

    public readonly void WriteSetEnd() { }

    public void WriteMapBegin(TType keyType, TType valueType, int count)
    {
        if (count < 0)
        {
            ThrowHelper.NegativeCount("map", count);
        }

        var span = _out.Reserve(6);
        span[0] = (byte)keyType;
        span[1] = (byte)valueType;
        BinaryPrimitives.WriteInt32BigEndian(span.Slice(2), count);
        _out.Advance(6);
    }

    public readonly void WriteMapEnd() { }

    public void WriteBool(bool value) => _out.WriteByte(value ? (byte)1 : (byte)0);

    public void WriteByte(sbyte value) => _out.WriteByte(unchecked((byte)value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteI16(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(_out.Reserve(2), value);
        _out.Advance(2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteI32(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(_out.Reserve(4), value);
        _out.Advance(4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteI64(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(_out.Reserve(8), value);
        _out.Advance(8);
    }

    public void WriteDouble(double value) => WriteI64(BitConverter.DoubleToInt64Bits(value));

    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        WriteString(value.AsSpan());
    }

    public void WriteString(ReadOnlySpan<char> value)
    {
        // Short strings: encode straight behind a reserved length in one pass.
        if (value.Length <= Utf8Text.OnePassMaxChars)
        {
            var span = _out.Reserve(4 + Utf8Text.MaxBytes(value.Length));
            var written = Encoding.UTF8.GetBytes(value, span.Slice(4));
            BinaryPrimitives.WriteInt32BigEndian(span, written);
            _out.Advance(4 + written);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        WriteI32(length);
        Utf8Text.Encode(ref _out, value, length);
    }

    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        WriteI32(value.Length);
        _out.WriteBytes(value);
    }

    public void WriteUuid(Guid value)
    {
        value.TryWriteBytes(_out.Reserve(16), bigEndian: true, out _);
        _out.Advance(16);
    }

    public void Flush() => _out.Flush();
}
