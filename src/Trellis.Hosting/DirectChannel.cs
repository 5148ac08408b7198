using Trellis.Rpc.Balancing;
using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Hosting;

/// <summary>
/// Direct mode: a <see cref="BalancedChannel"/> over a registry resolver that starts watching on the first call,
/// so building the client never blocks on the registry.
/// </summary>
internal sealed class DirectChannel(IInstanceResolver resolver, BalancedChannelOptions options, Func<string?, BalancerStrategy>? strategyFor = null) : IThriftChannel, IAsyncDisposable
{
    private readonly object _lock = new();
    private Task<BalancedChannel>? _channel;

    /// <summary>The started channel; a start that failed (the registry unreachable) is tried again on the next call.</summary>
    private Task<BalancedChannel> Channel()
    {
        lock (_lock)
        {
            if (_channel is null || _channel.IsFaulted || _channel.IsCanceled)
            {
                _channel = StartAsync();
            }

            return _channel;
        }
    }

    private async Task<BalancedChannel> StartAsync()
    {
        await resolver.StartAsync().ConfigureAwait(false);
        var channel = new BalancedChannel(resolver, options);
        if (resolver is Trellis.Rpc.Governance.ConfiguredResolver configured)
        {
            // the service's config, applied live: a strategy set in it replaces the client's own (and goes back to it when
            // removed); routes, limits, breakers, degradation, timeouts and retries apply to every call
            configured.ConfigChanged += config =>
            {
                if (strategyFor is not null)
                {
                    channel.SetStrategy(strategyFor(config.Strategy));
                }

                channel.ApplyConfig(config);
            };
            if (strategyFor is not null && configured.Config.Strategy is { } strategy)
            {
                channel.SetStrategy(strategyFor(strategy));
            }

            channel.ApplyConfig(configured.Config);
        }

        return channel;
    }

    public async ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct =>
        await (await Channel().WaitAsync(cancellationToken).ConfigureAwait(false)).CallAsync(method, arguments, result, cancellationToken).ConfigureAwait(false);

    public async ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable =>
        await (await Channel().WaitAsync(cancellationToken).ConfigureAwait(false)).SendOnewayAsync(method, arguments, cancellationToken).ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        Task<BalancedChannel>? started;
        lock (_lock)
        {
            started = _channel;
        }

        if (started is { IsCompletedSuccessfully: true })
        {
            await started.Result.DisposeAsync().ConfigureAwait(false);
        }

        await resolver.DisposeAsync().ConfigureAwait(false);
    }
}
