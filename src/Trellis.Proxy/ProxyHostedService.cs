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
public sealed partial class ProxyHostedService(ProxyServer proxy, IConfiguration configuration, ILogger<ProxyHostedService> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _hangUp;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsWindows())
        {
            _hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // SIGHUP reloads; it does not end the process
                Reload();
            });
        }

        return proxy.StartAsync(cancellationToken);
    }

    /// <summary>Reads the configuration again and applies what may change while running.</summary>
    public bool Reload()
    {
        try
        {
            (configuration as IConfigurationRoot)?.Reload();
            proxy.Reload(ProxyConfiguration.Bind(configuration));
            return true;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidDataException)
        {
            LogReloadRejected(logger, e.Message);
            return false;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => proxy.StopAsync(ProxyConfiguration.Drain(configuration));

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
