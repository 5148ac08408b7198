using Microsoft.Extensions.Logging;
using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>How a <see cref="ThriftChannel"/> reaches its peer.</summary>
public sealed class ThriftChannelOptions
{
    public required RpcEndpoint Endpoint { get; init; }

    /// <summary>This application's product, sent in THeader (<see cref="RpcHeaders.CallerProduct"/>) so online services can refuse other products' callers.</summary>
    public string? CallerProduct { get; init; }

    public ThriftEncoding Encoding { get; init; } = ThriftEncoding.FramedBinary;

    /// <summary>Send <c>service:method</c> names (TMultiplexedProtocol); false for a peer that serves one service with plain names.</summary>
    public bool Multiplexed { get; init; } = true;

    /// <summary>
    /// The peer answers many calls on one connection, by seqid, in any order (a Trellis server or proxy).
    /// False for a stock Thrift server, which takes one call at a time per connection: calls then use a pool.
    /// </summary>
    public bool PeerMultiplexesCalls { get; init; }

    /// <summary>Connections kept to the peer at most.</summary>
    public int MaxConnections { get; init; } = 8;

    /// <summary>Calls in flight on one connection to a multiplexing peer before another connection is opened.</summary>
    public int MaxCallsPerConnection { get; init; } = 256;

    /// <summary>A call's budget when the caller gives none.</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public ThriftLimits Limits { get; init; } = ThriftLimits.Default;

    public ILogger? Logger { get; init; }
}
