using System.Buffers;
using System.Buffers.Binary;

namespace Trellis.Thrift;

/// <summary>The outcome of looking at a connection's first bytes.</summary>
public enum ThriftDetectStatus
{
    /// <summary>Not enough bytes yet to tell.</summary>
    NeedMoreData,
    Detected,
    /// <summary>Not Thrift, or a first frame that can never be valid: close the connection.</summary>
    Rejected,
}

/// <summary>
/// Tells framing and protocol from a connection's first bytes, as Apache's THeader server does:
/// an unframed message starts with a protocol's version bytes; otherwise the first word is a frame
/// length and the next bytes say THeader (0x0FFF), binary (0x8001) or compact (0x82).
/// </summary>
public static class ThriftEncodingDetector
{
    /// <summary>The most bytes detection ever needs (a THeader frame's protocol id sits at offset 14).</summary>
    public const int MaxPrefix = 15;

    internal const ushort HeaderMagic = 0x0FFF;

    public static ThriftDetectStatus Detect(in ReadOnlySequence<byte> buffer, out ThriftEncoding encoding, out string? reason, ThriftLimits? limits = null)
    {
        Span<byte> prefix = stackalloc byte[MaxPrefix];
        var available = (int)Math.Min(buffer.Length, MaxPrefix);
        buffer.Slice(0, available).CopyTo(prefix);
        return Detect(prefix.Slice(0, available), out encoding, out reason, limits);
    }

    public static ThriftDetectStatus Detect(ReadOnlySpan<byte> prefix, out ThriftEncoding encoding, out string? reason, ThriftLimits? limits = null)
    {
        limits ??= ThriftLimits.Default;
        encoding = default;
        reason = null;
        if (prefix.Length < 2)
        {
            return ThriftDetectStatus.NeedMoreData;
        }

        if (prefix[0] == 0x80)
        {
            return prefix[1] == 0x01
                ? Found(ThriftEncoding.UnframedBinary, out encoding)
                : Reject($"binary protocol version 0x80{prefix[1]:X2} is not 0x8001", out reason);
        }

        if (prefix[0] == CompactTypes.ProtocolId)
        {
            return (prefix[1] & CompactTypes.VersionMask) == CompactTypes.Version
                ? Found(ThriftEncoding.UnframedCompact, out encoding)
                : Reject($"compact protocol version {prefix[1] & CompactTypes.VersionMask} is not 1", out reason);
        }

        if (prefix[0] == 0x16 && prefix[1] == 0x03)
        {
            return Reject("a TLS handshake on a plaintext Thrift port", out reason);
        }

        if (prefix.Length < 4)
        {
            return ThriftDetectStatus.NeedMoreData;
        }

        if (LooksLikeHttp(prefix))
        {
            return Reject("an HTTP request on a Thrift port", out reason);
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (length <= 0)
        {
            return Reject($"frame length {length}", out reason);
        }

        if (length > limits.MaxFrameSize)
        {
            return Reject($"frame length {length} exceeds the limit of {limits.MaxFrameSize} bytes", out reason);
        }

        if (prefix.Length < 6)
        {
            return ThriftDetectStatus.NeedMoreData;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(prefix.Slice(4)) == HeaderMagic)
        {
            // The protocol id is the first byte of the header section (a one-byte varint for 0 and 2).
            if (prefix.Length < MaxPrefix)
            {
                return ThriftDetectStatus.NeedMoreData;
            }

            return prefix[14] switch
            {
                (byte)ThriftProtocol.Binary => Found(ThriftEncoding.HeaderBinary, out encoding),
                (byte)ThriftProtocol.Compact => Found(ThriftEncoding.HeaderCompact, out encoding),
                var other => Reject($"THeader protocol id {other} is not supported (binary 0 and compact 2 are)", out reason),
            };
        }

        if (prefix[4] == 0x80 && prefix[5] == 0x01)
        {
            return Found(ThriftEncoding.FramedBinary, out encoding);
        }

        if (prefix[4] == CompactTypes.ProtocolId && (prefix[5] & CompactTypes.VersionMask) == CompactTypes.Version)
        {
            return Found(ThriftEncoding.FramedCompact, out encoding);
        }

        // A non-strict binary message starts with its name length, whose high byte is 0 for any real name.
        if (prefix[4] == 0x00)
        {
            return Found(ThriftEncoding.FramedBinary, out encoding);
        }

        // Unframed non-strict binary: the first word was the name length, and the name follows.
        if (prefix[4] is >= 0x20 and < 0x7F)
        {
            return Found(ThriftEncoding.UnframedBinary, out encoding);
        }

        return Reject($"unrecognised bytes 0x{prefix[4]:X2}{prefix[5]:X2} after a frame length", out reason);
    }

    private static bool LooksLikeHttp(ReadOnlySpan<byte> p) =>
        p.StartsWith("GET "u8) || p.StartsWith("POST"u8) || p.StartsWith("PUT "u8) || p.StartsWith("HEAD"u8) ||
        p.StartsWith("DELE"u8) || p.StartsWith("OPTI"u8) || p.StartsWith("PATC"u8) || p.StartsWith("CONN"u8) ||
        p.StartsWith("TRAC"u8) || p.StartsWith("PRI "u8);

    private static ThriftDetectStatus Found(ThriftEncoding found, out ThriftEncoding encoding)
    {
        encoding = found;
        return ThriftDetectStatus.Detected;
    }

    private static ThriftDetectStatus Reject(string why, out string? reason)
    {
        reason = why;
        return ThriftDetectStatus.Rejected;
    }
}
