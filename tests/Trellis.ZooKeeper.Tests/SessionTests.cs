using System.Text;
using Microsoft.Extensions.Logging;
using Trellis.Testing;
using Trellis.ZooKeeper;
using Trellis.ZooKeeper.Recipes;

namespace Trellis.ZooKeeper.Tests;

[Collection(SingleServerCollection.Name)]
public class SessionTests(SingleServer zk)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task AServerThatHasNotSeenTheClientsZxid_RefusesIt()
    {
        await using var fresh = await ZooKeeperEnsemble.StartAsync(size: 1);
        // the first owner of the session talks through a proxy that is then silenced: its reconnection must not take
        // the session back from the client under test (a session lives on one connection at a time)
        await using var toSeasoned = TcpFaultProxy.Start(zk.ConnectString);
        await using var seasoned = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions { ConnectString = toSeasoned.Address, SessionTimeout = TimeSpan.FromSeconds(20) });
        for (var i = 0; i < 5; i++)
        {
            await seasoned.CreateAsync(SingleServer.NewRoot(), ReadOnlyMemory<byte>.Empty);
        }

        toSeasoned.BlackHole = true;

        // reattach the seasoned session, with its last zxid, through a connect string that lists the fresh
        // server first: the fresh one hangs up on it, the real one takes it
        await using var toFresh = TcpFaultProxy.Start(fresh.ConnectString);
        await using var client = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions
        {
            ConnectString = $"{toFresh.Address},{zk.ConnectString}",
            ShuffleServers = false,
            SessionTimeout = TimeSpan.FromSeconds(20),
            SessionId = seasoned.SessionId,
            SessionPassword = seasoned.SessionPassword.ToArray(),
            LastZxidSeen = seasoned.LastZxid,
        });
        Assert.Equal(zk.ConnectString, client.ConnectedServer);
        Assert.Equal(seasoned.SessionId, client.SessionId);
        Assert.True(toFresh.Accepted >= 1, "the fresh server was tried first");
    }

    [Fact]
    public async Task AnUnknownAuthScheme_IsAuthFailed_AndTerminal()
    {
        var client = await zk.ConnectAsync();
        var states = new List<SessionState>();
        client.StateChanged += s => { lock (states) states.Add(s); };
        await Assert.ThrowsAsync<AuthFailedException>(() => client.AddAuthAsync("no-such-scheme", B("x")));
        await Wait.UntilAsync(() => client.State == SessionState.AuthFailed);
        await Assert.ThrowsAsync<AuthFailedException>(() => client.ExistsAsync("/"));
        await client.DisposeAsync();
        lock (states)
        {
            Assert.Contains(SessionState.AuthFailed, states);
        }
    }

    [Fact]
    public async Task RepliesOverThePacketLimit_DropTheConnection_NotTheProcess()
    {
        var root = SingleServer.NewRoot();
        await using var writer = await zk.ConnectAsync();
        await writer.CreateAsync(root, new byte[200 * 1024]);
        await using var small = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions { ConnectString = zk.ConnectString, MaxPacketSize = 64 * 1024 });
        await Assert.ThrowsAsync<ConnectionLossException>(() => small.GetDataAsync(root));
        await small.WaitForConnectionAsync();
        Assert.NotNull(await small.ExistsAsync(root)); // small replies still work
    }

    [Fact]
    public async Task ChildrenCache_ConvergesAfterChangesMadeWhileDisconnected()
    {
        var root = SingleServer.NewRoot();
        await using var proxy = TcpFaultProxy.Start(zk.ConnectString);
        await using var sessions = new ZooKeeperSessionManager(new ZooKeeperOptions { ConnectString = proxy.Address, SessionTimeout = TimeSpan.FromSeconds(20) });
        await sessions.StartAsync();
        await sessions.Current.CreateAsync(root, ReadOnlyMemory<byte>.Empty);
        await using var writer = await zk.ConnectAsync();
        await writer.CreateAsync(root + "/a", B("1"));
        await using var cache = new ChildrenCache(sessions, root);
        await cache.StartAsync();
        await Wait.UntilAsync(() => cache.Current.ContainsKey("a"));

        proxy.BlackHole = true;
        proxy.DropAll();
        await writer.DeleteAsync(root + "/a");
        await writer.CreateAsync(root + "/b", B("2"));
        Assert.True(cache.Current.ContainsKey("a")); // the last good view stays while disconnected
        proxy.BlackHole = false;
        await Wait.UntilAsync(() => cache.Current.Count == 1 && cache.Current.ContainsKey("b"), what: "the cache to converge");
    }

    [Fact]
    public async Task Secrets_NeverReachTheLogs()
    {
        var logger = new CapturingLogger();
        const string Password = "hunter2-very-secret";
        await using (var client = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions
        {
            ConnectString = zk.ConnectString,
            Authentication = [("digest", B("user:" + Password))],
            Logger = logger,
        }))
        {
            await client.AddAuthAsync("digest", B("other:" + Password));
            await client.CreateAsync(SingleServer.NewRoot(), B(""), acl: [Acl.Digest("user", Password, Permissions.All)]);
        }

        Assert.NotEmpty(logger.Lines);
        Assert.DoesNotContain(logger.Lines, l => l.Contains(Password, StringComparison.Ordinal));
        Assert.DoesNotContain(Password, Acl.Digest("user", Password, Permissions.All).ToString());
    }

    private sealed class CapturingLogger : ILogger
    {
        public List<string> Lines { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
            {
                Lines.Add(formatter(state, exception) + exception);
            }
        }
    }
}
