using System.Diagnostics;
using System.Text.Json;
using Trellis.Testing;
using Trellis.Thrift;

namespace Trellis.Rpc.Tests;

/// <summary>
/// Live calls across languages over TCP: Apache's generated Python client (python3-thrift) calling the
/// Trellis server, and the Trellis channel with a generated C# client calling Apache's stock Python server
/// (TThreadedServer: one call at a time per connection).
/// </summary>
public class PythonLiveTests
{
    public static TheoryData<string, string, bool> Matrix() => EncodingMatrix.WithFlag();

    private static ThriftEncoding Encoding(string framing, string protocol) => EncodingMatrix.Encoding(framing, protocol);

    private static List<JsonElement> Lines(byte[] stdout) => PeerLines.Parse(stdout);

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task ApachePythonClient_CallsTheTrellisServer(string framing, string protocol, bool multiplexed)
    {
        var handler = new ConformanceHandler();
        var options = new ThriftServerOptions();
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        await using var server = new ThriftServer(options).AddService(new global::Conformance.Dispatcher(handler));
        await server.StartAsync();
        string[] common = ["--port", server.Endpoints[0].Port.ToString(), "--framing", framing, "--protocol", protocol,
            .. multiplexed ? new[] { "--multiplexed", "Conformance" } : []];

        var sample = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples", "--protocol", "binary"))[0].Payload;
        var echo = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "echo", "--sample", "0", "--count", "3"]));
        Assert.Equal(3, echo.Count);
        Assert.All(echo, e => Assert.Equal(Convert.ToHexString(sample).ToLowerInvariant(), e.GetProperty("value").GetString()));

        var oops = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "echo", "--i32v", "42"])).Single();
        Assert.Equal("oops", oops.GetProperty("kind").GetString());
        Assert.Equal(42, oops.GetProperty("code").GetInt32());

        Assert.Equal("void", Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "ping"])).Single().GetProperty("kind").GetString());
        var unknown = Lines(PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "nosuch"])).Single();
        Assert.Equal("app_exception", unknown.GetProperty("kind").GetString());
        Assert.Equal((int)TApplicationExceptionType.UnknownMethod, unknown.GetProperty("type").GetInt32());

        PythonPeer.Conformance.Ok([], ["tcp-call", .. common, "--method", "notify"]);
        await Wait.UntilAsync(() => { lock (handler.Notified) return handler.Notified.Contains("hello"); });
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task TheTrellisChannel_CallsApachePythonsStockServer(string framing, string protocol, bool multiplexed)
    {
        using var python = Process.Start(PythonPeer.Conformance.StartInfo("tcp-serve",
            ["--port", "0", "--framing", framing, "--protocol", protocol, .. multiplexed ? new[] { "--multiplexed", "Conformance" } : []]))!;
        try
        {
            var line = await python.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotNull(line);
            var port = int.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
            await using var channel = new ThriftChannel(new ThriftChannelOptions
            {
                Endpoint = RpcEndpoint.Tcp("127.0.0.1", port),
                Encoding = Encoding(framing, protocol),
                Multiplexed = multiplexed,
                PeerMultiplexesCalls = false,
            });
            var client = new global::Conformance.Client(channel);
            var sample = ThriftSerializer.Deserialize<Everything>(PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples"))[0].Payload);
            Assert.Equal(sample, await client.EchoAsync(sample));

            var failing = ThriftSerializer.Deserialize<Everything>(ThriftSerializer.Serialize(sample));
            failing.I32v = 42;
            var oops = await Assert.ThrowsAsync<Oops>(() => client.EchoAsync(failing));
            Assert.Equal("forty-two", oops.Message);
            await client.PingAsync();
            await client.NotifyAsync("from C#");

            // a stock server takes one call per connection: concurrent calls get a connection each
            var sleepy = ThriftSerializer.Deserialize<Everything>(ThriftSerializer.Serialize(sample));
            sleepy.Str = "sleep";
            var calls = Enumerable.Range(0, 4).Select(_ => client.EchoAsync(sleepy)).ToList();
            await Task.WhenAll(calls);
            Assert.True(channel.ConnectionCount >= 2, $"{channel.ConnectionCount} connections");
        }
        finally
        {
            python.Kill(entireProcessTree: true);
            await python.WaitForExitAsync();
        }
    }
}
