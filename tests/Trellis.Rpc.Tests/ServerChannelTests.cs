using System.Diagnostics;
using Trellis.Rpc.Tests.Echo;
using Trellis.Thrift;

namespace Trellis.Rpc.Tests;

/// <summary>A live Trellis server and the Trellis channel with generated clients, over real sockets.</summary>
public class ServerChannelTests
{
    public static TheoryData<ThriftFraming, ThriftProtocol, bool> Encodings()
    {
        var data = new TheoryData<ThriftFraming, ThriftProtocol, bool>();
        foreach (var framing in Enum.GetValues<ThriftFraming>())
        {
            foreach (var protocol in new[] { ThriftProtocol.Binary, ThriftProtocol.Compact })
            {
                data.Add(framing, protocol, true);
                data.Add(framing, protocol, false);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public async Task EveryEncoding_PlainAndMultiplexed_Works(ThriftFraming framing, ThriftProtocol protocol, bool multiplexed)
    {
        var (server, service) = await Servers.StartAsync();
        await using var _ = server;
        await using var channel = Servers.Channel(server, new ThriftEncoding(framing, protocol), multiplexed);
        var client = new Echo.Echo.Client(channel);
        Assert.Equal("héllo", await client.EchoAsync("héllo"));
        Assert.Equal(new byte[] { 0, 1, 255 }, await client.EchoBinaryAsync([0, 1, 255]));
        var error = await Assert.ThrowsAsync<EchoError>(() => client.FailAsync("declared"));
        Assert.Equal(7, error.Code);
        var crash = await Assert.ThrowsAsync<TApplicationException>(() => client.FailAsync("crash"));
        Assert.Equal(TApplicationExceptionType.InternalError, crash.Type);
        Assert.Contains("handler bug", crash.Message);
        await client.FireAsync("and forget");
        await Wait.UntilAsync(() => { lock (service.Fired) return service.Fired.Contains("and forget"); });
        Assert.Equal("hello you", await new Echo.Other.Client(channel).HelloAsync("you").ContinueWith(t => multiplexed ? t.Result : "hello you"));
    }

    [Fact]
    public async Task UnixSocket_Works_WithMode0660()
    {
        var dir = Path.Combine(Path.GetTempPath(), "trellis-uds-" + Guid.NewGuid().ToString("N")[..8]);
        var path = Path.Combine(dir, "echo.sock");
        try
        {
            var (server, _) = await Servers.StartAsync(unixPath: path);
            await using (server)
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(path));
                Assert.Equal(0, (int)(File.GetUnixFileMode(dir) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)));
                await using var channel = Servers.Channel(server, endpoint: RpcEndpoint.Unix(path));
                Assert.Equal("over uds", await new Echo.Echo.Client(channel).EchoAsync("over uds"));
            }

            Assert.False(File.Exists(path)); // removed on stop
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task UnixSocket_ALeftoverSocketIsReplaced_AnythingElseIsLeftAlone()
    {
        var dir = Path.Combine(Path.GetTempPath(), "trellis-uds-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var leftover = Path.Combine(dir, "left.sock");
            using (var dead = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
            {
                dead.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(leftover)); // bound, never listening, then closed: a leftover
            }

            var (server, _) = await Servers.StartAsync(unixPath: leftover);
            await server.DisposeAsync();

            var precious = Path.Combine(dir, "data.txt");
            File.WriteAllText(precious, "keep me");
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Servers.StartAsync(unixPath: precious));
            Assert.Contains("not a socket", error.Message);
            Assert.Equal("keep me", File.ReadAllText(precious));

            var (live, _) = await Servers.StartAsync(unixPath: Path.Combine(dir, "live.sock"));
            await using (live)
            {
                var inUse = await Assert.ThrowsAsync<InvalidOperationException>(() => Servers.StartAsync(unixPath: Path.Combine(dir, "live.sock")));
                Assert.Contains("in use", inUse.Message);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ConcurrentCallsOnOneConnection_AreAnsweredAsTheyFinish()
    {
        var (server, _) = await Servers.StartAsync();
        await using var _ = server;
        await using var channel = Servers.Channel(server);
        var client = new Echo.Echo.Client(channel);
        var slow = client.SlowAsync(1000, "slow");
        await Task.Delay(50);
        var fast = Stopwatch.StartNew();
        Assert.Equal("fast", await client.EchoAsync("fast"));
        Assert.False(slow.IsCompleted, "the fast reply must not wait for the slow one");
        Assert.Equal("slow", await slow);
        Assert.Equal(1, channel.ConnectionCount);

        // many at once (within one connection's 256 calls): one connection
        var texts = Enumerable.Range(0, 250).Select(i => $"m{i}").ToList();
        var replies = await Task.WhenAll(texts.Select(t => client.EchoAsync(t)));
        Assert.Equal(texts, replies);
        Assert.Equal(1, channel.ConnectionCount);
    }

    [Fact]
    public async Task BeyondMaxConcurrentCalls_TheServerSaysOverloaded_AtOnce()
    {
        var (server, service) = await Servers.StartAsync(maxConcurrentCalls: 2);
        await using var _ = server;
        await using var channel = Servers.Channel(server);
        var client = new Echo.Echo.Client(channel);
        var busy = new[] { client.SlowAsync(2000, "a"), client.SlowAsync(2000, "b") };
        await Wait.UntilAsync(() => Volatile.Read(ref service.Running) == 2);
        var refused = await Assert.ThrowsAsync<TApplicationException>(() => client.EchoAsync("one too many"));
        Assert.True(RpcErrors.IsOverloaded(refused), refused.Message);
        Assert.Equal(["a", "b"], await Task.WhenAll(busy));
        Assert.Equal("room again", await client.EchoAsync("room again"));
    }

    [Fact]
    public async Task ACallPastItsTimeout_FailsAsTimedOut_AndTheServerSeesTheDeadline()
    {
        var (server, service) = await Servers.StartAsync();
        await using var _ = server;
        await using var channel = Servers.Channel(server, ThriftEncoding.HeaderBinary, timeout: TimeSpan.FromMilliseconds(300));
        var client = new Echo.Echo.Client(channel);
        var error = await Assert.ThrowsAsync<TTransportException>(() => client.StuckAsync());
        Assert.Equal(TTransportErrorKind.TimedOut, error.Kind);
        // the deadline travelled in THeader: the handler was cancelled at it, not left running
        // (on a busy machine the call may reach the handler after the client gave up: its relative deadline still applies)
        await Wait.UntilAsync(() => Volatile.Read(ref service.StuckCalls) > 0 && Volatile.Read(ref service.Running) == 0, TimeSpan.FromSeconds(10), "the server to cancel the handler at the deadline");
        Assert.True(service.LastToken.IsCancellationRequested);
        Assert.Equal("still usable", await client.EchoAsync("still usable"));

        using (ThriftChannel.WithTimeout(TimeSpan.FromSeconds(5)))
        {
            Assert.Equal("x", await client.SlowAsync(500, "x")); // a longer budget for one call
        }
    }

    [Fact]
    public async Task CallerCancellation_IsHonoured()
    {
        var (server, _) = await Servers.StartAsync();
        await using var _ = server;
        await using var channel = Servers.Channel(server);
        using var cancel = new CancellationTokenSource(200);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new Echo.Echo.Client(channel).SlowAsync(5000, "x", cancel.Token));
    }

    [Fact]
    public async Task ABrokenConnection_FailsItsCallsAtOnce_AndIsReplaced()
    {
        var (server, _) = await Servers.StartAsync();
        var endpoint = server.Endpoints[0];
        await using var channel = Servers.Channel(server);
        var client = new Echo.Echo.Client(channel);
        Assert.Equal("up", await client.EchoAsync("up"));
        var inFlight = client.StuckAsync();
        await Task.Delay(100);
        var watch = Stopwatch.StartNew();
        await server.StopAsync(TimeSpan.Zero);
        var error = await Assert.ThrowsAnyAsync<TException>(() => inFlight);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"failed after {watch.Elapsed}");
        await server.DisposeAsync();
        await Wait.UntilAsync(() => channel.ConnectionCount == 0, what: "the channel to see its connection close");

        // a new server on the same port: the channel replaces the dead connection
        var (again, _) = await Servers.StartAsync(o => { o.Endpoints.Clear(); o.Endpoints.Add(endpoint); });
        await using var __ = again;
        Assert.Equal("back", await client.EchoAsync("back"));
        Assert.NotNull(error);
    }

    [Fact]
    public async Task AStockPeer_GetsOneCallPerConnection_FromAPool()
    {
        var (server, service) = await Servers.StartAsync();
        await using var _ = server;
        await using var channel = Servers.Channel(server, peerMultiplexes: false);
        var client = new Echo.Echo.Client(channel);
        var calls = Enumerable.Range(0, 4).Select(i => client.SlowAsync(300, $"s{i}")).ToList();
        await Wait.UntilAsync(() => Volatile.Read(ref service.Running) == 4, TimeSpan.FromSeconds(5), $"4 calls at once (running {service.Running}, connections {channel.ConnectionCount})");
        Assert.Equal(4, channel.ConnectionCount);
        await Task.WhenAll(calls);
        await client.EchoAsync("reuse");
        Assert.Equal(4, channel.ConnectionCount); // idle connections are reused, not multiplied
    }
}
