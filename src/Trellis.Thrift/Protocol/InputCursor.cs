using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Trellis.Thrift;

/// <summary>
/// The read cursor both protocol readers share: bounds, limits and nesting depth.
/// </summary>
/// <remarks>
/// In whole-message mode (the normal case: the buffer is one frame) running out of bytes means the
/// message claims more than its frame holds: a <see cref="TProtocolException"/>, never a read into
/// the next frame. In partial mode (finding where an unframed message ends in a stream) it means
/// "wait for more bytes", as long as the message could still fit within the frame-size limit.
/// </remarks>
internal ref struct InputCursor
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly ThriftLimits _limits;
    private readonly bool _partial;
    private int _pos;
    private int _depth;

    public InputCursor(ReadOnlySpan<byte> buffer, ThriftLimits? limits, bool partial)
    {
        _buffer = buffer;
        _limits = limits ?? ThriftLimits.Default;
        _partial = partial;
        _pos = 0;
        _depth = 0;
    }

    public readonly int Position => _pos;

    public readonly int Remaining => _buffer.Length - _pos;

    public readonly ThriftLimits Limits => _limits;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte ReadByte()
    {
        if ((uint)_pos >= (uint)_buffer.Length)
        {
            Underrun(1);
        }

        return _buffer[_pos++];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> ReadSpan(int length)
    {
        if ((uint)length > (uint)(_buffer.Length - _pos))
        {
            Underrun(length);
        }

        var span = _buffer.Slice(_pos, length);
        _pos += length;
        return span;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public short ReadI16BigEndian() => BinaryPrimitives.ReadInt16BigEndian(ReadSpan(2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadI32BigEndian() => BinaryPrimitives.ReadInt32BigEndian(ReadSpan(4));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long ReadI64BigEndian() => BinaryPrimitives.ReadInt64BigEndian(ReadSpan(8));

    /// <summary>Reads a varint of at most 5 bytes whose value fits 32 bits (the compact protocol's var int).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint ReadVarint32()
    {
        if (_pos < _buffer.Length && _buffer[_pos] < 0x80)
        {
            return _buffer[_pos++];
        }

        return ReadVarint32Slow();
    }

    private uint ReadVarint32Slow()
    {
        uint result = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            uint b = ReadByte();
            if (shift == 28 && b > 0x0F)
            {
                ThrowHelper.Protocol(TProtocolErrorKind.InvalidData, "varint is longer than 32 bits");
            }

            result |= (b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        return ThrowHelper.Protocol<uint>(TProtocolErrorKind.InvalidData, "varint is longer than 32 bits");
    }

    /// <summary>Reads a varint of at most 10 bytes whose value fits 64 bits.</summary>
    public ulong ReadVarint64()
    {
        if (_pos < _buffer.Length && _buffer[_pos] < 0x80)
        {
            return _buffer[_pos++];
        }

        ulong result = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            ulong b = ReadByte();
            if (shift == 63 && b > 0x01)
            {
                ThrowHelper.Protocol(TProtocolErrorKind.InvalidData, "varint is longer than 64 bits");
            }

            result |= (b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        return ThrowHelper.Protocol<ulong>(TProtocolErrorKind.InvalidData, "varint is longer than 64 bits");
    }

    /// <summary>Checks a declared string/binary length before anything is allocated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void CheckLength(int length)
    {
        if ((uint)length > (uint)_limits.MaxStringLength || length > _buffer.Length - _pos)
        {
            BadLength(length);
        }
    }

    private readonly void BadLength(int length)
    {
        if (length < 0)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.NegativeSize, $"negative string/binary length {length}");
        }

        if (length > _limits.MaxStringLength)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.SizeLimit, $"string/binary length {length} exceeds the limit of {_limits.MaxStringLength} bytes");
        }

        DeclaredBeyondData(length, "string/binary length");
    }

    /// <summary>
    /// Checks a declared element count: not negative, within the limit, and not more elements than
    /// the bytes left could hold at <paramref name="minElementSize"/> bytes each (64-bit arithmetic,
    /// so count × size cannot overflow).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void CheckCount(int count, int minElementSize)
    {
        if ((uint)count > (uint)_limits.MaxContainerCount || (long)count * minElementSize > _buffer.Length - _pos)
        {
            BadCount(count, minElementSize);
        }
    }

    private readonly void BadCount(int count, int minElementSize)
    {
        if (count < 0)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.NegativeSize, $"negative container size {count}");
        }

        if (count > _limits.MaxContainerCount)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.SizeLimit, $"container size {count} exceeds the limit of {_limits.MaxContainerCount} elements");
        }

        DeclaredBeyondData((long)count * minElementSize, $"container of {count} elements (at least {minElementSize} bytes each)");
    }

    private readonly void DeclaredBeyondData(long needed, string what)
    {
        if (_partial && _pos + needed <= _limits.MaxFrameSize)
        {
            ThrowHelper.NeedMoreData();
        }

        ThrowHelper.Protocol(TProtocolErrorKind.SizeLimit,
            $"{what} needs {needed} bytes but only {_buffer.Length - _pos} are left in the message (at byte {_pos})");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        if (++_depth > _limits.MaxDepth)
        {
            TooDeep();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Leave() => _depth--;

    private readonly void TooDeep() =>
        ThrowHelper.Protocol(TProtocolErrorKind.DepthLimit, $"nesting deeper than the limit of {_limits.MaxDepth}");

    public string ReadUtf8(int length)
    {
        CheckLength(length);
        return length == 0 ? string.Empty : Encoding.UTF8.GetString(ReadSpan(length));
    }

    private readonly void Underrun(int needed)
    {
        if (_partial && _pos + needed <= _limits.MaxFrameSize)
        {
            ThrowHelper.NeedMoreData();
        }

        if (_partial)
        {
            ThrowHelper.Protocol(TProtocolErrorKind.SizeLimit, $"message exceeds the limit of {_limits.MaxFrameSize} bytes");
        }

        ThrowHelper.Protocol(TProtocolErrorKind.InvalidData,
            $"message ends early: {needed} more bytes needed at byte {_pos} of {_buffer.Length}");
    }
}
