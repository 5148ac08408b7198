using System.Buffers;
using System.Globalization;
using Google.Protobuf;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;
using ThriftOrder = Trellis.Bench.Serialization.ThriftModel.Order;
using ProtoOrder = Trellis.Bench.Serialization.ProtoModel.Order;

namespace Trellis.Bench.Serialization;

/// <summary>
/// The benchmark's inputs: the order in both models and its three encodings, checked to round-trip
/// before anything is measured.
/// </summary>
public sealed class Fixture
{
    private Fixture(ThriftOrder thrift, ProtoOrder proto, byte[] protoBytes, byte[] thriftBinary, byte[] thriftCompact)
    {
        Thrift = thrift;
        Proto = proto;
        ProtoBytes = protoBytes;
        ThriftBinaryBytes = thriftBinary;
        ThriftCompactBytes = thriftCompact;
    }

    public ThriftOrder Thrift { get; }

    public ProtoOrder Proto { get; }

    public byte[] ProtoBytes { get; }

    public byte[] ThriftBinaryBytes { get; }

    public byte[] ThriftCompactBytes { get; }

    public string Sizes => string.Create(CultureInfo.InvariantCulture,
        $"sizes: protobuf {ProtoBytes.Length} B, thrift binary {ThriftBinaryBytes.Length} B, thrift compact {ThriftCompactBytes.Length} B");

    /// <summary>
    /// Builds the order, encodes it in each format once and checks that each decodes back to the
    /// source data. Throws <see cref="InvalidOperationException"/> naming the first difference.
    /// </summary>
    public static Fixture CreateVerified()
    {
        var thrift = SampleData.CreateThrift();
        var proto = SampleData.CreateProto();
        Check("source thrift vs source protobuf", OrderEquality.Difference(thrift, proto));

        // Protobuf, through the same IBufferWriter path the benchmark uses.
        var protoWriter = new ArrayBufferWriter<byte>();
        proto.WriteTo(protoWriter);
        var protoBytes = protoWriter.WrittenSpan.ToArray();
        Expect(protoBytes.Length == proto.CalculateSize(), "protobuf: written size differs from CalculateSize()");
        var protoDecoded = ProtoOrder.Parser.ParseFrom(new ReadOnlySpan<byte>(protoBytes));
        Expect(protoDecoded.Equals(proto), "protobuf: decoded message differs from the source (generated Equals)");
        Check("protobuf decoded vs thrift source", OrderEquality.Difference(thrift, protoDecoded));

        var binary = EncodeThrift(thrift, ThriftProtocol.Binary);
        var compact = EncodeThrift(thrift, ThriftProtocol.Compact);
        VerifyThrift(thrift, proto, binary, ThriftProtocol.Binary);
        VerifyThrift(thrift, proto, compact, ThriftProtocol.Compact);
        Expect(binary.Length != compact.Length, "thrift: binary and compact encodings have the same size");

        VerifySkipping(ThriftProtocol.Binary);
        VerifySkipping(ThriftProtocol.Compact);

        return new Fixture(thrift, proto, protoBytes, binary, compact);
    }

    private static byte[] EncodeThrift(ThriftOrder order, ThriftProtocol protocol)
    {
        using var buffer = new PooledBufferWriter();
        if (protocol == ThriftProtocol.Binary)
        {
            var writer = new ThriftBinaryWriter(buffer);
            order.Write(ref writer);
            writer.Flush();
        }
        else
        {
            var writer = new ThriftCompactWriter(buffer);
            order.Write(ref writer);
            writer.Flush();
        }

        var bytes = buffer.WrittenSpan.ToArray();
        var viaSerializer = ThriftSerializer.Serialize(order, protocol);
        Expect(bytes.AsSpan().SequenceEqual(viaSerializer), $"thrift {protocol}: ThriftSerializer.Serialize wrote other bytes");
        return bytes;
    }

