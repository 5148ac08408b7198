using System.Collections.Immutable;
using System.Diagnostics;
using Trellis.Rpc.Registry;
using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Rpc.Balancing;

/// <summary>How a <see cref="BalancedChannel"/> chooses, judges and retries.</summary>
public sealed class BalancedChannelOptions
{
    public BalancerStrategy Strategy { get; init; } = new PeakEwmaP2CStrategy();

    public OutlierPolicy Outliers { get; init; } = new();

    /// <summary>Attempts after the first, at most (each on another instance).</summary>
    public int MaxRetries { get; init; } = 2;

    public RetryBudget Budget { get; init; } = new();

    /// <summary>Methods safe to retry after a send whose reply was lost, besides those marked <c>(idempotent)</c> in the IDL.</summary>
    public IReadOnlySet<string> IdempotentMethods { get; init; } = new HashSet<string>();

    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A new instance's weight ramps up over this long.</summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Hedged requests for idempotent methods: when an attempt has not answered after
    /// <see cref="HedgingPolicy.Delay"/>, another starts on another instance and the first answer wins. Off by default.
    /// </summary>
    public HedgingPolicy? Hedging { get; init; }

    /// <summary>The active health check; off (passive health only) by default.</summary>
    public HealthCheckPolicy? HealthCheck { get; init; }

    /// <summary>Makes the channel options for one instance (encoding, limits…); by default from its record.</summary>
    public Func<ServiceInstance, ThriftChannelOptions>? ChannelOptions { get; init; }

    /// <summary>
    /// The product's TLS settings: instances whose record says <c>tls</c> are reached with TLS, their certificate checked
    /// to name <c>trellis://{product}/{service}</c> of the record; a failed handshake counts against the instance and the
    /// call goes to another. Without them, a TLS instance fails every call as not sent, saying why.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>
    /// The service config's rules, applied in-process (<see cref="BalancedChannel.ApplyConfig"/>): degradation, rate and
    /// concurrency limits, circuit breakers, routes, timeouts and retries. Null: none.
    /// </summary>
    public Governance.ClientGovernance? Governance { get; init; }
}

/// <summary>
/// The optional active health check: every <see cref="Interval"/> each instance's address is connected to (TCP or
/// Unix socket, which any Thrift server in any language accepts); <see cref="UnhealthyAfter"/> failed probes in a
/// row take it out of rotation, <see cref="HealthyAfter"/> good ones bring it back. Panic routing still applies.
/// </summary>
public sealed record HealthCheckPolicy
{
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);

    public int UnhealthyAfter { get; init; } = 2;

    public int HealthyAfter { get; init; } = 1;
}

/// <summary>Hedged requests (idempotent methods only; each hedge is paid from the retry budget).</summary>
public sealed record HedgingPolicy
{
    /// <summary>How long an attempt may go unanswered before the next one starts.</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Attempts in flight at most, the first included.</summary>
    public int MaxAttempts { get; init; } = 2;
}

/// <summary>
/// A channel over every instance of a service (direct mode): the resolver's instances, a strategy's pick per
/// attempt, passive health, retries within a budget. One <see cref="ThriftChannel"/> per instance underneath.
/// </summary>
/// <remarks>
/// Retry rules: a call that was never sent (connection refused, the instance overloaded) is retried on another
/// instance; a call that was sent and got no reply only when the method is idempotent; an answer (a declared
/// exception, an application error) is never retried. Every retry needs budget and time before the deadline.
/// </remarks>
public sealed class BalancedChannel : IThriftChannel, IAsyncDisposable
{
    private readonly IInstanceResolver _resolver;
    private readonly BalancedChannelOptions _options;
    private readonly EndpointSet<ThriftChannel> _set;

