using System.Globalization;
using Microsoft.Extensions.Configuration;
using Trellis.Rpc;

namespace Trellis.Proxy;

/// <summary>Typed values of the proxy's and the balancer's settings; one that does not parse is a <see cref="FormatException"/> naming its full key.</summary>
internal static class ConfigValues
{
    public static RpcEndpoint Endpoint(string text, string key)
    {
        try
        {
            // the original proxy_address / back_address: a bare path is a Unix socket, host:port is TCP
            return RpcEndpoint.Parse(text);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new FormatException($"{key}: '{text}' is not an address (unix:///path, /path, tcp://host:port or host:port): {e.Message}", e);
        }
    }

    public static int? Int(IConfiguration section, string key) =>
        section[key] is not { Length: > 0 } text ? null
        : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
        : throw new FormatException($"{FullKey(section, key)}: '{text}' is not a whole number");

    public static bool? Bool(IConfiguration section, string key) =>
        section[key] is not { Length: > 0 } text ? null
        : bool.TryParse(text, out var value) ? value
        : text is "1" or "yes" or "on" ? true
        : text is "0" or "no" or "off" ? false
        : throw new FormatException($"{FullKey(section, key)}: '{text}' is not true or false");

    /// <summary>
    /// The product's TLS settings, <c>Trellis:Tls</c>: <c>Mode</c> (off, tls, mtls), <c>CertificateFile</c>, <c>KeyFile</c>,
    /// <c>CaFile</c>, <c>CheckRevocation</c> (rpc_proxy config.ini: <c>tls_mode</c>, <c>tls_cert_file</c>, <c>tls_key_file</c>,
    /// <c>tls_ca_file</c>); null when the mode is off.
    /// </summary>
    public static TlsOptions? Tls(IConfiguration configuration)
    {
        var section = configuration.GetSection("Trellis:Tls");
        TlsMode mode;
        try
        {
            mode = TlsOptions.ParseMode(section["Mode"]);
        }
        catch (FormatException e)
        {
            throw new FormatException($"Trellis:Tls:Mode (tls_mode): {e.Message}", e);
        }

        return mode == TlsMode.Off ? null : new TlsOptions
        {
            Mode = mode,
            CertificateFile = section["CertificateFile"] is { Length: > 0 } certificate ? certificate : null,
            KeyFile = section["KeyFile"] is { Length: > 0 } key ? key : null,
            CaFile = section["CaFile"] is { Length: > 0 } ca ? ca : null,
            CheckRevocation = Bool(section, "CheckRevocation") ?? false,
            RequirePeerTls = Bool(section, "RequirePeerTls") ?? false,
        };
    }

    private static string FullKey(IConfiguration section, string key) => section is IConfigurationSection s ? $"{s.Path}:{key}" : key;
}
