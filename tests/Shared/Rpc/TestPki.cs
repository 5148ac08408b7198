using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Trellis.Rpc;

namespace Trellis.Testing;

/// <summary>
/// A product's test CA in a temp directory: issues leaf certificates naming <c>trellis://{product}/{service}</c> (URI SAN),
/// written as PEM files the way an operator would deploy them.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly ECDsa _caKey;
    private readonly X509Certificate2 _ca;

    public TestPki(string name = "test-ca", string? directory = null)
    {
        Directory = directory ?? Path.Combine(Path.GetTempPath(), "trellis-pki-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(Directory);
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddYears(1));
        CaFile = Path.Combine(Directory, name + ".pem");
        File.WriteAllText(CaFile, _ca.ExportCertificatePem());
    }

    public string Directory { get; }

    /// <summary>The CA certificate (PEM), the bundle peers are validated against.</summary>
    public string CaFile { get; }

    /// <summary>
    /// Issues a certificate (for servers and clients alike) with the given URI names, plus DNS localhost and IP
    /// 127.0.0.1; writes <c>{file}.crt</c> and <c>{file}.key</c>.
    /// </summary>
    public (string Certificate, string Key) Issue(string file, string[] uris, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={file}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var names = new SubjectAlternativeNameBuilder();
        foreach (var uri in uris)
        {
            names.AddUri(new Uri(uri));
        }

        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        var serial = new byte[12];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        using var certificate = request.Create(_ca, notBefore ?? DateTimeOffset.UtcNow.AddHours(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(30), serial);
        var certificateFile = Path.Combine(Directory, file + ".crt");
        var keyFile = Path.Combine(Directory, file + ".key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (certificateFile, keyFile);
    }

    /// <summary>TLS settings with a certificate naming <paramref name="uris"/>, issued by this CA and trusting it.</summary>
    public TlsOptions Options(string file, string[] uris, TlsMode mode = TlsMode.Tls)
    {
        var (certificate, key) = Issue(file, uris);
        return new TlsOptions { Mode = mode, CertificateFile = certificate, KeyFile = key, CaFile = CaFile };
    }

    /// <summary>TLS settings without a certificate of this side's own (a client that only validates servers).</summary>
    public TlsOptions TrustOnly() => new() { Mode = TlsMode.Tls, CaFile = CaFile };

    public void Dispose()
    {
        _ca.Dispose();
        _caKey.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // a temp directory left behind is harmless
        }
    }
}

/// <summary>Keeps what is logged, to assert on a server's or proxy's reasons.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add(formatter(state, exception));
        }
    }
}
