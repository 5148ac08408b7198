using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.Rpc;
using Trellis.Rpc.Registry;

namespace Trellis.Proxy.Balancer;

/// <summary>How a balancer publishes its service.</summary>
public sealed class BalancerRegistration
{
    /// <summary>rpc_proxy's <c>front_host</c>: the address to publish (default: from <see cref="IpPrefix"/>, else the listener's, else the first non-loopback IPv4).</summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>rpc_proxy's <c>ip_prefix</c>: publish the local IPv4 address that starts with this.</summary>
    public string? IpPrefix { get; init; }

    /// <summary>Default: <c>{machine}-{port}</c>.</summary>
    public string? InstanceId { get; init; }

    public string Zone { get; init; } = "";

    public int Weight { get; init; } = 100;

    public string Version { get; init; } = "";

    /// <summary>After deregistering, how long to keep serving so proxies notice before the listener closes.</summary>
    public TimeSpan DeregisterDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long calls in flight get to finish once the listener closed.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// <c>trellis balancer</c>: one service served by a pool of single-threaded worker processes (L3 → L4). The front end
/// is the proxy's (every encoding, deadlines, backpressure, errors a stock client understands); calls go to the
/// <see cref="WorkerPool"/> instead of a registry route. The service is registered once the first worker is ready;
/// a stop runs deregister → wait → drain → stop the workers (SIGTERM, then SIGKILL after the stop timeout).
/// </summary>
public sealed partial class WorkerBalancer : IAsyncDisposable
{
    private readonly ProxyServer _front;
    private readonly WorkerPool _pool;
    private readonly Func<CancellationToken, Task<IServiceRegistry>>? _connectRegistry;
    private readonly BalancerRegistration _registration;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private IRegistration? _record;
    private IServiceRegistry? _registry;
    private bool _ownsRegistry = true;
    private Task? _registering;
    private int _stopped;

    /// <param name="options">The workers.</param>
    /// <param name="front">Where callers connect (its <see cref="ProxyOptions.Listen"/>), the call timeout and limits; its product is the one registered under.</param>
    /// <param name="registry">Where the service is registered, or null to register nowhere (callers are given the address).</param>
    /// <param name="registration">How it is published (host, instance id, zone) and how a stop waits.</param>
    /// <param name="logger">Worker starts, exits, replacements and registration.</param>
    public WorkerBalancer(BalancerOptions options, ProxyOptions front, IServiceRegistry? registry, BalancerRegistration? registration = null, ILogger? logger = null)
        : this(options, front, registry is null ? null : _ => Task.FromResult(registry), registration, logger)
    {
        _ownsRegistry = false; // the caller's: it closes it
    }

    /// <summary>A balancer whose registry is connected in the background (retried with backoff until it answers), so the workers serve while ZooKeeper is down.</summary>
    /// <param name="options">The workers.</param>
    /// <param name="front">Where callers connect, the call timeout and limits; its product is the one registered under.</param>
    /// <param name="connectRegistry">Connects the registry the service is registered in, or null to register nowhere.</param>
    /// <param name="registration">How it is published (host, instance id, zone) and how a stop waits.</param>
    /// <param name="logger">Worker starts, exits, replacements and registration.</param>
    public WorkerBalancer(BalancerOptions options, ProxyOptions front, Func<CancellationToken, Task<IServiceRegistry>>? connectRegistry,
        BalancerRegistration? registration = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(front);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _logger = logger ?? NullLogger.Instance;
        _connectRegistry = connectRegistry;
        _registration = registration ?? new BalancerRegistration();
        front.DefaultService = options.Service;
        // the front end needs no registry of its own: its one route is the pool
        _front = new ProxyServer(front, _ => Task.FromResult<IServiceRegistry>(new NoRegistry()), _logger);
        _pool = new WorkerPool(options, _front, _logger);
        _front.Pool = _pool;
    }

    public string Service => _pool.Service;

    /// <summary>Where callers connect (TCP port 0 resolved).</summary>
    public IReadOnlyList<RpcEndpoint> Endpoints => _front.Endpoints;

    public ProxyStats Stats => _front.Stats;

    public IReadOnlyList<WorkerStatus> Workers => _pool.Workers;

    /// <summary>Calls waiting for a free worker.</summary>
    public int Queued => _pool.Queued;

    /// <summary>Workers started again after they exited on their own.</summary>
    public long Restarts => _pool.Restarts;

    /// <summary>Workers replaced for their call count or memory.</summary>
    public long Recycled => _pool.Replaced;

    /// <summary>Workers killed for sitting on a call past its deadline.</summary>
    public long Killed => _pool.Killed;

    /// <summary>Calls refused because the queue was full.</summary>
    public long Overloaded => _pool.Overloaded;

    /// <summary>Completes when the first worker is ready.</summary>
    public Task FirstWorkerReady => _pool.FirstReady;

