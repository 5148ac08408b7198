using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Trellis.ZooKeeper.Recipes;

/// <summary>
/// The owner of a ZooKeeper session who decides what happens after expiry: it starts a new session after a
/// jittered pause (so a fleet whose sessions expired together does not stampede the ensemble) and tells
/// the recipes built on it (<see cref="SessionStarted"/>), which then restore their nodes and watches.
/// One manager per process is the intended use: servers cap sessions per client address.
/// </summary>
public sealed partial class ZooKeeperSessionManager : IAsyncDisposable
{
    private readonly ZooKeeperOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _lock = new();
    private ZooKeeperClient? _current;
    private Task? _renewal;

    public ZooKeeperSessionManager(ZooKeeperOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.SessionId != 0)
        {
            throw new ArgumentException("a session manager starts its own sessions", nameof(options));
        }

        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;
    }

    /// <summary>The session in use (after <see cref="StartAsync"/>).</summary>
    public ZooKeeperClient Current
    {
        get
        {
            lock (_lock)
            {
                return _current ?? throw new InvalidOperationException("the session manager has not started");
            }
        }
    }

    /// <summary>Raised with each new session, the first one included, after it connected.</summary>
    public event Action<ZooKeeperClient>? SessionStarted;

    /// <summary>Raised with every state change of the current session.</summary>
    public event Action<ZooKeeperClient, SessionState>? StateChanged;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var client = await ZooKeeperClient.ConnectAsync(_options, cancellationToken).ConfigureAwait(false);
        Adopt(client);
    }

    private void Adopt(ZooKeeperClient client)
    {
        lock (_lock)
        {
            _current = client;
        }

        client.StateChanged += state =>
        {
            StateChanged?.Invoke(client, state);
            if (state == SessionState.Expired)
            {
                lock (_lock)
                {
                    _renewal ??= Task.Run(() => RenewAsync(client));
                }
            }
        };
        SessionStarted?.Invoke(client);
    }

    private async Task RenewAsync(ZooKeeperClient expired)
    {
        LogExpired(_logger, expired.SessionId);
        await expired.DisposeAsync().ConfigureAwait(false);
        var attempt = 0;
        while (!_stopping.IsCancellationRequested)
        {
            var ceiling = Math.Min(_options.SessionTimeout.TotalMilliseconds, 2000 * Math.Pow(2, Math.Min(attempt, 4)));
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling), _stopping.Token).ConfigureAwait(false);
                var client = await ZooKeeperClient.ConnectAsync(_options, _stopping.Token).ConfigureAwait(false);
                lock (_lock)
                {
                    _renewal = null;
                }

                LogRenewed(_logger, client.SessionId);
                Adopt(client);
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (KeeperException e)
            {
                attempt++;
                LogRenewFailed(_logger, e.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        ZooKeeperClient? client;
        Task? renewal;
        lock (_lock)
        {
            client = _current;
            renewal = _renewal;
        }

        if (renewal is not null)
        {
            await renewal.ConfigureAwait(false);
        }

        lock (_lock)
        {
            client = _current;
        }

        if (client is not null)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ZooKeeper session 0x{SessionId:x} expired; starting a new one")]
    private static partial void LogExpired(ILogger logger, long sessionId);

    [LoggerMessage(Level = LogLevel.Information, Message = "new ZooKeeper session 0x{SessionId:x}")]
    private static partial void LogRenewed(ILogger logger, long sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not start a new ZooKeeper session yet: {Reason}")]
    private static partial void LogRenewFailed(ILogger logger, string reason);
}
