namespace Trellis.Rpc;

/// <summary>How TLS is used between a product's services, proxies and clients.</summary>
public enum TlsMode
{
    /// <summary>No TLS: listeners are plaintext, and a caller refuses instances whose record says <c>tls</c>.</summary>
    Off,

    /// <summary>
    /// TCP listeners take TLS only; a client certificate is asked for and, when one is sent, verified (a bad one
    /// closes the connection) and taken as the caller's identity. Callers connect with TLS to instances whose
    /// record says <c>tls</c> and present their own certificate when they have one.
    /// </summary>
    Tls,

    /// <summary>As <see cref="Tls"/>, and every client must present a valid certificate (mTLS); so must this side as a client.</summary>
    Mutual,
}

/// <summary>
/// A product's TLS settings (the <c>Trellis:Tls</c> section): this side's certificate and private key (PEM files), the
/// product's CA bundle (PEM; peers are validated against these roots only, never the machine's store), and the mode.
/// Certificates name their holder with a URI subject alternative name <c>trellis://{product}/{service}</c>
/// (<see cref="CallerIdentity.ToUri"/>); a proxy's is <c>trellis://{product}/proxy</c>.
/// </summary>
/// <remarks>
/// The files are read once, on first use (<see cref="Load"/>), and checked then: missing or unreadable files, a
/// certificate that has expired or is not yet valid, a key that does not match the certificate, a certificate that
/// does not chain to the CA bundle are all a <see cref="TlsConfigurationException"/> saying which file and why.
/// Servers and proxies load at construction, so a bad setting stops the start.
/// </remarks>
public sealed class TlsOptions
{
    private readonly Lazy<TlsCredentials> _credentials;
    private readonly string? _unavailable;

    public TlsOptions() => _credentials = new(() => TlsCredentials.Load(this), LazyThreadSafetyMode.ExecutionAndPublication);

    private TlsOptions(string unavailable)
        : this() => _unavailable = unavailable;

    /// <summary><see cref="TlsMode.Tls"/> by default (a <see cref="TlsOptions"/> that exists means TLS is wanted).</summary>
    public TlsMode Mode { get; init; } = TlsMode.Tls;

    /// <summary>This side's certificate (PEM); further certificates in the file are intermediates sent along with it.</summary>
    public string? CertificateFile { get; init; }

    /// <summary>The certificate's private key (PEM, unencrypted); null: the key is in <see cref="CertificateFile"/>.</summary>
    public string? KeyFile { get; init; }

    /// <summary>The CA bundle (PEM) peers' certificates must chain to: the product's CA (and any other product's it calls or is called by).</summary>
    public string? CaFile { get; init; }

    /// <summary>Check peers' certificates for revocation (online, by the CA's CRL/OCSP addresses). Off by default.</summary>
    public bool CheckRevocation { get; init; }

    /// <summary>
    /// Callers refuse to reach an instance over plaintext TCP (a record without <c>tls</c>): once a product's move to TLS
    /// is complete, whoever can write the registry cannot downgrade its callers to plaintext. Unix sockets stay allowed.
    /// </summary>
    public bool RequirePeerTls { get; init; }

    /// <summary>A client certificate is required (mTLS).</summary>
    public bool RequireClientCertificate => Mode == TlsMode.Mutual;

    /// <summary>On: <see cref="Mode"/> is not <see cref="TlsMode.Off"/>.</summary>
    public bool Enabled => Mode != TlsMode.Off;

    /// <summary>The certificate, key and CA bundle, read and checked once.</summary>
    /// <exception cref="TlsConfigurationException">A file is missing, unreadable, expired, or does not fit the others.</exception>
    public TlsCredentials Load() => _unavailable is { } reason ? throw new TlsConfigurationException(reason) : _credentials.Value;

    /// <summary>What is wrong with these settings (the files included), or null.</summary>
    public string? Validate()
    {
        try
        {
            Load();
            return null;
        }
        catch (TlsConfigurationException e)
        {
            return e.Message;
        }
    }

    /// <summary>Reads a mode as configured: <c>off</c>, <c>tls</c> or <c>mtls</c> (any case; empty is off).</summary>
    /// <exception cref="FormatException">Anything else.</exception>
    public static TlsMode ParseMode(string? text) => text?.Trim().ToUpperInvariant() switch
    {
        null or "" or "OFF" or "NONE" or "FALSE" => TlsMode.Off,
        "TLS" or "ON" or "TRUE" => TlsMode.Tls,
        "MTLS" or "MUTUAL" => TlsMode.Mutual,
        _ => throw new FormatException($"'{text}' is not a TLS mode (off, tls or mtls)"),
    };

    /// <summary>Settings that fail every connection with <paramref name="reason"/> (a caller without TLS settings meeting a TLS instance).</summary>
    internal static TlsOptions Unavailable(string reason) => new(reason);

    /// <summary>
    /// The TLS a caller uses to reach <paramref name="instance"/> at <paramref name="endpoint"/>, and the name its
    /// certificate must carry (<c>trellis://{product}/{service}</c> of the record): none for a plain instance or a Unix
    /// socket; settings that fail with a clear reason when the instance wants TLS and the caller has none.
    /// </summary>
    internal static (TlsOptions? Tls, string? PeerName) ForInstance(TlsOptions? tls, Registry.ServiceInstance instance, RpcEndpoint endpoint)
    {
        if (endpoint.IsUnix)
        {
            return (null, null);
        }

        if (!instance.Tls)
        {
            return tls is { Enabled: true, RequirePeerTls: true }
                ? (Unavailable($"instance {instance.InstanceId} of {instance.Product}/{instance.Service} does not take TLS (its record has no tls), and this side requires TLS of every instance (Trellis:Tls:RequirePeerTls)"), null)
                : (null, null);
        }

        var name = CallerIdentity.ToUri(instance.Product, instance.Service);
        return tls is { Enabled: true }
            ? (tls, name)
            : (Unavailable($"instance {instance.InstanceId} of {instance.Product}/{instance.Service} takes TLS only (its record says tls), and this side has no TLS settings (Trellis:Tls)"), name);
    }
}

/// <summary>TLS settings that cannot be used: the message names the file (and setting) and what is wrong with it.</summary>
public sealed class TlsConfigurationException : InvalidOperationException
{
    public TlsConfigurationException()
    {
    }

    public TlsConfigurationException(string message)
        : base(message)
    {
    }

    public TlsConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
