using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Trellis.Thrift.Buffers;
using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

public class FramingTests
{
    public static TheoryData<ThriftFraming, ThriftProtocol> AllEncodings()
    {
        var data = new TheoryData<ThriftFraming, ThriftProtocol>();
        foreach (var framing in Enum.GetValues<ThriftFraming>())
        {
            foreach (var protocol in Enum.GetValues<ThriftProtocol>())
            {
                data.Add(framing, protocol);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllEncodings))]
    public void Detect_TellsEveryFramingAndProtocol_FromTheFirstBytes(ThriftFraming framing, ThriftProtocol protocol)
    {
        var encoding = new ThriftEncoding(framing, protocol);
        var bytes = Bytes.Message(encoding, new TMessageHeader("getUser", TMessageType.Call, 1), Samples.Sample3());
        ThriftDetectStatus status = ThriftDetectStatus.NeedMoreData;
        ThriftEncoding detected = default;
        var needed = 0;
        while (status == ThriftDetectStatus.NeedMoreData)
        {
            status = ThriftEncodingDetector.Detect(new ReadOnlySequence<byte>(bytes, 0, ++needed), out detected, out _);
        }

        Assert.Equal(ThriftDetectStatus.Detected, status);
        Assert.Equal(encoding, detected);
        Assert.True(needed <= ThriftEncodingDetector.MaxPrefix);
    }

    [Fact]
    public void Detect_NonStrictBinary_FramedAndUnframed()
    {
        var message = Bytes.Hex("00000004 70696E67 01 00000001 00");
        Assert.Equal(ThriftDetectStatus.Detected, ThriftEncodingDetector.Detect(message, out var unframed, out _));
        Assert.Equal(ThriftEncoding.UnframedBinary, unframed);

        var framed = new byte[4].Concat(message).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(framed, message.Length);
        Assert.Equal(ThriftDetectStatus.Detected, ThriftEncodingDetector.Detect(framed, out var detected, out _));
        Assert.Equal(ThriftEncoding.FramedBinary, detected);

        // and both decode
        foreach (var (bytes, encoding) in new[] { (message, unframed), (framed, detected) })
        {
            using var decoder = new ThriftFrameDecoder(encoding);
            var buffer = new ReadOnlySequence<byte>(bytes);
            Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
            Assert.Equal(new TMessageHeader("ping", TMessageType.Call, 1), ThriftMessages.ReadHeader(frame));
        }
    }

    [Theory]
    [MemberData(nameof(AllEncodings))]
    public void Decoder_ReadsMessagesSplitAcrossSegments_AtEveryBoundary(ThriftFraming framing, ThriftProtocol protocol)
    {
        var encoding = new ThriftEncoding(framing, protocol);
        var body = Samples.Sample0();
        var one = Bytes.Message(encoding, new TMessageHeader("one", TMessageType.Call, 1), body);
        var two = Bytes.Message(encoding, new TMessageHeader("two", TMessageType.Call, 2), Samples.Sample3());
        var stream = one.Concat(two).ToArray();
        using var decoder = new ThriftFrameDecoder(encoding);
        foreach (var chunk in new[] { 1, 3, 64, 1000 })
        {
            var buffer = Bytes.Segmented(stream, chunk);
            Assert.True(decoder.TryReadFrame(ref buffer, out var first));
            var read = new DynStruct();
            Assert.Equal("one", ThriftMessages.Read(first, read, out _).Name);
            Assert.Equal(body, read);
            Assert.True(decoder.TryReadFrame(ref buffer, out var second));
            Assert.Equal("two", ThriftMessages.ReadHeader(second).Name);
            Assert.False(decoder.TryReadFrame(ref buffer, out _));
            Assert.True(buffer.IsEmpty);
        }
    }

    [Fact]
    public void Unframed_DeclaredSizePastTheLimit_IsRefusedAtOnce()
    {
        var limits = new ThriftLimits { MaxFrameSize = 1000 };
        var message = Bytes.Message(ThriftEncoding.UnframedBinary, new TMessageHeader("m", TMessageType.Call, 1),
            new DynStruct().Add(1, DynValue.List(TType.I64, Enumerable.Range(0, 500).Select(i => DynValue.I64(i)))));
        using var decoder = new ThriftFrameDecoder(ThriftEncoding.UnframedBinary, limits);
        var error = Record.Exception(() =>
        {
            var partial = new ReadOnlySequence<byte>(message, 0, 100);
            decoder.TryReadFrame(ref partial, out _);
        });
        Assert.Equal(TProtocolErrorKind.SizeLimit, Assert.IsType<TProtocolException>(error).Kind);
    }

