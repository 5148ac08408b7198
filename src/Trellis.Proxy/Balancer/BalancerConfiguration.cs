using Microsoft.Extensions.Configuration;
using Trellis.Rpc;

namespace Trellis.Proxy.Balancer;

/// <summary>
/// Reads a balancer's settings: the original rpc_proxy <c>config.ini</c> keys as mapped by
/// <see cref="Trellis.Hosting.RpcProxyIni"/> (<c>service</c>, <c>front_host</c>, <c>front_port</c>, <c>back_address</c>,
/// <c>worker_pool_size</c>, <c>ip_prefix</c>, <c>product</c>, <c>zk</c>), and the <c>Trellis:Balancer</c> section.
/// </summary>
/// <remarks>
/// <c>Trellis:Balancer</c>: <c>Command</c> (the worker command template, with <c>{socket}</c>), <c>Workers</c>,
/// <c>Listen</c> (list of addresses, added to <c>front_port</c>'s), <c>SocketDirectory</c>, <c>WorkerFraming</c>,
/// <c>WorkerProtocol</c>, <c>WorkerMultiplexed</c>, <c>QueueSize</c>, <c>QueueTimeoutMs</c>, <c>TimeoutMs</c> (a call's
/// deadline when the caller sets none), <c>MaxRequestsPerWorker</c>, <c>MaxWorkerMemoryMb</c>,
/// <c>StartTimeoutSeconds</c>, <c>StopTimeoutSeconds</c>, <c>DeregisterDelaySeconds</c>, <c>DrainSeconds</c>,
/// <c>InstanceId</c>, <c>Zone</c>, <c>Admin</c> (host:port of the health and metrics endpoint).
/// </remarks>
public static class BalancerConfiguration
{
    public const string Section = "Trellis:Balancer";

    /// <summary>The three parts of a balancer's settings; a value that does not parse is a <see cref="FormatException"/> naming its key.</summary>
    public static (BalancerOptions Workers, ProxyOptions Front, BalancerRegistration Registration) Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(Section);
        var workers = new BalancerOptions
        {
            Service = configuration["Trellis:Service"] ?? "",
            Command = section["Command"] is { Length: > 0 } command ? command : null,
            SocketDirectory = section["SocketDirectory"] is { Length: > 0 } dir ? dir : null,
            WorkerFraming = section["WorkerFraming"] ?? "framed",
            WorkerProtocol = section["WorkerProtocol"] ?? "binary",
            WorkerMultiplexed = ConfigValues.Bool(section, "WorkerMultiplexed") ?? false,
        };
        workers.Workers = ConfigValues.Int(section, "Workers") ?? workers.Workers;
        workers.WorkerPoolSize = ConfigValues.Int(configuration, "Trellis:WorkerPoolSize") ?? workers.WorkerPoolSize;
        workers.QueueSize = ConfigValues.Int(section, "QueueSize") ?? workers.QueueSize;
        workers.MaxRequestsPerWorker = ConfigValues.Int(section, "MaxRequestsPerWorker") ?? workers.MaxRequestsPerWorker;
        workers.MaxWorkerMemoryMb = ConfigValues.Int(section, "MaxWorkerMemoryMb") ?? workers.MaxWorkerMemoryMb;
        if (ConfigValues.Int(section, "QueueTimeoutMs") is { } queue)
        {
            workers.QueueTimeout = TimeSpan.FromMilliseconds(queue);
        }

        if (ConfigValues.Int(section, "StartTimeoutSeconds") is { } start)
        {
            workers.StartTimeout = TimeSpan.FromSeconds(start);
        }

        if (ConfigValues.Int(section, "StopTimeoutSeconds") is { } stop)
        {
            workers.StopTimeout = TimeSpan.FromSeconds(stop);
        }

        if (configuration["Trellis:BackAddress"] is { Length: > 0 } back)
        {
            workers.BackAddress = ConfigValues.Endpoint(back, "Trellis:BackAddress (back_address)");
        }

        var tls = ConfigValues.Tls(configuration);
        var front = new ProxyOptions
        {
            Product = configuration["Trellis:Product"] is { Length: > 0 } product ? product : "default",
            // a balancer is a service of its product: with Trellis:Tls on, its TCP listener takes TLS as a server's does
            Tls = tls,
            ListenTls = tls is not null,
        };
        if (ConfigValues.Int(section, "TimeoutMs") is { } timeout)
        {
            front.DefaultTimeout = TimeSpan.FromMilliseconds(timeout);
        }

        if (ConfigValues.Int(configuration, "Trellis:Server:Port") is { } port)
        {
            // front_port: every interface, as the original balancer listened
            front.Listen.Add(RpcEndpoint.Tcp("0.0.0.0", port));
        }

        foreach (var listen in section.GetSection("Listen").GetChildren().Select(c => c.Value).OfType<string>())
        {
            var endpoint = ConfigValues.Endpoint(listen, $"{Section}:Listen");
            if (!front.Listen.Contains(endpoint))
            {
                front.Listen.Add(endpoint);
            }
        }

        var registration = new BalancerRegistration
        {
            AdvertisedHost = configuration["Trellis:Server:AdvertisedHost"] is { Length: > 0 } host ? host : null,
            IpPrefix = configuration["Trellis:Server:IpPrefix"] is { Length: > 0 } prefix ? prefix : null,
            InstanceId = section["InstanceId"] is { Length: > 0 } id ? id : null,
            Zone = section["Zone"] ?? "",
            DeregisterDelay = TimeSpan.FromSeconds(ConfigValues.Int(section, "DeregisterDelaySeconds") ?? 2),
            DrainTimeout = TimeSpan.FromSeconds(ConfigValues.Int(section, "DrainSeconds") ?? 10),
        };
        return (workers, front, registration);
    }

    /// <summary>What is wrong with the settings as a whole, or null.</summary>
    public static string? Validate(BalancerOptions workers, ProxyOptions front) =>
        workers.Validate() ?? (front.Listen.Count == 0 ? "nothing to listen on: give front_port (Trellis:Server:Port) or Trellis:Balancer:Listen" : front.Validate());

    /// <summary>The admin (health and metrics) address, or null for none.</summary>
    public static string? Admin(IConfiguration configuration) => configuration?[$"{Section}:Admin"] is { Length: > 0 } admin ? admin : null;
}
