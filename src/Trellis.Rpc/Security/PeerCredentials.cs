using System.Runtime.InteropServices;
using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>Who is on the other end of a Unix socket, as the kernel says (Linux <c>SO_PEERCRED</c>): proof, not a claim.</summary>
public static class PeerCredentials
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>The peer process's pid and uid for a connected Unix socket on Linux; null for anything else.</summary>
    public static CallerIdentity? Of(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!OperatingSystem.IsLinux() || socket.AddressFamily != AddressFamily.Unix)
        {
            return null;
        }

        try
        {
            Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            var length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
            if (length < 12)
            {
                return null;
            }

            return new CallerIdentity
            {
                Source = IdentitySource.UnixPeer,
                Pid = MemoryMarshal.Read<int>(ucred),
                Uid = MemoryMarshal.Read<int>(ucred[4..]),
            };
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
