namespace Trellis.Thrift;

/// <summary>The base of every Thrift error.</summary>
public class TException : Exception
{
    public TException(string message) : base(message) { }
    public TException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>Kinds of <see cref="TProtocolException"/>, numbered as in every Apache Thrift runtime.</summary>
public enum TProtocolErrorKind
{
    Unknown = 0,
    InvalidData = 1,
    NegativeSize = 2,
    SizeLimit = 3,
    BadVersion = 4,
    NotImplemented = 5,
    DepthLimit = 6,
}

/// <summary>The bytes do not form a valid message, or they exceed a configured limit.</summary>
/// <remarks>A connection that produced one is not trusted any more: close it.</remarks>
public sealed class TProtocolException : TException
{
    public TProtocolException(TProtocolErrorKind kind, string message) : base(message) => Kind = kind;
    public TProtocolException(TProtocolErrorKind kind, string message, Exception? inner) : base(message, inner) => Kind = kind;

    public TProtocolErrorKind Kind { get; }
}

/// <summary>Kinds of <see cref="TTransportException"/>.</summary>
public enum TTransportErrorKind
{
    Unknown = 0,
    NotOpen = 1,
    AlreadyOpen = 2,
    TimedOut = 3,
    EndOfFile = 4,
    CorruptedData = 5,
    Interrupted = 6,
}

/// <summary>The byte stream ended, timed out or broke; the bytes themselves may be fine.</summary>
public sealed class TTransportException : TException
{
    public TTransportException(TTransportErrorKind kind, string message) : base(message) => Kind = kind;
    public TTransportException(TTransportErrorKind kind, string message, Exception? inner) : base(message, inner) => Kind = kind;

    public TTransportErrorKind Kind { get; }
}

/// <summary>The standard <see cref="TApplicationException"/> types, numbered as on the wire.</summary>
public enum TApplicationExceptionType
{
    Unknown = 0,
    UnknownMethod = 1,
    InvalidMessageType = 2,
    WrongMethodName = 3,
    BadSequenceId = 4,
    MissingResult = 5,
    InternalError = 6,
    ProtocolError = 7,
    InvalidTransform = 8,
    InvalidProtocol = 9,
    UnsupportedClientType = 10,
}
