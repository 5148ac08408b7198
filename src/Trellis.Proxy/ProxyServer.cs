using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trellis.Rpc;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Proxy;

/// <summary>
/// The proxy (L2): takes Thrift calls named <c>service:method</c> from applications on a Unix socket and/or TCP,
/// routes each call (not each connection) to an instance of that service in its product, and forwards the bytes.
/// </summary>
/// <remarks>
/// Only the envelope (name, type, seqid) is read; the body goes through untouched (re-encoded only when the caller's
/// protocol differs from the instance's). Seqids are rewritten per backend connection so calls from many application
/// connections share few backend connections, and restored on the reply, which is written as soon as it comes.
/// </remarks>
public sealed partial class ProxyServer : IAsyncDisposable
{
    private readonly Func<CancellationToken, Task<IServiceRegistry>> _connectRegistry;
    private readonly TaskCompletionSource<IServiceRegistry> _registry = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, ServiceRoute> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<BackendConnection, byte> _backends = new();
    private readonly CallerListeners<FrontendConnection> _listeners;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _sweeper;
    private Task? _connecting;
    private IRegistration? _centralRecord;
    private readonly bool _ownsRegistry;
    private int _inFlight;
    private bool _started;
    private ProxyOptions _options;

    /// <param name="options">Listening, routing and forwarding settings.</param>
    /// <param name="connectRegistry">
    /// Connects the registry (ZooKeeper or local); retried with backoff until it succeeds, while the proxy already
    /// serves from its snapshot.
    /// </param>
    /// <param name="logger">Where the proxy logs.</param>
    public ProxyServer(ProxyOptions options, Func<CancellationToken, Task<IServiceRegistry>> connectRegistry, ILogger? logger = null)
        : this(options, connectRegistry, logger, ownsRegistry: true)
    {
    }

    private ProxyServer(ProxyOptions options, Func<CancellationToken, Task<IServiceRegistry>> connectRegistry, ILogger? logger, bool ownsRegistry)
    {
        _ownsRegistry = ownsRegistry;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _connectRegistry = connectRegistry ?? throw new ArgumentNullException(nameof(connectRegistry));
        Logger = logger ?? NullLogger.Instance;
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException($"proxy options are not valid: {problem}", nameof(options));
        }

