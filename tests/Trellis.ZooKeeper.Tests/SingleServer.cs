using Trellis.Testing;
using Trellis.ZooKeeper;

namespace Trellis.ZooKeeper.Tests;

/// <summary>One real ZooKeeper server shared by every test that does not disturb it (each works under its own root).</summary>
public sealed class SingleServer : IAsyncLifetime
{
    public ZooKeeperEnsemble Ensemble { get; private set; } = null!;

    public string ConnectString => Ensemble.ConnectString;

    public async Task InitializeAsync() => Ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);

    public async Task DisposeAsync() => await Ensemble.DisposeAsync();

    public Task<ZooKeeperClient> ConnectAsync(string? chroot = null, TimeSpan? sessionTimeout = null, IReadOnlyList<(string, byte[])>? auth = null) =>
        ZooKeeperClient.ConnectAsync(new ZooKeeperOptions
        {
            ConnectString = ConnectString + (chroot ?? ""),
            SessionTimeout = sessionTimeout ?? TimeSpan.FromSeconds(10),
            Authentication = auth ?? [],
        });

    /// <summary>A fresh root node for one test.</summary>
    public static string NewRoot() => "/t-" + Guid.NewGuid().ToString("N")[..12];
}

[CollectionDefinition(Name)]
public sealed class SingleServerCollection : ICollectionFixture<SingleServer>
{
    public const string Name = "single ZooKeeper server";
}
