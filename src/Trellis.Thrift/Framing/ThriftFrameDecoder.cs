using System.Buffers;
using System.Buffers.Binary;
using Trellis.Thrift.Buffers;

namespace Trellis.Thrift;

/// <summary>
/// Cuts a byte stream into messages for one connection (framed, unframed or THeader), enforcing the
/// frame-size limit before buffering and undoing THeader transforms within a bound.
/// </summary>
/// <remarks>
/// Feed it the bytes received so far; each successful <see cref="TryReadFrame"/> slices one frame off
/// the front of the buffer. Violations throw <see cref="TProtocolException"/>: the connection must be
/// closed, since the stream can no longer be resynchronised. Not thread-safe: one per connection.
/// </remarks>
public sealed class ThriftFrameDecoder : IDisposable
{
    private const int THeaderFixedSize = 10; // magic, flags, seqid, header words
    private const int MaxTransforms = 8;

    private readonly ThriftLimits _limits;
    private readonly bool _strictRead;
    private readonly PooledBufferWriter _contiguous = new();
    private readonly PooledBufferWriter _inflated = new();
    private readonly THeaderInfo _header = new();

    public ThriftFrameDecoder(ThriftEncoding encoding, ThriftLimits? limits = null, bool strictRead = false)
    {
        Encoding = encoding;
        _limits = limits ?? ThriftLimits.Default;
        _strictRead = strictRead;
    }

    public ThriftEncoding Encoding { get; }

