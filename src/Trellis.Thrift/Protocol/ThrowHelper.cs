using System.Diagnostics.CodeAnalysis;

namespace Trellis.Thrift;

/// <summary>Throw sites kept out of the hot methods so those stay small enough to inline.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void Protocol(TProtocolErrorKind kind, string message) => throw new TProtocolException(kind, message);

    [DoesNotReturn]
    public static T Protocol<T>(TProtocolErrorKind kind, string message) => throw new TProtocolException(kind, message);

    [DoesNotReturn]
    public static void UnknownType(byte raw, string where) =>
        throw new TProtocolException(TProtocolErrorKind.InvalidData, $"unknown type id {raw} in {where}");

    [DoesNotReturn]
    public static void UnknownCompactType(int compact, string where) =>
        throw new TProtocolException(TProtocolErrorKind.InvalidData, $"unknown compact type id {compact} in {where}");

    [DoesNotReturn]
    public static void NotWritable(TType type) =>
        throw new ArgumentOutOfRangeException(nameof(type), type, "not a type the compact protocol can write");

    [DoesNotReturn]
    public static void NeedMoreData() => throw new NeedMoreDataException();

    [DoesNotReturn]
    public static void NegativeCount(string what, int count) =>
        throw new ArgumentOutOfRangeException(nameof(count), count, $"{what} element count must not be negative");
}

/// <summary>
/// Raised by a reader in partial mode when the buffered bytes end before the message does:
/// not an error, the caller waits for more bytes. Never escapes the framing layer.
/// </summary>
internal sealed class NeedMoreDataException : Exception
{
    public NeedMoreDataException() : base("more bytes are needed to complete the message") { }
}
