namespace Trellis.Thrift;

/// <summary>
/// Reads Thrift values in one protocol from a contiguous buffer that holds one whole message.
/// Implemented by ref structs (<see cref="ThriftBinaryReader"/>, <see cref="ThriftCompactReader"/>);
/// generated code takes the reader as a generic <c>ref TReader</c> with <c>allows ref struct</c>.
/// </summary>
/// <remarks>
/// Every size is checked against <see cref="ThriftLimits"/> and against the bytes actually left
/// before anything is allocated; nesting is counted and bounded by <see cref="ThriftLimits.MaxDepth"/>.
/// Errors are <see cref="TProtocolException"/> (bad or oversized data) or
/// <see cref="TTransportException"/> with <see cref="TTransportErrorKind.EndOfFile"/> (the buffer ended early).
/// </remarks>
public interface IThriftReader
{
    /// <summary>Bytes consumed so far.</summary>
    int Position { get; }

    TMessageHeader ReadMessageBegin();
    void ReadMessageEnd();
    ThriftStructScope ReadStructBegin();
    void ReadStructEnd(ThriftStructScope scope);
    TFieldHeader ReadFieldBegin();
    void ReadFieldEnd();
    TListHeader ReadListBegin();
    void ReadListEnd();
    TListHeader ReadSetBegin();
    void ReadSetEnd();
    TMapHeader ReadMapBegin();
    void ReadMapEnd();
    bool ReadBool();
    sbyte ReadByte();
    short ReadI16();
    int ReadI32();
    long ReadI64();
    double ReadDouble();
    string ReadString();
    byte[] ReadBinary();

    /// <summary>A binary value without copying it; valid as long as the input buffer.</summary>
    ReadOnlySpan<byte> ReadBinarySpan();
    Guid ReadUuid();

    /// <summary>Skips one value of <paramref name="type"/>, nested values included.</summary>
    void Skip(TType type);
}