    /// <summary>Takes one whole message off the front of <paramref name="buffer"/>, or returns false if it is not all there yet.</summary>
    public bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out ThriftFrame frame)
    {
        _contiguous.Clear();
        _inflated.Clear();
        return Encoding.Framing switch
        {
            ThriftFraming.Framed => TryReadFramed(ref buffer, out frame),
            ThriftFraming.Header => TryReadHeader(ref buffer, out frame),
            ThriftFraming.Unframed => TryReadUnframed(ref buffer, out frame),
            _ => throw new InvalidOperationException($"unknown framing {Encoding.Framing}"),
        };
    }

    private bool TryReadFramed(ref ReadOnlySequence<byte> buffer, out ThriftFrame frame)
    {
        if (!TryTakeFrame(ref buffer, out var payload))
        {
            frame = default;
            return false;
        }

        frame = new ThriftFrame(payload, Encoding.Protocol, header: null);
        return true;
    }

    private bool TryReadHeader(ref ReadOnlySequence<byte> buffer, out ThriftFrame frame)
    {
        if (!TryTakeFrame(ref buffer, out var whole))
        {
            frame = default;
            return false;
        }

        frame = new ThriftFrame(ParseTHeader(whole), _header.Protocol, _header);
        return true;
    }

    /// <summary>Slices one length-prefixed frame (prefix dropped) into contiguous memory.</summary>
    private bool TryTakeFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlyMemory<byte> payload)
    {
        payload = default;
        if (buffer.Length < 4)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(prefix);
        var length = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (length <= 0)
        {
            throw new TProtocolException(length == 0 ? TProtocolErrorKind.InvalidData : TProtocolErrorKind.NegativeSize, $"frame length {length}");
        }

        if (length > _limits.MaxFrameSize)
        {
            throw new TProtocolException(TProtocolErrorKind.SizeLimit, $"frame length {length} exceeds the limit of {_limits.MaxFrameSize} bytes");
        }

        if (buffer.Length - 4 < length)
        {
            return false;
        }

        payload = Contiguous(buffer.Slice(4, length));
        buffer = buffer.Slice(4 + length);
        return true;
    }

    private ReadOnlyMemory<byte> Contiguous(in ReadOnlySequence<byte> bytes)
    {
        if (bytes.IsSingleSegment)
        {
            return bytes.First;
        }

        var length = (int)bytes.Length;
        bytes.CopyTo(_contiguous.GetSpan(length));
        _contiguous.Advance(length);
        return _contiguous.WrittenMemory;
    }

    private ReadOnlyMemory<byte> ParseTHeader(ReadOnlyMemory<byte> frame)
    {
        var span = frame.Span;
        if (span.Length < THeaderFixedSize)
        {
            throw new TProtocolException(TProtocolErrorKind.InvalidData, $"THeader frame of {span.Length} bytes is shorter than its fixed header");
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(span) != ThriftEncodingDetector.HeaderMagic)
        {
            throw new TProtocolException(TProtocolErrorKind.BadVersion, "frame on a THeader connection lacks the THeader magic 0x0FFF");
        }

        _header.Clear();
        _header.Flags = BinaryPrimitives.ReadUInt16BigEndian(span.Slice(2));
        _header.SeqId = BinaryPrimitives.ReadInt32BigEndian(span.Slice(4));
        var headerSize = BinaryPrimitives.ReadUInt16BigEndian(span.Slice(8)) * 4;
        if (headerSize > span.Length - THeaderFixedSize)
        {
            throw new TProtocolException(TProtocolErrorKind.SizeLimit, $"THeader header section of {headerSize} bytes is larger than its frame");
        }

        var section = new HeaderSection(span.Slice(THeaderFixedSize, headerSize));
        var protocolId = section.ReadVarint();
        _header.Protocol = protocolId switch
        {
            (uint)ThriftProtocol.Binary => ThriftProtocol.Binary,
            (uint)ThriftProtocol.Compact => ThriftProtocol.Compact,
            _ => throw new TProtocolException(TProtocolErrorKind.NotImplemented, $"THeader protocol id {protocolId} is not supported (binary 0 and compact 2 are)"),
        };

        var transformCount = section.ReadVarint();
        if (transformCount > MaxTransforms)
        {
            throw new TProtocolException(TProtocolErrorKind.SizeLimit, $"THeader declares {transformCount} transforms");
        }

        for (var i = 0; i < transformCount; i++)
        {
            var id = section.ReadVarint();
            if (id != (uint)THeaderTransform.Zlib)
            {
                throw new TApplicationException(TApplicationExceptionType.InvalidTransform, $"THeader transform {id} is not supported (zlib 1 is)");
            }

            _header.Transforms.Add(THeaderTransform.Zlib);
        }

        // Info sections until the padding (type 0) or the end; an unknown type ends parsing, as in Apache's runtimes.
        while (!section.AtEnd)
        {
            var infoType = section.ReadVarint();
            if (infoType is not (1 or 2))
            {
                break;
            }

            var count = section.ReadVarint();
            for (var i = 0u; i < count; i++)
            {
                var key = section.ReadString();
                var value = section.ReadString();
                _header.Add(key, value);
            }
        }

        var payload = frame.Slice(THeaderFixedSize + headerSize);
        for (var i = _header.Transforms.Count - 1; i >= 0; i--)
        {
            _inflated.Clear();
            Zlib.Decompress(payload, _inflated, _limits.MaxDecompressedSize);
            if (i > 0)
            {
                // A second zlib pass over the output of the first: move it out of the way first.
                _contiguous.Clear();
                _contiguous.Write(_inflated.WrittenSpan);
                payload = _contiguous.WrittenMemory;
            }
            else
            {
                payload = _inflated.WrittenMemory;
            }
        }

        return payload;
    }

    private bool TryReadUnframed(ref ReadOnlySequence<byte> buffer, out ThriftFrame frame)
    {
        frame = default;
        if (buffer.IsEmpty)
        {
            return false;
        }

        // Usually the whole message sits in the first segment; otherwise widen a contiguous window
        // geometrically, so pipelined messages never cost a copy of everything buffered behind them.
        var limit = Math.Min(buffer.Length, _limits.MaxFrameSize);
        var window = buffer.First;
        while (true)
        {
            if (window.Length > limit)
            {
                window = window.Slice(0, (int)limit);
            }

            var length = MeasureUnframed(window.Span);
            if (length > 0)
            {
                frame = new ThriftFrame(window.Slice(0, length), Encoding.Protocol, header: null);
                buffer = buffer.Slice(length);
                return true;
            }

            if (window.Length >= limit)
            {
                if (buffer.Length >= _limits.MaxFrameSize)
                {
                    throw new TProtocolException(TProtocolErrorKind.SizeLimit, $"unframed message exceeds the limit of {_limits.MaxFrameSize} bytes");
                }

                return false;
            }

            _contiguous.Clear();
            window = Contiguous(buffer.Slice(0, Math.Min(limit, Math.Max(4096L, window.Length * 4L))));
        }
    }

    /// <summary>The length of the message at the start of <paramref name="bytes"/>, or 0 when it does not end there.</summary>
    private int MeasureUnframed(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return Encoding.Protocol == ThriftProtocol.Binary
                ? MeasureMessage(new ThriftBinaryReader(bytes, _limits, _strictRead, partial: true))
                : MeasureMessage(new ThriftCompactReader(bytes, _limits, partial: true));
        }
        catch (NeedMoreDataException)
        {
            return 0;
        }
    }

    private static int MeasureMessage<TReader>(TReader reader)
        where TReader : IThriftReader, allows ref struct
    {
        reader.ReadMessageBegin();
        reader.Skip(TType.Struct);
        reader.ReadMessageEnd();
        return reader.Position;
    }

    public void Dispose()
    {
        _contiguous.Dispose();
        _inflated.Dispose();
    }

    /// <summary>A bounded reader over the THeader header section (varints and varint-prefixed strings).</summary>
    private ref struct HeaderSection(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _pos;

        public readonly bool AtEnd => _pos >= _bytes.Length;

        public uint ReadVarint()
        {
            uint result = 0;
            for (var shift = 0; shift < 35; shift += 7)
            {
                if (_pos >= _bytes.Length)
                {
                    throw new TProtocolException(TProtocolErrorKind.InvalidData, "THeader header section ends inside a varint");
                }

                uint b = _bytes[_pos++];
                result |= (b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new TProtocolException(TProtocolErrorKind.InvalidData, "THeader varint is longer than 32 bits");
        }

        public string ReadString()
        {
            var length = ReadVarint();
            if (length > (uint)(_bytes.Length - _pos))
            {
                throw new TProtocolException(TProtocolErrorKind.SizeLimit, $"THeader info string of {length} bytes overruns the header section");
            }

            var value = System.Text.Encoding.UTF8.GetString(_bytes.Slice(_pos, (int)length));
            _pos += (int)length;
            return value;
        }
    }
}
