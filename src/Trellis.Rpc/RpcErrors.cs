using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>Errors the RPC layer sends to peers, as TApplicationExceptions a stock client understands.</summary>
public static class RpcErrors
{
    /// <summary>Prefix of the message of an overload refusal: safe to retry elsewhere, the call did not run.</summary>
    public const string OverloadedPrefix = "overloaded: ";

    public static TApplicationException Overloaded(int limit) =>
        new(TApplicationExceptionType.InternalError, $"{OverloadedPrefix}the server is at its limit of {limit} concurrent calls; the call was not run");

    public static bool IsOverloaded(TApplicationException e) => e.Message.StartsWith(OverloadedPrefix, StringComparison.Ordinal);

    public const string DeadlineExceededPrefix = "deadline exceeded: ";

    public static TApplicationException DeadlineExceeded(string method) =>
        new(TApplicationExceptionType.InternalError, $"{DeadlineExceededPrefix}{method} was not finished in time");

    public static bool IsDeadlineExceeded(TApplicationException e) => e.Message.StartsWith(DeadlineExceededPrefix, StringComparison.Ordinal);

    public static TApplicationException ShuttingDown() =>
        new(TApplicationExceptionType.InternalError, "shutting down: the server stopped before the call finished");
}
