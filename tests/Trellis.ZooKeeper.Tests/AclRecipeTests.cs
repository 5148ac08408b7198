using System.Text;
using Trellis.Testing;
using Trellis.ZooKeeper;
using Trellis.ZooKeeper.Recipes;

namespace Trellis.ZooKeeper.Tests;

/// <summary>What the client and its recipes do when the server refuses credentials or permission.</summary>
[Collection(SingleServerCollection.Name)]
public class AclRecipeTests(SingleServer zk)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AnAuthFailure_SaysWhatHappened_OnEveryLaterCall()
    {
        await using var client = await zk.ConnectAsync();
        var first = await Assert.ThrowsAsync<AuthFailedException>(() => client.AddAuthAsync("no-such-scheme", B("x")));
        Assert.Contains("refused this session's credentials", first.Message);
        await Wait.UntilAsync(() => client.State == SessionState.AuthFailed);
        var later = await Assert.ThrowsAsync<AuthFailedException>(() => client.GetDataAsync("/"));
        Assert.Contains("refused this session's credentials", later.Message);
    }

    [Fact]
    public async Task AnEphemeralNodeItMayNotCreate_FailsItsStart_InsteadOfRetryingUnseen()
    {
        var root = SingleServer.NewRoot();
        await using var owner = await zk.ConnectAsync(auth: [("digest", B("owner:pw"))]);
        await owner.CreateAsync(root, ReadOnlyMemory<byte>.Empty, acl: [Acl.Digest("owner", "pw", Permissions.All), new Acl(Permissions.Read, "world", "anyone")]);

        await using var sessions = new ZooKeeperSessionManager(new ZooKeeperOptions { ConnectString = zk.ConnectString });
        await sessions.StartAsync();
        var asked = new List<string>();
        await using var node = new PersistentEphemeralNode(sessions, root + "/a/instance", B("x"), (client, path, ct) =>
        {
            lock (asked)
            {
                asked.Add(path);
            }

            return Task.FromResult<IReadOnlyList<Acl>>(Acl.OpenUnsafe);
        });
        await Assert.ThrowsAsync<NoAuthException>(() => node.StartAsync().WaitAsync(Quick));
        lock (asked)
        {
            Assert.Equal([root + "/a/instance", root + "/a"], asked.Take(2)); // the node, then its missing parent: each ACL chosen when created
        }
    }

    [Fact]
    public async Task AnEphemeralNode_TakesTheAclItsProviderChooses_ForItselfAndItsParents()
    {
        var root = SingleServer.NewRoot();
        await using var sessions = new ZooKeeperSessionManager(new ZooKeeperOptions { ConnectString = zk.ConnectString, Authentication = [("digest", B("owner:pw"))] });
        await sessions.StartAsync();
        IReadOnlyList<Acl> mine = [Acl.Digest("owner", "pw", Permissions.All)];
        await using var node = new PersistentEphemeralNode(sessions, root + "/instance", B("x"), (_, _, _) => Task.FromResult(mine));
        await node.StartAsync().WaitAsync(Quick);
        Assert.Equal(mine, (await sessions.Current.GetAclAsync(root + "/instance")).Acl);
        Assert.Equal(mine, (await sessions.Current.GetAclAsync(root)).Acl);
        await using var stranger = await zk.ConnectAsync();
        await Assert.ThrowsAsync<NoAuthException>(() => stranger.GetDataAsync(root + "/instance"));
    }

    [Fact]
    public async Task ACacheOfAListItMayNotRead_FailsItsStart_NotAnEmptyView()
    {
        var root = SingleServer.NewRoot();
        await using var owner = await zk.ConnectAsync(auth: [("digest", B("owner:pw"))]);
        await owner.CreateAsync(root, ReadOnlyMemory<byte>.Empty, acl: [Acl.Digest("owner", "pw", Permissions.All)]);
        await owner.CreateAsync(root + "/child", B("secret"), acl: [Acl.Digest("owner", "pw", Permissions.All)]);

        await using var sessions = new ZooKeeperSessionManager(new ZooKeeperOptions { ConnectString = zk.ConnectString });
        await sessions.StartAsync();
        await using var cache = new ChildrenCache(sessions, root);
        await Assert.ThrowsAsync<NoAuthException>(() => cache.StartAsync().WaitAsync(Quick));
        Assert.Empty(cache.Current);
    }
}
