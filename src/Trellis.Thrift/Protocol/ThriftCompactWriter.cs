using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Trellis.Thrift;

/// <summary>
/// Apache Thrift's compact protocol (zigzag varints, field id deltas, bools folded into field headers)
/// to an <see cref="IBufferWriter{T}"/>. No allocation per value; nesting state travels in
/// <see cref="ThriftStructScope"/>.
/// </summary>
public ref struct ThriftCompactWriter : IThriftWriter
{
    private const int NoPendingBool = int.MinValue;

    private OutputSpan _out;
    private short _lastFieldId;
    private int _pendingBoolFieldId;

    public ThriftCompactWriter(IBufferWriter<byte> output)
    {
        _out = new OutputSpan(output);
        _lastFieldId = 0;
        _pendingBoolFieldId = NoPendingBool;
    }

    public void WriteMessageBegin(in TMessageHeader message)
    {
        var span = _out.Reserve(2);
        span[0] = CompactTypes.ProtocolId;
        span[1] = (byte)(CompactTypes.Version | ((byte)message.Type << CompactTypes.TypeShift));
        _out.Advance(2);
        WriteVarint32(unchecked((uint)message.SeqId));
        WriteString(message.Name);
    }

    public readonly void WriteMessageEnd() { }

    public ThriftStructScope WriteStructBegin()
    {
        var scope = new ThriftStructScope(_lastFieldId);
        _lastFieldId = 0;
        return scope;
    }

    public void WriteStructEnd(ThriftStructScope scope) => _lastFieldId = scope.LastFieldId;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteFieldBegin(TType type, short id)
    {
        if (type == TType.Bool)
        {
            _pendingBoolFieldId = id;
            return;
        }

        WriteFieldHeader(CompactTypes.Of(type), id);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteFieldHeader(byte compactType, short id)
    {
        var delta = id - _lastFieldId;
        if (delta is > 0 and <= 15)
        {
            _out.WriteByte((byte)((delta << 4) | compactType));
        }
        else
        {
            _out.WriteByte(compactType);
            WriteVarint32(ZigZag(id));
        }

        _lastFieldId = id;
    }

    public readonly void WriteFieldEnd() { }

    public void WriteFieldStop() => _out.WriteByte(0);

    public void WriteListBegin(TType elementType, int count)
    {
        if (count < 0)
        {
            ThrowHelper.NegativeCount("list", count);
        }

        var type = CompactTypes.Of(elementType);
        if (count < 15)
        {
            _out.WriteByte((byte)((count << 4) | type));
        }
        else
        {
            _out.WriteByte((byte)(0xF0 | type));
            WriteVarint32((uint)count);
        }
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

        if (count == 0)
        {
            _out.WriteByte(0);
            return;
        }

        WriteVarint32((uint)count);
        _out.WriteByte((byte)((CompactTypes.Of(keyType) << 4) | CompactTypes.Of(valueType)));
    }

    public readonly void WriteMapEnd() { }

    public void WriteBool(bool value)
    {
        var compact = value ? CompactTypes.BooleanTrue : CompactTypes.BooleanFalse;
        if (_pendingBoolFieldId != NoPendingBool)
        {
            var id = (short)_pendingBoolFieldId;
            _pendingBoolFieldId = NoPendingBool;
            WriteFieldHeader(compact, id);
            return;
        }

        // A bool element of a container: 1 or 2, as the Java and Python runtimes write it.
        _out.WriteByte(compact);
    }

    public void WriteByte(sbyte value) => _out.WriteByte(unchecked((byte)value));

    public void WriteI16(short value) => WriteVarint32(ZigZag(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteI32(int value) => WriteVarint32(ZigZag(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteI64(long value) => WriteVarint64(unchecked((ulong)((value << 1) ^ (value >> 63))));

    public void WriteDouble(double value)
    {
        // Little-endian: a historical quirk of the compact protocol that every runtime keeps.
        BinaryPrimitives.WriteDoubleLittleEndian(_out.Reserve(8), value);
        _out.Advance(8);
    }

    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        WriteString(value.AsSpan());
    }

    public void WriteString(ReadOnlySpan<char> value)
    {
        // Strings short enough that even the worst case has a one-byte length: one pass.
        if (value.Length <= 41)
        {
            var span = _out.Reserve(1 + Utf8Text.MaxBytes(value.Length));
            var written = Encoding.UTF8.GetBytes(value, span.Slice(1));
            span[0] = (byte)written;
            _out.Advance(1 + written);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint32((uint)length);
        Utf8Text.Encode(ref _out, value, length);
    }

    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        WriteVarint32((uint)value.Length);
        _out.WriteBytes(value);
    }

    public void WriteUuid(Guid value)
    {
        value.TryWriteBytes(_out.Reserve(16), bigEndian: true, out _);
        _out.Advance(16);
    }

    public void Flush() => _out.Flush();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ZigZag(int value) => unchecked((uint)((value << 1) ^ (value >> 31)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteVarint32(uint value)
    {
        if (value < 0x80)
        {
            _out.WriteByte((byte)value);
            return;
        }

        _out.Advance(Varint.Write(_out.Reserve(Varint.MaxBytes32), value));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteVarint64(ulong value)
    {
        if (value < 0x80)
        {
            _out.WriteByte((byte)value);
            return;
        }

        _out.Advance(Varint.Write(_out.Reserve(Varint.MaxBytes64), value));
    }
}
