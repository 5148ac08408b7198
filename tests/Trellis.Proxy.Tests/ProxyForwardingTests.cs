using System.Diagnostics;
using Trellis.Rpc;
using Trellis.Rpc.Tests;
using Trellis.Rpc.Tests.Echo;
using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Proxy.Tests;

/// <summary>Calls from Trellis clients through the proxy to Trellis servers: routing, seqids, errors, deadlines.</summary>
public sealed class ProxyForwardingTests
{
    public static TheoryData<string, string, bool> Encodings() => EncodingMatrix.WithFlag();

    private static ThriftEncoding Encoding(string framing, string protocol) => EncodingMatrix.Encoding(framing, protocol);

    [Theory]
    [MemberData(nameof(Encodings))]
    public async Task EveryEncoding_OverTcpAndUnixSocket_ReachesTheService(string framing, string protocol, bool unix)
    {
        await using var rig = await ProxyRig.StartAsync();
        var (_, service, _) = await rig.AddTrellisBackendAsync("a");
        var channel = rig.Channel(unix ? rig.Unix : rig.Tcp, Encoding(framing, protocol));
        var echo = new Echo.Client(channel);
        Assert.Equal("hi", await echo.EchoAsync("hi"));
        Assert.Equal(new byte[] { 0, 1, 255 }, await echo.EchoBinaryAsync([0, 1, 255]));
        Assert.Equal("hello you", await new Other.Client(channel).HelloAsync("you"));
        var declared = await Assert.ThrowsAsync<EchoError>(() => echo.FailAsync("declared"));
        Assert.Equal(7, declared.Code);
        await echo.FireAsync("oneway");
        await Wait.UntilAsync(() => { lock (service.Fired) return service.Fired.Contains("oneway"); });
    }

