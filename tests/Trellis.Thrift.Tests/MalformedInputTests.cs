using System.Buffers;
using System.Buffers.Binary;
using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

/// <summary>
/// The decoder's half of the malformed-input table in shared/RELIABILITY.md: each case ends in a
/// typed exception, before any allocation of an attacker-chosen size, with no loop and no stack overflow.
/// </summary>
public class MalformedInputTests
{
    private static TProtocolErrorKind ProtocolError(Action action) =>
        Assert.IsType<TProtocolException>(Record.Exception(action)).Kind;

    private static TProtocolErrorKind ReadStructError(byte[] bytes, ThriftProtocol protocol, ThriftLimits? limits = null) =>
        ProtocolError(() => Bytes.ReadStruct(bytes, protocol, limits));

    private static TProtocolErrorKind DecodeError(byte[] bytes, ThriftEncoding encoding, ThriftLimits? limits = null) =>
        ProtocolError(() =>
        {
            using var decoder = new ThriftFrameDecoder(encoding, limits);
            var buffer = new ReadOnlySequence<byte>(bytes);
            while (decoder.TryReadFrame(ref buffer, out var frame))
            {
                ThriftMessages.Read(frame, new DynStruct(), out _, limits);
            }
        });

    [Theory]
    [InlineData("7FFFFFFF", TProtocolErrorKind.SizeLimit)]
    [InlineData("80000000", TProtocolErrorKind.NegativeSize)]
    [InlineData("FFFFFFFF", TProtocolErrorKind.NegativeSize)]
    [InlineData("00000000", TProtocolErrorKind.InvalidData)]
    public void FrameLength_OutOfRange_IsRejectedBeforeBuffering(string prefix, TProtocolErrorKind kind)
    {
        foreach (var framing in new[] { ThriftEncoding.FramedBinary, ThriftEncoding.HeaderCompact })
        {
            Assert.Equal(kind, DecodeError(Bytes.Hex(prefix), framing));
        }

        Assert.Equal(ThriftDetectStatus.Rejected, ThriftEncodingDetector.Detect(Bytes.Hex(prefix + "8001"), out _, out var reason));
        Assert.False(string.IsNullOrEmpty(reason));
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP")]
    [InlineData("\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003", "TLS")]
    public void NotThrift_IsRejectedAtDetection(string text, string expected)
    {
        var bytes = text.Select(c => (byte)c).ToArray();
        Assert.Equal(ThriftDetectStatus.Rejected, ThriftEncodingDetector.Detect(bytes, out _, out var reason));
        Assert.Contains(expected, reason);
    }

    [Fact]
    public void FrameLimit_ExactlyMaxIsServed_OneByteMoreIsRefused()
    {
        var limits = new ThriftLimits { MaxFrameSize = 64 };
        var body = new DynStruct().Add(1, DynValue.Bin(new byte[33]));
        var exact = Bytes.Message(ThriftEncoding.FramedBinary, new TMessageHeader("m", TMessageType.Call, 1), body);
        var size = exact.Length - 4;
        // pad the name so the frame is exactly the limit, then one byte longer
        var name = new string('n', 1 + 64 - size);
        var atLimit = Bytes.Message(ThriftEncoding.FramedBinary, new TMessageHeader(name, TMessageType.Call, 1), body);
        var overLimit = Bytes.Message(ThriftEncoding.FramedBinary, new TMessageHeader(name + "n", TMessageType.Call, 1), body);
        Assert.Equal(64, BinaryPrimitives.ReadInt32BigEndian(atLimit));
        Assert.Equal(65, BinaryPrimitives.ReadInt32BigEndian(overLimit));

        using var decoder = new ThriftFrameDecoder(ThriftEncoding.FramedBinary, limits);
        var buffer = new ReadOnlySequence<byte>(atLimit);
        Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
        Assert.Equal(name, ThriftMessages.ReadHeader(frame, limits).Name);
        Assert.Equal(TProtocolErrorKind.SizeLimit, DecodeError(overLimit, ThriftEncoding.FramedBinary, limits));

        // and the writer refuses to produce it, leaving nothing half-written
        using var output = new Buffers.PooledBufferWriter();
        Assert.Equal(TProtocolErrorKind.SizeLimit, ProtocolError(() =>
            ThriftMessages.Write(output, ThriftEncoding.FramedBinary, new TMessageHeader(name + "n", TMessageType.Call, 1), body, limits: limits)));
        Assert.Equal(0, output.WrittenCount);
    }

    [Theory]
    [InlineData(ThriftFraming.Framed)]
    [InlineData(ThriftFraming.Header)]
    [InlineData(ThriftFraming.Unframed)]
    public void Truncated_HalfAFrame_IsNotAFrame(ThriftFraming framing)
    {
        var encoding = new ThriftEncoding(framing, ThriftProtocol.Binary);
        var whole = Bytes.Message(encoding, new TMessageHeader("call", TMessageType.Call, 9), Samples.Sample0());
        using var decoder = new ThriftFrameDecoder(encoding);
        for (var cut = 0; cut < whole.Length; cut += 7)
        {
            var buffer = new ReadOnlySequence<byte>(whole, 0, cut);
            Assert.False(decoder.TryReadFrame(ref buffer, out _));
            Assert.Equal(cut, buffer.Length);
        }
    }

    [Theory]
    [InlineData(ThriftProtocol.Binary)]
    [InlineData(ThriftProtocol.Compact)]
    public void FrameMessageMismatch_TrailingBytes_IsAProtocolError(ThriftProtocol protocol)
    {
        var encoding = new ThriftEncoding(ThriftFraming.Framed, protocol);
        var message = Bytes.Message(encoding, new TMessageHeader("m", TMessageType.Call, 1), new DynStruct());
        var padded = message.Concat(new byte[] { 0, 0 }).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(padded, message.Length - 4 + 2);
        Assert.Equal(TProtocolErrorKind.InvalidData, DecodeError(padded, encoding));
    }

    [Theory]
    [InlineData(ThriftProtocol.Binary)]
    [InlineData(ThriftProtocol.Compact)]
    public void FrameMessageMismatch_MessageLongerThanItsFrame_NeverReadsIntoTheNextFrame(ThriftProtocol protocol)
    {
        var encoding = new ThriftEncoding(ThriftFraming.Framed, protocol);
        var body = new DynStruct().Add(1, DynValue.I64(long.MaxValue)).Add(2, DynValue.Str("the rest"));
        var message = Bytes.Message(encoding, new TMessageHeader("m", TMessageType.Call, 1), body);
        var next = Bytes.Message(encoding, new TMessageHeader("n", TMessageType.Call, 2), body);
        // shrink the first frame by 5 bytes: the message inside now runs past its end
        var shrunk = message.Take(message.Length - 5).Concat(next).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(shrunk, message.Length - 4 - 5);
        // the string's declared length overruns the frame (SizeLimit), or a read runs off its end (InvalidData)
        Assert.Contains(DecodeError(shrunk, encoding), new[] { TProtocolErrorKind.SizeLimit, TProtocolErrorKind.InvalidData });

        using var decoder = new ThriftFrameDecoder(encoding);
        var buffer = new ReadOnlySequence<byte>(shrunk);
        Assert.True(decoder.TryReadFrame(ref buffer, out var first));
        Assert.Equal(message.Length - 4 - 5, first.Payload.Length);
        Assert.True(decoder.TryReadFrame(ref buffer, out var second));
        Assert.Equal("n", ThriftMessages.ReadHeader(second).Name);
    }

    [Theory]
    [InlineData(ThriftFraming.Framed, ThriftProtocol.Binary)]
    [InlineData(ThriftFraming.Framed, ThriftProtocol.Compact)]
    [InlineData(ThriftFraming.Unframed, ThriftProtocol.Binary)]
    [InlineData(ThriftFraming.Unframed, ThriftProtocol.Compact)]
    [InlineData(ThriftFraming.Header, ThriftProtocol.Compact)]
    public void Pipelined_TwoCallsInOneSegment_AreBothRead(ThriftFraming framing, ThriftProtocol protocol)
    {
        var encoding = new ThriftEncoding(framing, protocol);
        var one = Bytes.Message(encoding, new TMessageHeader("one", TMessageType.Call, 1), Samples.Sample3());
        var two = Bytes.Message(encoding, new TMessageHeader("two", TMessageType.Oneway, 2), Samples.Sample0());
        using var decoder = new ThriftFrameDecoder(encoding);
        var buffer = new ReadOnlySequence<byte>(one.Concat(two).ToArray());
        var names = new List<string>();
        var bodies = new List<DynStruct>();
        while (decoder.TryReadFrame(ref buffer, out var frame))
        {
            var body = new DynStruct();
            names.Add(ThriftMessages.Read(frame, body, out _).Name);
            bodies.Add(body);
        }

        Assert.Equal(["one", "two"], names);
        Assert.Equal(Samples.Sample3(), bodies[0]);
        Assert.Equal(Samples.Sample0(), bodies[1]);
        Assert.True(buffer.IsEmpty);
    }

    [Theory]
    [InlineData("80020001 00000001 6D 00000001", ThriftProtocol.Binary)]
    [InlineData("81010001 00000001 6D 00000001", ThriftProtocol.Binary)]
    [InlineData("83 21 01 01 6D", ThriftProtocol.Compact)]
    [InlineData("82 22 01 01 6D", ThriftProtocol.Compact)]
    public void BadVersion_IsRejected(string hex, ThriftProtocol protocol)
    {
        var bytes = Bytes.Hex(hex);
        var error = ProtocolError(() => ThriftMessages.ReadHeader(Frame(bytes, protocol)));
        Assert.Equal(TProtocolErrorKind.BadVersion, error);
    }

    [Theory]
    [InlineData("8002", "0x8002")]
    [InlineData("8222", "compact protocol version 2")]
    public void BadVersion_IsRejectedAtDetection(string hex, string expected)
    {
        Assert.Equal(ThriftDetectStatus.Rejected, ThriftEncodingDetector.Detect(Bytes.Hex(hex), out _, out var reason));
        Assert.Contains(expected, reason);
    }

    [Theory]
    [InlineData("80010001 FFFFFFFF", ThriftProtocol.Binary, TProtocolErrorKind.NegativeSize)]
    [InlineData("80010001 7FFFFFFF 6D", ThriftProtocol.Binary, TProtocolErrorKind.SizeLimit)]
    [InlineData("82 21 01 FFFFFFFF0F", ThriftProtocol.Compact, TProtocolErrorKind.NegativeSize)]
    [InlineData("82 21 01 FFFFFFFF07 6D", ThriftProtocol.Compact, TProtocolErrorKind.SizeLimit)]
    public void NameLength_NegativeOrHuge_IsRejected(string hex, ThriftProtocol protocol, TProtocolErrorKind kind)
    {
        Assert.Equal(kind, ProtocolError(() => ThriftMessages.ReadHeader(Frame(Bytes.Hex(hex), protocol))));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(255)]
    public void MessageType_OutOfRange_IsReportedWithItsSeqId(int type)
    {
        var bytes = Bytes.Hex($"8001 00{type:X2} 00000001 6D 0000002A 00");
        var header = ThriftMessages.ReadHeader(Frame(bytes, ThriftProtocol.Binary));
        Assert.False(header.HasValidType);
        Assert.Equal(42, header.SeqId);
        Assert.True(new TMessageHeader("m", TMessageType.Reply, 1).HasValidType);
    }

    [Theory]
    // binary: string, binary, list, set, map with count -1
    [InlineData("0B0001 FFFFFFFF", ThriftProtocol.Binary)]
    [InlineData("0F0001 08 FFFFFFFF", ThriftProtocol.Binary)]
    [InlineData("0E0001 08 FFFFFFFF", ThriftProtocol.Binary)]
    [InlineData("0D0001 0808 FFFFFFFF", ThriftProtocol.Binary)]
    // compact: -1 as a 32-bit varint
    [InlineData("18 FFFFFFFF0F", ThriftProtocol.Compact)]
    [InlineData("19 F5 FFFFFFFF0F", ThriftProtocol.Compact)]
    [InlineData("1A F5 FFFFFFFF0F", ThriftProtocol.Compact)]
    [InlineData("1B FFFFFFFF0F 55", ThriftProtocol.Compact)]
    public void NegativeSizes_AreRejected(string hex, ThriftProtocol protocol)
    {
        Assert.Equal(TProtocolErrorKind.NegativeSize, ReadStructError(Bytes.Hex(hex), protocol));
    }

    [Theory]
    // a 1 GB string in a short message, with the string limit lifted: refused by the bytes left
    [InlineData("0B0001 40000000 6162", ThriftProtocol.Binary)]
    [InlineData("18 8080808004 6162", ThriftProtocol.Compact)]
    // map count 2^29 of i32 -> i32
    [InlineData("0D0001 0808 20000000 00000001", ThriftProtocol.Binary)]
    [InlineData("1B 8080808002 55 02", ThriftProtocol.Compact)]
    // list<i64> of 2^29 elements: 2^29 * 8 overflows 32 bits
    [InlineData("0F0001 0A 20000000 0000000000000001", ThriftProtocol.Binary)]
    [InlineData("19 F6 8080808002 02", ThriftProtocol.Compact)]
    public void BigDeclaredSizes_AreRefusedBeforeAllocating(string hex, ThriftProtocol protocol)
    {
        var unlimited = new ThriftLimits { MaxStringLength = int.MaxValue, MaxContainerCount = int.MaxValue };
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(TProtocolErrorKind.SizeLimit, ReadStructError(Bytes.Hex(hex), protocol, unlimited));
        Assert.Equal(TProtocolErrorKind.SizeLimit, ReadStructError(Bytes.Hex(hex), protocol));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1024 * 1024, "a declared size must not be allocated");
    }

