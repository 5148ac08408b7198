namespace Trellis.Thrift;

/// <summary>A message envelope: method name, message type and sequence id.</summary>
/// <remarks>
/// <see cref="Type"/> holds whatever the peer sent, so that a server can answer a bad type
/// with <see cref="TApplicationExceptionType.InvalidMessageType"/> and the right sequence id.
/// </remarks>
public readonly record struct TMessageHeader(string Name, TMessageType Type, int SeqId)
{
    /// <summary>True for CALL, REPLY, EXCEPTION and ONEWAY.</summary>
    public bool HasValidType => Type is >= TMessageType.Call and <= TMessageType.Oneway;
}

/// <summary>A field header; <see cref="TType.Stop"/> ends a struct.</summary>
public readonly record struct TFieldHeader(TType Type, short Id)
{
    public bool IsStop => Type == TType.Stop;
}

/// <summary>The header of a list or a set.</summary>
public readonly record struct TListHeader(TType ElementType, int Count);

/// <summary>The header of a map.</summary>
public readonly record struct TMapHeader(TType KeyType, TType ValueType, int Count);

/// <summary>
/// What a protocol needs to remember across a nested struct (the compact protocol's last field id).
/// Returned by <c>ReadStructBegin</c>/<c>WriteStructBegin</c> and handed back to the matching <c>End</c>,
/// so that nesting needs no stack allocation and has no depth of its own.
/// </summary>
public readonly struct ThriftStructScope
{
    internal ThriftStructScope(short lastFieldId) => LastFieldId = lastFieldId;

    internal short LastFieldId { get; }
}
