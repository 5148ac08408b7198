using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

/// <summary>Byte layouts from Apache Thrift's binary and compact protocol specifications.</summary>
public class ProtocolEncodingTests
{
    private static readonly Guid SampleUuid = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");

    [Fact]
    public void Binary_MessageHeader_IsStrictVersionNameSeqId()
    {
        var bytes = Encode(ThriftProtocol.Binary, (ref ThriftBinaryWriter w) => w.WriteMessageBegin(new TMessageHeader("ping", TMessageType.Call, 1)),
            (ref ThriftCompactWriter w) => { });
        Assert.Equal("80010001" + "00000004" + "70696E67" + "00000001", bytes);
    }

    [Fact]
    public void Compact_MessageHeader_IsProtocolIdTypeVersionSeqIdName()
    {
        var bytes = Encode(ThriftProtocol.Compact, (ref ThriftBinaryWriter w) => { },
            (ref ThriftCompactWriter w) => w.WriteMessageBegin(new TMessageHeader("ping", TMessageType.Oneway, 300)));
        Assert.Equal("82" + "81" + "AC02" + "04" + "70696E67", bytes);
    }

    [Fact]
    public void Binary_Values_AreBigEndian()
    {
        var hex = Encode(ThriftProtocol.Binary, (ref ThriftBinaryWriter w) =>
        {
            w.WriteFieldBegin(TType.I32, 1);
            w.WriteI32(int.MaxValue);
            w.WriteI16(-2);
            w.WriteI64(1);
            w.WriteDouble(1.0);
            w.WriteBool(true);
            w.WriteByte(-1);
            w.WriteString("é");
            w.WriteBinary([0xAB]);
            w.WriteUuid(SampleUuid);
            w.WriteListBegin(TType.I32, 2);
            w.WriteMapBegin(TType.String, TType.I64, 1);
            w.WriteFieldStop();
        }, (ref ThriftCompactWriter w) => { });
        Assert.Equal(
            "080001" + "7FFFFFFF" + "FFFE" + "0000000000000001" + "3FF0000000000000" + "01" + "FF" + "00000002C3A9" + "00000001AB" +
            "00112233445566778899AABBCCDDEEFF" + "0800000002" + "0B0A00000001" + "00", hex);
    }

    [Fact]
    public void Compact_Values_UseZigZagVarintsAndLittleEndianDoubles()
    {
        var hex = Encode(ThriftProtocol.Compact, (ref ThriftBinaryWriter w) => { }, (ref ThriftCompactWriter w) =>
        {
            w.WriteI32(-25200);       // zigzag 50399 = DF 89 03, the spec's varint example
            w.WriteI16(-1);
            w.WriteI64(long.MinValue);
            w.WriteDouble(1.0);
            w.WriteString("é");
            w.WriteBinary([0xAB]);
            w.WriteUuid(SampleUuid);
            w.WriteByte(-1);
        });
        Assert.Equal("DF8903" + "01" + "FFFFFFFFFFFFFFFFFF01" + "000000000000F03F" + "02C3A9" + "01AB" + "00112233445566778899AABBCCDDEEFF" + "FF", hex);
    }

    [Fact]
    public void Compact_FieldHeaders_UseDeltasUpTo15_ThenLongForm()
    {
        var hex = Encode(ThriftProtocol.Compact, (ref ThriftBinaryWriter w) => { }, (ref ThriftCompactWriter w) =>
        {
            var scope = w.WriteStructBegin();
            w.WriteFieldBegin(TType.I32, 1);
            w.WriteI32(150);
            w.WriteFieldBegin(TType.Bool, 2);
            w.WriteBool(true);
            w.WriteFieldBegin(TType.Bool, 3);
            w.WriteBool(false);
            w.WriteFieldBegin(TType.I32, 40);   // delta 37: long form
            w.WriteI32(0);
            w.WriteFieldBegin(TType.I32, 7);    // going backwards: long form
            w.WriteI32(0);
            w.WriteFieldStop();
            w.WriteStructEnd(scope);
        });
        Assert.Equal("15AC02" + "11" + "12" + "0550" + "00" + "050E" + "00" + "00", hex);
    }

    [Fact]
    public void Compact_NestedStruct_RestoresTheOuterFieldIdDelta()
    {
        var hex = Encode(ThriftProtocol.Compact, (ref ThriftBinaryWriter w) => { }, (ref ThriftCompactWriter w) =>
        {
            var outer = w.WriteStructBegin();
            w.WriteFieldBegin(TType.Struct, 5);
            var inner = w.WriteStructBegin();
            w.WriteFieldBegin(TType.I32, 1);
            w.WriteI32(1);
            w.WriteFieldStop();
            w.WriteStructEnd(inner);
            w.WriteFieldBegin(TType.I32, 6);    // delta 1 from 5, not from the inner 1
            w.WriteI32(1);
            w.WriteFieldStop();
            w.WriteStructEnd(outer);
        });
        Assert.Equal("5C" + "1502" + "00" + "1502" + "00", hex);
    }

