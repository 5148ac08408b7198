using System.Net.Sockets;
using Trellis.Rpc.Balancing;
using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Rpc;

/// <summary>How an application reaches the proxy: the local one first, the central proxies of its zone when it is down.</summary>
public sealed class ProxyChannelOptions
{
    /// <summary>The local proxy (Unix socket path or <c>proxy_address</c>).</summary>
    public required RpcEndpoint Local { get; init; }

    /// <summary>The central proxies (<see cref="RegistryResolver.ForCentralProxies"/>, or a static list); null: no fallback.</summary>
    public IInstanceResolver? Central { get; init; }

    /// <summary>THeader (the default) carries the call's deadline to the proxy; framed and unframed work too.</summary>
    public ThriftEncoding Encoding { get; init; } = new(ThriftFraming.Header, ThriftProtocol.Binary);

    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a connect to the local proxy may take before it counts as down.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>While on the central proxies, the local one is probed this often.</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Good probes in a row before calls go back to the local proxy (hysteresis against flapping).</summary>
    public int ReturnAfter { get; init; } = 5;

    /// <summary>
    /// The product's TLS settings, for central proxies whose record says <c>tls</c> (their certificate must name
    /// <c>trellis://{product}/proxy</c>). The local proxy is reached as configured, in plaintext.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>This application's product, sent with every call (<see cref="ThriftChannelOptions.CallerProduct"/>).</summary>
    public string? CallerProduct { get; init; }

    /// <summary>THeader info headers sent with every call (<see cref="ThriftChannelOptions.Headers"/>): caller service, zone, host, route tag.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }
}

/// <summary>
/// The channel of an application in proxy mode: calls go to the local proxy; when it cannot be reached, at once to
/// the central proxies of the zone (the call that found it down included: it was not sent), and back to the local
/// proxy once it has answered <see cref="ProxyChannelOptions.ReturnAfter"/> probes in a row.
/// </summary>
public sealed class ProxyChannel : IThriftChannel, IAsyncDisposable
{
    private readonly ProxyChannelOptions _options;
    private readonly ThriftChannel _local;
    private readonly BalancedChannel? _central;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private Task? _probing;
    private readonly Task? _centralStarted;
    private volatile bool _onCentral;
    private int _disposed;

    public ProxyChannel(ProxyChannelOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _local = new ThriftChannel(new ThriftChannelOptions
        {
            Endpoint = options.Local,
            Encoding = options.Encoding,
            Multiplexed = true,
            PeerMultiplexesCalls = true,
            DefaultTimeout = options.DefaultTimeout,
            ConnectTimeout = options.ConnectTimeout,
            CallerProduct = options.CallerProduct,
            Headers = options.Headers,
        });
        if (options.Central is { } central)
        {
            // the central list is watched from the start, so a fallback finds it ready
            _centralStarted = Task.Run(() => central.StartAsync(_stop.Token));
            _central = new BalancedChannel(central, new BalancedChannelOptions
            {
                Strategy = new LeastActiveStrategy(),
                DefaultTimeout = options.DefaultTimeout,
                ChannelOptions = proxy =>
                {
                    var endpoint = proxy.Endpoint();
                    var (tls, peerName) = TlsOptions.ForInstance(options.Tls, proxy, endpoint);
                    return new ThriftChannelOptions
                    {
                        Endpoint = endpoint,
                        Encoding = options.Encoding,
                        Multiplexed = true,
                        PeerMultiplexesCalls = true,
                        DefaultTimeout = options.DefaultTimeout,
                        ConnectTimeout = options.ConnectTimeout,
                        Tls = tls,
                        TlsPeerName = peerName,
                        CallerProduct = options.CallerProduct,
                        Headers = options.Headers,
                    };
                },
            });
        }
    }

    /// <summary>Calls go to the central proxies now.</summary>
    public bool OnCentral => _onCentral;

    /// <summary>Raised when calls move to the central proxies (true) or back to the local one (false).</summary>
    public event Action<bool>? Switched;

    public async ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        if (!_onCentral || _central is null)
        {
            try
            {
                await _local.CallAsync(method, arguments, result, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (TTransportException e) when (_central is not null && e.Kind == TTransportErrorKind.NotOpen)
            {
                GoCentral(); // not sent: safe to send to a central proxy
            }
            catch (TTransportException) when (_central is not null)
            {
                GoCentral(); // lost mid-call: it may have run, so this call fails; the next ones go to a central proxy
                throw;
            }
        }

        await CentralStartedAsync(cancellationToken).ConfigureAwait(false);
        await _central.CallAsync(method, arguments, result, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
    {
        if (!_onCentral || _central is null)
        {
            try
            {
                await _local.SendOnewayAsync(method, arguments, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (TTransportException e) when (_central is not null && e.Kind == TTransportErrorKind.NotOpen)
            {
                GoCentral();
            }
        }

        await CentralStartedAsync(cancellationToken).ConfigureAwait(false);
        await _central.SendOnewayAsync(method, arguments, cancellationToken).ConfigureAwait(false);
    }

    private async Task CentralStartedAsync(CancellationToken cancellationToken)
    {
        if (_centralStarted is { IsCompletedSuccessfully: false } started)
        {
            try
            {
                await started.WaitAsync(_options.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw new TTransportException(TTransportErrorKind.NotOpen, $"the local proxy {_options.Local} is down and the central proxies cannot be found: {e.Message}", e);
            }
        }
    }

    private void GoCentral()
    {
        lock (_lock)
        {
            if (_onCentral || _stop.IsCancellationRequested)
            {
                return;
            }

            _onCentral = true;
            _probing = Task.Run(ProbeLocalAsync);
        }

        Switched?.Invoke(true);
    }

    private async Task ProbeLocalAsync()
    {
        var good = 0;
        using var timer = new PeriodicTimer(_options.ProbeInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                good = await ProbeAsync().ConfigureAwait(false) ? good + 1 : 0;
                if (good >= _options.ReturnAfter)
                {
                    lock (_lock)
                    {
                        _onCentral = false;
                    }

                    Switched?.Invoke(false);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // disposed
        }
    }

    private async Task<bool> ProbeAsync()
    {
        using var socket = _options.Local.NewClientSocket();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(_options.Local.ToEndPoint(), timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            _stop.Token.ThrowIfCancellationRequested();
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        Task? probing;
        lock (_lock)
        {
            probing = _probing;
        }

        if (probing is not null)
        {
            await probing.ConfigureAwait(false);
        }

        await _local.DisposeAsync().ConfigureAwait(false);
        if (_central is not null)
        {
            await _central.DisposeAsync().ConfigureAwait(false);
            await _options.Central!.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }
}