    /// <summary>The registration, once made.</summary>
    public IRegistration? Registration => Volatile.Read(ref _record);

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        _pool.Start();
        await _front.StartAsync(cancellationToken).ConfigureAwait(false);
        if (_connectRegistry is not null)
        {
            _registering = RegisterWhenReadyAsync(_connectRegistry);
        }
    }

    /// <summary>The front end (for the admin endpoint).</summary>
    public ProxyServer Front => _front;

    private async Task RegisterWhenReadyAsync(Func<CancellationToken, Task<IServiceRegistry>> connect)
    {
        for (var attempt = 0; !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                await _pool.FirstReady.WaitAsync(_stopping.Token).ConfigureAwait(false);
                // one registry (one ZooKeeper session) for all attempts: a failed registration is retried on it, not on a new one
                _registry ??= await connect(_stopping.Token).ConfigureAwait(false);
                await RegisterAsync(_registry).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return; // stopped before any worker was ready, or before the registry answered
            }
            catch (Exception e)
            {
                LogRegisterFailed(_logger, e, Service);
                var delay = TimeSpan.FromMilliseconds(Math.Min(10_000, 250 * (1 << Math.Min(attempt, 6))));
                await Task.Delay(delay, _stopping.Token).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
    }

    private async Task RegisterAsync(IServiceRegistry registry)
    {
        var tcp = _front.Endpoints.FirstOrDefault(e => !e.IsUnix);
        var uds = _front.Endpoints.FirstOrDefault(e => e.IsUnix);
        var host = tcp is null ? null : ServiceHost.AdvertisedHost(tcp.Host!, _registration.AdvertisedHost, _registration.IpPrefix);
        var record = new ServiceInstance
        {
            Product = _front.Options.Product,
            Service = Service,
            InstanceId = _registration.InstanceId ?? $"{Environment.MachineName}-{(tcp is null ? "uds" : tcp.Port)}",
            Host = host,
            Port = tcp?.Port ?? 0,
            Uds = uds?.UnixPath,
            Zone = _registration.Zone,
            Weight = _registration.Weight,
            Version = _registration.Version,
            // the front end takes every encoding; THeader carries the caller's deadline to it
            Framing = "header",
            Multiplexed = true,
            Pid = Environment.ProcessId,
            StartedAt = DateTimeOffset.UtcNow,
            Tls = tcp is not null && _front.ListenTls is not null,
        };
        var made = await registry.RegisterAsync(record, _stopping.Token).ConfigureAwait(false);
        Volatile.Write(ref _record, made);
        LogRegistered(_logger, record.Product, record.Service, record.InstanceId, host ?? record.Uds ?? "");
    }

    /// <summary>Deregister → wait the deregister delay → stop accepting and drain calls in flight → stop the workers.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_registering is not null)
        {
            await _registering.ConfigureAwait(false);
        }

        if (Volatile.Read(ref _record) is { } record)
        {
            try
            {
                // draining first: proxies stop picking it at once (a plain removal is held down briefly against flapping)
                await record.UpdateAsync(record.Instance with { Draining = true }).ConfigureAwait(false);
                await record.DeregisterAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogDeregisterFailed(_logger, e, Service);
            }

            LogStopping(_logger, Service, _registration.DeregisterDelay.TotalMilliseconds);
            await Task.Delay(_registration.DeregisterDelay).ConfigureAwait(false);
        }

        await _front.StopAsync(_registration.DrainTimeout).ConfigureAwait(false);
        await _pool.StopAsync().ConfigureAwait(false);
        if (_ownsRegistry && _registry is IAsyncDisposable owned)
        {
            await owned.DisposeAsync().ConfigureAwait(false); // its session goes with it
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _front.DisposeAsync().ConfigureAwait(false);
        await _pool.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>The front end's registry when the balancer registers nowhere: it is never asked for routes.</summary>
    private sealed class NoRegistry : IServiceRegistry
    {
        public Task<IRegistration> RegisterAsync(ServiceInstance instance, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("this balancer registers nowhere");

        public Task<IServiceWatch> WatchAsync(string product, string service, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("a balancer routes to its workers only");

        public Task<IRegistration> RegisterProxyAsync(ServiceInstance instance, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("this balancer registers nowhere");

        public Task<IServiceWatch> WatchProxiesAsync(string product, string zone, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("a balancer routes to its workers only");

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "registered {Product}/{Service} as {InstanceId} at {Address}")]
    private static partial void LogRegistered(ILogger logger, string product, string service, string instanceId, string address);

    [LoggerMessage(Level = LogLevel.Error, Message = "could not register {Service}; trying again")]
    private static partial void LogRegisterFailed(ILogger logger, Exception e, string service);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not deregister {Service}")]
    private static partial void LogDeregisterFailed(ILogger logger, Exception e, string service);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Service}: deregistered; serving {Ms} ms more while proxies notice")]
    private static partial void LogStopping(ILogger logger, string service, double ms);
}
