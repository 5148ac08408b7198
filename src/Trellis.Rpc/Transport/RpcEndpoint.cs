using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>Where a server listens or a channel connects: <c>tcp://host:port</c> or <c>unix:///path</c>.</summary>
public sealed record RpcEndpoint
{
    private RpcEndpoint(string? host, int port, string? path)
    {
        Host = host;
        Port = port;
        UnixPath = path;
    }

    public string? Host { get; }
    public int Port { get; }
    public string? UnixPath { get; }
    public bool IsUnix => UnixPath is not null;

    public static RpcEndpoint Tcp(string host, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        return new RpcEndpoint(host, port, null);
    }

    public static RpcEndpoint Unix(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Path.IsPathFullyQualified(path))
        {
            throw new ArgumentException($"a Unix socket path must be absolute: '{path}'", nameof(path));
        }

        return new RpcEndpoint(null, 0, path);
    }

    /// <summary>Parses <c>tcp://host:port</c>, <c>unix:///path</c>, <c>host:port</c> or an absolute path.</summary>
    public static RpcEndpoint Parse(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        text = text.Trim();
        if (text.StartsWith("unix://", StringComparison.Ordinal))
        {
            return Unix(text["unix://".Length..]);
        }

        if (text.StartsWith('/'))
        {
            return Unix(text);
        }

        if (text.StartsWith("tcp://", StringComparison.Ordinal))
        {
            text = text["tcp://".Length..];
        }

        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new FormatException($"'{text}' is not host:port, tcp://host:port or unix:///path");
        }

        return Tcp(text[..colon].Trim('[', ']'), port);
    }

    /// <summary>An unconnected client socket of the right family for this endpoint (TCP with Nagle off).</summary>
    internal Socket NewClientSocket() => IsUnix
        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    internal EndPoint ToEndPoint() => IsUnix
        ? new UnixDomainSocketEndPoint(UnixPath!)
        : IPAddress.TryParse(Host, out var ip) ? new IPEndPoint(ip, Port) : new DnsEndPoint(Host!, Port);

    public override string ToString() => IsUnix ? $"unix://{UnixPath}" : $"tcp://{(Host!.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}";
}
