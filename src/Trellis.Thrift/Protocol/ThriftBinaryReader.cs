using System.Runtime.CompilerServices;

namespace Trellis.Thrift;

/// <summary>
/// Reads Apache Thrift's binary protocol from a buffer holding one whole message (or struct).
/// Message headers are accepted strict (versioned) and, unless <c>strictRead</c> is set,
/// non-strict (old peers that write the name length first).
/// </summary>
public ref struct ThriftBinaryReader : IThriftReader
{
    private InputCursor _in;
    private readonly bool _strictRead;

    public ThriftBinaryReader(ReadOnlySpan<byte> buffer, ThriftLimits? limits = null, bool strictRead = false)
        : this(buffer, limits, strictRead, partial: false)
    {
    }

    internal ThriftBinaryReader(ReadOnlySpan<byte> buffer, ThriftLimits? limits, bool strictRead, bool partial)
    {
        _in = new InputCursor(buffer, limits, partial);
        _strictRead = strictRead;
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
        var first = _in.ReadI32BigEndian();
        if (first < 0)
        {
            var version = unchecked((uint)first & 0xFFFF0000);
            if (version != ThriftBinaryWriter.Version1)
            {
                ThrowHelper.Protocol(TProtocolErrorKind.BadVersion, $"bad binary protocol version 0x{version >> 16:X4}");
            }

            nameUtf8 = ReadName(_in.ReadI32BigEndian());
            seqId = _in.ReadI32BigEndian();
            return (TMessageType)(first & 0xFF);
        }

        if (_strictRead)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.BadVersion, "message has no protocol version (a non-strict peer) and strict reading is on");
        }

        nameUtf8 = ReadName(first);
        var type = (TMessageType)_in.ReadByte();
        seqId = _in.ReadI32BigEndian();
        return type;
    }

    private ReadOnlySpan<byte> ReadName(int length)
    {
        _in.CheckLength(length);
        return _in.ReadSpan(length);
    }

    public readonly void ReadMessageEnd() { }

    public ThriftStructScope ReadStructBegin()
    {
        _in.Enter();
        return default;
    }

    public void ReadStructEnd(ThriftStructScope scope) => _in.Leave();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TFieldHeader ReadFieldBegin()
    {
        var raw = _in.ReadByte();
        if (raw == 0)
        {
            return default;
        }

        var type = WireTypes.CheckValueType(raw, "field header");
        return new TFieldHeader(type, _in.ReadI16BigEndian());
    }

    public readonly void ReadFieldEnd() { }

    public TListHeader ReadListBegin()
    {
        var elementType = WireTypes.CheckValueType(_in.ReadByte(), "list/set header");
        var count = _in.ReadI32BigEndian();
        _in.CheckCount(count, WireTypes.MinBinarySize(elementType));
        _in.Enter();
        return new TListHeader(elementType, count);
    }

    public void ReadListEnd() => _in.Leave();

    public TListHeader ReadSetBegin() => ReadListBegin();

    public void ReadSetEnd() => _in.Leave();

    public TMapHeader ReadMapBegin()
    {
        var keyType = WireTypes.CheckValueType(_in.ReadByte(), "map header");
        var valueType = WireTypes.CheckValueType(_in.ReadByte(), "map header");
        var count = _in.ReadI32BigEndian();
        _in.CheckCount(count, WireTypes.MinBinarySize(keyType) + WireTypes.MinBinarySize(valueType));
        _in.Enter();
        return new TMapHeader(keyType, valueType, count);
    }

    public void ReadMapEnd() => _in.Leave();

    public bool ReadBool() => _in.ReadByte() != 0;

    public sbyte ReadByte() => unchecked((sbyte)_in.ReadByte());

    public short ReadI16() => _in.ReadI16BigEndian();

    public int ReadI32() => _in.ReadI32BigEndian();

    public long ReadI64() => _in.ReadI64BigEndian();

    public double ReadDouble() => BitConverter.Int64BitsToDouble(_in.ReadI64BigEndian());

    public string ReadString() => _in.ReadUtf8(_in.ReadI32BigEndian());

    public byte[] ReadBinary() => ReadBinarySpan().ToArray();

    public ReadOnlySpan<byte> ReadBinarySpan()
    {
        var length = _in.ReadI32BigEndian();
        _in.CheckLength(length);
        return _in.ReadSpan(length);
    }

    public Guid ReadUuid() => new(_in.ReadSpan(16), bigEndian: true);

    public void Skip(TType type) => ThriftSkipper.Skip(ref this, type);
}