    public BalancedChannel(IInstanceResolver resolver, BalancedChannelOptions? options = null)
    {
        _resolver = resolver ?? throw new ArgumentNullException(nameof(resolver));
        _options = options ?? new BalancedChannelOptions();
        if (_options.Tls is { Enabled: true } tls && tls.Validate() is { } problem)
        {
            throw new ArgumentException($"Tls: {problem}", nameof(options));
        }

        if (_options.HealthCheck is { } bad && (bad.Interval <= TimeSpan.Zero || bad.Timeout <= TimeSpan.Zero || bad.UnhealthyAfter < 1 || bad.HealthyAfter < 1))
        {
            throw new ArgumentException("HealthCheck: Interval and Timeout must be positive, UnhealthyAfter and HealthyAfter at least 1", nameof(options));
        }

        var linger = _options.DefaultTimeout;
        _set = new EndpointSet<ThriftChannel>(_options.Strategy, _options.Outliers, _options.WarmUp,
            instance => new ThriftChannel(ChannelOptions(instance)),
            // let calls in flight on it finish, then close
            channel => _ = Task.Delay(linger).ContinueWith(_ => channel.DisposeAsync().AsTask(), TaskScheduler.Default));
        _resolver.Updated += OnUpdate;
        _set.Update(_resolver.Instances);
        if (_options.HealthCheck is { } check)
        {
            _healthChecks = Task.Run(() => CheckHealthAsync(check, _stop.Token));
        }
    }

    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _healthChecks;

    private async Task CheckHealthAsync(HealthCheckPolicy check, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(check.Interval);
        do
        {
            var endpoints = _set.Endpoints;
            await Task.WhenAll(endpoints.Select(e => ProbeAsync(e, check, stop))).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
    }

    private async Task ProbeAsync(BalancerEndpoint endpoint, HealthCheckPolicy check, CancellationToken stop)
    {
        bool ok;
        if (_set.ConnectionOf(endpoint) is not { } channel)
        {
            return;
        }

        var address = channel.Endpoint; // where calls to it go

        using var socket = address.NewClientSocket();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(check.Timeout);
        try
        {
            await socket.ConnectAsync(address.ToEndPoint(), timeout.Token).ConfigureAwait(false);
            ok = true;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException or IOException)
        {
            if (stop.IsCancellationRequested)
            {
                return;
            }

            ok = false;
        }

        endpoint.Health.RecordProbe(ok, check.UnhealthyAfter, check.HealthyAfter);
    }

    public IReadOnlyList<BalancerEndpoint> Endpoints => _set.Endpoints;

    private static readonly AsyncLocal<ulong?> NextHashKey = new();

    /// <summary>
    /// Sets the request key consistent hashing routes on, for the calls made on this async flow:
    /// <c>using (BalancedChannel.WithHashKey(userId)) await client.XAsync();</c>. The same key reaches the same
    /// instance while the set is unchanged (and moves for about 1/n of keys when it changes). Without a key,
    /// <c>consistent_hash</c> picks at random.
    /// </summary>
    public static IDisposable WithHashKey(string key) => WithHashKey(RingHashStrategy.Hash(key));

    /// <inheritdoc cref="WithHashKey(string)"/>
    public static IDisposable WithHashKey(ulong key)
    {
        var previous = NextHashKey.Value;
        NextHashKey.Value = key;
        return new RestoreHashKey(previous);
    }

    private sealed class RestoreHashKey(ulong? previous) : IDisposable
    {
        public void Dispose() => NextHashKey.Value = previous;
    }

    /// <summary>Switches strategy at run time: the next pick uses it.</summary>
    public void SetStrategy(BalancerStrategy strategy) => _set.SetStrategy(strategy);

    /// <summary>
    /// Puts a service config in force: the per-instance breaker (<c>outlier</c>), the routes' instance subsets, and —
    /// with <see cref="BalancedChannelOptions.Governance"/> — the per-call rules. (Strategy, weights and offline
    /// instances come through the resolver and <see cref="SetStrategy"/>.)
    /// </summary>
    public void ApplyConfig(Governance.ServiceConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _set.SetOutlierPolicy(config.Outliers ?? _options.Outliers);
        _set.SetSubsets([.. config.Routes.Subsets.Select(selector => (Func<ServiceInstance, bool>)selector.Matches)]);
        _options.Governance?.Apply(config);
    }

    /// <summary>Runs a call through the config's rules: refused, answered with a static reply, or sent with its route and policy.</summary>
    private static async ValueTask GovernedAsync(Governance.ClientGovernance governance, ThriftMethod method, IThriftStruct? result,
        Func<Governance.ClientAdmission, ValueTask> send)
    {
        var admission = governance.Admit(method.Name);
        if (admission.Reply is { } reply)
        {
            if (result is not null)
            {
                ThriftSerializer.DeserializeInto(result, reply.BinaryBody);
            }

            return;
        }

        var success = false;
        try
        {
            await send(admission).ConfigureAwait(false);
            success = true;
        }
        catch (Exception e)
        {
            success = !Governance.ClientAdmission.IsFailure(e); // a declared exception is an answer
            throw;
        }
        finally
        {
            admission.Release(success);
        }
    }

    private void OnUpdate(ResolverUpdate update) => _set.Update(update.Instances);

    private ThriftChannelOptions ChannelOptions(ServiceInstance instance)
    {
        if (_options.ChannelOptions?.Invoke(instance) is { } own)
        {
            return own;
        }

        var endpoint = instance.Endpoint();
        var (tls, peerName) = TlsOptions.ForInstance(_options.Tls, instance, endpoint);
        return new ThriftChannelOptions
        {
            Endpoint = endpoint,
            Encoding = new ThriftEncoding(
                instance.Framing switch { "unframed" => ThriftFraming.Unframed, "header" => ThriftFraming.Header, _ => ThriftFraming.Framed },
                instance.Protocol == "compact" ? ThriftProtocol.Compact : ThriftProtocol.Binary),
            Multiplexed = instance.Multiplexed,
            PeerMultiplexesCalls = instance.Multiplexed,
            DefaultTimeout = _options.DefaultTimeout,
            Tls = tls,
            TlsPeerName = peerName,
        };
    }

    public ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        ArgumentNullException.ThrowIfNull(method);
        return RpcTelemetry.Source.HasListeners()
            ? TracedAsync(method, () => CallCoreAsync(method, arguments, result, cancellationToken))
            : CallCoreAsync(method, arguments, result, cancellationToken);
    }