    private static void VerifyThrift(ThriftOrder source, ProtoOrder proto, byte[] bytes, ThriftProtocol protocol)
    {
        var decoded = new ThriftOrder();
        int consumed;
        if (protocol == ThriftProtocol.Binary)
        {
            var reader = new ThriftBinaryReader(bytes);
            decoded.Read(ref reader);
            consumed = reader.Position;
        }
        else
        {
            var reader = new ThriftCompactReader(bytes);
            decoded.Read(ref reader);
            consumed = reader.Position;
        }

        Expect(consumed == bytes.Length, $"thrift {protocol}: read {consumed} of {bytes.Length} bytes");
        Check($"thrift {protocol} decoded vs thrift source", OrderEquality.Difference(source, decoded));
        Check($"thrift {protocol} decoded vs protobuf source", OrderEquality.Difference(decoded, proto));

        var viaSerializer = ThriftSerializer.Deserialize<ThriftOrder>(bytes, protocol);
        Check($"thrift {protocol} ThriftSerializer.Deserialize", OrderEquality.Difference(source, viaSerializer));
    }

    /// <summary>
    /// Read must skip unknown fields and fields whose wire type differs from the IDL (and containers
    /// whose element types differ), and keep reading the fields that follow.
    /// </summary>
    private static void VerifySkipping(ThriftProtocol protocol)
    {
        using var buffer = new PooledBufferWriter();
        if (protocol == ThriftProtocol.Binary)
        {
            var writer = new ThriftBinaryWriter(buffer);
            WriteMismatched(ref writer);
            writer.Flush();
        }
        else
        {
            var writer = new ThriftCompactWriter(buffer);
            WriteMismatched(ref writer);
            writer.Flush();
        }

        var decoded = ThriftSerializer.Deserialize<ThriftOrder>(buffer.WrittenSpan, protocol);
        var where = $"thrift {protocol} skipping";
        Expect(!decoded.IsSetId, $"{where}: id sent as a string was not skipped");
        Expect(decoded.Items is null, $"{where}: list<i32> in the items field was not skipped");
        Expect(decoded.Attributes is null, $"{where}: map<string, i32> in the attributes field was not skipped");
        Expect(decoded.Address is null, $"{where}: an i64 in the address field was not skipped");
        Expect(decoded.Customer == "after-skips", $"{where}: customer after the skipped fields is <{decoded.Customer}>");
        Expect(decoded.IsSetStatus && decoded.Status == 5, $"{where}: status after the skipped fields is {decoded.Status}");
        Expect(decoded.Token is { Length: 2 } && decoded.Token[0] == 0xAB && decoded.Token[1] == 0xCD, $"{where}: token after the skipped fields is wrong");
    }

    private static void WriteMismatched<TWriter>(ref TWriter w)
        where TWriter : IThriftWriter, allows ref struct
    {
        var scope = w.WriteStructBegin();

        w.WriteFieldBegin(TType.String, 1); // id is an i64
        w.WriteString("not an i64");
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.Struct, 42); // unknown, nested
        var inner = w.WriteStructBegin();
        w.WriteFieldBegin(TType.I32, 1);
        w.WriteI32(7);
        w.WriteFieldEnd();
        w.WriteFieldBegin(TType.List, 2);
        w.WriteListBegin(TType.String, 2);
        w.WriteString("a");
        w.WriteString("b");
        w.WriteListEnd();
        w.WriteFieldEnd();
        w.WriteFieldBegin(TType.Bool, 3);
        w.WriteBool(true);
        w.WriteFieldEnd();
        w.WriteFieldStop();
        w.WriteStructEnd(inner);
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.List, 4); // list<Item> expected
        w.WriteListBegin(TType.I32, 3);
        w.WriteI32(1);
        w.WriteI32(2);
        w.WriteI32(3);
        w.WriteListEnd();
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.Map, 5); // map<string, string> expected
        w.WriteMapBegin(TType.String, TType.I32, 1);
        w.WriteString("k");
        w.WriteI32(1);
        w.WriteMapEnd();
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.I64, 3); // address is a struct
        w.WriteI64(123);
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.Bool, 99); // unknown bool (folded into the header in compact)
        w.WriteBool(false);
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.I32, 6);
        w.WriteI32(5);
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.String, 2);
        w.WriteString("after-skips");
        w.WriteFieldEnd();

        w.WriteFieldBegin(TType.String, 7);
        w.WriteBinary([0xAB, 0xCD]);
        w.WriteFieldEnd();

        w.WriteFieldStop();
        w.WriteStructEnd(scope);
    }

    private static void Check(string what, string? difference)
    {
        if (difference is not null)
        {
            throw new InvalidOperationException($"verification failed, {what}: {difference}");
        }
    }

    private static void Expect(bool condition, string message)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"verification failed: {message}");
        }
    }
}