    [Fact]
    public void ConfiguredLimits_AreEnforced()
    {
        var limits = new ThriftLimits { MaxStringLength = 3, MaxContainerCount = 2 };
        Assert.Equal(TProtocolErrorKind.SizeLimit, ReadStructError(Bytes.Write(new DynStruct().Add(1, DynValue.Str("abcd")), ThriftProtocol.Compact), ThriftProtocol.Compact, limits));
        Assert.Equal(TProtocolErrorKind.SizeLimit, ReadStructError(
            Bytes.Write(new DynStruct().Add(1, DynValue.List(TType.Byte, [DynValue.Byte(1), DynValue.Byte(2), DynValue.Byte(3)])), ThriftProtocol.Binary), ThriftProtocol.Binary, limits));
        Assert.NotNull(Bytes.ReadStruct(Bytes.Write(new DynStruct().Add(1, DynValue.Str("abc")), ThriftProtocol.Binary), ThriftProtocol.Binary, limits));
    }

    [Theory]
    [InlineData("16 FFFFFFFFFFFFFFFFFFFF01 00")] // i64 varint of 11 bytes
    [InlineData("16 FFFFFFFFFFFFFFFFFF7F 00")]   // 10 bytes but more than 64 bits
    [InlineData("15 FFFFFFFFFF01 00")]           // i32 varint of 6 bytes
    [InlineData("15 FFFFFFFF1F 00")]             // 5 bytes but more than 32 bits
    public void Varints_TooLong_AreInvalidData(string hex)
    {
        Assert.Equal(TProtocolErrorKind.InvalidData, ReadStructError(Bytes.Hex(hex), ThriftProtocol.Compact));
    }

