using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Trellis.Testing;
using Trellis.ZooKeeper;
using Trellis.ZooKeeper.Recipes;

namespace Trellis.ZooKeeper.Tests;

/// <summary>The ZooKeeper rows of shared/RELIABILITY.md that one server and a fault proxy can play.</summary>
[Collection(SingleServerCollection.Name)]
public class FaultTests(SingleServer zk)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>A client chunk that carries a request of type <paramref name="opCode"/> (after the length and xid).</summary>
    private static Func<byte[], bool> Request(int opCode) =>
        chunk => chunk.Length >= 12 && BinaryPrimitives.ReadInt32BigEndian(chunk.AsSpan(8)) == opCode;

    private const int Create2 = 15;

    /// <summary>Where in a server chunk the first reply to a request (positive xid) starts, past pings and notifications; −1 if none.</summary>
    private static int FirstRequestReply(byte[] chunk)
    {
        for (var offset = 0; offset + 8 <= chunk.Length; offset += 4 + BinaryPrimitives.ReadInt32BigEndian(chunk.AsSpan(offset)))
        {
            if (BinaryPrimitives.ReadInt32BigEndian(chunk.AsSpan(offset + 4)) > 0)
            {
                return offset;
            }
        }

        return -1;
    }

    private static bool IsReplyToARequest(byte[] chunk) => FirstRequestReply(chunk) >= 0;

    private static ZooKeeperOptions Options(string connect, double timeoutSeconds = 6) =>
        new() { ConnectString = connect, SessionTimeout = TimeSpan.FromSeconds(timeoutSeconds) };

    [Fact]
    public async Task ConnectionLostRightAfterACreateWasSent_TheOutcomeIsUnknown_NotFailed()
    {
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var client = await ZooKeeperClient.ConnectAsync(Options(proxy.Address));
        var root = SingleServer.NewRoot();
        proxy.CutAfterClientWrite(Request(Create2));
        var loss = await Assert.ThrowsAsync<ConnectionLossException>(() => client.CreateAsync(root, B("maybe"), CreateMode.Ephemeral));
        Assert.True(loss.MayHaveBeenApplied);

        // the session survived; the create did happen, and is ours
        var stat = await client.ExistsAsync(root);
        Assert.NotNull(stat);
        Assert.Equal(client.SessionId, stat.EphemeralOwner);
        Assert.True(proxy.Accepted >= 2);
    }

    [Fact]
    public async Task PersistentEphemeralNode_NeverDuplicates_WhenItsCreateLosesTheReply()
    {
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var sessions = new ZooKeeperSessionManager(Options(proxy.Address));
        await sessions.StartAsync();
        var root = SingleServer.NewRoot();
        await sessions.Current.CreateAsync(root, B(""));
        proxy.CutAfterClientWrite(Request(Create2)); // the recipe's create is applied but its reply is lost
        await using var node = new PersistentEphemeralNode(sessions, root + "/instance-1", B("endpoint"));
        await node.StartAsync();
        var children = await sessions.Current.GetChildrenAsync(root);
        Assert.Equal(["instance-1"], children.Children);
        Assert.Equal(sessions.Current.SessionId, (await sessions.Current.ExistsAsync(root + "/instance-1"))!.EphemeralOwner);
    }

    [Fact]
    public async Task MalformedReplyOrXidMismatch_Reconnects_AndPendingCallsFailWithConnectionLoss()
    {
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var client = await ZooKeeperClient.ConnectAsync(Options(proxy.Address));
        var root = SingleServer.NewRoot();
        await client.CreateAsync(root, B("data"));
        var session = client.SessionId;

        // the next reply comes back with another request's xid
        proxy.RewriteNextServerChunk(IsReplyToARequest, chunk =>
        {
            var copy = (byte[])chunk.Clone();
            var at = FirstRequestReply(copy) + 4;
            BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(at), BinaryPrimitives.ReadInt32BigEndian(copy.AsSpan(at)) + 1000);
            return copy;
        });
        var loss = await Assert.ThrowsAsync<ConnectionLossException>(() => client.GetDataAsync(root));
        Assert.False(loss.MayHaveBeenApplied);
        Assert.Equal("data", Encoding.UTF8.GetString((await client.GetDataAsync(root)).Data));

        // a reply whose declared length exceeds the packet limit
        proxy.RewriteNextServerChunk(IsReplyToARequest, chunk =>
        {
            var copy = (byte[])chunk.Clone();
            BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(FirstRequestReply(copy)), int.MaxValue);
            return copy;
        });
        await Assert.ThrowsAsync<ConnectionLossException>(() => client.GetDataAsync(root));
        Assert.Equal("data", Encoding.UTF8.GetString((await client.GetDataAsync(root)).Data));
        Assert.Equal(session, client.SessionId);
    }

    [Fact]
    public async Task ADeadPortAndAnUnresolvableHost_DoNotKeepTheClientFromConnecting()
    {
        using var dead = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        dead.Start();
        var deadPort = ((System.Net.IPEndPoint)dead.LocalEndpoint).Port;
        dead.Stop();
        var connect = $"127.0.0.1:{deadPort},no-such-host.invalid:2181,{zk.ConnectString}";
        for (var i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            await using var client = await ZooKeeperClient.ConnectAsync(Options(connect));
            Assert.Equal(SessionState.Connected, client.State);
            // a liveness bound, generous for a busy machine: each bad server fails fast, none waits out a timeout
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"took {watch.Elapsed}");
        }
    }

    [Fact]
    public async Task ASilentServer_IsLeftAfterTheReadTimeout_AndTheSessionResumes()
    {
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var client = await ZooKeeperClient.ConnectAsync(Options(proxy.Address, 3));
        var states = new List<SessionState>();
        client.StateChanged += s => { lock (states) states.Add(s); };
        proxy.BlackHole = true;
        await Wait.UntilAsync(() => client.State == SessionState.Disconnected, TimeSpan.FromSeconds(10), "disconnect");
        proxy.BlackHole = false;
        await client.WaitForConnectionAsync();
        await Wait.UntilAsync(() => { lock (states) return states.Count >= 2 && states[^1] == SessionState.Connected; });
        lock (states)
        {
            // the first connection's own Connected may or may not arrive after the subscription
            Assert.Equal([SessionState.Disconnected, SessionState.Connected], states.SkipWhile(s => s == SessionState.Connected));
        }

        await client.ExistsAsync("/");
    }

    [Fact]
    public async Task TenThousandWatches_AreAllRestoredAfterAReconnect()
    {
        const int Count = 10_000;
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var client = await ZooKeeperClient.ConnectAsync(Options(proxy.Address, 20));
        await using var writer = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        await writer.CreateAsync(root, B(""));
        for (var batch = 0; batch < Count; batch += 1000)
        {
            await writer.MultiAsync(Enumerable.Range(batch, 1000).Select(i => Op.Create($"{root}/n{i:D5}-{new string('x', 20)}", B(""))));
        }

        var fired = 0;
        var reads = Enumerable.Range(0, Count).Select(i => client.GetDataAsync($"{root}/n{i:D5}-{new string('x', 20)}", _ => Interlocked.Increment(ref fired)));
        await Task.WhenAll(reads);
        Assert.Equal(Count, client.WatchCount);

        var before = proxy.Accepted;
        proxy.DropAll();
        await Wait.UntilAsync(() => proxy.Accepted > before && client.State == SessionState.Connected, what: "the reconnect");

        for (var batch = 0; batch < Count; batch += 1000)
        {
            await writer.MultiAsync(Enumerable.Range(batch, 1000).Select(i => Op.SetData($"{root}/n{i:D5}-{new string('x', 20)}", B("changed"))));
        }

        await Wait.UntilAsync(() => Volatile.Read(ref fired) == Count, TimeSpan.FromSeconds(60), $"{Count} events (got {fired})");
        Assert.Equal(0, client.WatchCount);
    }

    [Fact]
    public async Task AWatchedNodeChangedWhileDisconnected_FiresExactlyOnceAfterTheReconnect()
    {
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var client = await ZooKeeperClient.ConnectAsync(Options(proxy.Address));
        await using var writer = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        await writer.CreateAsync(root, B("v1"));
        var events = new List<WatchedEvent>();
        await client.GetDataAsync(root, e => { lock (events) events.Add(e); });

        proxy.BlackHole = true;
        proxy.DropAll();
        await writer.SetDataAsync(root, B("v2")); // while the watcher's client is away
        await writer.SetDataAsync(root, B("v3"));
        proxy.BlackHole = false;
        await client.WaitForConnectionAsync();
        await Wait.UntilAsync(() => events.Count >= 1);
        await Task.Delay(300);
        Assert.Equal([new WatchedEvent(EventType.NodeDataChanged, root)], events);
    }

    [Fact]
    public async Task AnExpiredSession_IsTerminal_ConsumersSeeTheNodeGo_AndTheManagerReRegisters()
    {
        var root = SingleServer.NewRoot();
        await using var consumerSessions = new ZooKeeperSessionManager(Options(zk.ConnectString));
        await consumerSessions.StartAsync();
        await consumerSessions.Current.CreateAsync(root, B(""));
        await using var cache = new ChildrenCache(consumerSessions, root);
        await cache.StartAsync();

        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var providerSessions = new ZooKeeperSessionManager(Options(proxy.Address, 4));
        await providerSessions.StartAsync();
        var firstSession = providerSessions.Current;
        var states = new List<SessionState>();
        firstSession.StateChanged += s => { lock (states) states.Add(s); };
        await using var node = new PersistentEphemeralNode(providerSessions, root + "/provider", B("10.0.0.1:9090"));
        await node.StartAsync();
        await Wait.UntilAsync(() => cache.Current.ContainsKey("provider"));
        var consumerEvents = new List<WatchedEvent>();
        await consumerSessions.Current.GetDataAsync(root + "/provider", e => { lock (consumerEvents) consumerEvents.Add(e); });

        // the provider is cut off (so it cannot take its session back), a second client attaches to the
        // same session and closes it: the server ends the session
        proxy.BlackHole = true;
        proxy.DropAll();
        await using (var twin = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions
        {
            ConnectString = zk.ConnectString,
            SessionTimeout = TimeSpan.FromSeconds(4),
            SessionId = firstSession.SessionId,
            SessionPassword = firstSession.SessionPassword.ToArray(),
        }))
        {
            Assert.Equal(firstSession.SessionId, twin.SessionId);
        }

        proxy.BlackHole = false;

        // consumers see the node go (a cache may fold the delete and the re-creation into one view)
        await Wait.UntilAsync(() => { lock (consumerEvents) return consumerEvents.Contains(new WatchedEvent(EventType.NodeDeleted, root + "/provider")); },
            what: "consumers to see the node go");
        await Wait.UntilAsync(() => firstSession.State == SessionState.Expired, what: "the old session to report Expired");
        Assert.Contains(SessionState.Expired, states);
        await Assert.ThrowsAsync<SessionExpiredException>(() => firstSession.ExistsAsync("/"));

        // the owner started a new session, and the recipe put the node back on it
        await Wait.UntilAsync(() => !ReferenceEquals(providerSessions.Current, firstSession) && node.IsRegistered, what: "re-registration");
        await Wait.UntilAsync(() => cache.Current.TryGetValue("provider", out var d) && d.Stat.EphemeralOwner == providerSessions.Current.SessionId);
        Assert.Equal("10.0.0.1:9090", Encoding.UTF8.GetString(cache.Current["provider"].Data));
    }

    [Fact]
    public async Task ADisposedCache_LeavesTheSessionManager_SoAReconnectStillReachesEveryOtherSubscriber()
    {
        var root = SingleServer.NewRoot();
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var sessions = new ZooKeeperSessionManager(Options(proxy.Address, 10));
        await sessions.StartAsync();
        await sessions.Current.CreateAsync(root, B(""));
        var gone = new ChildrenCache(sessions, root);
        await gone.StartAsync();
        await gone.DisposeAsync(); // a route the proxy dropped: it must not be called on any more
        await using var kept = new ChildrenCache(sessions, root);
        await kept.StartAsync();
        var states = new List<SessionState>();
        sessions.StateChanged += (_, state) => { lock (states) states.Add(state); };

        proxy.DropAll(); // connection lost, then back on the same session: every subscriber hears Connected
        await Wait.UntilAsync(() => { lock (states) return states.Contains(SessionState.Connected); }, TimeSpan.FromSeconds(15),
            "the subscriber after the disposed cache to hear the reconnect");
        await sessions.Current.CreateAsync(root + "/after", B("x"));
        await Wait.UntilAsync(() => kept.Current.ContainsKey("after"), TimeSpan.FromSeconds(10), "the kept cache to follow");
    }

    [Fact]
    public async Task AStaleNodeOfTheSameName_IsReplacedOnStart()
    {
        var root = SingleServer.NewRoot();
        var path = root + "/instance";
        // a predecessor's session still holds the node (as after a crash, before its session expires)
        var predecessor = await zk.ConnectAsync(sessionTimeout: TimeSpan.FromSeconds(30));
        await predecessor.CreateAsync(root, B(""));
        await predecessor.CreateAsync(path, B("old"), CreateMode.Ephemeral);

        await using var sessions = new ZooKeeperSessionManager(Options(zk.ConnectString));
        await sessions.StartAsync();
        await using var node = new PersistentEphemeralNode(sessions, path, B("new"));
        await node.StartAsync();
        var data = await sessions.Current.GetDataAsync(path);
        Assert.Equal("new", Encoding.UTF8.GetString(data.Data));
        Assert.Equal(sessions.Current.SessionId, data.Stat.EphemeralOwner);
        await predecessor.DisposeAsync();

        // deleted behind its back: it comes back
        await using var other = await zk.ConnectAsync();
        await other.DeleteAsync(path);
        await Wait.UntilAsync(() => node.IsRegistered && other.ExistsAsync(path).Result is not null);
        await node.UpdateAsync(B("newer"));
        await Wait.UntilAsync(() => Encoding.UTF8.GetString(other.GetDataAsync(path).Result.Data) == "newer");
    }

    [Fact]
    public async Task ChildrenCache_CoalescesABurst_IntoFewUpdates_AndStaysConsistent()
    {
        var root = SingleServer.NewRoot();
        await using var sessions = new ZooKeeperSessionManager(Options(zk.ConnectString));
        await sessions.StartAsync();
        await sessions.Current.CreateAsync(root, B(""));
        await using var cache = new ChildrenCache(sessions, root, coalesce: TimeSpan.FromMilliseconds(50));
        await cache.StartAsync();
        var updates = 0;
        cache.Changed += _ => Interlocked.Increment(ref updates);

        await using var writer = await zk.ConnectAsync();
        await writer.MultiAsync(Enumerable.Range(0, 200).Select(i => Op.Create($"{root}/i{i:D3}", B(i.ToString()))));
        await Wait.UntilAsync(() => cache.Current.Count == 200);
        Assert.True(updates < 20, $"{updates} updates for one burst of 200");
        Assert.Equal("42", Encoding.UTF8.GetString(cache.Current["i042"].Data));

        await writer.SetDataAsync($"{root}/i042", B("changed"));
        await writer.DeleteAsync($"{root}/i007");
        await writer.CreateAsync($"{root}/i007/deeper", B("")).ContinueWith(_ => { }); // no parent: fails, no effect
        await Wait.UntilAsync(() => cache.Current.Count == 199 && Encoding.UTF8.GetString(cache.Current["i042"].Data) == "changed");
    }
}
