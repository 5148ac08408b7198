using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Trellis.Hosting;

namespace Trellis.Proxy;

/// <summary>
/// Runs a <see cref="ProxyServer"/> in a generic host: started with the host, stopped gracefully with it (SIGTERM,
/// Ctrl-C), and reloaded on SIGHUP (the configuration is read again; a bad one is logged and the running one kept).
/// </summary>
/// <remarks>
/// The graceful stop runs in <see cref="StoppingAsync"/>, before the host stops its other services, so an admin
/// endpoint in the same host still answers <c>/health</c> (503, stopping) while calls in flight drain.
/// </remarks>
public sealed partial class ProxyHostedService : IHostedLifecycleService, IDisposable
{
    private readonly ProxyServer _proxy;
    private readonly IConfiguration _configuration;
    private readonly ILogger<ProxyHostedService> _logger;
    private readonly PosixSignalRegistration? _hangUp;

    public ProxyHostedService(ProxyServer proxy, IConfiguration configuration, ILogger<ProxyHostedService> logger)
    {
        _proxy = proxy;
        _configuration = configuration;
        _logger = logger;
        if (!OperatingSystem.IsWindows())
        {
            // from construction on, not from start: a SIGHUP's default action would end the process
            _hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // SIGHUP reloads; it does not end the process
                if (_proxy.Endpoints.Count > 0)
                {
                    Reload();
                }
            });
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => _proxy.StartAsync(cancellationToken);

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => _proxy.StopAsync(ProxyConfiguration.Drain(_configuration));

    public Task StopAsync(CancellationToken cancellationToken) => _proxy.StopAsync(ProxyConfiguration.Drain(_configuration));

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Reads the configuration again and applies what may change while running.</summary>
    public bool Reload()
    {
        try
        {
            (_configuration as IConfigurationRoot)?.Reload();
            _proxy.Reload(ProxyConfiguration.Bind(_configuration));
            return true;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidDataException)
        {
            LogReloadRejected(_logger, e.Message);
            return false;
        }
    }

    public void Dispose() => _hangUp?.Dispose();

    [LoggerMessage(Level = LogLevel.Error, Message = "reload rejected, the running configuration stays: {Reason}")]
    private static partial void LogReloadRejected(ILogger logger, string reason);
}

public static class ProxyServiceCollectionExtensions
{
    /// <summary>
    /// Adds the proxy configured by <paramref name="configuration"/> (see <see cref="ProxyConfiguration"/>); its registry
    /// is connected in the background and retried, so the proxy starts, and serves from its snapshot, while ZooKeeper is down.
    /// </summary>
    public static IServiceCollection AddTrellisProxy(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = ProxyConfiguration.Bind(configuration);
        if (options.Validate() is { } problem)
        {
            throw new InvalidOperationException($"proxy configuration: {problem}");
        }

        services.AddSingleton(sp =>
        {
            var loggers = sp.GetService<ILoggerFactory>();
            var registry = ProxyConfiguration.Registry(configuration);
            return new ProxyServer(options, ct => TrellisRegistry.ConnectAsync(registry, loggers, ct), loggers?.CreateLogger("Trellis.Proxy"));
        });
        services.AddSingleton<ProxyHostedService>();
        services.AddHostedService(sp => sp.GetRequiredService<ProxyHostedService>());
        return services;
    }
}
