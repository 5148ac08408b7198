using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Trellis.Rpc;

namespace Trellis.Proxy;

/// <summary>TLS on the proxy's TCP listeners (<see cref="ProxyOptions.ListenTls"/>): the handshake, and the caller it proves.</summary>
internal sealed partial class FrontendConnection
{
    /// <summary>The encrypting stream of a TLS listener's connection; null for plaintext (Unix sockets always).</summary>
    private static SslStream? TlsFor(ProxyServer proxy, Socket socket) =>
        proxy.ListenTls is not null && socket.AddressFamily != AddressFamily.Unix
            ? new SslStream(new PeekingNetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false)
            : null;

    /// <summary>
    /// The handshake, within the frame-read timeout (the connection's read deadline covers it too). A client certificate
    /// that is valid makes <see cref="ProvenIdentity"/> its <c>trellis://{product}/{service}</c> name; false: refused
    /// (no or a bad certificate where one is required, a failed handshake), logged once.
    /// </summary>
    private async Task<bool> AuthenticateAsync()
    {
        try
        {
            ProvenIdentity = await TlsHandshake.AcceptAsync(_tls!, _proxy.ListenTls!, _proxy.Options.FrameReadTimeout, _closed.Token).ConfigureAwait(false);
            return true;
        }
        catch (AuthenticationException e)
        {
            ConnectionLog.TlsRefused(Logger, Peer, e.Message);
            return false;
        }
    }
}
