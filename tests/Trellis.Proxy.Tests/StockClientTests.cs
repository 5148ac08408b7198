using System.Text.Json;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Proxy.Tests;

/// <summary>
/// Apache's stock Python client (Debian python3-thrift, generated Conformance.Client with TMultiplexedProtocol)
/// calling through the proxy, over TCP and the Unix socket: to a Trellis (C#) service, and to a stock Python
/// service that is not multiplexed (the proxy strips the service prefix and gives each call its own connection).
/// </summary>
public sealed class StockClientTests
{
    public static TheoryData<string, string, bool> Matrix() => EncodingMatrix.WithFlag();

    private static List<JsonElement> Lines(byte[] stdout) => PeerLines.Parse(stdout);

    private static string[] Target(ProxyRig rig, bool unix) =>
        unix ? ["--uds", rig.Unix.UnixPath!] : ["--port", rig.Tcp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)];

    private static readonly string SampleHex = Convert.ToHexString(PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples", "--protocol", "binary"))[0].Payload).ToLowerInvariant();

    private static void CallEverything(ProxyRig rig, bool unix, string framing, string protocol)
    {
        string[] common = [.. Target(rig, unix), "--framing", framing, "--protocol", protocol, "--multiplexed", "Conformance"];
        var echo = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "echo", "--sample", "0", "--count", "3"]));
        Assert.Equal(3, echo.Count);
        Assert.All(echo, e => Assert.Equal(SampleHex, e.GetProperty("value").GetString()));

        var oops = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "echo", "--i32v", "42"])).Single();
        Assert.Equal("oops", oops.GetProperty("kind").GetString());
        Assert.Equal(42, oops.GetProperty("code").GetInt32());
        Assert.Equal("void", Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "ping"])).Single().GetProperty("kind").GetString());
        PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "notify"]);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task AStockPythonClient_CallsATrellisService_ThroughTheProxy(string framing, string protocol, bool unix)
    {
        await using var rig = await ProxyRig.StartAsync();
        var handler = new ConformanceHandler();
        var options = new ThriftServerOptions();
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        var server = new ThriftServer(options).AddService(new global::Conformance.Dispatcher(handler));
        rig.Own(server);
        await server.StartAsync();
        rig.Own(await rig.Registry.RegisterAsync(new ServiceInstance
        {
            Product = ProxyRig.Product, Service = "Conformance", InstanceId = "cs", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
        }));

        CallEverything(rig, unix, framing, protocol);
        await Wait.UntilAsync(() => { lock (handler.Notified) return handler.Notified.Contains("hello"); });

        var unknown = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. Target(rig, unix), "--framing", framing, "--protocol", protocol,
            "--multiplexed", "Conformance", "--method", "nosuch"])).Single();
        Assert.Equal("app_exception", unknown.GetProperty("kind").GetString());
        Assert.Equal((int)TApplicationExceptionType.UnknownMethod, unknown.GetProperty("type").GetInt32());

        var noService = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. Target(rig, unix), "--framing", framing, "--protocol", protocol,
            "--multiplexed", "Nowhere", "--method", "ping"])).Single();
        Assert.Equal("app_exception", noService.GetProperty("kind").GetString());
        Assert.Contains("unknown service 'Nowhere'", noService.GetProperty("message").GetString());
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task AStockPythonClient_CallsAStockPythonService_ThroughTheProxy(string framing, string protocol, bool unix)
    {
        await using var rig = await ProxyRig.StartAsync();
        // the service speaks framed binary only and takes bare method names; the client may speak anything
        await using var python = await PythonServer.StartAsync("framed", "binary");
        rig.Own(await rig.Registry.RegisterAsync(python.Instance(ProxyRig.Product, "py")));
        CallEverything(rig, unix, framing, protocol);
        Assert.Equal(0, rig.Proxy.Stats.BackendFailures);
    }

    [Fact]
    public async Task AStockService_GetsOneCallPerConnection_AndConcurrentCallsGetAPool()
    {
        await using var rig = await ProxyRig.StartAsync();
        await using var python = await PythonServer.StartAsync("framed", "binary");
        rig.Own(await rig.Registry.RegisterAsync(python.Instance(ProxyRig.Product, "py")));
        // four concurrent 0.5 s calls from a C# client over one proxy connection: in parallel only if the proxy pools
        var channel = rig.Channel(rig.Tcp);
        var client = new global::Conformance.Client(channel);
        var sample = Trellis.Thrift.ThriftSerializer.Deserialize<Everything>(PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples"))[0].Payload);
        sample.Str = "sleep";
        await client.PingAsync();
        Assert.Equal(1, rig.Proxy.BackendConnectionCount);
        var replies = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => client.EchoAsync(sample)));
        Assert.All(replies, r => Assert.Equal(sample, r));
        // the calls overlapped (each sleeps 0.5 s at the server), and a stock connection takes one at a time
        Assert.True(rig.Proxy.BackendConnectionCount >= 2, $"{rig.Proxy.BackendConnectionCount} backend connections");
    }

    [Fact]
    public async Task TheProxysDeadline_OnAStockBackendWithoutTHeader_IsAnsweredByTheProxy_AndThatConnectionIsNotReused()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Services["Conformance"] = new ProxyServiceOptions { Timeout = TimeSpan.FromMilliseconds(200) });
        await using var python = await PythonServer.StartAsync("framed", "binary");
        rig.Own(await rig.Registry.RegisterAsync(python.Instance(ProxyRig.Product, "py")));
        var client = new global::Conformance.Client(rig.Channel(rig.Tcp));
        var sample = Trellis.Thrift.ThriftSerializer.Deserialize<Everything>(PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples"))[0].Payload);
        await client.PingAsync();
        var sleepy = Trellis.Thrift.ThriftSerializer.Deserialize<Everything>(Trellis.Thrift.ThriftSerializer.Serialize(sample));
        sleepy.Str = "sleep"; // 0.5 s at the server, which gets no deadline (framed)
        var error = await Assert.ThrowsAsync<TTransportException>(() => client.EchoAsync(sleepy));
        Assert.True(error.InnerException is TApplicationException app && RpcErrors.IsDeadlineExceeded(app), error.ToString());
        Assert.Equal(1, rig.Proxy.Stats.Timeouts);
        // the late reply would be the next caller's on a one-call-per-connection server: the connection was dropped
        Assert.Equal(sample, await client.EchoAsync(sample));
        Assert.Equal(0, rig.Proxy.Stats.BackendFailures);
    }

    [Fact]
    public async Task AStockTHeaderClient_WithZlibAndInfoHeaders_IsAnsweredInKind()
    {
        await using var rig = await ProxyRig.StartAsync();
        await using var python = await PythonServer.StartAsync("header", "binary");
        rig.Own(await rig.Registry.RegisterAsync(python.Instance(ProxyRig.Product, "py", framing: "header")));
        var reply = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. Target(rig, unix: false), "--framing", "header", "--protocol", "compact",
            "--multiplexed", "Conformance", "--zlib", "--header", "caller=stock", "--method", "echo", "--sample", "0"])).Single();
        Assert.True(reply.TryGetProperty("value", out var value), reply.ToString());
        Assert.Equal(SampleHex, value.GetString());
        // the caller's info header went through to the python server, which echoes the request's headers on its reply
        Assert.Equal("stock", reply.GetProperty("headers").GetProperty("caller").GetString());
        Assert.Equal("python", reply.GetProperty("headers").GetProperty("peer").GetString());
        // and the proxy told the server the caller's remaining time
        Assert.True(reply.GetProperty("headers").TryGetProperty("trellis-timeout-ms", out _), reply.ToString());
    }
}
