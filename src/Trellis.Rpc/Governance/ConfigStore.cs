namespace Trellis.Rpc.Governance;

/// <summary>A stored service config and its version (for compare-and-set).</summary>
public sealed record StoredConfig(byte[] Data, int Version)
{
    /// <summary>Whether two readings of a config (null: none set) differ, so a watch reports only real changes.</summary>
    public static bool Differ(byte[]? before, byte[]? after) =>
        before is null ? after is not null : after is null || !before.AsSpan().SequenceEqual(after);
}

/// <summary>One earlier version of a service's config, as written (newest first in a history).</summary>
public sealed record ConfigHistoryEntry(string Id, DateTimeOffset WrittenAt, byte[] Data);

/// <summary>A service's config as the registry holds it now, and every change after (null: none set).</summary>
public interface IConfigWatch : IAsyncDisposable
{
    byte[]? Current { get; }

    event Action<byte[]?>? Changed;
}

/// <summary>
/// Where service configs live: <c>/trellis/{product}/services/{service}/config</c> in ZooKeeper, or
/// <c>{product}/services/{service}/config.json</c> in the local registry. The store keeps bytes; callers validate
/// with <see cref="ServiceConfig.Parse"/> before writing, and consumers again before use.
/// </summary>
public interface IConfigStore
{
    Task<StoredConfig?> GetConfigAsync(string product, string service, CancellationToken cancellationToken = default);

    /// <summary>Writes the config; with <paramref name="expectedVersion"/>, only over that version (else a <see cref="InvalidOperationException"/>). Returns the new version.</summary>
    Task<int> SetConfigAsync(string product, string service, ReadOnlyMemory<byte> data, int? expectedVersion = null, CancellationToken cancellationToken = default);

    Task<IConfigWatch> WatchConfigAsync(string product, string service, CancellationToken cancellationToken = default);

    /// <summary>The configs written so far, newest first (the last <see cref="ConfigHistory.Kept"/>).</summary>
    Task<IReadOnlyList<ConfigHistoryEntry>> GetConfigHistoryAsync(string product, string service, CancellationToken cancellationToken = default);
}

public static class ConfigHistory
{
    /// <summary>Versions kept per service; older ones are removed as new ones are written.</summary>
    public const int Kept = 50;
}