    [Fact]
    public void Unframed_MessageGrowingPastTheLimit_IsRefusedOnceTheLimitIsBuffered()
    {
        var limits = new ThriftLimits { MaxFrameSize = 1000 };
        var message = Bytes.Message(ThriftEncoding.UnframedCompact, new TMessageHeader("m", TMessageType.Call, 1),
            new DynStruct().Add(1, DynValue.List(TType.String, Enumerable.Range(0, 100).Select(i => DynValue.Str("twenty bytes of text")))));
        using var decoder = new ThriftFrameDecoder(ThriftEncoding.UnframedCompact, limits);
        var partial = new ReadOnlySequence<byte>(message, 0, 500);
        Assert.False(decoder.TryReadFrame(ref partial, out _));
        var error = Record.Exception(() =>
        {
            var all = new ReadOnlySequence<byte>(message);
            decoder.TryReadFrame(ref all, out _);
        });
        Assert.Equal(TProtocolErrorKind.SizeLimit, Assert.IsType<TProtocolException>(error).Kind);
    }

    [Theory]
    [InlineData(ThriftProtocol.Binary, false)]
    [InlineData(ThriftProtocol.Compact, false)]
    [InlineData(ThriftProtocol.Binary, true)]
    [InlineData(ThriftProtocol.Compact, true)]
    public void THeader_CarriesHeadersFlagsSeqIdAndTransforms(ThriftProtocol protocol, bool zlib)
    {
        var info = new THeaderInfo { Flags = 0x0001 };
        info.Add("deadline", "250");
        info.Add("trace", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        info.Add("ключ", "значение");
        if (zlib)
        {
            info.Transforms.Add(THeaderTransform.Zlib);
        }

        var encoding = new ThriftEncoding(ThriftFraming.Header, protocol);
        var body = Samples.Sample2();
        var bytes = Bytes.Message(encoding, new TMessageHeader("echo", TMessageType.Call, 77), body, info);
        Assert.Equal(0x0FFF, BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(4)));
        Assert.Equal(77, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8)));
        Assert.Equal(0, (bytes.Length - 14 - Payload(bytes)) % 4);

        using var decoder = new ThriftFrameDecoder(encoding);
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
        var header = Assert.IsType<THeaderInfo>(frame.Header);
        Assert.Equal(protocol, frame.Protocol);
        Assert.Equal((ushort)1, header.Flags);
        Assert.Equal(77, header.SeqId);
        Assert.Equal(info.Headers, header.Headers);
        Assert.Equal(zlib ? [THeaderTransform.Zlib] : Array.Empty<THeaderTransform>(), header.Transforms);
        Assert.True(header.TryGet("deadline", out var deadline));
        Assert.Equal("250", deadline);
        var read = new DynStruct();
        Assert.Equal(new TMessageHeader("echo", TMessageType.Call, 77), ThriftMessages.Read(frame, read, out _));
        Assert.Equal(body, read);
        if (zlib)
        {
            Assert.True(bytes.Length < 20_000, $"zlib should shrink the 170 KB sample, got {bytes.Length}");
        }
    }

    private static int Payload(byte[] frame) => frame.Length - 14 - BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) * 4;

    [Fact]
    public void THeader_ZlibBomb_StopsAtTheDecompressionBound()
    {
        var limits = new ThriftLimits { MaxDecompressedSize = 1024 * 1024 };
        var zeros = new byte[64 * 1024 * 1024];
        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            z.Write(zeros);
        }

        var frame = THeaderFrame([0x00, 0x01, 0x01], compressed.ToArray());
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Record.Exception(() => Decode(frame, limits));
        Assert.Equal(TProtocolErrorKind.SizeLimit, Assert.IsType<TProtocolException>(error).Kind);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8 * 1024 * 1024, "inflating must stop at the bound");
    }

    [Fact]
    public void THeader_CorruptZlib_IsInvalidData()
    {
        var frame = THeaderFrame([0x00, 0x01, 0x01], [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0x00, 0x12]);
        Assert.Equal(TProtocolErrorKind.InvalidData, Assert.IsType<TProtocolException>(Record.Exception(() => Decode(frame))).Kind);
    }

    [Fact]
    public void THeader_UnknownTransform_IsInvalidTransform()
    {
        var frame = THeaderFrame([0x00, 0x01, 0x03], [0x80, 0x01]);
        var error = Assert.IsType<TApplicationException>(Record.Exception(() => Decode(frame)));
        Assert.Equal(TApplicationExceptionType.InvalidTransform, error.Type);
    }

    [Fact]
    public void THeader_UnsupportedProtocol_IsRefused()
    {
        var frame = THeaderFrame([0x01, 0x00], [0x80, 0x01]);
        Assert.Equal(TProtocolErrorKind.NotImplemented, Assert.IsType<TProtocolException>(Record.Exception(() => Decode(frame))).Kind);
        Assert.Equal(ThriftDetectStatus.Rejected, ThriftEncodingDetector.Detect(frame, out _, out var reason));
        Assert.Contains("protocol id 1", reason);
    }

    [Theory]
    [InlineData("0FFF 0000 00000001 0010", "larger than its frame")]      // 64 header bytes in a 10-byte frame
    [InlineData("0FFF 0000 00000001 0001 00 00 01 01", "varint")]          // info count, then nothing
    [InlineData("0FFF 0000 00000001 0002 00 00 01 01 05 41 00 00", "overruns")] // 5-byte key in a 2-byte rest
    [InlineData("0FFF 0000 00000001", "shorter than its fixed header")]
    public void THeader_MalformedHeaderSection_IsAProtocolError(string hex, string expected)
    {
        var body = Bytes.Hex(hex);
        var frame = new byte[4].Concat(body).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        var error = Assert.IsType<TProtocolException>(Record.Exception(() => Decode(frame)));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void THeader_UnknownInfoType_EndsTheInfoSection_AndPaddingIsSkipped()
    {
        // key/value block, then an unknown info type 9 and junk: the block is kept, the rest ignored
        var section = new byte[] { 0x00, 0x00, 0x01, 0x01, 0x01, (byte)'k', 0x01, (byte)'v', 0x09, 0xEE, 0xEE, 0xEE };
        var payload = Bytes.Message(ThriftEncoding.UnframedBinary, new TMessageHeader("m", TMessageType.Call, 1), new DynStruct());
        var frame = THeaderFrame(section, payload);
        using var decoder = new ThriftFrameDecoder(ThriftEncoding.HeaderBinary);
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.True(decoder.TryReadFrame(ref buffer, out var decoded));
        Assert.Equal([new("k", "v")], decoded.Header!.Headers);
        Assert.Equal("m", ThriftMessages.ReadHeader(decoded).Name);
    }

    [Fact]
    public void FrameWriter_BatchesSeveralFramesInOneBuffer()
    {
        using var output = new PooledBufferWriter();
        for (var i = 0; i < 3; i++)
        {
            ThriftMessages.Write(output, ThriftEncoding.FramedCompact, new TMessageHeader("m" + i, TMessageType.Reply, i), new DynStruct().Add(0, DynValue.I32(i)));
        }

        using var decoder = new ThriftFrameDecoder(ThriftEncoding.FramedCompact);
        var buffer = new ReadOnlySequence<byte>(output.WrittenMemory);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
            Assert.Equal(new TMessageHeader("m" + i, TMessageType.Reply, i), ThriftMessages.ReadHeader(frame));
        }
    }

    private static void Decode(byte[] bytes, ThriftLimits? limits = null)
    {
        using var decoder = new ThriftFrameDecoder(ThriftEncoding.HeaderBinary, limits);
        var buffer = new ReadOnlySequence<byte>(bytes);
        decoder.TryReadFrame(ref buffer, out _);
    }

    /// <summary>A THeader frame with a hand-written header section (padded here) and payload.</summary>
    private static byte[] THeaderFrame(byte[] section, byte[] payload)
    {
        var padded = section.Concat(new byte[(4 - section.Length % 4) % 4]).ToArray();
        var frame = new byte[14 + padded.Length + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(4), 0x0FFF);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), (ushort)(padded.Length / 4));
        padded.CopyTo(frame, 14);
        payload.CopyTo(frame, 14 + padded.Length);
        return frame;
    }
}
