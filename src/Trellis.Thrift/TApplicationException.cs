namespace Trellis.Thrift;

/// <summary>
/// The error a server sends in an EXCEPTION message when a call failed outside the IDL's
/// declared exceptions (unknown method, bad message, internal error, …).
/// On the wire it is a struct: <c>1: string message, 2: i32 type</c>.
/// </summary>
public sealed class TApplicationException : TException, IThriftWritable
{
    private const short MessageFieldId = 1;
    private const short TypeFieldId = 2;

    public TApplicationException(TApplicationExceptionType type, string message) : base(message) => Type = type;

    public TApplicationException(TApplicationExceptionType type, string message, Exception? inner) : base(message, inner) => Type = type;

    public TApplicationExceptionType Type { get; }

    /// <summary>Reads the struct of an EXCEPTION message; unknown fields are skipped.</summary>
    public static TApplicationException Read<TReader>(ref TReader reader)
        where TReader : IThriftReader, allows ref struct
    {
        string message = "";
        var type = TApplicationExceptionType.Unknown;
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var field = reader.ReadFieldBegin();
            if (field.IsStop)
            {
                break;
            }

            switch (field.Id)
            {
                case MessageFieldId when field.Type == TType.String:
                    message = reader.ReadString();
                    break;
                case TypeFieldId when field.Type == TType.I32:
                    type = (TApplicationExceptionType)reader.ReadI32();
                    break;
                default:
                    reader.Skip(field.Type);
                    break;
            }

            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
        return new TApplicationException(type, message);
    }

    /// <summary>Writes the struct of an EXCEPTION message (the envelope is the caller's).</summary>
    public void Write<TWriter>(ref TWriter writer)
        where TWriter : IThriftWriter, allows ref struct
    {
        var scope = writer.WriteStructBegin();
        writer.WriteFieldBegin(TType.String, MessageFieldId);
        writer.WriteString(Message);
        writer.WriteFieldEnd();
        writer.WriteFieldBegin(TType.I32, TypeFieldId);
        writer.WriteI32((int)Type);
        writer.WriteFieldEnd();
        writer.WriteFieldStop();
        writer.WriteStructEnd(scope);
    }
}
