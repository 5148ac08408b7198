namespace Trellis.Thrift.Services;

/// <summary>
/// What a generated client calls through: one request, one reply. Implementations own connections,
/// framing, multiplexing, deadlines and retries; the client only builds and reads structs.
/// </summary>
public interface IThriftChannel
{
    /// <summary>
    /// Sends <paramref name="arguments"/> as a CALL and reads the REPLY into <paramref name="result"/>.
    /// An EXCEPTION reply surfaces as <see cref="TApplicationException"/>; declared exceptions arrive
    /// inside <paramref name="result"/> and are the client's to throw.
    /// </summary>
    ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct;

    /// <summary>Sends <paramref name="arguments"/> as a ONEWAY message; completes once it is handed to the transport.</summary>
    ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable;
}
