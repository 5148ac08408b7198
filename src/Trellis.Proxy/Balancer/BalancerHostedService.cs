using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Trellis.Hosting;

namespace Trellis.Proxy.Balancer;

/// <summary>
/// Runs a <see cref="WorkerBalancer"/> in a generic host: started with the host; on SIGTERM / Ctrl-C deregistered,
/// drained and its workers stopped (in <see cref="StoppingAsync"/>, so an admin endpoint in the same host still answers
/// <c>/health</c> with 503 meanwhile).
/// </summary>
public sealed partial class BalancerHostedService : IHostedLifecycleService, IDisposable
{
    private readonly WorkerBalancer _balancer;
    private readonly PosixSignalRegistration? _hangUp;

    public BalancerHostedService(WorkerBalancer balancer, ILogger<BalancerHostedService> logger)
    {
        _balancer = balancer;
        if (!OperatingSystem.IsWindows())
        {
            // a SIGHUP (a reload request, or a closed terminal) must not end the process and orphan its workers
            _hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                LogHangUp(logger);
            });
        }
    }

    public void Dispose() => _hangUp?.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "SIGHUP ignored: the balancer reloads nothing; restart it to change its settings")]
    private static partial void LogHangUp(ILogger logger);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => _balancer.StartAsync(cancellationToken);

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => _balancer.StopAsync();

    public Task StopAsync(CancellationToken cancellationToken) => _balancer.StopAsync();

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

public static class BalancerServiceCollectionExtensions
{
    /// <summary>
    /// Adds the balancer configured by <paramref name="configuration"/> (see <see cref="BalancerConfiguration"/>). Its
    /// registry (ZooKeeper, or the local one) is connected in the background once a worker is ready, retried until it
    /// answers: the workers serve callers that have the address meanwhile.
    /// </summary>
    public static IServiceCollection AddTrellisBalancer(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var (workers, front, registration) = BalancerConfiguration.Bind(configuration);
        if (BalancerConfiguration.Validate(workers, front) is { } problem)
        {
            throw new InvalidOperationException($"balancer configuration: {problem}");
        }

        services.AddSingleton(sp =>
        {
            var loggers = sp.GetService<ILoggerFactory>();
            var registry = ProxyConfiguration.Registry(configuration);
            return new WorkerBalancer(workers, front, ct => TrellisRegistry.ConnectAsync(registry, loggers, ct), registration, loggers?.CreateLogger("Trellis.Balancer"));
        });
        services.AddSingleton(sp => sp.GetRequiredService<WorkerBalancer>().Front);
        services.AddHostedService<BalancerHostedService>();
        return services;
    }
}
