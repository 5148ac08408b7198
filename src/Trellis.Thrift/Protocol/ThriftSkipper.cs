namespace Trellis.Thrift;

/// <summary>
/// Skips values of any type without allocating. Recursion is bounded because every struct and
/// container level passes through the reader's depth check first; an unknown type id is an error
/// at once (the endless-loop class of CVE-2019-0205 cannot happen).
/// </summary>
public static class ThriftSkipper
{
    public static void Skip<TReader>(ref TReader reader, TType type)
        where TReader : IThriftReader, allows ref struct
    {
        switch (type)
        {
            case TType.Bool:
                reader.ReadBool();
                break;
            case TType.Byte:
                reader.ReadByte();
                break;
            case TType.I16:
                reader.ReadI16();
                break;
            case TType.I32:
                reader.ReadI32();
                break;
            case TType.I64:
                reader.ReadI64();
                break;
            case TType.Double:
                reader.ReadDouble();
                break;
            case TType.String:
                reader.ReadBinarySpan();
                break;
            case TType.Uuid:
                reader.ReadUuid();
                break;
            case TType.Struct:
                var scope = reader.ReadStructBegin();
                while (true)
                {
                    var field = reader.ReadFieldBegin();
                    if (field.IsStop)
                    {
                        break;
                    }

                    Skip(ref reader, field.Type);
                    reader.ReadFieldEnd();
                }

                reader.ReadStructEnd(scope);
                break;
            case TType.List:
                var list = reader.ReadListBegin();
                for (var i = 0; i < list.Count; i++)
                {
                    Skip(ref reader, list.ElementType);
                }

                reader.ReadListEnd();
                break;
            case TType.Set:
                var set = reader.ReadSetBegin();
                for (var i = 0; i < set.Count; i++)
                {
                    Skip(ref reader, set.ElementType);
                }

                reader.ReadSetEnd();
                break;
            case TType.Map:
                var map = reader.ReadMapBegin();
                for (var i = 0; i < map.Count; i++)
                {
                    Skip(ref reader, map.KeyType);
                    Skip(ref reader, map.ValueType);
                }

                reader.ReadMapEnd();
                break;
            default:
                throw new TProtocolException(TProtocolErrorKind.InvalidData, $"cannot skip a value of unknown type id {(int)type}");
        }
    }
}