    /// <summary>
    /// One span per logical call (kind Internal, named <c>Service/method</c>): each attempt's client span (from the
    /// channel underneath) is its child, and each retry an event on it.
    /// </summary>
    private static async ValueTask TracedAsync(ThriftMethod method, Func<ValueTask> call)
    {
        var name = RpcTelemetry.MethodName(method);
        using var activity = RpcTelemetry.Source.StartActivity(name, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(RpcTelemetry.SystemNameTag, RpcTelemetry.SystemName);
            activity.SetTag(RpcTelemetry.MethodTag, name);
        }

        try
        {
            await call().ConfigureAwait(false);
        }
        catch (Exception e) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.Message);
            activity.SetTag(RpcTelemetry.ErrorTypeTag, RpcTelemetry.ErrorType(e));
            throw;
        }
    }

    /// <summary>Marks a retry on the call's span (when there is one).</summary>
    private static void TraceRetry(int attempt, BalancerEndpoint endpoint, Exception error)
    {
        if (Activity.Current is { Source.Name: RpcTelemetry.Name, Kind: ActivityKind.Internal, IsAllDataRequested: true } span)
        {
            span.AddEvent(new ActivityEvent("retry", tags: new ActivityTagsCollection
            {
                ["trellis.attempt"] = attempt + 1,
                ["trellis.instance"] = endpoint.Instance.InstanceId,
                [RpcTelemetry.ErrorTypeTag] = RpcTelemetry.ErrorType(error),
            }));
        }
    }

    private ValueTask CallCoreAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        if (_options.Governance is { IsEmpty: false } governance) // no config: no async wrapper per call
        {
            return GovernedAsync(governance, method, result, admission =>
                _options.Hedging is { MaxAttempts: > 1 } hedged && (IsIdempotent(method) || admission.Idempotent)
                    ? HedgedCallAsync(method, arguments, result, hedged, cancellationToken, admission)
                    : RunAsync(method, (channel, ct) => channel.CallAsync(method, arguments, result, ct), cancellationToken, admission: admission));
        }

        if (_options.Hedging is { MaxAttempts: > 1 } hedging && IsIdempotent(method))
        {
            return HedgedCallAsync(method, arguments, result, hedging, cancellationToken);
        }

        return RunAsync(method, (channel, ct) => channel.CallAsync(method, arguments, result, ct), cancellationToken);
    }

    private bool IsIdempotent(ThriftMethod method) => method.IsIdempotent || _options.IdempotentMethods.Contains(method.Name);

    /// <summary>
    /// Attempts race: each reads into a result of its own (a reply may still be arriving on a loser while the
    /// winner is copied out), the first answer is copied into <paramref name="result"/>, the others are cancelled.
    /// </summary>
    private async ValueTask HedgedCallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, HedgingPolicy hedging, CancellationToken cancellationToken,
        Governance.ClientAdmission? admission = null)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        using var race = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var picked = new List<BalancerEndpoint>();
        var attempts = new List<Task<IThriftStruct>>(hedging.MaxAttempts);

        Task<IThriftStruct> Start(bool hedge)
        {
            BalancerEndpoint[] avoid;
            lock (picked)
            {
                avoid = [.. picked];
            }

            var own = (IThriftStruct)Activator.CreateInstance(result.GetType())!;
            return Attempt(own, avoid, hedge);
        }

        async Task<IThriftStruct> Attempt(IThriftStruct own, BalancerEndpoint[] avoid, bool hedge)
        {
            await RunAsync(method, (channel, ct) => channel.CallAsync(method, arguments, own, ct), race.Token, avoid, e =>
            {
                lock (picked)
                {
                    picked.Add(e);
                }
            }, hedge, admission).ConfigureAwait(false);
            return own;
        }

        attempts.Add(Start(hedge: false));
        var started = 1;
        Exception? failure = null;
        try
        {
            while (attempts.Count > 0)
            {
                var timer = started < hedging.MaxAttempts ? Task.Delay(hedging.Delay, race.Token) : null;
                var done = timer is null ? await Task.WhenAny(attempts).ConfigureAwait(false) : await Task.WhenAny([.. attempts, timer]).ConfigureAwait(false);
                if (done == timer)
                {
                    started++; // a hedge the budget refuses is not tried again for this call
                    if (_options.Budget.TryWithdraw())
                    {
                        attempts.Add(Start(hedge: true));
                    }

                    continue;
                }

                var finished = (Task<IThriftStruct>)done;
                attempts.Remove(finished);
                if (finished.IsCompletedSuccessfully)
                {
                    ThriftSerializer.DeserializeInto(result, ThriftSerializer.Serialize(finished.Result));
                    return;
                }

                if (finished.Exception?.InnerException is { } error)
                {
                    failure = error;
                    if (Classify(error) == Outcome.Answered)
                    {
                        break; // an answer (an application error) is the call's outcome: no other attempt changes it
                    }
                }
            }
        }
        finally
        {
            await race.CancelAsync().ConfigureAwait(false);
            foreach (var loser in attempts)
            {
                _ = loser.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (failure is null)
        {
            throw new OperationCanceledException("every attempt was cancelled");
        }

        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
    }

    public ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable =>
        RpcTelemetry.Source.HasListeners()
            ? TracedAsync(method, () => SendOnewayCoreAsync(method, arguments, cancellationToken))
            : SendOnewayCoreAsync(method, arguments, cancellationToken);

    private ValueTask SendOnewayCoreAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable =>
        _options.Governance is { IsEmpty: false } governance
            ? GovernedAsync(governance, method, null, admission => RunAsync(method, (channel, ct) => channel.SendOnewayAsync(method, arguments, ct), cancellationToken, admission: admission))
            : RunAsync(method, (channel, ct) => channel.SendOnewayAsync(method, arguments, ct), cancellationToken);

    private async ValueTask RunAsync(ThriftMethod method, Func<ThriftChannel, CancellationToken, ValueTask> send, CancellationToken cancellationToken,
        BalancerEndpoint[]? avoid = null, Action<BalancerEndpoint>? picked = null, bool hedge = false, Governance.ClientAdmission? admission = null)
    {
        // the caller's ThriftChannel.WithTimeout budget covers every attempt; without one, the config's timeout or
        // DefaultTimeout does (with both, the shorter)
        var configured = admission?.Timeout;
        var budget = ThriftChannel.CallerTimeout is { } own && (configured is null || own < configured) ? own : configured ?? _options.DefaultTimeout;
        var deadline = DateTimeOffset.UtcNow + budget;
        var idempotent = IsIdempotent(method) || admission?.Idempotent == true;
        var maxRetries = admission?.Retries ?? _options.MaxRetries;
        var (subset, force) = admission is { } a ? (a.Subset, a.Force) : (-1, false);
        List<BalancerEndpoint>? tried = avoid is { Length: > 0 } ? [.. avoid] : null;
        for (var attempt = 0; ; attempt++)
        {
            var pick = _set.Pick(tried, NextHashKey.Value, subset, force);
            var (endpoint, channel) = (pick.Endpoint, pick.Connection);
            picked?.Invoke(endpoint);
            endpoint.Begin();
            var started = Stopwatch.GetTimestamp();
            try
            {
                var left = deadline - DateTimeOffset.UtcNow;
                using (ThriftChannel.WithTimeout(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1)))
                {
                    await send(channel, cancellationToken).ConfigureAwait(false);
                }

                _set.Finish(pick, started, success: true);
                if (attempt == 0 && !hedge)
                {
                    _options.Budget.Deposit(); // one deposit per call: a retry that succeeds is not a call of its own
                }

                return;
            }
            catch (OperationCanceledException)
            {
                endpoint.Abandon(); // the caller gave up (or a hedge won): no verdict on the instance
                throw;
            }
            catch (Exception e)
            {
                var kind = Classify(e);
                _set.Finish(pick, started, success: kind is Outcome.Answered or Outcome.Overloaded);
                if (attempt == 0 && !hedge)
                {
                    _options.Budget.Deposit();
                }

                var retryable = kind is Outcome.NotSent or Outcome.Overloaded || (kind == Outcome.NoReply && idempotent);
                if (!retryable || attempt >= maxRetries || deadline - DateTimeOffset.UtcNow <= TimeSpan.Zero || !_options.Budget.TryWithdraw())
                {
                    throw;
                }

                TraceRetry(attempt, endpoint, e);
                (tried ??= []).Add(endpoint);
            }
        }
    }

    private enum Outcome
    {
        /// <summary>The request never reached the instance: safe to send elsewhere.</summary>
        NotSent,
        /// <summary>The instance refused before running it: safe elsewhere, and not a sign of ill health.</summary>
        Overloaded,
        /// <summary>Sent, no reply: it may have run.</summary>
        NoReply,
        /// <summary>The instance answered (a declared exception, an application error): the call is done.</summary>
        Answered,
        /// <summary>The call's deadline passed: no retry.</summary>
        DeadlinePassed,
    }

    private static Outcome Classify(Exception e) => e switch
    {
        TTransportException { Kind: TTransportErrorKind.NotOpen } => Outcome.NotSent,
        // every attempt runs with what is left of the call's budget: its timeout (at the client, or the server's
        // "deadline exceeded" a moment earlier) is the call's, and a retry in the last milliseconds would only load
        // another instance with a call that cannot finish
        TTransportException { Kind: TTransportErrorKind.TimedOut } => Outcome.DeadlinePassed,
        TApplicationException app when RpcErrors.IsOverloaded(app) => Outcome.Overloaded,
        TApplicationException app when app.Message.StartsWith("shutting down", StringComparison.Ordinal) => Outcome.NoReply,
        TTransportException or TProtocolException or IOException => Outcome.NoReply,
        _ => Outcome.Answered,
    };

    public async ValueTask DisposeAsync()
    {
        _resolver.Updated -= OnUpdate;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_healthChecks is not null)
        {
            try
            {
                await _healthChecks.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }

        _stop.Dispose();
        foreach (var channel in _set.Clear())
        {
            await channel.DisposeAsync().ConfigureAwait(false);
        }
    }
}
