namespace Trellis.Thrift;

/// <summary>Checks and errors that generated Read/Write code shares, kept out of the generated files.</summary>
public static class ThriftGenerated
{
    /// <summary>A list or set whose elements are not of the declared type cannot be read into it.</summary>
    public static void CheckElements(in TListHeader header, TType expected, string what)
    {
        if (header.Count > 0 && header.ElementType != expected)
        {
            throw new TProtocolException(TProtocolErrorKind.InvalidData, $"{what} holds elements of type {header.ElementType}, expected {expected}");
        }
    }

    public static void CheckEntries(in TMapHeader header, TType expectedKey, TType expectedValue, string what)
    {
        if (header.Count > 0 && (header.KeyType != expectedKey || header.ValueType != expectedValue))
        {
            throw new TProtocolException(TProtocolErrorKind.InvalidData,
                $"{what} holds {header.KeyType} -> {header.ValueType} entries, expected {expectedKey} -> {expectedValue}");
        }
    }

    public static TProtocolException MissingRequired(string field, string type) =>
        new(TProtocolErrorKind.InvalidData, $"required field '{field}' of {type} is missing");

    public static TProtocolException RequiredIsNull(string field, string type) =>
        new(TProtocolErrorKind.InvalidData, $"required field '{field}' of {type} is null");

    public static TProtocolException UnionFieldCount(string type, int count) =>
        new(TProtocolErrorKind.InvalidData, $"union {type} must hold exactly one field, not {count}");

    public static TApplicationException MissingResult(string method) =>
        new(TApplicationExceptionType.MissingResult, $"{method} failed: the reply holds neither a result nor a declared exception");
}
