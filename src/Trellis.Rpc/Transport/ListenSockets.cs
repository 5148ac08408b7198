using System.Net;
using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>Listening sockets for servers and proxies: TCP, or a Unix socket file prepared safely.</summary>
internal static class ListenSockets
{
    /// <summary>Binds and listens; for TCP port 0 the bound endpoint carries the port taken.</summary>
    public static (Socket Socket, RpcEndpoint Bound) Bind(RpcEndpoint endpoint, UnixFileMode unixMode)
    {
        if (endpoint.IsUnix)
        {
            var path = endpoint.UnixPath!;
            UnixSocketFiles.Prepare(path);
            var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                unix.Bind(new UnixDomainSocketEndPoint(path));
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, unixMode);
                }

                unix.Listen(512);
                return (unix, endpoint);
            }
            catch
            {
                unix.Dispose();
                throw;
            }
        }

        var address = IPAddress.TryParse(endpoint.Host, out var ip) ? ip
            : endpoint.Host is "localhost" ? IPAddress.Loopback
            : Dns.GetHostAddresses(endpoint.Host!).FirstOrDefault() ?? throw new ArgumentException($"cannot resolve {endpoint.Host}");
        var tcp = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            tcp.Bind(new IPEndPoint(address, endpoint.Port));
            tcp.Listen(512);
            var actual = (IPEndPoint)tcp.LocalEndPoint!;
            return (tcp, RpcEndpoint.Tcp(endpoint.Host!, actual.Port));
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }
}
