using Trellis.Rpc.Balancing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Trellis.Hosting;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;
using Trellis.Thrift.Services;
using Trellis.ZooKeeper;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Trellis in a Microsoft.Extensions.Hosting application.</summary>
public static class TrellisServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="TrellisOptions"/> from the <c>Trellis</c> section, validated when the host starts.
    /// Safe to call more than once.
    /// </summary>
    public static IServiceCollection AddTrellis(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<TrellisOptions>().Bind(configuration.GetSection(TrellisOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TrellisOptions>, TrellisOptionsValidator>());
        services.TryAddSingleton<IServiceRegistry>(sp => CreateRegistry(sp));
        return services;
    }

    /// <summary>
    /// Serves Thrift services: listens on <c>Trellis:Server:Listen</c> (or rpc_proxy's <c>front_port</c>), registers every
    /// service after the listener is up, and on shutdown deregisters, waits, drains and closes.
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configuration">The configuration holding the <c>Trellis</c> section.</param>
    /// <param name="dispatchers">The generated dispatchers, e.g. <c>sp => new Echo.Dispatcher(sp.GetRequiredService&lt;EchoService&gt;())</c>.</param>
    public static IServiceCollection AddTrellisServer(this IServiceCollection services, IConfiguration configuration,
        params Func<IServiceProvider, ThriftServiceDispatcher>[] dispatchers)
    {
        ArgumentNullException.ThrowIfNull(dispatchers);
        if (dispatchers.Length == 0)
        {
            throw new ArgumentException("give at least one service dispatcher", nameof(dispatchers));
        }

        services.AddTrellis(configuration);
        services.AddSingleton<IHostedService>(sp => new TrellisServerHostedService(sp, dispatchers));
        return services;
    }

    /// <summary>
    /// Registers a generated client (<typeparamref name="TClient"/>) over a channel configured by <c>Trellis:Clients:{name}</c>
    /// (default endpoint: <c>Trellis:ProxyAddress</c>, the local proxy).
    /// </summary>
    public static IServiceCollection AddTrellisClient<TClient>(this IServiceCollection services, IConfiguration configuration, string name,
        Func<IThriftChannel, TClient> create)
        where TClient : class
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(create);
        services.AddTrellis(configuration);
        services.AddKeyedSingleton<IThriftChannel>(name, (sp, _) =>
        {
            var options = sp.GetRequiredService<IOptions<TrellisOptions>>().Value;
            var section = options.Clients.GetValueOrDefault(name) ?? new TrellisOptions.ClientSection();
            // who is calling, for the callee's routes and rules: the product always; its service, zone, host and route tag
            var host = ServiceHost.AdvertisedHost("0.0.0.0", options.Server.AdvertisedHost, options.Server.IpPrefix);
            var tag = section.Tag ?? options.Tag;
            var caller = new Trellis.Rpc.Governance.CallerInfo(options.Product.Length > 0 ? options.Product : null, options.Service,
                options.Server.Zone.Length > 0 ? options.Server.Zone : null, host, tag);
            var headers = new Dictionary<string, string>(StringComparer.Ordinal) { [RpcHeaders.CallerHost] = host };
            if (caller.Service is { } callerService)
            {
                headers[RpcHeaders.CallerService] = callerService;
            }

            if (caller.Zone is { } zone)
            {
                headers[RpcHeaders.CallerZone] = zone;
            }

            if (tag is not null)
            {
                headers[RpcHeaders.Tag] = tag;
            }
            if (section.Mode == "direct")
            {
                var logger = sp.GetService<ILoggerFactory>()?.CreateLogger("Trellis.Client." + name);
                var registry = sp.GetRequiredService<IServiceRegistry>();
                var target = section.Service ?? name;
                IInstanceResolver resolver = new RegistryResolver(registry, options.Product, target, logger: logger);
                if (registry is Trellis.Rpc.Governance.IConfigStore store)
                {
                    // the service's config from the registry: instances offline, weights and the strategy, applied live
                    resolver = new Trellis.Rpc.Governance.ConfiguredResolver(resolver, store, options.Product, target, logger);
                }

                BalancerStrategy StrategyFor(string? configured)
                {
                    var strategy = BalancerStrategy.Parse(configured ?? section.Strategy);
                    if (section.Locality)
                    {
                        var self = ServiceHost.AdvertisedHost("0.0.0.0", options.Server.AdvertisedHost, options.Server.IpPrefix);
                        var zone = LocalityStrategy.ZoneOf(new ServiceInstance { Product = options.Product, Service = "self", InstanceId = "self", Host = self, Port = 1 });
                        strategy = new LocalityStrategy(strategy, self, zone);
                    }

                    return strategy;
                }

                return new DirectChannel(resolver, new BalancedChannelOptions
                {
                    Governance = new Trellis.Rpc.Governance.ClientGovernance(target, caller),
                    Strategy = StrategyFor(null),
                    DefaultTimeout = TimeSpan.FromSeconds(section.TimeoutSeconds),
                    Tls = options.Tls.ToOptions(), // for instances whose record says tls
                }, StrategyFor);
            }

            var encoding = new ThriftEncoding(
                // default: THeader to a proxy (it carries deadlines, the caller's identity and route tag), framed to an endpoint
                (section.Framing ?? (section.Endpoint is null && options.ProxyAddress is not null ? "header" : "framed")) switch
                {
                    "unframed" => ThriftFraming.Unframed, "header" => ThriftFraming.Header, _ => ThriftFraming.Framed,
                },
                section.Protocol == "compact" ? ThriftProtocol.Compact : ThriftProtocol.Binary);
            if (section.Endpoint is null && options.ProxyAddress is { } proxyAddress)
            {
                // the local proxy, with the zone's central proxies (from ZooKeeper) behind it when it is down
                var registry = sp.GetRequiredService<IServiceRegistry>();
                return new ProxyChannel(new ProxyChannelOptions
                {
                    Local = RpcEndpoint.Parse(proxyAddress),
                    Central = section.CentralFallback && TrellisRegistry.UsesZooKeeper(options)
                        ? RegistryResolver.ForCentralProxies(registry, options.Product, options.Server.Zone)
                        : null,
                    Encoding = encoding,
                    DefaultTimeout = TimeSpan.FromSeconds(section.TimeoutSeconds),
                    Tls = options.Tls.ToOptions(), // for central proxies whose record says tls
                    CallerProduct = caller.Product,
                    Headers = headers,
                });
            }

            var endpoint = section.Endpoint
                ?? throw new InvalidOperationException($"client {name}: set Trellis:Clients:{name}:Endpoint or Trellis:ProxyAddress");
            return new ThriftChannel(new ThriftChannelOptions
            {
                Endpoint = RpcEndpoint.Parse(endpoint),
                Encoding = encoding,
                Multiplexed = section.Multiplexed,
                PeerMultiplexesCalls = section.PeerMultiplexesCalls,
                DefaultTimeout = TimeSpan.FromSeconds(section.TimeoutSeconds),
                Logger = sp.GetService<ILoggerFactory>()?.CreateLogger("Trellis.Client." + name),
                Tls = section.Tls ? options.Tls.ToOptions() : null,
                TlsPeerName = section.Tls ? section.TlsPeerName ?? CallerIdentity.ToUri(options.Product, section.Service ?? name) : null,
                CallerProduct = caller.Product,
                Headers = headers,
            });
        });
        services.AddSingleton(sp => create(sp.GetRequiredKeyedService<IThriftChannel>(name)));
        return services;
    }

    private static IServiceRegistry CreateRegistry(IServiceProvider sp) =>
        TrellisRegistry.ConnectAsync(sp.GetRequiredService<IOptions<TrellisOptions>>().Value, sp.GetService<ILoggerFactory>()).GetAwaiter().GetResult();
}
