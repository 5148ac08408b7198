using Microsoft.Extensions.Logging;
using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>How a <see cref="ThriftChannel"/> reaches its peer.</summary>
public sealed class ThriftChannelOptions
{
    public required RpcEndpoint Endpoint { get; init; }

    /// <summary>This application's product, sent in THeader (<see cref="RpcHeaders.CallerProduct"/>) so online services can refuse other products' callers.</summary>
    public string? CallerProduct { get; init; }

    /// <summary>
    /// THeader info headers sent with every call (a call's own headers win): the calling service
    /// (<see cref="RpcHeaders.CallerService"/>), a route tag for a tagged caller (<see cref="RpcHeaders.Tag"/>), its zone and host.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

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

    /// <summary>
    /// Connect with TLS (a TCP endpoint; ignored for a Unix socket): the server's chain is validated against the CA
    /// bundle, its certificate must carry <see cref="TlsPeerName"/>, and this side presents its own certificate when it
    /// has one (mTLS). A handshake that fails fails the call as not sent. Null or <see cref="TlsMode.Off"/>: plaintext.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>
    /// The name the server's certificate must carry: <c>trellis://{product}/{service}</c> (<see cref="CallerIdentity.ToUri"/>).
    /// Null: the certificate must name the endpoint's host instead (DNS or IP address name), as HTTPS does.
    /// </summary>
    public string? TlsPeerName { get; init; }

    public ILogger? Logger { get; init; }
}
