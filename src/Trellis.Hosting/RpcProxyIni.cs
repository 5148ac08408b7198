using System.Globalization;

namespace Trellis.Hosting;

/// <summary>
/// Reads the original rpc_proxy <c>config.ini</c> (flat <c>key=value</c> lines, <c>#</c> or <c>;</c> comments)
/// and maps its keys onto the <c>Trellis</c> configuration section, so an existing deployment's file works
/// unchanged: <c>builder.Configuration.AddInMemoryCollection(RpcProxyIni.Load("config.ini"))</c>.
/// </summary>
public static class RpcProxyIni
{
    private static readonly Dictionary<string, string> Keys = new(StringComparer.OrdinalIgnoreCase)
    {
        ["zk"] = "Trellis:ZooKeeper:ConnectString",
        ["product"] = "Trellis:Product",
        ["zk_session_timeout"] = "Trellis:ZooKeeper:SessionTimeoutSeconds",
        ["service"] = "Trellis:Service",
        ["front_host"] = "Trellis:Server:AdvertisedHost",
        ["front_port"] = "Trellis:Server:Port",
        ["back_address"] = "Trellis:BackAddress",
        ["ip_prefix"] = "Trellis:Server:IpPrefix",
        ["worker_pool_size"] = "Trellis:WorkerPoolSize",
        ["proxy_address"] = "Trellis:ProxyAddress",
        ["verbose"] = "Trellis:Verbose",
        ["tls_mode"] = "Trellis:Tls:Mode",
        ["tls_cert_file"] = "Trellis:Tls:CertificateFile",
        ["tls_key_file"] = "Trellis:Tls:KeyFile",
        ["tls_ca_file"] = "Trellis:Tls:CaFile",
    };

    public static IEnumerable<KeyValuePair<string, string?>> Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"config file {path} not found", path);
        }

        return Parse(File.ReadAllLines(path), path);
    }

    public static List<KeyValuePair<string, string?>> Parse(IEnumerable<string> lines, string source = "config.ini")
    {
        ArgumentNullException.ThrowIfNull(lines);
        var result = new List<KeyValuePair<string, string?>>();
        var number = 0;
        foreach (var raw in lines)
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';' || (line[0] == '[' && line[^1] == ']'))
            {
                continue;
            }

            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"{source}:{number}: expected key=value, found '{line}'");
            }

            var key = line[..equals].Trim();
            var value = line[(equals + 1)..].Trim().Trim('"');
            if (!Keys.TryGetValue(key, out var mapped))
            {
                throw new FormatException($"{source}:{number}: unknown key '{key}' (known: {string.Join(", ", Keys.Keys)})");
            }

            if (key.Equals("verbose", StringComparison.OrdinalIgnoreCase))
            {
                value = value is "1" or "true" or "True" ? "true" : "false";
            }

            if (key.Equals("front_host", StringComparison.OrdinalIgnoreCase) && value.Length == 0)
            {
                continue; // an empty front_host means: choose by ip_prefix
            }

            if (key is "zk_session_timeout" or "front_port" or "worker_pool_size" &&
                !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                throw new FormatException($"{source}:{number}: {key} must be a whole number, found '{value}'");
            }

            result.Add(new(mapped, value));
        }

        return result;
    }
}
