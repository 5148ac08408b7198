using System.Collections.Concurrent;
using System.Diagnostics;
using Trellis.Thrift;

namespace Trellis.Rpc.Tests;

public class SeqIdAndTraceTests
{
    [Fact]
    public async Task SeqIds_SkipOnesStillInFlight_AndWrapAroundSafely()
    {
        var seen = new ConcurrentQueue<(string Method, int SeqId)>();
        var options = new ThriftServerOptions { DefaultService = "Echo" };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        var service = new EchoService();
        await using var live = new ThriftServer(options)
            .AddService(new Echo.Echo.Dispatcher(service))
            .Use(RpcStackRole.Telemetry, "capture", next => context =>
            {
                seen.Enqueue((context.MethodName, context.SeqId));
                return next(context);
            });
        await live.StartAsync();
        await using var channel = Servers.Channel(live, timeout: TimeSpan.FromSeconds(3));
        var client = new Echo.Echo.Client(channel);
        await client.EchoAsync("open the connection");

        var stuck = client.StuckAsync();
        await Wait.UntilAsync(() => seen.Any(s => s.Method == "stuck"));
        var held = seen.Single(s => s.Method == "stuck").SeqId;

        channel.SeedSeqIds(held); // the next seqid would collide with the call still waiting
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal($"after {i}", await client.EchoAsync($"after {i}"));
        }

        var after = seen.Where(s => s.Method == "echo").Select(s => s.SeqId).TakeLast(3).ToList();
        Assert.DoesNotContain(held, after);
        Assert.Equal([held + 1, held + 2, held + 3], after);

        channel.SeedSeqIds(int.MaxValue - 1);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal($"wrap {i}", await client.EchoAsync($"wrap {i}"));
        }

        var wrapped = seen.Where(s => s.Method == "echo").Select(s => s.SeqId).TakeLast(4).ToList();
        Assert.Equal([int.MaxValue - 1, int.MaxValue, 0, 1], wrapped);
        await Assert.ThrowsAsync<TTransportException>(() => stuck.WaitAsync(TimeSpan.FromSeconds(30))); // its own timeout
    }

    [Fact]
    public async Task TraceContext_TravelsInTHeader()
    {
        var headers = new ConcurrentQueue<IDictionary<string, string>>();
        var options = new ThriftServerOptions { DefaultService = "Echo" };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        await using var server = new ThriftServer(options)
            .AddService(new Echo.Echo.Dispatcher(new EchoService()))
            .Use(RpcStackRole.Telemetry, "capture", next => context =>
            {
                headers.Enqueue(new Dictionary<string, string>(context.RequestHeaders));
                return next(context);
            });
        await server.StartAsync();
        await using var channel = Servers.Channel(server, ThriftEncoding.HeaderCompact);
        using var activity = new Activity("test-call").SetIdFormat(ActivityIdFormat.W3C).Start();
        await new Echo.Echo.Client(channel).EchoAsync("traced");
        var seen = headers.Single();
        Assert.Equal(activity.Id, seen[RpcHeaders.TraceParent]);
        Assert.True(int.Parse(seen[RpcHeaders.Timeout], System.Globalization.CultureInfo.InvariantCulture) > 0);
    }
}