    [Theory]
    [InlineData("200001 00", ThriftProtocol.Binary)]
    [InlineData("050001 00", ThriftProtocol.Binary)]
    [InlineData("0F0001 20 00000001 00", ThriftProtocol.Binary)]
    [InlineData("1E 00", ThriftProtocol.Compact)]
    [InlineData("19 1E 00", ThriftProtocol.Compact)]
    public void UnknownType_IsAnErrorAtOnce(string hex, ThriftProtocol protocol)
    {
        Assert.Equal(TProtocolErrorKind.InvalidData, ReadStructError(Bytes.Hex(hex), protocol));
        var error = Record.Exception(() => Skip(Bytes.Hex(hex), protocol));
        Assert.Equal(TProtocolErrorKind.InvalidData, Assert.IsType<TProtocolException>(error).Kind);
    }

    [Theory]
    [InlineData(ThriftProtocol.Binary, "struct")]
    [InlineData(ThriftProtocol.Binary, "list")]
    [InlineData(ThriftProtocol.Binary, "map")]
    [InlineData(ThriftProtocol.Compact, "struct")]
    [InlineData(ThriftProtocol.Compact, "list")]
    [InlineData(ThriftProtocol.Compact, "map")]
    public void Depth_100kNesting_IsDepthLimit_NotAStackOverflow(ThriftProtocol protocol, string shape)
    {
        var bytes = Nested(protocol, shape, 100_000);
        Assert.Equal(TProtocolErrorKind.DepthLimit, ReadStructError(bytes, protocol));
        Assert.Equal(TProtocolErrorKind.DepthLimit, Assert.IsType<TProtocolException>(Record.Exception(() => Skip(bytes, protocol))).Kind);

        // exactly at the limit is fine: the top-level struct is depth 1
        var limits = new ThriftLimits { MaxDepth = 10 };
        Assert.NotNull(Bytes.ReadStruct(Nested(protocol, shape, 9), protocol, limits));
        Assert.Equal(TProtocolErrorKind.DepthLimit, ReadStructError(Nested(protocol, shape, 10), protocol, limits));
    }

