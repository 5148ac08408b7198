using Microsoft.Extensions.Logging;
using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>How a <see cref="ThriftServer"/> listens and what it tolerates.</summary>
public sealed class ThriftServerOptions
{
    /// <summary>TCP and Unix-socket endpoints (port 0 picks a free port; see <see cref="ThriftServer.Endpoints"/>).</summary>
    public List<RpcEndpoint> Endpoints { get; } = [];

    public ThriftLimits Limits { get; init; } = ThriftLimits.Default;

    /// <summary>The product this server's services belong to: an <c>online*</c> one refuses callers that say they are of another kind (product isolation).</summary>
    public string? Product { get; set; }

    /// <summary>Refuse non-strict binary messages (no version word).</summary>
    public bool StrictRead { get; init; }

    /// <summary>Calls running at once across all connections; one more is refused at once with an "overloaded" error.</summary>
    public int MaxConcurrentCalls { get; init; } = 4096;

    /// <summary>Once a frame's first byte has arrived, the rest must follow within this (slow senders are cut off).</summary>
    public TimeSpan FrameReadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A connection with no call in flight and no bytes for this long is closed.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Service used for plain (non-multiplexed) method names; default: the only service, if there is one.</summary>
    public string? DefaultService { get; init; }

    /// <summary>Unix sockets are created with this mode (owner and group read/write).</summary>
    public UnixFileMode UnixSocketMode { get; init; } = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    /// <summary>
    /// TLS for the TCP listeners (Unix sockets stay plaintext): the handshake runs right after accept, within
    /// <see cref="FrameReadTimeout"/>; with <see cref="TlsMode.Mutual"/> a caller without a valid certificate is refused.
    /// A caller's certificate name is its <see cref="RpcContext.Caller"/>. Null or <see cref="TlsMode.Off"/>: plaintext.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    public ILogger? Logger { get; init; }
}
