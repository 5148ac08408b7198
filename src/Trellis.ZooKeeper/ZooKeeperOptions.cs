using Microsoft.Extensions.Logging;

namespace Trellis.ZooKeeper;

/// <summary>How a <see cref="ZooKeeperClient"/> connects.</summary>
public sealed class ZooKeeperOptions
{
    /// <summary><c>host:port,host:port/optional/chroot</c>. Servers are tried in a shuffled order.</summary>
    public required string ConnectString { get; init; }

    /// <summary>Try the servers in a random order (the default, to spread clients), or in the order listed.</summary>
    public bool ShuffleServers { get; init; } = true;

    /// <summary>The session timeout asked for; the server clamps it to its own bounds (2 to 20 ticks by default).</summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long one attempt (TCP connect and handshake) may take before the next server is tried.
    /// Default: the session timeout divided among the servers, at least one second.
    /// </summary>
    public TimeSpan? ConnectionAttemptTimeout { get; init; }

    /// <summary>The largest packet sent or accepted: the servers' <c>jute.maxbuffer</c> (1 MiB − 1 by default).</summary>
    public int MaxPacketSize { get; init; } = 0xFFFFF;

    /// <summary>Credentials sent on every connection (<c>("digest", "user:password"u8)</c>). Never logged.</summary>
    public IReadOnlyList<(string Scheme, byte[] Auth)> Authentication { get; init; } = [];

    /// <summary>Reattach to an existing session instead of creating one (with <see cref="SessionPassword"/>).</summary>
    public long SessionId { get; init; }

    public byte[]? SessionPassword { get; init; }

    /// <summary>With <see cref="SessionId"/>: the last zxid the session has seen, so that a server behind it is refused.</summary>
    public long LastZxidSeen { get; init; }

    public ILogger? Logger { get; init; }
}