        ListenTls = options.ListenTls ? options.Tls!.Load() : null;
        _listeners = new CallerListeners<FrontendConnection>((socket, peer) => new FrontendConnection(this, socket, peer));
        Stats.Count(() => Volatile.Read(ref _inFlight), () => _listeners.Count);
        CreateInstruments();
        if (options.SnapshotDirectory is { } dir)
        {
            Snapshots = new SnapshotStore(dir, options.Product, Logger);
        }
    }

    /// <summary>
    /// Makes socket completions run on the socket engine's thread instead of hopping to the thread pool
    /// (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c>): for a process that only forwards bytes, whose
    /// continuations never block, this saves a thread hop per read. Call it first thing in <c>Main</c>, before any
    /// socket exists; an explicit setting of the variable wins.
    /// </summary>
    public static void UseInlineSocketCompletions()
    {
        const string Name = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (Environment.GetEnvironmentVariable(Name) is null)
        {
            Environment.SetEnvironmentVariable(Name, "1");
        }
    }

    /// <summary>A proxy over a registry that is already connected.</summary>
    public ProxyServer(ProxyOptions options, IServiceRegistry registry, ILogger? logger = null)
        : this(options, _ => Task.FromResult(registry ?? throw new ArgumentNullException(nameof(registry))), logger, ownsRegistry: false)
    {
    }

    internal ProxyOptions Options => Volatile.Read(ref _options);

    /// <summary>The TCP listeners' TLS material (<see cref="ProxyOptions.ListenTls"/>; null: plaintext).</summary>
    internal TlsCredentials? ListenTls { get; }

    /// <summary>The applications' open connections (tests, diagnostics).</summary>
    internal FrontendConnection[] Connections => _listeners.Open();

    internal ILogger Logger { get; }

    internal SnapshotStore? Snapshots { get; }

    internal Task<IServiceRegistry> Registry => _registry.Task;

    internal NameCache Names { get; } = new();

    /// <summary>The caller-product header for callers that did not say theirs: this proxy's product.</summary>
    internal IReadOnlyList<KeyValuePair<string, string>> ProductHeader => _productHeader ??= [new(RpcHeaders.CallerProduct, _options.Product)];

    private IReadOnlyList<KeyValuePair<string, string>>? _productHeader;

    /// <summary>The registry is connected (false while it has never been reachable since the start).</summary>
    public bool RegistryConnected => _registry.Task.IsCompletedSuccessfully;

    public ProxyStats Stats { get; } = new();

    /// <summary>Where the proxy listens (TCP port 0 resolved to the port taken).</summary>
    public IReadOnlyList<RpcEndpoint> Endpoints => _listeners.Bound;

    public bool IsStopping => _stopping.IsCancellationRequested;

    /// <summary>The services routed so far and their instances with live state (for the admin endpoint).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<BalancerEndpoint>> Routes =>
        _routes.ToDictionary(r => r.Key, r => (IReadOnlyList<BalancerEndpoint>)r.Value.Set.Endpoints, StringComparer.Ordinal);

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_started)
        {
            throw new InvalidOperationException("the proxy is already started");
        }

        _started = true;
        _listeners.Start(_options.Listen, _options.UnixSocketMode, _options.FrameReadTimeout, _options.IdleTimeout, _stopping.Token);
        foreach (var bound in _listeners.Bound)
        {
            if (_options.DefaultService is { } service)
            {
                LogBalancerListening(Logger, bound, _options.Product, service);
            }
            else
            {
                LogListening(Logger, bound, _options.Product);
            }
        }

        _connecting = Task.Run(ConnectRegistryAsync, CancellationToken.None);
        _sweeper = new Thread(Sweep) { IsBackground = true, Name = "trellis-proxy-deadlines" };
        _sweeper.Start();
        return Task.CompletedTask;
    }

    private async Task ConnectRegistryAsync()
    {
        for (var attempt = 0; !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                // a central registration that failed (e.g. not allowed by ZooKeeper's ACLs) is retried on the same registry
                var registry = _registry.Task.IsCompletedSuccessfully
                    ? await _registry.Task.ConfigureAwait(false)
                    : await _connectRegistry(_stopping.Token).ConfigureAwait(false);
                _registry.TrySetResult(registry);
                if (_options.Central)
                {
                    await RegisterCentralAsync(registry).ConfigureAwait(false);
                }

                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogRegistryUnreachable(Logger, e.Message);
                var delay = TimeSpan.FromMilliseconds(Math.Min(10_000, 250 * (1 << Math.Min(attempt, 6))) * (0.5 + Random.Shared.NextDouble() / 2));
                await Task.Delay(delay, _stopping.Token).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
    }

    private async Task RegisterCentralAsync(IServiceRegistry registry)
    {
        var tcp = _listeners.Bound.FirstOrDefault(b => !b.IsUnix) ?? throw new InvalidOperationException("a central proxy needs a TCP address to listen on");
        var host = _options.Host ?? (tcp.Host is "0.0.0.0" or "::" ? Environment.MachineName : tcp.Host!);
        var record = new ServiceInstance
        {
            Product = _options.Product,
            Service = "proxy",
            InstanceId = _options.InstanceId ?? $"{host}-{tcp.Port}",
            Host = host,
            Port = tcp.Port,
            Zone = _options.Zone,
            Pid = Environment.ProcessId,
            StartedAt = DateTimeOffset.UtcNow,
            Tls = ListenTls is not null,
        };
        _centralRecord = await registry.RegisterProxyAsync(record, _stopping.Token).ConfigureAwait(false);
        var path = RegistryPaths.Proxies(record.Product, record.Zone);
        LogCentral(Logger, path, record.InstanceId);
    }

    private ServiceRoute Route(string service)
    {
        if (_routes.TryGetValue(service, out var route))
        {
            return route;
        }

        if (!RegistryPaths.IsName(service))
        {
            throw new TApplicationException(TApplicationExceptionType.UnknownMethod, $"'{MultiplexedName.ForEcho(service)}' is not a valid service name");
        }

        if (_routes.Count >= _options.MaxServices)
        {
            throw new TApplicationException(TApplicationExceptionType.InternalError, $"the proxy routes its limit of {_options.MaxServices} services; '{MultiplexedName.ForEcho(service)}' is refused");
        }

        lock (_routes)
        {
            if (_routes.TryGetValue(service, out route))
            {
                return route;
            }

            route = new ServiceRoute(this, service);
            _routes[service] = route;
            route.Start();
            return route;
        }
    }

    /// <summary>The services routed so far (the admin page).</summary>
    internal IEnumerable<ServiceRoute> ServiceRoutes => _routes.Values;

    /// <summary>A service's route if it has one already (null before its first call): its config and limits.</summary>
    internal ServiceRoute? RouteOf(string service) => _routes.TryGetValue(service, out var route) ? route : null;

    /// <summary>The registry config of a routed service (null before its first call).</summary>
    internal Trellis.Rpc.Governance.ServiceConfig? ConfigOf(string service) => RouteOf(service)?.Config;

    internal void Forward(ForwardCall call)
    {
        if (Interlocked.Increment(ref _inFlight) == 1 && Volatile.Read(ref _sweeperIdle) == 1)
        {
            _sweeperWake.Set(); // the deadline sweeper sleeps while the proxy is idle
        }

        Stats.Call();
        _ = ForwardAsync(call);
    }

    /// <summary>The balancer's workers: when set, every call goes to them instead of a route from the registry.</summary>
    internal Balancer.WorkerPool? Pool { get; set; }

    private async Task ForwardAsync(ForwardCall call)
    {
        if (ProxyTelemetry.Source.HasListeners())
        {
            call.Trace = ProxyTelemetry.StartForward(call); // zero cost unless someone listens
        }

        ServiceRoute? routed = null; // the admin page's per-service statistics (ServiceStats)
        var began = Stopwatch.GetTimestamp();
        try
        {
            if (Pool is { } pool)
            {
                await ForwardToWorkerAsync(pool, call).ConfigureAwait(false);
                return;
            }

            var route = routed = Route(call.Service);
            if (route.Set.Endpoints.Length == 0 && !route.Ready.IsCompleted)
            {
                // the first call to a service waits for its first list (bounded by its deadline and a few seconds)
                var wait = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(3).Ticks, Left(call).Ticks));
                await Task.WhenAny(route.Ready, Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero)).ConfigureAwait(false);
            }

            if (route.Set.Endpoints.Length == 0)
            {
                if (route.Denied is { } denied)
                {
                    Stats.NoneAvailable();
                    throw new TApplicationException(TApplicationExceptionType.InternalError, $"no instance available for {call.Service}: the registry refuses this proxy: {denied}");
                }

                if (!route.EverHadInstances && route.Ready.IsCompleted)
                {
                    Stats.Unknown();
                    throw new TApplicationException(TApplicationExceptionType.UnknownMethod,
                        $"unknown service '{call.Service}': no instance of it is registered in product {_options.Product}");
                }

                Stats.NoneAvailable();
                throw new TApplicationException(TApplicationExceptionType.InternalError, RegistryConnected
                    ? $"no instance available for {call.Service}: none is registered now"
                    : $"no instance available for {call.Service}: the registry is unreachable and no list of it is cached");
            }

            // the retry loop, inline (one state machine per call, not two)
            var options = _options;
            route.Config.Methods.TryGetValue(call.Method, out var configured);
            var idempotent = (call.ServiceOptions?.IdempotentMethods.Contains(call.Method) ?? false) || configured?.Idempotent == true;
            var maxRetries = configured?.Retries ?? options.MaxRetries;
            List<BalancerEndpoint>? tried = null;
            for (var attempt = 0; ; attempt++)
            {
                Pick<BackendPool> pick;
                try
                {
                    pick = route.Set.Pick(tried, call.Headers is null ? null : HashKey(call.Headers), call.Subset, call.ForceSubset);
                }
                catch (TApplicationException)
                {
                    Stats.NoneAvailable(); // all draining or ejected
                    throw;
                }

                pick.Endpoint.Begin();
                if (call.Trace is { } trace)
                {
                    ProxyTelemetry.Attempt(trace, pick.Endpoint.Instance, attempt);
                }

                var started = Stopwatch.GetTimestamp();
                Exception failure;
                bool sent;
                try
                {
                    var reply = await pick.Connection.SendAsync(call).ConfigureAwait(false);

                    route.Set.Finish(pick, started, success: true);
                    if (reply.Type == TMessageType.Exception && attempt < maxRetries && Left(call) > TimeSpan.Zero && IsOverloaded(reply))
                    {
                        // the instance refused before running it: safe elsewhere, and not a sign of ill health
                        reply.Body.Dispose();
                        (tried ??= []).Add(pick.Endpoint);
                        Stats.Retried();
                        continue;
                    }

                    call.Succeeded = reply.Type != TMessageType.Exception;
                    if (!call.Succeeded)
                    {
                        call.Trace?.SetStatus(ActivityStatusCode.Error, "the instance answered with an exception");
                    }
                    using (reply.Body)
                    {
                        if (!call.IsOneway)
                        {
                            Stats.Replied();
                            call.Client.Reply(call, reply);
                        }
                    }

                    return;
                }
                catch (TTransportException e) when (e.Kind == TTransportErrorKind.NotOpen)
                {
                    failure = e;
                    sent = false;
                }
                catch (Exception e) when (e is TException or IOException or SocketException or TimeoutException)
                {
                    failure = e;
                    sent = true;
                }

                route.Set.Finish(pick, started, success: false);
                var retryable = !sent || (idempotent && failure is not TimeoutException);
                if (!retryable || attempt >= maxRetries || Left(call) <= TimeSpan.Zero)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                }

                (tried ??= []).Add(pick.Endpoint);
                Stats.Retried();
            }
        }
        catch (TApplicationException e)
        {
            call.Client.Fail(call, e);
        }
        catch (TimeoutException)
        {
            Stats.TimedOut();
            call.Client.Fail(call, RpcErrors.DeadlineExceeded(call.Name));
        }
        catch (Exception e) when (e is TException or IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Stats.BackendFailed();
            call.Client.Fail(call, new TApplicationException(TApplicationExceptionType.InternalError, $"backend failure: {call.Name}: {e.Message}"));
        }
        finally
        {
            routed?.Stats.Record((long)Stopwatch.GetElapsedTime(began).TotalMicroseconds, !call.Succeeded);
            call.Trace?.Dispose();
            call.Release(); // if no answer did (a oneway call, a caller gone)
            call.Body.Dispose();
            call.Client.Done();
            if (Interlocked.Decrement(ref _inFlight) == 0 && _stopping.IsCancellationRequested)
            {
                _drained.TrySetResult();
            }
        }
    }

    private async Task ForwardToWorkerAsync(Balancer.WorkerPool pool, ForwardCall call)
    {
        if (!string.Equals(call.Service, pool.Service, StringComparison.Ordinal))
        {
            Stats.Unknown();
            throw new TApplicationException(TApplicationExceptionType.UnknownMethod,
                $"unknown service '{call.Service}': this balancer serves {pool.Service} only");
        }

        var reply = await pool.SendAsync(call).ConfigureAwait(false);
        using (reply.Body)
        {
            if (!call.IsOneway)
            {
                Stats.Replied();
                call.Client.Reply(call, reply);
            }
        }
    }

    private static TimeSpan Left(ForwardCall call) => Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), call.Deadline);

    /// <summary>The key for consistent hashing: THeader info key <c>trellis-hash-key</c> when the caller sets one.</summary>
    public const string HashKeyHeader = "trellis-hash-key";

    private static ulong? HashKey(IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        foreach (var (key, value) in headers)
        {
            if (key == HashKeyHeader)
            {
                return RingHashStrategy.Hash(value);
            }
        }

        return null;
    }

    private bool IsOverloaded(in BackendReply reply)
    {
        try
        {
            TApplicationException error;
            if (reply.Protocol == ThriftProtocol.Binary)
            {
                var reader = new ThriftBinaryReader(reply.Body.Span, _options.Limits);
                error = TApplicationException.Read(ref reader);
            }
            else
            {
                var reader = new ThriftCompactReader(reply.Body.Span, _options.Limits);
                error = TApplicationException.Read(ref reader);
            }

            return RpcErrors.IsOverloaded(error);
        }
        catch (TException)
        {
            return false;
        }
    }

    /// <summary>Open connections to instances, all services together.</summary>
    public int BackendConnectionCount => _backends.Count;

    internal void Track(BackendConnection connection) => _backends.TryAdd(connection, 0);

    /// <summary>Closes a backend connection once its calls are answered (or after the default timeout).</summary>
    internal async Task RetireAsync(BackendConnection connection)
    {
        var until = Stopwatch.GetTimestamp() + (long)(_options.DefaultTimeout.TotalSeconds * Stopwatch.Frequency);
        while (!connection.IsBroken && connection.Outstanding > 0 && Stopwatch.GetTimestamp() < until)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

        _backends.TryRemove(connection, out _);
        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Fails calls past their deadline, every 5 ms (one timer for all calls instead of one per call), on a thread of its
    /// own: a pool timer would wake (and set spinning) thread-pool workers 200 times a second. It keeps ticking while
    /// calls came in the last second and sleeps when the proxy is idle, so a quiet proxy does not wake up and a busy
    /// one is not signalled per call.
    /// </summary>
    private void Sweep()
    {
        var quiet = 0;
        var stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            if (quiet >= 200)
            {
                _sweeperWake.Reset();
                Interlocked.Exchange(ref _sweeperIdle, 1); // a full fence: a call counted after this sees the flag
                if (Volatile.Read(ref _inFlight) == 0)
                {
                    try
                    {
                        _sweeperWake.Wait(stopping);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                Interlocked.Exchange(ref _sweeperIdle, 0);
                quiet = 0;
            }

            if (stopping.WaitHandle.WaitOne(5))
            {
                return;
            }

            quiet = Volatile.Read(ref _inFlight) == 0 ? quiet + 1 : 0;
            var now = Stopwatch.GetTimestamp();
            Pool?.Expire(now);
            foreach (var connection in _backends.Keys)
            {
                if (connection.IsBroken)
                {
                    _backends.TryRemove(connection, out _);
                    continue;
                }

                connection.Expire(now);
            }
        }
    }

    private readonly ManualResetEventSlim _sweeperWake = new(false, spinCount: 0);
    private int _sweeperIdle;

    /// <summary>Applies new settings: per-service timeouts, strategies and idempotent methods, the default timeout.</summary>
    /// <exception cref="ArgumentException">The new settings are not valid; the current ones stay.</exception>
    public void Reload(ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException($"proxy options are not valid, the current ones stay: {problem}", nameof(options));
        }

        if (options.Product != _options.Product)
        {
            throw new ArgumentException("the product of a running proxy cannot change; restart it", nameof(options));
        }

        var current = _options;
        var next = new ProxyOptions
        {
            Product = current.Product,
            Zone = current.Zone,
            Host = current.Host,
            Strategy = options.Strategy,
            Locality = options.Locality,
            DefaultTimeout = options.DefaultTimeout,
            ConnectTimeout = options.ConnectTimeout,
            ConnectionsPerBackend = current.ConnectionsPerBackend,
            MaxPoolPerBackend = current.MaxPoolPerBackend,
            MaxInFlightPerConnection = options.MaxInFlightPerConnection,
            MaxServices = options.MaxServices,
            MaxRetries = options.MaxRetries,
            Limits = current.Limits,
            IdleTimeout = options.IdleTimeout,
            FrameReadTimeout = options.FrameReadTimeout,
            SnapshotDirectory = current.SnapshotDirectory,
            Central = current.Central,
            InstanceId = current.InstanceId,
            UnixSocketMode = current.UnixSocketMode,
            DefaultService = current.DefaultService,
            Tls = current.Tls, // certificates are not reloaded: a restart takes new ones
            ListenTls = current.ListenTls,
        };
        foreach (var endpoint in current.Listen)
        {
            next.Listen.Add(endpoint);
        }

        foreach (var (name, service) in options.Services)
        {
            next.Services[name] = service;
        }

        Volatile.Write(ref _options, next);
        foreach (var route in _routes.Values)
        {
            route.Reload(next);
        }

        LogReloaded(Logger, next.Services.Count);
    }

    /// <summary>
    /// Graceful stop: withdraws the central record, stops accepting, reads no new calls, lets the calls in flight
    /// finish (up to <paramref name="drainTimeout"/>), then closes every connection.
    /// </summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        if (!_started || _stopping.IsCancellationRequested)
        {
            return;
        }

        if (_centralRecord is not null)
        {
            try
            {
                await _centralRecord.DeregisterAsync().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or Trellis.ZooKeeper.KeeperException or OperationCanceledException)
            {
                LogDeregisterFailed(Logger, e.Message);
            }
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _listeners.StopAcceptingAsync().ConfigureAwait(false);
        foreach (var connection in _listeners.Open())
        {
            connection.StopReading();
        }

        if (Volatile.Read(ref _inFlight) == 0)
        {
            _drained.TrySetResult();
        }

        if (await Task.WhenAny(_drained.Task, Task.Delay(drainTimeout)).ConfigureAwait(false) != _drained.Task)
        {
            LogDrainTimeout(Logger, Volatile.Read(ref _inFlight), drainTimeout.TotalMilliseconds);
        }

        await _listeners.CloseAllAsync().ConfigureAwait(false);

        foreach (var route in _routes.Values)
        {
            await route.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var connection in _backends.Keys)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _sweeper?.Join();

        if (_connecting is not null)
        {
            await _connecting.ConfigureAwait(false);
        }

        if (_ownsRegistry && _registry.Task.IsCompletedSuccessfully)
        {
            await _registry.Task.Result.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        Stats.Dispose();
        _prometheus?.Dispose();
        _sweeperWake.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "proxy for product {Product} listening on {Endpoint}")]
    private static partial void LogListening(ILogger logger, RpcEndpoint endpoint, string product);

    [LoggerMessage(Level = LogLevel.Information, Message = "balancer of {Product}/{Service} listening on {Endpoint}")]
    private static partial void LogBalancerListening(ILogger logger, RpcEndpoint endpoint, string product, string service);

    [LoggerMessage(Level = LogLevel.Warning, Message = "registry unreachable ({Reason}); serving from cached lists and retrying")]
    private static partial void LogRegistryUnreachable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "central proxy registered at {Path}/{Id}")]
    private static partial void LogCentral(ILogger logger, string path, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "withdrawing the central record failed: {Reason}")]
    private static partial void LogDeregisterFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "configuration reloaded ({Services} services with their own settings)")]
    private static partial void LogReloaded(ILogger logger, int services);

    [LoggerMessage(Level = LogLevel.Warning, Message = "stop: {Calls} calls still in flight after {Ms} ms; closing anyway")]
    private static partial void LogDrainTimeout(ILogger logger, int calls, double ms);
}
