namespace Trellis.Thrift;

/// <summary>The Thrift type ids, as written by the binary protocol (and by every stock implementation).</summary>
public enum TType : byte
{
    Stop = 0,
    Void = 1,
    Bool = 2,
    Byte = 3,
    Double = 4,
    I16 = 6,
    I32 = 8,
    I64 = 10,
    String = 11,
    Struct = 12,
    Map = 13,
    Set = 14,
    List = 15,
    Uuid = 16,
}

/// <summary>The four message types a stock Thrift peer understands.</summary>
public enum TMessageType : byte
{
    Call = 1,
    Reply = 2,
    Exception = 3,
    Oneway = 4,
}

/// <summary>The payload protocol. The values are THeader's protocol ids.</summary>
public enum ThriftProtocol : byte
{
    Binary = 0,
    Compact = 2,
}

/// <summary>How messages are delimited on a connection.</summary>
public enum ThriftFraming : byte
{
    /// <summary>Messages back to back with no length prefix (TBufferedTransport); legacy peers.</summary>
    Unframed = 0,
    /// <summary>A 4-byte big-endian length before each message (TFramedTransport); the default.</summary>
    Framed = 1,
    /// <summary>Apache Thrift's THeader: framed, with info headers, protocol id and transforms.</summary>
    Header = 2,
}

/// <summary>The framing and protocol of a connection.</summary>
public readonly record struct ThriftEncoding(ThriftFraming Framing, ThriftProtocol Protocol)
{
    public static ThriftEncoding FramedBinary => new(ThriftFraming.Framed, ThriftProtocol.Binary);
    public static ThriftEncoding FramedCompact => new(ThriftFraming.Framed, ThriftProtocol.Compact);
    public static ThriftEncoding HeaderBinary => new(ThriftFraming.Header, ThriftProtocol.Binary);
    public static ThriftEncoding HeaderCompact => new(ThriftFraming.Header, ThriftProtocol.Compact);
    public static ThriftEncoding UnframedBinary => new(ThriftFraming.Unframed, ThriftProtocol.Binary);
    public static ThriftEncoding UnframedCompact => new(ThriftFraming.Unframed, ThriftProtocol.Compact);

    public override string ToString() => $"{Framing.ToString().ToLowerInvariant()}/{Protocol.ToString().ToLowerInvariant()}";
}
