using System.Text;
using Trellis.Testing;
using Trellis.ZooKeeper;
using Trellis.ZooKeeper.Recipes;

namespace Trellis.ZooKeeper.Tests;

/// <summary>A real 3-node ensemble for the rows of RELIABILITY.md that need servers to die. Each test leaves all three running.</summary>
public sealed class ThreeServers : IAsyncLifetime
{
    public ZooKeeperEnsemble Ensemble { get; private set; } = null!;

    public async Task InitializeAsync() => Ensemble = await ZooKeeperEnsemble.StartAsync(size: 3);

    public async Task DisposeAsync() => await Ensemble.DisposeAsync();

    /// <summary>Brings every stopped server back and waits for the ensemble to serve.</summary>
    public async Task HealAsync()
    {
        foreach (var server in Ensemble.Servers.Where(s => !s.IsRunning))
        {
            server.Start();
        }

        await Ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60));
    }
}

public class EnsembleTests(ThreeServers zk) : IClassFixture<ThreeServers>
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private ZooKeeperOptions Options(double timeoutSeconds = 8, string? connect = null) =>
        new() { ConnectString = connect ?? zk.Ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(timeoutSeconds) };

    [Fact]
    public async Task KillingTheLeader_UnderSteadyRegistration_KeepsTheSessionAndItsEphemerals()
    {
        try
        {
            await using var sessions = new ZooKeeperSessionManager(Options());
            await sessions.StartAsync();
            var client = sessions.Current;
            var root = "/leader-" + Guid.NewGuid().ToString("N")[..8];
            await client.CreateAsync(root, B(""));
            await using var node = new PersistentEphemeralNode(sessions, root + "/instance", B("i"));
            await node.StartAsync();
            var session = client.SessionId;
            var czxid = (await client.ExistsAsync(root + "/instance"))!.Czxid;

            var writes = 0;
            using var stop = new CancellationTokenSource();
            var writer = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await client.SetDataAsync(root, B(DateTime.UtcNow.Ticks.ToString()));
                        Interlocked.Increment(ref writes);
                    }
                    catch (KeeperException)
                    {
                        // during the election: connection loss; the loop keeps trying
                    }

                    await Task.Delay(20);
                }
            });

            await Wait.UntilAsync(() => Volatile.Read(ref writes) > 10);
            var leader = await zk.Ensemble.LeaderAsync();
            leader.Kill();
            var atKill = Volatile.Read(ref writes);
            await Wait.UntilAsync(() => Volatile.Read(ref writes) > atKill + 20, TimeSpan.FromSeconds(60), "writes to resume after the election");
            await stop.CancelAsync();
            await writer;

            Assert.Equal(session, client.SessionId);
            Assert.Same(client, sessions.Current);
            var stat = await client.ExistsAsync(root + "/instance");
            Assert.NotNull(stat);
            Assert.Equal(session, stat.EphemeralOwner);
            Assert.Equal(czxid, stat.Czxid); // the same node, never re-created
        }
        finally
        {
            await zk.HealAsync();
        }
    }

    [Fact]
    public async Task KillingTheServerAClientIsOn_WhileItsWatchedNodeChanges_GivesExactlyOneEvent()
    {
        try
        {
            await using var watcher = await ZooKeeperClient.ConnectAsync(Options());
            var attached = zk.Ensemble.Servers.Single(s => s.Address == watcher.ConnectedServer);
            var others = string.Join(",", zk.Ensemble.Servers.Where(s => s != attached).Select(s => s.Address));
            await using var writer = await ZooKeeperClient.ConnectAsync(Options(connect: others));
            var path = "/watched-" + Guid.NewGuid().ToString("N")[..8];
            await writer.CreateAsync(path, B("v1"));
            await watcher.SyncAsync(path);
            var events = new List<WatchedEvent>();
            await watcher.GetDataAsync(path, e => { lock (events) events.Add(e); });

            attached.Kill();
            // if that was the leader, the writer's server drops its clients during the election: retry
            foreach (var value in new[] { "v2", "v3" })
            {
                await RetryAsync(() => writer.SetDataAsync(path, B(value)));
            }
            await Wait.UntilAsync(() => { lock (events) return events.Count >= 1; }, TimeSpan.FromSeconds(30), "the event after the reconnect");
            await Task.Delay(500);
            lock (events)
            {
                Assert.Equal([new WatchedEvent(EventType.NodeDataChanged, path)], events);
            }

            Assert.NotEqual(attached.Address, watcher.ConnectedServer);
        }
        finally
        {
            await zk.HealAsync();
        }
    }

    private static async Task RetryAsync(Func<Task> operation)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await operation();
                return;
            }
            catch (ConnectionLossException) when (attempt < 100)
            {
                await Task.Delay(100);
            }
        }
    }

    [Fact]
    public async Task TwoOfThreeDown_RestoredBeforeTheSessionTimeout_NothingChanges()
    {
        try
        {
            await using var client = await ZooKeeperClient.ConnectAsync(Options(timeoutSeconds: 20));
            var states = new List<SessionState>();
            client.StateChanged += s => { lock (states) states.Add(s); };
            var path = "/survivor-" + Guid.NewGuid().ToString("N")[..8];
            await client.CreateAsync(path, B(""), CreateMode.Ephemeral);
            var session = client.SessionId;

            var victims = zk.Ensemble.Servers.Take(2).ToList();
            victims.ForEach(s => s.Kill());
            await Wait.UntilAsync(() => client.State == SessionState.Disconnected, TimeSpan.FromSeconds(30), "the client to notice the lost quorum");
            await Task.Delay(2000);
            await zk.HealAsync();
            await client.WaitForConnectionAsync();

            Assert.Equal(session, client.SessionId);
            Assert.Equal(session, (await client.ExistsAsync(path))!.EphemeralOwner);
            lock (states)
            {
                Assert.DoesNotContain(SessionState.Expired, states);
            }
        }
        finally
        {
            await zk.HealAsync();
        }
    }

    [Fact]
    public async Task ASessionThatCannotReachAQuorumPastItsTimeout_IsReportedExpiredOnceOneAnswers()
    {
        try
        {
            // the client is cut off from every server for longer than its session timeout, while the
            // ensemble itself stays up: the leader expires the session, and says so when the client comes back
            await using var proxy = TcpFaultProxy.Start(zk.Ensemble.Servers[0].Address);
            await using var client = await ZooKeeperClient.ConnectAsync(Options(timeoutSeconds: 3, connect: proxy.Address));
            var states = new List<SessionState>();
            client.StateChanged += s => { lock (states) states.Add(s); };
            await using var observer = await ZooKeeperClient.ConnectAsync(Options());
            var path = "/expiring-" + Guid.NewGuid().ToString("N")[..8];
            await client.CreateAsync(path, B(""), CreateMode.Ephemeral);

            proxy.BlackHole = true;
            proxy.DropAll();
            await Wait.UntilAsync(() => observer.ExistsAsync(path).Result is null, TimeSpan.FromSeconds(30), "the ensemble to expire the session");
            proxy.BlackHole = false;
            await Wait.UntilAsync(() => client.State == SessionState.Expired, TimeSpan.FromSeconds(30), "Expired");
            // the state is set before the event is raised: wait for the event too, then check it is the last one
            await Wait.UntilAsync(() => { lock (states) return states.Contains(SessionState.Expired); }, TimeSpan.FromSeconds(10), "the Expired event");
            lock (states)
            {
                Assert.Equal(SessionState.Expired, states[^1]);
            }

            await Assert.ThrowsAsync<SessionExpiredException>(() => client.ExistsAsync("/"));
        }
        finally
        {
            await zk.HealAsync();
        }
    }
}
