using Trellis.Thrift.Buffers;

namespace Trellis.Thrift;

/// <summary>
/// Re-encodes a message body (one struct: arguments, result or exception) from one protocol to the other without
/// knowing its schema, so a forwarder can join a compact client to a binary server. Every value passes through the
/// reader's limits and depth check; an unknown type id is an error at once.
/// </summary>
public static class ThriftTranscoder
{
    /// <summary>Appends <paramref name="body"/>, a struct in <paramref name="from"/>, to <paramref name="output"/> in <paramref name="to"/>.</summary>
    /// <returns>The bytes of <paramref name="body"/> the struct took.</returns>
    public static int CopyStruct(ReadOnlySpan<byte> body, ThriftProtocol from, PooledBufferWriter output, ThriftProtocol to, ThriftLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (from == ThriftProtocol.Binary)
        {
            var reader = new ThriftBinaryReader(body, limits);
            Into(ref reader, output, to);
            return reader.Position;
        }

        var compact = new ThriftCompactReader(body, limits);
        Into(ref compact, output, to);
        return compact.Position;
    }

    private static void Into<TReader>(ref TReader reader, PooledBufferWriter output, ThriftProtocol to)
        where TReader : IThriftReader, allows ref struct
    {
        if (to == ThriftProtocol.Binary)
        {
            var writer = new ThriftBinaryWriter(output);
            Copy(ref reader, ref writer, TType.Struct);
            writer.Flush();
        }
        else
        {
            var writer = new ThriftCompactWriter(output);
            Copy(ref reader, ref writer, TType.Struct);
            writer.Flush();
        }
    }

    /// <summary>Copies one value of <paramref name="type"/>, nested values included.</summary>
    public static void Copy<TReader, TWriter>(ref TReader reader, ref TWriter writer, TType type)
        where TReader : IThriftReader, allows ref struct
        where TWriter : IThriftWriter, allows ref struct
    {
        switch (type)
        {
            case TType.Bool:
                writer.WriteBool(reader.ReadBool());
                break;
            case TType.Byte:
                writer.WriteByte(reader.ReadByte());
                break;
            case TType.I16:
                writer.WriteI16(reader.ReadI16());
                break;
            case TType.I32:
                writer.WriteI32(reader.ReadI32());
                break;
            case TType.I64:
                writer.WriteI64(reader.ReadI64());
                break;
            case TType.Double:
                writer.WriteDouble(reader.ReadDouble());
                break;
            case TType.String:
                writer.WriteBinary(reader.ReadBinarySpan());
                break;
            case TType.Uuid:
                writer.WriteUuid(reader.ReadUuid());
                break;
            case TType.Struct:
                var scope = reader.ReadStructBegin();
                var into = writer.WriteStructBegin();
                while (true)
                {
                    var field = reader.ReadFieldBegin();
                    if (field.IsStop)
                    {
                        break;
                    }

                    writer.WriteFieldBegin(field.Type, field.Id);
                    Copy(ref reader, ref writer, field.Type);
                    writer.WriteFieldEnd();
                    reader.ReadFieldEnd();
                }

                writer.WriteFieldStop();
                writer.WriteStructEnd(into);
                reader.ReadStructEnd(scope);
                break;
            case TType.List:
                var list = reader.ReadListBegin();
                writer.WriteListBegin(list.ElementType, list.Count);
                for (var i = 0; i < list.Count; i++)
                {
                    Copy(ref reader, ref writer, list.ElementType);
                }

                writer.WriteListEnd();
                reader.ReadListEnd();
                break;
            case TType.Set:
                var set = reader.ReadSetBegin();
                writer.WriteSetBegin(set.ElementType, set.Count);
                for (var i = 0; i < set.Count; i++)
                {
                    Copy(ref reader, ref writer, set.ElementType);
                }

                writer.WriteSetEnd();
                reader.ReadSetEnd();
                break;
            case TType.Map:
                var map = reader.ReadMapBegin();
                writer.WriteMapBegin(map.KeyType, map.ValueType, map.Count);
                for (var i = 0; i < map.Count; i++)
                {
                    Copy(ref reader, ref writer, map.KeyType);
                    Copy(ref reader, ref writer, map.ValueType);
                }

                writer.WriteMapEnd();
                reader.ReadMapEnd();
                break;
            default:
                throw new TProtocolException(TProtocolErrorKind.InvalidData, $"unknown type id {(int)type}");
        }
    }
}
