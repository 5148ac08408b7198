using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift.Services;

namespace Trellis.Hosting;

/// <summary>Runs a <see cref="ServiceHost"/> inside the generic host: start = listen + register; stop = the graceful sequence.</summary>
internal sealed class TrellisServerHostedService(IServiceProvider services, Func<IServiceProvider, ThriftServiceDispatcher>[] dispatchers) : IHostedService, IAsyncDisposable
{
    private ServiceHost? _host;

    /// <summary>The running host (for tests and diagnostics).</summary>
    public ServiceHost? Host => _host;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var options = services.GetRequiredService<IOptions<TrellisOptions>>().Value;
        var loggers = services.GetService<ILoggerFactory>();
        var serverOptions = new ThriftServerOptions
        {
            MaxConcurrentCalls = options.Server.MaxConcurrentCalls,
            Logger = loggers?.CreateLogger("Trellis.Server"),
            Product = options.Product,
            Tls = options.Tls.ToOptions(),
        };
        foreach (var endpoint in options.Server.Listen)
        {
            serverOptions.Endpoints.Add(RpcEndpoint.Parse(endpoint));
        }

        if (options.Server.Port is { } port)
        {
            serverOptions.Endpoints.Add(RpcEndpoint.Tcp("0.0.0.0", port));
        }

        if (serverOptions.Endpoints.Count == 0)
        {
            throw new InvalidOperationException("Trellis:Server:Listen is empty and no Trellis:Server:Port (rpc_proxy 'front_port') is set: nothing to listen on");
        }

        var server = new ThriftServer(serverOptions);
        var names = new List<string>();
        foreach (var create in dispatchers)
        {
            var dispatcher = create(services);
            server.AddService(dispatcher);
            names.Add(dispatcher.ServiceName);
        }

        _host = new ServiceHost(server, services.GetRequiredService<IServiceRegistry>(), names, new ServiceHostOptions
        {
            Product = options.Product,
            InstanceId = options.Server.InstanceId,
            AdvertisedHost = options.Server.AdvertisedHost,
            IpPrefix = options.Server.IpPrefix,
            Zone = options.Server.Zone,
            Weight = options.Server.Weight,
            DeregisterDelay = TimeSpan.FromSeconds(options.Server.DeregisterDelaySeconds),
            DrainTimeout = TimeSpan.FromSeconds(options.Server.DrainTimeoutSeconds),
            Logger = loggers?.CreateLogger("Trellis.Host"),
        });
        await _host.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_host is not null)
        {
            await _host.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);
}