    [Fact]
    public async Task ASlowCall_DoesNotHoldBackLaterRepliesOnTheSameConnection()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var echo = new Echo.Client(rig.Channel(rig.Tcp));
        await echo.EchoAsync("warm");
        var slow = echo.SlowAsync(1500, "slow");
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("fast" + i, await echo.EchoAsync("fast" + i));
        }

        Assert.True(watch.ElapsedMilliseconds < 1500 && !slow.IsCompleted, "fast replies waited for the slow one");
        Assert.Equal("slow", await slow);
    }

    [Fact]
    public async Task ManyConcurrentCallsFromManyConnections_EachGetsItsOwnReply()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.ConnectionsPerBackend = 1);
        await rig.AddTrellisBackendAsync("a");
        await rig.AddTrellisBackendAsync("b");
        var clients = Enumerable.Range(0, 8).Select(_ => new Echo.Client(rig.Channel(rig.Tcp))).ToList();
        await Task.WhenAll(clients.SelectMany((c, ci) => Enumerable.Range(0, 200).Select(async i =>
        {
            var text = $"{ci}-{i}";
            Assert.Equal(text, await c.EchoAsync(text));
        })));
        Assert.Equal(8 * 200, rig.Proxy.Stats.Replies);
    }

    [Fact]
    public async Task Calls_AreBalancedPerRequest_NotPerConnection()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Strategy = "round_robin");
        var (a, _, _) = await rig.AddTrellisBackendAsync("a");
        var (b, _, _) = await rig.AddTrellisBackendAsync("b");
        var echo = new Echo.Client(rig.Channel(rig.Tcp)); // one connection
        for (var i = 0; i < 100; i++)
        {
            await echo.EchoAsync("x");
        }

        var routes = rig.Proxy.Routes["Echo"];
        Assert.Equal(2, routes.Count);
        // both servers took calls from the one application connection
        Assert.True(a.ConnectionCount > 0 && b.ConnectionCount > 0);
    }

    [Fact]
    public async Task UnknownService_NoInstance_BadNames_AreTApplicationExceptions_AndTheConnectionGoesOn()
    {
        await using var rig = await ProxyRig.StartAsync();
        var (_, _, registrations) = await rig.AddTrellisBackendAsync("a");
        var channel = rig.Channel(rig.Tcp);
        var echo = new Echo.Client(channel);
        Assert.Equal("ok", await echo.EchoAsync("ok"));

        // a service nobody registered
        var raw = new ThriftChannel(new ThriftChannelOptions { Endpoint = rig.Tcp, Multiplexed = false, PeerMultiplexesCalls = true });
        rig.Own(raw);
        var bare = await Assert.ThrowsAsync<TApplicationException>(() => new Echo.Client(raw).EchoAsync("x"));
        Assert.Contains("service:method", bare.Message);

        var unknown = await Assert.ThrowsAsync<TApplicationException>(() => new Echo.Client(new RenamingChannel(channel, "Nobody")).EchoAsync("x"));
        Assert.Equal(TApplicationExceptionType.UnknownMethod, unknown.Type);
        Assert.Contains("unknown service 'Nobody'", unknown.Message);

        // every instance gone
        foreach (var registration in registrations)
        {
            await registration.DeregisterAsync();
        }

        await Wait.UntilAsync(() => rig.Proxy.Routes["Echo"].Count == 0 || rig.Proxy.Routes["Echo"].All(e => e.Instance.Draining), TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
        Assert.Equal("still", await echo.EchoAsync("still")); // empty protection: the last list stays
        Assert.Equal("ok", await echo.EchoAsync("ok"));
    }

    [Fact]
    public async Task TheCallersDeadline_FromTHeader_IsEnforcedByTheProxy_AndReachesTheBackend()
    {
        await using var rig = await ProxyRig.StartAsync();
        var (_, service, _) = await rig.AddTrellisBackendAsync("a");
        var echo = new Echo.Client(rig.Channel(rig.Tcp, new ThriftEncoding(ThriftFraming.Header, ThriftProtocol.Binary)));
        await echo.EchoAsync("warm");
        var watch = Stopwatch.StartNew();
        Exception error;
        using (ThriftChannel.WithTimeout(TimeSpan.FromMilliseconds(300)))
        {
            error = await Assert.ThrowsAnyAsync<TException>(() => echo.StuckAsync());
        }

        // the caller's own timer and the proxy's (from the header) end the call together: either answer is a timeout
        Assert.True(error is TTransportException { Kind: TTransportErrorKind.TimedOut }, error.ToString());
        Assert.InRange(watch.ElapsedMilliseconds, 250, 2000);
        // the deadline went on to the backend (THeader): its handler was cancelled at the deadline, not left running
        await Wait.UntilAsync(() => service.Running == 0, TimeSpan.FromSeconds(2), "the backend to cancel the handler");
        Assert.True(service.LastToken.IsCancellationRequested);
    }

    [Fact]
    public async Task APerServiceTimeout_FromConfiguration_IsEnforced_AndReloadChangesIt()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Services["Echo"] = new ProxyServiceOptions { Timeout = TimeSpan.FromMilliseconds(200) });
        await rig.AddTrellisBackendAsync("a");
        var echo = new Echo.Client(rig.Channel(rig.Tcp));
        var error = await Assert.ThrowsAsync<TTransportException>(() => echo.SlowAsync(1000, "late"));
        Assert.True(error.InnerException is TApplicationException app && RpcErrors.IsDeadlineExceeded(app), error.ToString());
        // the proxy's sweep or the backend (which got the deadline in THeader) answers first: either way a deadline error

        var reloaded = ProxyRig.NewOptions(rig.Root);
        reloaded.Services["Echo"] = new ProxyServiceOptions { Timeout = TimeSpan.FromSeconds(5) };
        rig.Proxy.Reload(reloaded);
        Assert.Equal("late", await echo.SlowAsync(500, "late"));

        var bad = ProxyRig.NewOptions(rig.Root);
        bad.Strategy = "nonsense";
        Assert.Throws<ArgumentException>(() => rig.Proxy.Reload(bad));
        Assert.Equal("kept", await echo.SlowAsync(500, "kept")); // the bad reload changed nothing
    }

    [Fact]
    public async Task GracefulStop_FinishesCallsInFlight_AndRefusesNewConnections()
    {
        var rig = await ProxyRig.StartAsync();
        try
        {
            await rig.AddTrellisBackendAsync("a");
            var echo = new Echo.Client(rig.Channel(rig.Tcp));
            await echo.EchoAsync("warm");
            var inFlight = echo.SlowAsync(500, "finished");
            await Wait.UntilAsync(() => rig.Proxy.Stats.InFlight == 1);
            var stop = rig.Proxy.StopAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("finished", await inFlight);
            await stop;
            using var socket = rig.Tcp.NewClientSocket();
            await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => socket.ConnectAsync(rig.Tcp.ToEndPoint()));
            Assert.False(File.Exists(rig.Unix.UnixPath));
        }
        finally
        {
            await rig.DisposeAsync();
        }
    }

    [Fact]
    public async Task ACallerWithTooManyCallsInFlight_IsReadNoFurther_UntilSomeFinish()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.MaxInFlightPerConnection = 4);
        var (_, service, _) = await rig.AddTrellisBackendAsync("a");
        var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = rig.Tcp, PeerMultiplexesCalls = true, MaxConnections = 1 });
        rig.Own(channel);
        var echo = new Echo.Client(channel);
        var peak = 0;
        using var stop = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, Volatile.Read(ref service.Running));
                await Task.Delay(1);
            }
        });
        var calls = Enumerable.Range(0, 20).Select(i => echo.SlowAsync(100, "s" + i)).ToList();
        var replies = await Task.WhenAll(calls);
        await stop.CancelAsync();
        await watcher;
        Assert.Equal(Enumerable.Range(0, 20).Select(i => "s" + i), replies);
        Assert.InRange(peak, 1, 4); // the proxy held the rest in the socket: bounded memory, and nothing lost
    }

    [Fact]
    public async Task AnOverloadedInstance_IsSkipped_ForAnother_WithoutBeingJudgedUnhealthy()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Strategy = "round_robin");
        var (_, busy, _) = await rig.AddTrellisBackendAsync("a", maxConcurrentCalls: 1);
        await rig.AddTrellisBackendAsync("b");
        var echo = new Echo.Client(rig.Channel(rig.Tcp));
        // occupy a's only slot (the call may land on b first: then try again until a holds one)
        var stuck = new List<Task<string>>();
        while (busy.StuckCalls == 0)
        {
            stuck.Add(echo.StuckAsync());
            await Task.Delay(50);
        }

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("x" + i, await echo.EchoAsync("x" + i)); // those a refuses ("overloaded") go to b
        }

        Assert.True(rig.Proxy.Stats.Retries > 0);
        Assert.False(rig.Proxy.Routes["Echo"].Single(e => e.Key == "a").Health.IsEjected(Trellis.Rpc.Balancing.OutlierDetector.Now));
        _ = stuck; // cancelled when the rig stops the servers
    }
}

/// <summary>Sends every call under another service name (to reach a service that does not exist).</summary>
internal sealed class RenamingChannel(IThriftChannel inner, string service) : IThriftChannel
{
    private ThriftMethod Rename(ThriftMethod method) => new(service, method.Name, method.IsOneway, method.IsIdempotent, method.ArgumentsType, method.ResultType);

    public ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable where TResult : IThriftStruct =>
        inner.CallAsync(Rename(method), arguments, result, cancellationToken);

    public ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable =>
        inner.SendOnewayAsync(Rename(method), arguments, cancellationToken);
}
