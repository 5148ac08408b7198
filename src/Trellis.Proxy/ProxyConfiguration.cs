using Microsoft.Extensions.Configuration;
using Trellis.Hosting;
using Trellis.Rpc;

namespace Trellis.Proxy;

/// <summary>
/// Reads a proxy's settings from configuration: <c>Trellis:Product</c>, <c>Trellis:ProxyAddress</c> (the original
/// rpc_proxy <c>proxy_address</c>: a Unix socket path or host:port) and the <c>Trellis:Proxy</c> section.
/// </summary>
/// <remarks>
/// <c>Trellis:Proxy</c>: <c>Listen</c> (list of <c>unix:///path</c> / <c>tcp://host:port</c>), <c>Zone</c>, <c>Host</c>,
/// <c>Strategy</c>, <c>Locality</c>, <c>Central</c>, <c>InstanceId</c>, <c>SnapshotDirectory</c>, <c>Admin</c>
/// (host:port of the health and metrics endpoint), <c>TimeoutMs</c>, <c>ConnectTimeoutMs</c>,
/// <c>ConnectionsPerBackend</c>, <c>MaxPoolPerBackend</c>, <c>MaxInFlightPerConnection</c>, <c>MaxRetries</c>,
/// <c>DrainSeconds</c>, <c>ListenTls</c> (the TCP listeners take TLS only), and <c>Services:{name}</c> with <c>TimeoutMs</c>,
/// <c>Strategy</c>, <c>IdempotentMethods</c>. TLS to instances (and on TCP listeners with <c>ListenTls</c>) uses the product's
/// <c>Trellis:Tls</c> section.
/// </remarks>
public static class ProxyConfiguration
{
    public const string Section = "Trellis:Proxy";

    /// <summary>Builds the options; a value that does not parse is a <see cref="FormatException"/> naming its key.</summary>
    public static ProxyOptions Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(Section);
        var options = new ProxyOptions
        {
            Product = configuration["Trellis:Product"] is { Length: > 0 } product ? product : "default",
            Zone = section["Zone"] ?? "",
            Host = section["Host"],
            Strategy = section["Strategy"] ?? "p2c",
            Locality = ConfigValues.Bool(section, "Locality") ?? true,
            Central = ConfigValues.Bool(section, "Central") ?? false,
            InstanceId = section["InstanceId"],
            SnapshotDirectory = section["SnapshotDirectory"] ?? DefaultSnapshotDirectory(),
            Tls = ConfigValues.Tls(configuration),
            ListenTls = ConfigValues.Bool(section, "ListenTls") ?? false,
        };
        if (ConfigValues.Int(section, "TimeoutMs") is { } timeout)
        {
            options.DefaultTimeout = TimeSpan.FromMilliseconds(timeout);
        }

        if (ConfigValues.Int(section, "ConnectTimeoutMs") is { } connect)
        {
            options.ConnectTimeout = TimeSpan.FromMilliseconds(connect);
        }

        options.ConnectionsPerBackend = ConfigValues.Int(section, "ConnectionsPerBackend") ?? options.ConnectionsPerBackend;
        options.MaxPoolPerBackend = ConfigValues.Int(section, "MaxPoolPerBackend") ?? options.MaxPoolPerBackend;
        options.MaxInFlightPerConnection = ConfigValues.Int(section, "MaxInFlightPerConnection") ?? options.MaxInFlightPerConnection;
        options.MaxRetries = ConfigValues.Int(section, "MaxRetries") ?? options.MaxRetries;

        // ListenOnly (what `trellis proxy --listen` sets) replaces the configured addresses instead of adding to them
        var only = section.GetSection("ListenOnly").GetChildren().Select(c => c.Value).OfType<string>().ToList();
        foreach (var listen in only.Count > 0 ? only : section.GetSection("Listen").GetChildren().Select(c => c.Value).OfType<string>())
        {
            options.Listen.Add(ConfigValues.Endpoint(listen, $"{Section}:Listen"));
        }

        if (only.Count == 0 && configuration["Trellis:ProxyAddress"] is { Length: > 0 } address)
        {
            var endpoint = ConfigValues.Endpoint(address, "Trellis:ProxyAddress (proxy_address)");
            if (!options.Listen.Contains(endpoint))
            {
                options.Listen.Add(endpoint);
            }
        }

        foreach (var service in section.GetSection("Services").GetChildren())
        {
            var own = new ProxyServiceOptions { Strategy = service["Strategy"] };
            if (ConfigValues.Int(service, "TimeoutMs") is { } ms)
            {
                own.Timeout = TimeSpan.FromMilliseconds(ms);
            }

            foreach (var method in service.GetSection("IdempotentMethods").GetChildren().Select(c => c.Value).OfType<string>())
            {
                own.IdempotentMethods.Add(method);
            }

            options.Services[service.Key] = own;
        }

        return options;
    }

    /// <summary>The admin (health and metrics) address, or null for none.</summary>
    public static string? Admin(IConfiguration configuration) => configuration?[$"{Section}:Admin"] is { Length: > 0 } admin ? admin : null;

    /// <summary>How long a graceful stop waits for calls in flight.</summary>
    public static TimeSpan Drain(IConfiguration configuration) =>
        TimeSpan.FromSeconds(ConfigValues.Int(configuration?.GetSection(Section) ?? throw new ArgumentNullException(nameof(configuration)), "DrainSeconds") ?? 10);

    /// <summary>The registry settings (<c>Trellis:Registry</c>, <c>Trellis:ZooKeeper</c>, <c>Trellis:LocalRegistryPath</c>).</summary>
    public static TrellisOptions Registry(IConfiguration configuration)
    {
        var options = new TrellisOptions();
        configuration?.GetSection(TrellisOptions.Section).Bind(options);
        return options;
    }

    private static string DefaultSnapshotDirectory() =>
        Path.Combine(Environment.GetEnvironmentVariable("STATE_DIRECTORY") is { Length: > 0 } state ? state : Path.Combine(Path.GetTempPath(), "trellis-proxy-" + Environment.UserName), "snapshot");
}
