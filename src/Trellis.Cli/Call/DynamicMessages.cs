using System.Text.Json.Nodes;
using Trellis.Thrift;
using Trellis.Thrift.Idl.Semantics;

namespace Trellis.Cli.Call;

/// <summary>A call's arguments, checked and built once from JSON; written in whatever protocol the channel speaks.</summary>
internal sealed class DynamicArguments(StructValue value) : IThriftWritable
{
    public StructValue Value { get; } = value;

    public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct => DynamicCodec.Write(ref writer, Value);
}

/// <summary>
/// A reply's result struct read by the IDL: field 0 the return value, the others the declared exceptions; unknown
/// fields skipped. With <c>decode</c> false only which field arrived is noted (the load generator's case).
/// </summary>
internal sealed class DynamicResult(FunctionSymbol function, bool decode = true) : IThriftStruct
{
    /// <summary>The field that arrived: 0 the return value, else a declared exception's id; null if none did.</summary>
    public short? FieldId { get; private set; }

    public JsonNode? Value { get; private set; }

    /// <summary>The declared exception that arrived, if one did.</summary>
    public FieldSymbol? Exception { get; private set; }

    public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct =>
        throw new NotSupportedException("a dynamic result is only read");

    public void Read<TReader>(ref TReader reader) where TReader : IThriftReader, allows ref struct
    {
        FieldId = null;
        Value = null;
        Exception = null;
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var header = reader.ReadFieldBegin();
            if (header.IsStop)
            {
                break;
            }

            var declared = header.Id == 0 ? null : function.Throws.Find(t => t.Id == header.Id);
            var type = header.Id == 0 ? function.ReturnType : declared?.Type;
            if (type is null || DynamicCodec.WireType(type) != header.Type)
            {
                reader.Skip(header.Type);
            }
            else
            {
                FieldId = header.Id;
                Exception = declared;
                Value = decode ? DynamicCodec.Read(ref reader, header.Type, type) : Skip(ref reader, header.Type);
            }

            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
    }

    private static JsonNode? Skip<TReader>(ref TReader reader, TType type) where TReader : IThriftReader, allows ref struct
    {
        reader.Skip(type);
        return null;
    }
}