    [Fact]
    public void LongLived_100MBOfSmallMessages_NeverTripsASizeLimit()
    {
        var limits = new ThriftLimits { MaxFrameSize = 4096 };
        var encoding = ThriftEncoding.FramedCompact;
        var one = Bytes.Message(encoding, new TMessageHeader("echo", TMessageType.Call, 1), new DynStruct().Add(1, DynValue.Bin(new byte[1000])));
        var batch = Enumerable.Repeat(one, 1000).SelectMany(b => b).ToArray();
        using var decoder = new ThriftFrameDecoder(encoding, limits);
        long total = 0, frames = 0;
        while (total < 100L * 1024 * 1024)
        {
            var buffer = new ReadOnlySequence<byte>(batch);
            while (decoder.TryReadFrame(ref buffer, out var frame))
            {
                Assert.Equal("echo", ThriftMessages.ReadHeader(frame, limits).Name);
                frames++;
            }

            total += batch.Length;
        }

        Assert.Equal(total / one.Length, frames);
    }

    private static ThriftFrame Frame(byte[] payload, ThriftProtocol protocol)
    {
        var framed = new byte[payload.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(framed, payload.Length);
        payload.CopyTo(framed, 4);
        var decoder = new ThriftFrameDecoder(new ThriftEncoding(ThriftFraming.Framed, protocol));
        var buffer = new ReadOnlySequence<byte>(framed);
        Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
        return frame;
    }

    private static void Skip(byte[] bytes, ThriftProtocol protocol)
    {
        if (protocol == ThriftProtocol.Binary)
        {
            var r = new ThriftBinaryReader(bytes);
            r.Skip(TType.Struct);
        }
        else
        {
            var r = new ThriftCompactReader(bytes);
            r.Skip(TType.Struct);
        }
    }

    /// <summary>A struct whose field 1 nests <paramref name="levels"/> levels of structs, lists or maps.</summary>
    private static byte[] Nested(ThriftProtocol protocol, string shape, int levels)
    {
        var bytes = new List<byte>();
        var binary = protocol == ThriftProtocol.Binary;
        switch (shape)
        {
            case "struct":
                for (var i = 0; i < levels; i++) bytes.AddRange(binary ? [0x0C, 0x00, 0x01] : [0x1C]);
                for (var i = 0; i <= levels; i++) bytes.Add(0);
                break;
            case "list":
                bytes.AddRange(binary ? [0x0F, 0x00, 0x01] : [0x19]);
                for (var i = 1; i < levels; i++) bytes.AddRange(binary ? [0x0F, 0x00, 0x00, 0x00, 0x01] : [0x19]);
                bytes.AddRange(binary ? [0x08, 0x00, 0x00, 0x00, 0x00] : [0x05]);
                bytes.Add(0);
                break;
            case "map":
                // map<i32, map<i32, ...>> with one entry per level
                bytes.AddRange(binary ? [0x0D, 0x00, 0x01] : [0x1B]);
                for (var i = 1; i < levels; i++) bytes.AddRange(binary ? [0x08, 0x0D, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07] : [0x01, 0x5B, 0x0E]);
                bytes.AddRange(binary ? [0x08, 0x08, 0x00, 0x00, 0x00, 0x00] : [0x00]);
                bytes.Add(0);
                break;
        }

        return bytes.ToArray();
    }
}
