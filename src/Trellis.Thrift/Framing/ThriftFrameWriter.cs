using System.Buffers.Binary;
using System.Text;
using Trellis.Thrift.Buffers;

namespace Trellis.Thrift;

/// <summary>Where a frame begun by <see cref="ThriftFrameWriter.Begin"/> starts, for <see cref="ThriftFrameWriter.End"/>.</summary>
public readonly struct ThriftFrameMark
{
    internal ThriftFrameMark(ThriftFraming framing, int start, int payloadStart, bool zlib)
    {
        Framing = framing;
        Start = start;
        PayloadStart = payloadStart;
        Zlib = zlib;
    }

    internal ThriftFraming Framing { get; }
    internal int Start { get; }
    internal int PayloadStart { get; }
    internal bool Zlib { get; }
}

/// <summary>
/// Wraps a message written into a <see cref="PooledBufferWriter"/> in its framing: <see cref="Begin"/>
/// writes the prefix (with room for the length), the caller writes the message, <see cref="End"/>
/// fills in the length and applies THeader transforms. Several frames may follow each other in one
/// buffer, so replies can be batched into one socket write.
/// </summary>
public static class ThriftFrameWriter
{
    public static ThriftFrameMark Begin(PooledBufferWriter output, ThriftFraming framing, THeaderInfo? header = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        var start = output.WrittenCount;
        switch (framing)
        {
            case ThriftFraming.Unframed:
                return new ThriftFrameMark(framing, start, start, zlib: false);
            case ThriftFraming.Framed:
                output.GetSpan(4).Slice(0, 4).Clear();
                output.Advance(4);
                return new ThriftFrameMark(framing, start, start + 4, zlib: false);
            case ThriftFraming.Header:
                header ??= new THeaderInfo();
                WriteTHeaderPrefix(output, header);
                return new ThriftFrameMark(framing, start, output.WrittenCount, header.Transforms.Count > 0);
            default:
                throw new ArgumentOutOfRangeException(nameof(framing), framing, "unknown framing");
        }
    }

    /// <summary>Completes the frame; if it is over the frame-size limit, it is removed from the output and a <see cref="TProtocolException"/> is thrown.</summary>
    public static void End(PooledBufferWriter output, in ThriftFrameMark mark, ThriftLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        limits ??= ThriftLimits.Default;
        if (mark.Zlib)
        {
            CompressPayload(output, mark.PayloadStart);
        }

        var prefix = mark.Framing == ThriftFraming.Unframed ? 0 : 4;
        var size = output.WrittenCount - mark.Start - prefix;
        if (size > limits.MaxFrameSize)
        {
            output.Truncate(mark.Start);
            throw new TProtocolException(TProtocolErrorKind.SizeLimit, $"message of {size} bytes exceeds the frame limit of {limits.MaxFrameSize} bytes");
        }

        if (prefix != 0)
        {
            BinaryPrimitives.WriteInt32BigEndian(output.GetWrittenSpan(mark.Start, 4), size);
        }
    }

    /// <summary>Drops a frame that was begun but could not be completed (the writer threw).</summary>
    public static void Abandon(PooledBufferWriter output, in ThriftFrameMark mark) => output.Truncate(mark.Start);

    private static void WriteTHeaderPrefix(PooledBufferWriter output, THeaderInfo header)
    {
        // The header section: protocol id, transforms, one key/value info block, zero padding to 4 bytes.
        var sectionStart = output.WrittenCount + 14;
        var fixedPart = output.GetSpan(14);
        fixedPart.Slice(0, 14).Clear();
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart.Slice(4), ThriftEncodingDetector.HeaderMagic);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart.Slice(6), header.Flags);
        BinaryPrimitives.WriteInt32BigEndian(fixedPart.Slice(8), header.SeqId);
        output.Advance(14);

        WriteVarint(output, (uint)header.Protocol);
        // Index loops: enumerating through the interfaces would box an enumerator per frame.
        var transforms = header.Transforms;
        WriteVarint(output, (uint)transforms.Count);
        for (var i = 0; i < transforms.Count; i++)
        {
            var transform = transforms[i];
            if (transform != THeaderTransform.Zlib)
            {
                throw new ArgumentException($"THeader transform {transform} is not supported", nameof(header));
            }

            WriteVarint(output, (uint)transform);
        }

        var headers = header.Headers;
        if (headers.Count > 0)
        {
            WriteVarint(output, 1); // INFO_KEYVALUE
            WriteVarint(output, (uint)headers.Count);
            for (var i = 0; i < headers.Count; i++)
            {
                WriteString(output, headers[i].Key);
                WriteString(output, headers[i].Value);
            }
        }

        var sectionSize = output.WrittenCount - sectionStart;
        var padding = (4 - sectionSize % 4) % 4;
        output.GetSpan(padding).Slice(0, padding).Clear();
        output.Advance(padding);
        sectionSize += padding;
        if (sectionSize > THeaderInfo.MaxHeaderSectionSize)
        {
            output.Truncate(sectionStart - 14);
            throw new ArgumentException($"THeader info headers take {sectionSize} bytes, more than the {THeaderInfo.MaxHeaderSectionSize} a header section can hold", nameof(header));
        }

        BinaryPrimitives.WriteUInt16BigEndian(output.GetWrittenSpan(sectionStart - 2, 2), (ushort)(sectionSize / 4));
    }

    private static void WriteVarint(PooledBufferWriter output, uint value) =>
        output.Advance(Varint.Write(output.GetSpan(Varint.MaxBytes32), value));

    private static void WriteString(PooledBufferWriter output, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint(output, (uint)length);
        Encoding.UTF8.GetBytes(value, output.GetSpan(length));
        output.Advance(length);
    }

    private static void CompressPayload(PooledBufferWriter output, int payloadStart)
    {
        using var compressed = new PooledBufferWriter(Math.Max(64, (output.WrittenCount - payloadStart) / 2));
        Zlib.Compress(output.WrittenSpan.Slice(payloadStart), compressed);
        output.Truncate(payloadStart);
        output.Write(compressed.WrittenSpan);
    }
}
