using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc;

/// <summary>How a <see cref="ServiceHost"/> publishes its services and stops.</summary>
public sealed class ServiceHostOptions
{
    /// <summary>The product namespace the services register under.</summary>
    public required string Product { get; init; }

    /// <summary>Default: <c>{machine}-{pid}-{random}</c>.</summary>
    public string? InstanceId { get; init; }

    /// <summary>The host callers use; default: from <see cref="IpPrefix"/>, else the listener's address, else the first non-loopback IPv4.</summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>rpc_proxy's <c>ip_prefix</c>: advertise the local IPv4 address that starts with this (e.g. <c>10.</c>).</summary>
    public string? IpPrefix { get; init; }

    public string Zone { get; init; } = "";
    public int Weight { get; init; } = 100;
    public string Version { get; init; } = "";
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();

    /// <summary>After deregistering, how long to keep serving so consumers notice before the listener closes.</summary>
    public TimeSpan DeregisterDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long calls in flight get to finish once the listener closed; after it, they are cancelled.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public ILogger? Logger { get; init; }
}

/// <summary>
/// A service instance's life: listen, then register (so no caller is sent to a port not yet open); on stop,
/// mark draining and deregister → wait for consumers to notice → drain calls in flight → close, with a deadline
/// after which remaining calls fail alone.
/// </summary>
public sealed partial class ServiceHost : IAsyncDisposable
{
    private readonly ThriftServer _server;
    private readonly IServiceRegistry _registry;
    private readonly ServiceHostOptions _options;
    private readonly IReadOnlyList<string> _services;
    private readonly List<IRegistration> _registrations = [];
    private readonly ILogger _logger;
    private int _stopped;

    public ServiceHost(ThriftServer server, IServiceRegistry registry, IReadOnlyList<string> services, ServiceHostOptions options)
    {
        _server = server ?? throw new ArgumentNullException(nameof(server));
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _services = services is { Count: > 0 } ? services : throw new ArgumentException("name the services to register", nameof(services));
        if (!RegistryPaths.IsName(options.Product))
        {
            throw new ArgumentException($"product '{options.Product}' is not a valid name", nameof(options));
        }

        InstanceId = options.InstanceId ?? $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        _logger = options.Logger ?? NullLogger.Instance;
    }

    public string InstanceId { get; }

    public IReadOnlyList<IRegistration> Registrations => _registrations;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _server.StartAsync(cancellationToken).ConfigureAwait(false);
        var tcp = _server.Endpoints.FirstOrDefault(e => !e.IsUnix);
        var uds = _server.Endpoints.FirstOrDefault(e => e.IsUnix);
        var host = tcp is null ? null : AdvertisedHost(tcp.Host!, _options.AdvertisedHost, _options.IpPrefix);
        var tls = tcp is not null && _server.Tls is not null;
        foreach (var service in _services)
        {
            if (tls && !_server.Tls!.Names.Contains(CallerIdentity.ToUri(_options.Product, service), StringComparer.Ordinal))
            {
                // callers check the name: every TLS connection to this service would be refused
                LogCertificateNameMissing(_logger, CallerIdentity.ToUri(_options.Product, service),
                    _server.Tls.Names.Count == 0 ? "none" : string.Join(", ", _server.Tls.Names));
            }

            var instance = new ServiceInstance
            {
                Product = _options.Product,
                Service = service,
                InstanceId = InstanceId,
                Host = host,
                Port = tcp?.Port ?? 0,
                Uds = uds?.UnixPath,
                Zone = _options.Zone,
                Weight = _options.Weight,
                Version = _options.Version,
                Tags = _options.Tags,
                Multiplexed = true,
                // a Trellis server takes every encoding; THeader carries the caller's deadline and trace context to it
                Framing = "header",
                MaxConcurrency = _server.Options.MaxConcurrentCalls,
                Pid = Environment.ProcessId,
                StartedAt = DateTimeOffset.UtcNow,
                Tls = tls,
            };
            _registrations.Add(await _registry.RegisterAsync(instance, cancellationToken).ConfigureAwait(false));
        }
    }

    /// <summary>Deregister → wait <see cref="ServiceHostOptions.DeregisterDelay"/> → drain (up to <see cref="ServiceHostOptions.DrainTimeout"/>) → close.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        foreach (var registration in _registrations)
        {
            try
            {
                // draining first: balancers stop picking it at once (a plain removal is held down briefly against flapping)
                await registration.UpdateAsync(registration.Instance with { Draining = true }, cancellationToken).ConfigureAwait(false);
                await registration.DeregisterAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogDeregisterFailed(_logger, e, registration.Instance.Service);
            }
        }

        LogStopping(_logger, InstanceId, _options.DeregisterDelay.TotalMilliseconds);
        await Task.Delay(_options.DeregisterDelay, cancellationToken).ConfigureAwait(false);
        await _server.StopAsync(_options.DrainTimeout).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The address to publish: explicit, else the local IPv4 with the prefix, else the bound one, else the first non-loopback IPv4.</summary>
    public static string AdvertisedHost(string boundHost, string? advertised, string? ipPrefix)
    {
        if (!string.IsNullOrEmpty(advertised))
        {
            return advertised;
        }

        var local = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => a.ToString())
            .ToList();
        if (!string.IsNullOrEmpty(ipPrefix))
        {
            return local.FirstOrDefault(a => a.StartsWith(ipPrefix, StringComparison.Ordinal))
                   ?? throw new InvalidOperationException($"no local IPv4 address starts with ip_prefix '{ipPrefix}' (have: {string.Join(", ", local)})");
        }

        if (IPAddress.TryParse(boundHost, out var bound) && !bound.Equals(IPAddress.Any) && !bound.Equals(IPAddress.IPv6Any))
        {
            return boundHost;
        }

        return local.FirstOrDefault(a => !a.StartsWith("127.", StringComparison.Ordinal)) ?? "127.0.0.1";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "instance {InstanceId} deregistered; serving {Milliseconds} ms more before draining")]
    private static partial void LogStopping(ILogger logger, string instanceId, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the TLS certificate does not name {Name} (it names {Names}): callers will refuse this instance")]
    private static partial void LogCertificateNameMissing(ILogger logger, string name, string names);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not deregister {Service}")]
    private static partial void LogDeregisterFailed(ILogger logger, Exception exception, string service);
}
