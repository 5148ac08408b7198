namespace Trellis.Thrift;

/// <summary>Something that writes itself as a Thrift struct.</summary>
/// <remarks>
/// The writer is a generic <c>ref</c> parameter that <c>allows ref struct</c>: the JIT compiles
/// one copy per protocol with every call inlinable, and nothing is boxed.
/// </remarks>
public interface IThriftWritable
{
    void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct;
}

/// <summary>A Thrift struct, union or exception: writes itself, and reads itself in place.</summary>
/// <remarks>
/// <see cref="Read{TReader}"/> fills this instance from the reader; fields the type does not
/// know are skipped, a required field that is missing is a <see cref="TProtocolException"/>.
/// </remarks>
public interface IThriftStruct : IThriftWritable
{
    void Read<TReader>(ref TReader reader) where TReader : IThriftReader, allows ref struct;
}
