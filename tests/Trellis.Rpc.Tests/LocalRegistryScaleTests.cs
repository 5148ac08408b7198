using Microsoft.Extensions.Logging;
using Trellis.Rpc.Registry;
using Trellis.Testing;

namespace Trellis.Rpc.Tests;

/// <summary>
/// The local registry at scale: one file-system watcher for all of a registry's watches (a watcher per watch is an
/// inotify instance each, 128 at most per user on Linux), and lease renewals that do not wake the watches.
/// </summary>
public sealed class LocalRegistryScaleTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "trellis-reg-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task OneRegistry_Watches300Services_AndEachSeesARegistrationMadeAfterward()
    {
        // a lease of 90 s rescans every 30 s: what shows within the wait below came from file-system events
        await using var registry = new LocalRegistry(_root, TimeSpan.FromSeconds(90));
        const int services = 300; // more than the default inotify instance limit (128)
        var watches = new List<IServiceWatch>();
        var registrations = new List<IRegistration>();
        try
        {
            for (var i = 0; i < services; i++)
            {
                watches.Add(await registry.WatchAsync("demo", $"svc{i:D3}"));
            }

            Assert.All(watches, watch => Assert.Empty(watch.Instances));
            for (var i = 0; i < services; i++)
            {
                registrations.Add(await registry.RegisterAsync(Instances.Make("demo", $"svc{i:D3}", "a", port: 9000 + i)));
            }

            await Wait.UntilAsync(() => watches.All(watch => watch.Instances.Count == 1), TimeSpan.FromSeconds(20), "every watch to see its instance");
            for (var i = 0; i < services; i++)
            {
                Assert.Equal(9000 + i, watches[i].Instances.Single().Port);
            }

            // a service whose directories do not exist yet when its watch starts: the watcher picks them up
            await using var late = await registry.WatchAsync("other", "Late");
            await using var _ = await registry.RegisterAsync(Instances.Make("other", "Late", "b"));
            await Wait.UntilAsync(() => late.Instances.Count == 1, TimeSpan.FromSeconds(20), "the new directory's instance");
        }
        finally
        {
            foreach (var registration in registrations)
            {
                await registration.DisposeAsync();
            }

            foreach (var watch in watches)
            {
                await watch.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AWatchOnAFreshRoot_CreatesIt_AndSeesAnotherRegistrysInstances()
    {
        Assert.False(Directory.Exists(_root));
        await using var consumer = new LocalRegistry(_root, TimeSpan.FromSeconds(90));
        await using var watch = await consumer.WatchAsync("demo", "Echo");
        Assert.True(Directory.Exists(_root));

        await using var provider = new LocalRegistry(_root, TimeSpan.FromSeconds(90));
        await using var registration = await provider.RegisterAsync(Instances.Make("demo", "Echo", "a"));
        await Wait.UntilAsync(() => watch.Instances.Count == 1, TimeSpan.FromSeconds(20), "the instance");
        await registration.DeregisterAsync();
        await Wait.UntilAsync(() => watch.Instances.Count == 0, TimeSpan.FromSeconds(20), "the instance to go");
    }

    [Fact]
    public async Task AServiceDirectoryRemovedAndMadeAgain_IsWatchedAgain()
    {
        await using var registry = new LocalRegistry(_root, TimeSpan.FromSeconds(90));
        await using var watch = await registry.WatchAsync("demo", "Echo");
        var first = await registry.RegisterAsync(Instances.Make("demo", "Echo", "a"));
        await Wait.UntilAsync(() => watch.Instances.Count == 1, TimeSpan.FromSeconds(20), "the instance");
        LocalRegistry.Abandon(first);

        Directory.Delete(Path.Combine(_root, "demo"), recursive: true);
        await Wait.UntilAsync(() => watch.Instances.Count == 0, TimeSpan.FromSeconds(20), "the instance to go with its directory");

        await using var second = await registry.RegisterAsync(Instances.Make("demo", "Echo", "b"));
        await Wait.UntilAsync(() => watch.Instances.Select(i => i.InstanceId).SequenceEqual(["b"]), TimeSpan.FromSeconds(20), "the instance in the new directory");
    }

    [Fact]
    public async Task ALeaseRenewal_DoesNotRaiseChanged_ButAnUpdateDoes()
    {
        // renewed every second; a renewal would have to be 2 s late for the lease to run out on a busy machine
        await using var registry = new LocalRegistry(_root, TimeSpan.FromSeconds(3));
        await using var watch = await registry.WatchAsync("demo", "Echo");
        var changes = 0;
        watch.Changed += _ => Interlocked.Increment(ref changes);
        await using var registration = await registry.RegisterAsync(Instances.Make("demo", "Echo", "a"));
        await Wait.UntilAsync(() => watch.Instances.Count == 1, TimeSpan.FromSeconds(20), "the instance");
        var file = Path.Combine(_root, "demo", "services", "Echo", "instances", "a.json");
        var before = Volatile.Read(ref changes);
        var touched = File.GetLastWriteTimeUtc(file);

        await Task.Delay(TimeSpan.FromSeconds(3.5)); // 3+ renewals, and as many periodic rescans
        Assert.True(File.GetLastWriteTimeUtc(file) > touched, "the lease was renewed meanwhile");
        Assert.Equal(before, Volatile.Read(ref changes));
        Assert.Single(watch.Instances);

        await registration.UpdateAsync(registration.Instance with { Weight = 5 });
        await Wait.UntilAsync(() => watch.Instances.Single().Weight == 5, TimeSpan.FromSeconds(20), "the update");
        Assert.True(Volatile.Read(ref changes) > before);
    }

    [Fact]
    public async Task AnExpiredLease_ARewrittenRecord_AndARepairedFile_Show_InFileNameOrder()
    {
        var logger = new CountingLogger();
        await using var registry = new LocalRegistry(_root, TimeSpan.FromSeconds(3), logger);
        await using var watch = await registry.WatchAsync("demo", "Echo");
        var directory = Path.Combine(_root, "demo", "services", "Echo", "instances");
        await using var c = await registry.RegisterAsync(Instances.Make("demo", "Echo", "c"));
        var crashy = await registry.RegisterAsync(Instances.Make("demo", "Echo", "b"));
        await using var a = await registry.RegisterAsync(Instances.Make("demo", "Echo", "a"));
        await Wait.UntilAsync(() => watch.Instances.Select(i => i.InstanceId).SequenceEqual(["a", "b", "c"]), TimeSpan.FromSeconds(20), "three instances");

        LocalRegistry.Abandon(crashy); // what a crash leaves: the file, no heartbeat
        await Wait.UntilAsync(() => watch.Instances.Select(i => i.InstanceId).SequenceEqual(["a", "c"]), TimeSpan.FromSeconds(20), "the lease to run out");

        // another writer replaces a record the way the registry does (temp file, rename)
        File.WriteAllBytes(Path.Combine(directory, "c.json.tmp"), (c.Instance with { Weight = 7 }).ToJson());
        File.Move(Path.Combine(directory, "c.json.tmp"), Path.Combine(directory, "c.json"), overwrite: true);
        await Wait.UntilAsync(() => watch.Instances.Any(i => i.InstanceId == "c" && i.Weight == 7), TimeSpan.FromSeconds(20), "the rewritten record");

        // a file that is not a record is skipped and reported once, however many rescans see it (its time is in the
        // future: nobody renews it, and it must not expire meanwhile)
        Publish(directory, "0-garbage.json", "not json"u8.ToArray());
        await Wait.UntilAsync(() => logger.Warnings >= 1, TimeSpan.FromSeconds(20), "the warning");
        await Task.Delay(2500); // a rescan every second
        Assert.Equal(1, logger.Warnings);
        Assert.Equal(["a", "c"], watch.Instances.Select(i => i.InstanceId));

        // ...until it is replaced by a valid one
        Publish(directory, "0-garbage.json", Instances.Make("demo", "Echo", "0-repaired").ToJson());
        await Wait.UntilAsync(() => watch.Instances.Select(i => i.InstanceId).SequenceEqual(["0-repaired", "a", "c"]), TimeSpan.FromSeconds(20), "the repaired record");
        Assert.Equal(1, logger.Warnings);
    }

    /// <summary>Writes a file as the registry does (temp file, rename), with a time a minute ahead so its lease holds.</summary>
    private static void Publish(string directory, string name, byte[] content)
    {
        var temp = Path.Combine(directory, name + ".tmp");
        File.WriteAllBytes(temp, content);
        File.SetLastWriteTimeUtc(temp, DateTime.UtcNow.AddMinutes(1));
        File.Move(temp, Path.Combine(directory, name), overwrite: true);
    }

    private sealed class CountingLogger : ILogger
    {
        private int _warnings;

        public int Warnings => Volatile.Read(ref _warnings);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning && formatter(state, exception).Contains("not a valid instance record", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _warnings);
            }
        }
    }
}
