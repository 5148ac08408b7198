using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Trellis.Thrift;

/// <summary>Reads Apache Thrift's compact protocol from a buffer holding one whole message (or struct).</summary>
public ref struct ThriftCompactReader : IThriftReader
{
    private const int NoPendingBool = -1;

    private InputCursor _in;
    private short _lastFieldId;
    private int _pendingBool;

    public ThriftCompactReader(ReadOnlySpan<byte> buffer, ThriftLimits? limits = null)
        : this(buffer, limits, partial: false)
    {
    }

    internal ThriftCompactReader(ReadOnlySpan<byte> buffer, ThriftLimits? limits, bool partial)
    {
        _in = new InputCursor(buffer, limits, partial);
        _lastFieldId = 0;
        _pendingBool = NoPendingBool;
    }

    public readonly int Position => _in.Position;

    public TMessageHeader ReadMessageBegin()
    {
        var type = ReadMessageBegin(out var name, out var seqId);
        return new TMessageHeader(name.IsEmpty ? string.Empty : System.Text.Encoding.UTF8.GetString(name), type, seqId);
    }

    /// <summary>The envelope without decoding the name: <paramref name="nameUtf8"/> points into the buffer (for forwarders).</summary>
    public TMessageType ReadMessageBegin(out ReadOnlySpan<byte> nameUtf8, out int seqId)
    {
        var protocolId = _in.ReadByte();
        if (protocolId != CompactTypes.ProtocolId)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.BadVersion, $"expected compact protocol id 0x82, got 0x{protocolId:X2}");
        }

        var versionAndType = _in.ReadByte();
        var version = versionAndType & CompactTypes.VersionMask;
        if (version != CompactTypes.Version)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.BadVersion, $"unsupported compact protocol version {version}");
        }

        var type = (TMessageType)((versionAndType >> CompactTypes.TypeShift) & 0x07);
        seqId = unchecked((int)_in.ReadVarint32());
        var length = ReadLength();
        _in.CheckLength(length);
        nameUtf8 = _in.ReadSpan(length);
        return type;
    }

    public readonly void ReadMessageEnd() { }

    public ThriftStructScope ReadStructBegin()
    {
        _in.Enter();
        var scope = new ThriftStructScope(_lastFieldId);
        _lastFieldId = 0;
        return scope;
    }

    public void ReadStructEnd(ThriftStructScope scope)
    {
        _in.Leave();
        _lastFieldId = scope.LastFieldId;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TFieldHeader ReadFieldBegin()
    {
        var header = _in.ReadByte();
        if (header == 0)
        {
            return default;
        }

        var compactType = header & 0x0F;
        var delta = header >> 4;
        var id = delta != 0 ? (short)(_lastFieldId + delta) : ReadI16();
        var type = CompactTypes.ToType(compactType, "field header");
        if (type == TType.Bool)
        {
            _pendingBool = compactType == CompactTypes.BooleanTrue ? 1 : 0;
        }

        _lastFieldId = id;
        return new TFieldHeader(type, id);
    }

    public readonly void ReadFieldEnd() { }

    public TListHeader ReadListBegin()
    {
        var header = _in.ReadByte();
        var count = header >> 4;
        var elementType = CompactTypes.ToType(header & 0x0F, "list/set header");
        if (count == 15)
        {
            count = unchecked((int)_in.ReadVarint32());
        }

        _in.CheckCount(count, WireTypes.MinCompactSize(elementType));
        _in.Enter();
        return new TListHeader(elementType, count);
    }

    public void ReadListEnd() => _in.Leave();

    public TListHeader ReadSetBegin() => ReadListBegin();

    public void ReadSetEnd() => _in.Leave();

    public TMapHeader ReadMapBegin()
    {
        var count = unchecked((int)_in.ReadVarint32());
        TType keyType = TType.Stop, valueType = TType.Stop;
        if (count != 0)
        {
            var types = _in.ReadByte();
            keyType = CompactTypes.ToType(types >> 4, "map header");
            valueType = CompactTypes.ToType(types & 0x0F, "map header");
        }

        _in.CheckCount(count, count == 0 ? 0 : WireTypes.MinCompactSize(keyType) + WireTypes.MinCompactSize(valueType));
        _in.Enter();
        return new TMapHeader(keyType, valueType, count);
    }

    public void ReadMapEnd() => _in.Leave();

    public bool ReadBool()
    {
        if (_pendingBool != NoPendingBool)
        {
            var value = _pendingBool == 1;
            _pendingBool = NoPendingBool;
            return value;
        }

        // A container element: 1 is true; 2 (what Java and Python write) and 0 (what the spec says) are false.
        var raw = _in.ReadByte();
        return raw switch
        {
            CompactTypes.BooleanTrue => true,
            CompactTypes.BooleanFalse or 0 => false,
            _ => ThrowHelper.Protocol<bool>(TProtocolErrorKind.InvalidData, $"invalid bool element {raw}"),
        };
    }

    public sbyte ReadByte() => unchecked((sbyte)_in.ReadByte());

    public short ReadI16()
    {
        var value = ReadI32();
        if (value is < short.MinValue or > short.MaxValue)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.InvalidData, $"i16 value {value} out of range");
        }

        return (short)value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadI32()
    {
        var raw = _in.ReadVarint32();
        return (int)(raw >> 1) ^ -(int)(raw & 1);
    }

    public long ReadI64()
    {
        var raw = _in.ReadVarint64();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    public double ReadDouble() => BinaryPrimitives.ReadDoubleLittleEndian(_in.ReadSpan(8));

    public string ReadString() => _in.ReadUtf8(ReadLength());

    public byte[] ReadBinary() => ReadBinarySpan().ToArray();

    public ReadOnlySpan<byte> ReadBinarySpan()
    {
        var length = ReadLength();
        _in.CheckLength(length);
        return _in.ReadSpan(length);
    }

    public Guid ReadUuid() => new(_in.ReadSpan(16), bigEndian: true);

    public void Skip(TType type) => ThriftSkipper.Skip(ref this, type);

    private int ReadLength() => unchecked((int)_in.ReadVarint32());
}
