using System.Formats.Asn1;
using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Trellis.Rpc;

/// <summary>
/// A product's TLS material as loaded from <see cref="TlsOptions"/>: this side's certificate with its key (and the
/// intermediates sent along with it), the CA roots peers are validated against, and the <c>trellis://</c> names the
/// certificate carries. Immutable; shared by every connection.
/// </summary>
public sealed class TlsCredentials
{
    private readonly X509Certificate2Collection _roots;

    private TlsCredentials(TlsOptions options, X509Certificate2? certificate, X509Certificate2Collection intermediates, X509Certificate2Collection roots)
    {
        Options = options;
        Certificate = certificate;
        _roots = roots;
        Names = certificate is null ? [] : CertificateNames.Uris(certificate);
        if (certificate is not null)
        {
            CertificateContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
        }
    }

    public TlsOptions Options { get; }

    /// <summary>This side's certificate, with its private key; null for a client that has none (<see cref="TlsMode.Tls"/> only).</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>The URI names (<c>trellis://{product}/{service}</c>) of <see cref="Certificate"/>.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The CA certificates peers must chain to.</summary>
    public IReadOnlyList<X509Certificate2> TrustedRoots => [.. _roots];

    internal SslStreamCertificateContext? CertificateContext { get; }

    /// <summary>A new policy per handshake (SslStream may add to the one it is given): the product's roots only, revocation as configured.</summary>
    internal X509ChainPolicy NewChainPolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = Options.CheckRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
            RevocationFlag = X509RevocationFlag.ExcludeRoot,
            DisableCertificateDownloads = !Options.CheckRevocation,
        };
        policy.CustomTrustStore.AddRange(_roots);
        return policy;
    }

    internal static TlsCredentials Load(TlsOptions options)
    {
        var roots = LoadCa(options);
        X509Certificate2? certificate = null;
        var intermediates = new X509Certificate2Collection();
        if (options.CertificateFile is { Length: > 0 } certificateFile)
        {
            (certificate, intermediates) = LoadCertificate(certificateFile, options.KeyFile is { Length: > 0 } key ? key : null);
            CheckChainsToCa(certificate, intermediates, roots, certificateFile, options.CaFile!);
        }
        else if (options.KeyFile is { Length: > 0 })
        {
            throw new TlsConfigurationException("TLS key file (Trellis:Tls:KeyFile) is set but no certificate file (Trellis:Tls:CertificateFile)");
        }
        else if (options.Mode == TlsMode.Mutual)
        {
            throw new TlsConfigurationException("TLS mode mtls needs this side's certificate: set Trellis:Tls:CertificateFile (and KeyFile)");
        }

        return new TlsCredentials(options, certificate, intermediates, roots);
    }

    private static X509Certificate2Collection LoadCa(TlsOptions options)
    {
        if (options.CaFile is not { Length: > 0 } caFile)
        {
            throw new TlsConfigurationException("TLS CA file (Trellis:Tls:CaFile) is not set: peers are validated against the product's CA only");
        }

        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(ReadText(caFile, "CA file (Trellis:Tls:CaFile)"));
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigurationException($"TLS CA file (Trellis:Tls:CaFile) {caFile}: not a PEM certificate bundle: {e.Message}", e);
        }

        if (roots.Count == 0)
        {
            throw new TlsConfigurationException($"TLS CA file (Trellis:Tls:CaFile) {caFile}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        var now = DateTime.Now;
        if (roots.All(r => r.NotAfter < now))
        {
            throw new TlsConfigurationException($"TLS CA file (Trellis:Tls:CaFile) {caFile}: every CA certificate in it has expired (the last on {Date(roots.Max(r => r.NotAfter))})");
        }

        return roots;
    }

    private static (X509Certificate2 Certificate, X509Certificate2Collection Intermediates) LoadCertificate(string certificateFile, string? keyFile)
    {
        var what = "certificate file (Trellis:Tls:CertificateFile)";
        var certificatePem = ReadText(certificateFile, what);
        var keyPem = keyFile is null ? certificatePem : ReadText(keyFile, "key file (Trellis:Tls:KeyFile)");
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPem(certificatePem);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigurationException($"TLS {what} {certificateFile}: not a PEM certificate: {e.Message}", e);
        }

        if (all.Count == 0)
        {
            throw new TlsConfigurationException($"TLS {what} {certificateFile}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        var keyWhere = keyFile is null ? $"{what} {certificateFile} (no Trellis:Tls:KeyFile set)" : $"key file (Trellis:Tls:KeyFile) {keyFile}";
        if (keyPem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
        {
            throw new TlsConfigurationException($"TLS {keyWhere}: the private key is encrypted; give an unencrypted PEM key (protect the file instead)");
        }

        if (!keyPem.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw new TlsConfigurationException($"TLS {keyWhere}: holds no PEM private key (-----BEGIN PRIVATE KEY-----)");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new TlsConfigurationException(KeyMatches(all[0], keyPem)
                ? $"TLS {what} {certificateFile}: cannot be used with its key: {e.Message}"
                : $"TLS {keyWhere}: the private key does not match the certificate in {certificateFile} ({all[0].Subject})", e);
        }

        var now = DateTime.Now;
        if (certificate.NotAfter < now)
        {
            throw new TlsConfigurationException($"TLS {what} {certificateFile}: the certificate ({certificate.Subject}) expired on {Date(certificate.NotAfter)}");
        }

        if (certificate.NotBefore > now)
        {
            throw new TlsConfigurationException($"TLS {what} {certificateFile}: the certificate ({certificate.Subject}) is not valid before {Date(certificate.NotBefore)}");
        }

        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot use a key that lives only in memory: go through PKCS#12 once
            var ephemeral = certificate;
            certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
            ephemeral.Dispose();
        }

        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < all.Count; i++)
        {
            intermediates.Add(all[i]);
        }

        return (certificate, intermediates);
    }

    /// <summary>Whether the key's public half is the certificate's: tells a mismatch from another failure.</summary>
    private static bool KeyMatches(X509Certificate2 certificate, string keyPem)
    {
        try
        {
            using AsymmetricAlgorithm key = certificate.GetKeyAlgorithm() switch
            {
                "1.2.840.113549.1.1.1" => RSA.Create(),
                "1.2.840.10045.2.1" => ECDsa.Create(),
                _ => throw new CryptographicException("unknown key algorithm"),
            };
            key.ImportFromPem(keyPem);
            return key.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(certificate.PublicKey.ExportSubjectPublicKeyInfo());
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return false;
        }
    }

    private static void CheckChainsToCa(X509Certificate2 certificate, X509Certificate2Collection intermediates, X509Certificate2Collection roots, string certificateFile, string caFile)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        if (!chain.Build(certificate))
        {
            throw new TlsConfigurationException(
                $"TLS certificate file (Trellis:Tls:CertificateFile) {certificateFile}: the certificate ({certificate.Subject}) does not chain to a CA in {caFile}: {ChainProblems(chain)}");
        }
    }

    private static string ReadText(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new TlsConfigurationException($"TLS {what} {path}: not found");
        }

        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TlsConfigurationException($"TLS {what} {path}: cannot be read: {e.Message}", e);
        }
    }

    private static string Date(DateTime when) => when.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>Why a chain did not build, in words an operator can act on.</summary>
    internal static string ChainProblems(X509Chain? chain)
    {
        if (chain is null || chain.ChainStatus.Length == 0)
        {
            return "the chain could not be built";
        }

        return string.Join("; ", chain.ChainStatus.Select(s => s.Status switch
        {
            X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "not issued by a CA of the CA bundle (Trellis:Tls:CaFile)",
            X509ChainStatusFlags.NotTimeValid => "expired or not yet valid",
            X509ChainStatusFlags.Revoked => "revoked",
            X509ChainStatusFlags.NotValidForUsage => "not valid for this use (extended key usage)",
            _ => s.StatusInformation.Trim() is { Length: > 0 } text ? text : s.Status.ToString(),
        }).Distinct());
    }
}

