namespace Trellis.Thrift;

/// <summary>
/// Writes Thrift values in one protocol. Implemented by ref structs (<see cref="ThriftBinaryWriter"/>,
/// <see cref="ThriftCompactWriter"/>); generated code takes the writer as a generic
/// <c>ref TWriter</c> with <c>allows ref struct</c>, so each protocol gets its own specialised,
/// inlined code with no virtual call or allocation per field.
/// </summary>
/// <remarks>
/// Calls must follow the Thrift grammar: a field header before each field value, a stop field
/// before <see cref="WriteStructEnd"/>, exactly <c>count</c> elements after a container header.
/// The <c>*End</c> methods exist for symmetry with the grammar; most do nothing.
/// Bytes reach the output only when <see cref="Flush"/> is called.
/// </remarks>
public interface IThriftWriter
{
    void WriteMessageBegin(in TMessageHeader message);
    void WriteMessageEnd();
    ThriftStructScope WriteStructBegin();
    void WriteStructEnd(ThriftStructScope scope);
    void WriteFieldBegin(TType type, short id);
    void WriteFieldEnd();
    void WriteFieldStop();
    void WriteListBegin(TType elementType, int count);
    void WriteListEnd();
    void WriteSetBegin(TType elementType, int count);
    void WriteSetEnd();
    void WriteMapBegin(TType keyType, TType valueType, int count);
    void WriteMapEnd();
    void WriteBool(bool value);
    void WriteByte(sbyte value);
    void WriteI16(short value);
    void WriteI32(int value);
    void WriteI64(long value);
    void WriteDouble(double value);
    void WriteString(string value);
    void WriteString(ReadOnlySpan<char> value);
    void WriteBinary(ReadOnlySpan<byte> value);
    void WriteUuid(Guid value);

    /// <summary>Commits what was written to the underlying <see cref="System.Buffers.IBufferWriter{T}"/>.</summary>
    void Flush();
}
