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

        var credentials = await CredentialsAsync(options.ZooKeeper, cancellationToken).ConfigureAwait(false);
        var acls = AclPolicy(options.ZooKeeper, credentials);
        var zk = new ZooKeeperOptions
        {
            ConnectString = options.ZooKeeper.ConnectString!,
            SessionTimeout = TimeSpan.FromSeconds(options.ZooKeeper.SessionTimeoutSeconds),
            Authentication = credentials is null ? [] : [("digest", System.Text.Encoding.UTF8.GetBytes(credentials))],
            Logger = loggers?.CreateLogger("Trellis.ZooKeeper"),
        };
        return await ZooKeeperRegistry.ConnectAsync(zk, acls, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The digest credentials (<c>user:password</c>) of <c>Auth</c>, else of the first non-empty line of <c>AuthFile</c>;
    /// null for none. A file that cannot be read, or a value that is not <c>user:password</c>, is an
    /// <see cref="ArgumentException"/> that never repeats the secret.
    /// </summary>
    public static async Task<string?> CredentialsAsync(TrellisOptions.ZooKeeperSection zooKeeper, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(zooKeeper);
        string? credentials = null;
        if (!string.IsNullOrEmpty(zooKeeper.Auth))
        {
            if (!string.IsNullOrEmpty(zooKeeper.AuthFile))
            {
                throw new ArgumentException("Trellis:ZooKeeper: set Auth or AuthFile, not both");
            }

            credentials = zooKeeper.Auth.Trim();
        }
        else if (!string.IsNullOrEmpty(zooKeeper.AuthFile))
        {
            try
            {
                var lines = await File.ReadAllLinesAsync(zooKeeper.AuthFile, cancellationToken).ConfigureAwait(false);
                credentials = lines.Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0)
                    ?? throw new ArgumentException($"Trellis:ZooKeeper:AuthFile {zooKeeper.AuthFile} is empty: it must hold user:password");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"Trellis:ZooKeeper:AuthFile {zooKeeper.AuthFile} cannot be read: {e.Message}", e);
            }
        }

        if (credentials is not null)
        {
            RegistryAclPolicy.SplitCredentials(credentials, zooKeeper.AuthFile is { Length: > 0 } file && string.IsNullOrEmpty(zooKeeper.Auth) ? $"AuthFile ({file})" : "Auth");
        }

        return credentials;
    }

    /// <summary>The ACL policy of the section (<c>Deployer</c>, <c>Readers</c>, and the identity of <paramref name="credentials"/>), or null: open ACLs.</summary>
    public static RegistryAclPolicy? AclPolicy(TrellisOptions.ZooKeeperSection zooKeeper, string? credentials)
    {
        ArgumentNullException.ThrowIfNull(zooKeeper);
        return RegistryAclPolicy.Create(credentials, zooKeeper.Deployer, zooKeeper.Readers);
    }

    public static bool UsesZooKeeper(TrellisOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Registry == "zookeeper" || (options.Registry == "auto" && !string.IsNullOrWhiteSpace(options.ZooKeeper.ConnectString));
    }
}