    [Fact]
    public void Compact_Containers_UseShortFormBelow15()
    {
        var hex = Encode(ThriftProtocol.Compact, (ref ThriftBinaryWriter w) => { }, (ref ThriftCompactWriter w) =>
        {
            w.WriteListBegin(TType.I32, 3);
            w.WriteListBegin(TType.I32, 14);
            w.WriteSetBegin(TType.String, 15);
            w.WriteListBegin(TType.Bool, 1);
            w.WriteBool(true);
            w.WriteBool(false);
            w.WriteMapBegin(TType.String, TType.I64, 0);
            w.WriteMapBegin(TType.String, TType.I64, 1);
            w.WriteListBegin(TType.Uuid, 0);
        });
        Assert.Equal("35" + "E5" + "F80F" + "11" + "01" + "02" + "00" + "0186" + "0D", hex);
    }

    [Theory]
    [InlineData(ThriftProtocol.Binary)]
    [InlineData(ThriftProtocol.Compact)]
    public void Uuid_RoundTrips(ThriftProtocol protocol)
    {
        var value = new DynStruct().Add(1, DynValue.Uuid(SampleUuid)).Add(2, DynValue.List(TType.Uuid, [DynValue.Uuid(Guid.Empty), DynValue.Uuid(SampleUuid)]));
        var bytes = Bytes.Write(value, protocol);
        Assert.Equal(value, Bytes.ReadStruct(bytes, protocol));
    }

    [Fact]
    public void Binary_NonStrictMessage_IsReadUnlessStrictReadIsOn()
    {
        var bytes = Bytes.Hex("00000004 70696E67 01 00000007");
        var lenient = new ThriftBinaryReader(bytes);
        Assert.Equal(new TMessageHeader("ping", TMessageType.Call, 7), lenient.ReadMessageBegin());

        var strict = new ThriftBinaryReader(bytes, strictRead: true);
        var error = Record.Exception(() => { var r = new ThriftBinaryReader(bytes, strictRead: true); r.ReadMessageBegin(); });
        Assert.Equal(TProtocolErrorKind.BadVersion, Assert.IsType<TProtocolException>(error).Kind);
        Assert.Equal(0, strict.Position);
    }

    [Fact]
    public void Compact_BoolElements_AcceptOneAsTrue_ZeroAndTwoAsFalse_RejectOthers()
    {
        var reader = new ThriftCompactReader(Bytes.Hex("31 01 00 02"));
        var list = reader.ReadListBegin();
        Assert.Equal(new TListHeader(TType.Bool, 3), list);
        Assert.True(reader.ReadBool());
        Assert.False(reader.ReadBool());
        Assert.False(reader.ReadBool());

        var error = Record.Exception(() => { var r = new ThriftCompactReader(Bytes.Hex("11 07")); r.ReadListBegin(); r.ReadBool(); });
        Assert.Equal(TProtocolErrorKind.InvalidData, Assert.IsType<TProtocolException>(error).Kind);
    }

    [Theory]
    [InlineData(ThriftProtocol.Binary)]
    [InlineData(ThriftProtocol.Compact)]
    public void TApplicationException_RoundTrips_AndSkipsFieldsOfTheWrongType(ThriftProtocol protocol)
    {
        foreach (var type in Enum.GetValues<TApplicationExceptionType>())
        {
            var bytes = Bytes.Write(new TApplicationException(type, $"failed: {type}"), protocol);
            var decoded = ReadApplicationException(bytes, protocol);
            Assert.Equal(type, decoded.Type);
            Assert.Equal($"failed: {type}", decoded.Message);
        }

        // message sent as an i32 and type as a string: both skipped, defaults kept
        var odd = Bytes.Write(new DynStruct().Add(1, DynValue.I32(5)).Add(2, DynValue.Str("x")).Add(9, DynValue.Double(1)), protocol);
        var fallback = ReadApplicationException(odd, protocol);
        Assert.Equal(TApplicationExceptionType.Unknown, fallback.Type);
        Assert.Equal("", fallback.Message);
    }

    private static TApplicationException ReadApplicationException(byte[] bytes, ThriftProtocol protocol)
    {
        if (protocol == ThriftProtocol.Binary)
        {
            var r = new ThriftBinaryReader(bytes);
            return TApplicationException.Read(ref r);
        }

        var c = new ThriftCompactReader(bytes);
        return TApplicationException.Read(ref c);
    }

    private delegate void BinaryBody(ref ThriftBinaryWriter writer);
    private delegate void CompactBody(ref ThriftCompactWriter writer);

    private static string Encode(ThriftProtocol protocol, BinaryBody binary, CompactBody compact)
    {
        using var buffer = new Buffers.PooledBufferWriter();
        if (protocol == ThriftProtocol.Binary)
        {
            var w = new ThriftBinaryWriter(buffer);
            binary(ref w);
            w.Flush();
        }
        else
        {
            var w = new ThriftCompactWriter(buffer);
            compact(ref w);
            w.Flush();
        }

        return Bytes.ToHex(buffer.WrittenSpan);
    }
}