/// <summary>The URI subject alternative names of a certificate (the <c>trellis://</c> identity names).</summary>
internal static class CertificateNames
{
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly Asn1Tag UriTag = new(TagClass.ContextSpecific, 6);

    public static IReadOnlyList<string> Uris(X509Certificate2 certificate)
    {
        List<string>? uris = null;
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAltNameOid)
            {
                continue;
            }

            try
            {
                var names = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
                while (names.HasData)
                {
                    if (names.PeekTag() == UriTag)
                    {
                        (uris ??= []).Add(names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag));
                    }
                    else
                    {
                        names.ReadEncodedValue(); // DNS names, IP addresses…: not identities here
                    }
                }
            }
            catch (AsnContentException)
            {
                // a malformed extension names nobody
            }
        }

        return uris ?? (IReadOnlyList<string>)[];
    }

    /// <summary>The caller a certificate names: its first <c>trellis://{product}/{service}</c> URI.</summary>
    public static CallerIdentity? Identity(X509Certificate2 certificate)
    {
        foreach (var uri in Uris(certificate))
        {
            if (CallerIdentity.TryParseUri(uri, out var product, out var service))
            {
                return new CallerIdentity { Source = IdentitySource.Certificate, Product = product, Service = service };
            }
        }

        return null;
    }
}
