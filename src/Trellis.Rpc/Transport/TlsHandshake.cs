using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Trellis.Thrift;

namespace Trellis.Rpc;

/// <summary>
/// The TLS handshakes of servers, proxies and callers: the peer's chain is validated against the product's CA bundle
/// only; a server checks the name the caller expects (<c>trellis://{product}/{service}</c> among its certificate's URI
/// names); a client's certificate, when asked for or required, gives the caller's identity.
/// </summary>
internal static class TlsHandshake
{
    /// <summary>
    /// Server side, right after accept: the caller's identity from its certificate (null when it sent none and none is
    /// required).
    /// </summary>
    /// <exception cref="AuthenticationException">The handshake failed or the caller's certificate was refused; the message says why.</exception>
    public static async Task<CallerIdentity?> AcceptAsync(SslStream stream, TlsCredentials credentials, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var check = new PeerCheck(isServer: true, credentials.Options.RequireClientCertificate, expectedName: null);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = credentials.CertificateContext,
            // asked for in both modes: a caller with a certificate is identified even where one is not required
            ClientCertificateRequired = true,
            CertificateRevocationCheckMode = credentials.Options.CheckRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
            CertificateChainPolicy = credentials.NewChainPolicy(),
            RemoteCertificateValidationCallback = check.Check,
        };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await stream.AuthenticateAsServerAsync(options, limit.Token).ConfigureAwait(false);
            return check.Identity;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AuthenticationException($"the TLS handshake did not finish within {timeout.TotalMilliseconds:F0} ms");
        }
        catch (Exception e) when (e is AuthenticationException or IOException or System.ComponentModel.Win32Exception)
        {
            throw new AuthenticationException(check.Reason ?? $"TLS handshake failed: {e.Message}", e);
        }
    }

    /// <summary>
    /// Client side: TLS over a connected stream (owned by the result; disposed on failure), with this side's
    /// certificate when it has one, the server's certificate checked to carry <paramref name="peerName"/> (or, without one,
    /// the endpoint's host name).
    /// </summary>
    /// <exception cref="TTransportException">NotOpen: the handshake failed or the server's certificate was refused (nothing was sent); TimedOut.</exception>
    public static async Task<SslStream> ConnectAsync(Stream inner, TlsCredentials credentials, RpcEndpoint endpoint, string? peerName, TimeSpan timeout, string what,
        CancellationToken cancellationToken)
    {
        var check = new PeerCheck(isServer: false, requireCertificate: true, peerName);
        var stream = new SslStream(inner, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = endpoint.Host,
            ClientCertificateContext = credentials.CertificateContext,
            CertificateRevocationCheckMode = credentials.Options.CheckRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
            CertificateChainPolicy = credentials.NewChainPolicy(),
            RemoteCertificateValidationCallback = check.Check,
        };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await stream.AuthenticateAsClientAsync(options, limit.Token).ConfigureAwait(false);
            return stream;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new TTransportException(TTransportErrorKind.TimedOut, $"TLS with {what}: the handshake did not finish within {timeout.TotalMilliseconds:F0} ms");
        }
        catch (Exception e) when (e is AuthenticationException or IOException or System.ComponentModel.Win32Exception)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new TTransportException(TTransportErrorKind.NotOpen, $"TLS with {what} failed: {check.Reason ?? e.Message}", e);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>One handshake's verdict on the peer's certificate, and why it was refused.</summary>
    private sealed class PeerCheck(bool isServer, bool requireCertificate, string? expectedName)
    {
        public string? Reason { get; private set; }

        public CallerIdentity? Identity { get; private set; }

        public bool Check(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            var whose = isServer ? "the client's" : "the server's";
            if (certificate is null)
            {
                if (isServer && !requireCertificate)
                {
                    return true; // TLS without a client certificate: allowed, no identity
                }

                Reason = isServer ? "the client presented no certificate (mTLS is required)" : "the server presented no certificate";
                return false;
            }

            using var owned = certificate as X509Certificate2 is null ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()) : null;
            var leaf = owned ?? (X509Certificate2)certificate;
            if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                Reason = $"{whose} certificate ({leaf.Subject}) is refused: {TlsCredentials.ChainProblems(chain)}";
                return false;
            }

            if (isServer)
            {
                Identity = CertificateNames.Identity(leaf);
                if (Identity is null)
                {
                    Reason = $"{whose} certificate ({leaf.Subject}) carries no {CallerIdentity.UriScheme}://{{product}}/{{service}} name";
                    return false;
                }

                return true;
            }

            if (expectedName is not null)
            {
                var names = CertificateNames.Uris(leaf);
                if (!names.Contains(expectedName, StringComparer.Ordinal))
                {
                    Reason = $"{whose} certificate ({leaf.Subject}) names {(names.Count == 0 ? "no trellis:// name" : string.Join(", ", names))}, not {expectedName}";
                    return false;
                }

                return true;
            }

            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                Reason = $"{whose} certificate ({leaf.Subject}) does not name the host connected to";
                return false;
            }

            return true;
        }
    }
}
