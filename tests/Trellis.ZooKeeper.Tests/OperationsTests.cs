using System.Text;
using Trellis.ZooKeeper;

namespace Trellis.ZooKeeper.Tests;

[Collection(SingleServerCollection.Name)]
public class OperationsTests(SingleServer zk)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task Connect_NegotiatesASession()
    {
        await using var client = await zk.ConnectAsync(sessionTimeout: TimeSpan.FromSeconds(5));
        Assert.Equal(SessionState.Connected, client.State);
        Assert.NotEqual(0, client.SessionId);
        Assert.Equal(16, client.SessionPassword.Length);
        Assert.Equal(TimeSpan.FromSeconds(5), client.NegotiatedTimeout);
    }

    [Fact]
    public async Task CreateGetSetDelete_WithVersions()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        Assert.Equal(root, await client.CreateAsync(root, B("v1")));
        var node = await client.GetDataAsync(root);
        Assert.Equal("v1", Encoding.UTF8.GetString(node.Data));
        Assert.Equal(0, node.Stat.Version);

        var stat = await client.SetDataAsync(root, B("v2"), version: 0);
        Assert.Equal(1, stat.Version);
        await Assert.ThrowsAsync<BadVersionException>(() => client.SetDataAsync(root, B("v3"), version: 0));
        await Assert.ThrowsAsync<NodeExistsException>(() => client.CreateAsync(root, B("again")));
        await Assert.ThrowsAsync<NoNodeException>(() => client.GetDataAsync(root + "/missing"));
        await Assert.ThrowsAsync<NoNodeException>(() => client.CreateAsync(root + "/a/b", B("")));

        await client.CreateAsync(root + "/child", B(""));
        await Assert.ThrowsAsync<NotEmptyException>(() => client.DeleteAsync(root));
        var children = await client.GetChildrenAsync(root);
        Assert.Equal(["child"], children.Children);
        Assert.Equal(1, children.Stat.NumChildren);

        await client.DeleteAsync(root + "/child");
        await Assert.ThrowsAsync<BadVersionException>(() => client.DeleteAsync(root, version: 7));
        await client.DeleteAsync(root, version: 1);
        Assert.Null(await client.ExistsAsync(root));
        var error = await Assert.ThrowsAsync<NoNodeException>(() => client.DeleteAsync(root));
        Assert.Equal(root, error.Path);
        Assert.Equal(ErrorCode.NoNode, error.Code);
    }

    [Fact]
    public async Task CreateModes_SequentialEphemeralContainerTtl()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        await client.CreateAsync(root, B(""));
        var first = await client.CreateAsync(root + "/seq-", B(""), CreateMode.PersistentSequential);
        var second = await client.CreateAsync(root + "/seq-", B(""), CreateMode.EphemeralSequential);
        Assert.Equal(root + "/seq-0000000000", first);
        Assert.Equal(root + "/seq-0000000001", second);

        var (path, stat) = await client.CreateWithStatAsync(root + "/eph", B("x"), CreateMode.Ephemeral);
        Assert.Equal(client.SessionId, stat.EphemeralOwner);
        await Assert.ThrowsAsync<NoChildrenForEphemeralsException>(() => client.CreateAsync(path + "/c", B("")));

        var container = await client.CreateAsync(root + "/box", B(""), CreateMode.Container);
        Assert.NotNull(await client.ExistsAsync(container));
        var (ttlPath, _) = await client.CreateWithStatAsync(root + "/ttl", B(""), CreateMode.PersistentWithTtl, ttl: TimeSpan.FromMinutes(5));
        Assert.NotNull(await client.ExistsAsync(ttlPath));
    }

    [Fact]
    public async Task OneShotWatches_FireOnce_ForDataExistAndChildren()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        var events = new List<WatchedEvent>();
        void Record(WatchedEvent e) { lock (events) events.Add(e); }

        Assert.Null(await client.ExistsAsync(root, Record));
        await client.CreateAsync(root, B("a"));
        await Wait.UntilAsync(() => events.Count == 1);
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, root), events[0]);

        await client.GetDataAsync(root, Record);
        await client.GetChildrenAsync(root, Record);
        await client.SetDataAsync(root, B("b"));
        await client.SetDataAsync(root, B("c")); // no watch left: not reported
        await client.CreateAsync(root + "/kid", B(""));
        await Wait.UntilAsync(() => events.Count == 3);
        Assert.Equal(new WatchedEvent(EventType.NodeDataChanged, root), events[1]);
        Assert.Equal(new WatchedEvent(EventType.NodeChildrenChanged, root), events[2]);

        await client.GetDataAsync(root, Record);
        await client.DeleteAsync(root + "/kid");
        await client.DeleteAsync(root);
        await Wait.UntilAsync(() => events.Count == 4);
        Assert.Equal(new WatchedEvent(EventType.NodeDeleted, root), events[3]);
        await Task.Delay(200);
        Assert.Equal(4, events.Count);
    }

    [Fact]
    public async Task PersistentAndRecursiveWatches_Stay()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        var tree = root + "/tree";
        var exact = new List<WatchedEvent>();
        var recursive = new List<WatchedEvent>();
        await client.CreateAsync(root, B(""));
        await client.CreateAsync(tree, B(""));
        await client.AddWatchAsync(root, AddWatchMode.Persistent, e => { lock (exact) exact.Add(e); });
        await client.AddWatchAsync(tree, AddWatchMode.PersistentRecursive, e => { lock (recursive) recursive.Add(e); });

        await client.SetDataAsync(root, B("1"));
        await client.SetDataAsync(root, B("2"));
        await client.CreateAsync(root + "/sibling", B(""));
        await client.SetDataAsync(tree, B("t"));
        await client.CreateAsync(tree + "/a", B(""));
        await client.CreateAsync(tree + "/a/b", B(""));
        await client.SetDataAsync(tree + "/a/b", B("x"));
        await client.DeleteAsync(tree + "/a/b");
        await Wait.UntilAsync(() => recursive.Count >= 5 && exact.Count >= 3);
        await Task.Delay(200); // nothing more may arrive
        Assert.Equal(
            [(EventType.NodeDataChanged, root), (EventType.NodeDataChanged, root), (EventType.NodeChildrenChanged, root)],
            exact.Select(e => (e.Type, e.Path)));
        // a recursive watch reports every change below it, but not child-list changes
        Assert.Equal(
            [(EventType.NodeDataChanged, tree), (EventType.NodeCreated, tree + "/a"), (EventType.NodeCreated, tree + "/a/b"),
             (EventType.NodeDataChanged, tree + "/a/b"), (EventType.NodeDeleted, tree + "/a/b")],
            recursive.Select(e => (e.Type, e.Path)));
    }

    [Fact]
    public async Task Multi_AppliesAllOrNothing()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        var results = await client.MultiAsync([
            Op.Create(root, B("r")),
            Op.Create(root + "/a", B("a")),
            Op.SetData(root, B("r2"), version: 0),
            Op.Check(root + "/a", 0),
        ]);
        Assert.Equal(root + "/a", Assert.IsType<OpResult.Created>(results[1]).Path);
        Assert.Equal(1, Assert.IsType<OpResult.DataSet>(results[2]).Stat.Version);

        var error = await Assert.ThrowsAsync<BadVersionException>(() => client.MultiAsync([
            Op.Create(root + "/b", B("")),
            Op.Delete(root + "/a", version: 5),
        ]));
        Assert.Equal(root + "/a", error.Path);
        Assert.Equal(2, error.Results!.Count);
        Assert.Null(await client.ExistsAsync(root + "/b")); // rolled back

        await client.MultiAsync([Op.Delete(root + "/a"), Op.Delete(root)]);
        Assert.Null(await client.ExistsAsync(root));
    }

    [Fact]
    public async Task DigestAcls_KeepOthersOut_AndBadCredentialsDoNotLoop()
    {
        await using var owner = await zk.ConnectAsync(auth: [("digest", B("deployer:s3cret"))]);
        var root = SingleServer.NewRoot();
        await owner.CreateAsync(root, B("secret"), acl: [Acl.Digest("deployer", "s3cret", Permissions.All), new Acl(Permissions.Read, "world", "anyone")]);
        await owner.CreateAsync(root + "/private", B("x"), acl: Acl.CreatorAll);

        await using var stranger = await zk.ConnectAsync();
        Assert.Equal("secret", Encoding.UTF8.GetString((await stranger.GetDataAsync(root)).Data));
        await Assert.ThrowsAsync<NoAuthException>(() => stranger.SetDataAsync(root, B("mine")));
        await Assert.ThrowsAsync<NoAuthException>(() => stranger.GetDataAsync(root + "/private"));

        await using var wrong = await zk.ConnectAsync(auth: [("digest", B("deployer:wrong"))]);
        await Assert.ThrowsAsync<NoAuthException>(() => wrong.SetDataAsync(root, B("mine")));
        Assert.Equal(SessionState.Connected, wrong.State); // a wrong digest is just another identity: no retry loop

        await stranger.AddAuthAsync("digest", B("deployer:s3cret"));
        await stranger.SetDataAsync(root, B("now allowed"));
        var (acl, _) = await stranger.GetAclAsync(root);
        Assert.Contains(acl, a => a.Scheme == "digest" && a.Id.StartsWith("deployer:", StringComparison.Ordinal));
        await owner.SetAclAsync(root, Acl.OpenUnsafe);
        await wrong.SetDataAsync(root, B("open now"));
    }

    [Fact]
    public async Task Chroot_PrefixesRequests_AndStripsPaths()
    {
        var root = SingleServer.NewRoot();
        await using var plain = await zk.ConnectAsync();
        await plain.CreateAsync(root, B(""));
        await using var rooted = await zk.ConnectAsync(chroot: root);
        var seen = new List<WatchedEvent>();
        Assert.Null(await rooted.ExistsAsync("/app", e => { lock (seen) seen.Add(e); }));
        Assert.Equal("/app-0000000000", await rooted.CreateAsync("/app-", B(""), CreateMode.PersistentSequential));
        await rooted.CreateAsync("/app", B("in chroot"));
        Assert.Equal("in chroot", Encoding.UTF8.GetString((await plain.GetDataAsync(root + "/app")).Data));
        await Wait.UntilAsync(() => seen.Count == 1);
        Assert.Equal(new WatchedEvent(EventType.NodeCreated, "/app"), seen[0]);
        Assert.Equal(["app", "app-0000000000"], (await rooted.GetChildrenAsync("/")).Children.Order());
        await rooted.SyncAsync("/app");
    }

    [Fact]
    public async Task DataOverThePacketLimit_IsACleanError()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        var error = await Assert.ThrowsAsync<MarshallingErrorException>(() => client.CreateAsync(root, new byte[2 * 1024 * 1024]));
        Assert.Contains("jute.maxbuffer", error.Message);
        Assert.Equal(SessionState.Connected, client.State);
        await client.CreateAsync(root, new byte[500 * 1024]); // under the limit: fine
        Assert.Equal(500 * 1024, (await client.GetDataAsync(root)).Data.Length);
    }

    [Fact]
    public async Task BadPaths_AreRefusedBeforeSending()
    {
        await using var client = await zk.ConnectAsync();
        foreach (var bad in new[] { "", "relative", "/trailing/", "/a//b", "/a/./b", "/a/../b", "/nul\0" })
        {
            await Assert.ThrowsAsync<ArgumentException>(() => client.ExistsAsync(bad));
        }
    }

    [Fact]
    public async Task ManyOperationsInFlight_AreAnsweredInOrder()
    {
        await using var client = await zk.ConnectAsync();
        var root = SingleServer.NewRoot();
        await client.CreateAsync(root, B(""));
        var creates = Enumerable.Range(0, 500).Select(i => client.CreateAsync($"{root}/n{i:D4}", B(i.ToString()))).ToList();
        await Task.WhenAll(creates);
        var reads = Enumerable.Range(0, 500).Select(i => client.GetDataAsync($"{root}/n{i:D4}")).ToList();
        var data = await Task.WhenAll(reads);
        Assert.All(Enumerable.Range(0, 500), i => Assert.Equal(i.ToString(), Encoding.UTF8.GetString(data[i].Data)));
    }

    [Fact]
    public async Task Close_EndsTheSession_AndDeletesEphemerals()
    {
        var root = SingleServer.NewRoot();
        await using var observer = await zk.ConnectAsync();
        await observer.CreateAsync(root, B(""));
        var client = await zk.ConnectAsync();
        await client.CreateAsync(root + "/eph", B(""), CreateMode.Ephemeral);
        await client.DisposeAsync();
        Assert.Equal(SessionState.Closed, client.State);
        Assert.Null(await observer.ExistsAsync(root + "/eph"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ExistsAsync("/"));
    }
}
