using Microsoft.Extensions.Logging;
using Trellis.Rpc.Registry;
using Trellis.ZooKeeper;

namespace Trellis.Hosting;

/// <summary>The registry the <c>Trellis</c> configuration names: ZooKeeper, or the local file registry.</summary>
public static class TrellisRegistry
{
    /// <summary>
    /// <c>Registry</c> = <c>zookeeper</c>, or <c>auto</c> with a ZooKeeper connect string: a ZooKeeper session of its own
    /// (fails when no server answers; callers that must start anyway retry); otherwise the local registry.
    /// </summary>
    public static async Task<IServiceRegistry> ConnectAsync(TrellisOptions options, ILoggerFactory? loggers = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!UsesZooKeeper(options))
        {
            return new LocalRegistry(options.LocalRegistryPath, logger: loggers?.CreateLogger("Trellis.Registry"));
        }

        var zk = new ZooKeeperOptions
        {
            ConnectString = options.ZooKeeper.ConnectString!,
            SessionTimeout = TimeSpan.FromSeconds(options.ZooKeeper.SessionTimeoutSeconds),
            Logger = loggers?.CreateLogger("Trellis.ZooKeeper"),
        };
        return await ZooKeeperRegistry.ConnectAsync(zk, cancellationToken).ConfigureAwait(false);
    }

    public static bool UsesZooKeeper(TrellisOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Registry == "zookeeper" || (options.Registry == "auto" && !string.IsNullOrWhiteSpace(options.ZooKeeper.ConnectString));
    }
}
