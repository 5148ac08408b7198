using System.Text;
using System.Text.Json;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Xunit.Abstractions;

namespace Trellis.Proxy.Tests;

/// <summary>
/// <c>trellis call</c> and <c>trellis bench</c>, run as built (a process), against real Trellis servers — the Echo
/// service and the conformance schema's <c>Everything</c> — directly and through a proxy, binary and compact.
/// </summary>
public sealed class CallCommandTests(ITestOutputHelper output)
{
    private static readonly string RepoRoot = FindRepoRoot();
    private static readonly string EchoIdl = Path.Combine(RepoRoot, "tests/Trellis.Rpc.Tests/idl/echo.thrift");
    private static readonly string ConformanceIdl = Path.Combine(RepoRoot, "tests/peers/python/conformance.thrift");
    private static readonly string LoudIdl = Path.Combine(RepoRoot, "tests/Trellis.Proxy.Tests/idl/loud.thrift");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Trellis.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("the repository root (Trellis.slnx) is not above " + AppContext.BaseDirectory);
    }

    private async Task<(int Code, string Out, string Err)> Trellis(params string[] args)
    {
        var run = await TrellisCli.RunAsync(args);
        output.WriteLine($"$ trellis {string.Join(' ', args)}\nexit {run.Code}\n{run.Out}{run.Err}");
        return run;
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    /// <summary>A Trellis server with the conformance schema's service, and a proxy that routes Echo, Other and Conformance to it and to an Echo server.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        public required ProxyRig Proxy { get; init; }
        public required ThriftServer EchoServer { get; init; }
        public required EchoService Echo { get; init; }
        public required ThriftServer ConformanceServer { get; init; }

        public static async Task<Rig> StartAsync()
        {
            var proxy = await ProxyRig.StartAsync();
            var (echoServer, echo, _) = await proxy.AddTrellisBackendAsync("e1");
            var options = new ThriftServerOptions();
            options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
            var conformance = new ThriftServer(options).AddService(new global::Conformance.Dispatcher(new ConformanceHandler()));
            proxy.Own(conformance);
            await conformance.StartAsync();
            proxy.Own(await proxy.Registry.RegisterAsync(new ServiceInstance
            {
                Product = ProxyRig.Product, Service = "Conformance", InstanceId = "c1", Host = "127.0.0.1", Port = conformance.Endpoints[0].Port, Framing = "header",
            }));
            return new Rig { Proxy = proxy, EchoServer = echoServer, Echo = echo, ConformanceServer = conformance };
        }

        /// <summary>The endpoint to call: the server itself, or the proxy (over its Unix socket).</summary>
        public string Endpoint(ThriftServer server, bool viaProxy) => (viaProxy ? Proxy.Unix : server.Endpoints[0]).ToString();

        public ValueTask DisposeAsync() => Proxy.DisposeAsync();
    }

    public static TheoryData<string, string, bool> Matrix => new()
    {
        { "header", "binary", false },
        { "framed", "compact", false },
        { "header", "compact", true },
        { "framed", "binary", true },
        { "unframed", "binary", false },
    };

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Call_Echo_EchoBinary_AndADeclaredException(string framing, string protocol, bool viaProxy)
    {
        await using var rig = await Rig.StartAsync();
        string[] how = ["--endpoint", rig.Endpoint(rig.EchoServer, viaProxy), "--framing", framing, "--protocol", protocol];

        var echo = await Trellis(["call", EchoIdl, "Echo", "echo", """{"text": "héllo wörld"}""", .. how]);
        Assert.Equal(0, echo.Code);
        Assert.Equal("héllo wörld", Json(echo.Out).GetProperty("result").GetString());
        Assert.Equal(1, rig.Echo.Echoes);

        var bytes = new byte[] { 0, 1, 2, 250, 255 };
        var binary = await Trellis(["call", EchoIdl, "Echo", "echoBinary", $$"""{"data": "{{Convert.ToBase64String(bytes)}}"}""", .. how]);
        Assert.Equal(0, binary.Code);
        Assert.Equal(bytes, Convert.FromBase64String(Json(binary.Out).GetProperty("result").GetString()!));

        var declared = await Trellis(["call", EchoIdl, "Echo", "fail", """{"kind": "declared"}""", .. how]);
        Assert.Equal(1, declared.Code);
        var thrown = Json(declared.Out);
        Assert.Equal("EchoError", thrown.GetProperty("exception").GetString());
        Assert.Equal(7, thrown.GetProperty("value").GetProperty("code").GetInt32());
        Assert.Equal("as declared", thrown.GetProperty("value").GetProperty("message").GetString());

        var crash = await Trellis(["call", EchoIdl, "Echo", "fail", """{"kind": "crash"}""", .. how]);
        Assert.Equal(1, crash.Code);
        Assert.Equal("", crash.Out);
        Assert.Contains("InternalError", crash.Err);
        Assert.Single(crash.Err.Trim().Split('\n'));

        var ok = await Trellis(["call", EchoIdl, "Echo", "fail", """{"kind": "fine"}""", .. how]);
        Assert.Equal(0, ok.Code);
        Assert.Equal(0, Json(ok.Out).GetProperty("result").GetInt32());
    }

    private const string EverythingJson = """
        {"value": {
          "b_true": true, "b_false": false, "i8v": -128, "i16v": 32767, "i32v": -7, "i64v": "9007199254740993",
          "dbl": 2.5, "str": "ünïcode ✓", "bin": "AAEC/w==", "inner": {"id": 1, "name": "one"},
          "ints": [1, 2, 3], "strs": ["a", "b"], "m": {"x": 1, "y": -9223372036854775808},
          "inners": [{"id": 2, "name": "two"}, {"id": 3}], "nested": [[1, 2], [], [-3]],
          "deep": {"5": [{"id": 5, "name": "five"}], "-1": []}, "color": "BLUE",
          "bools": [true, false], "longs": [1, 9007199254740993], "dbls": [0.5, -1e300], "bins": ["", "/w=="],
          "small": {"-3": true, "4": false}, "far": 40, "opt_inner": {"id": 300, "name": "far"}
        }}
        """;

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Call_AStructAndContainerRichMethod_RoundTripsEveryType(string framing, string protocol, bool viaProxy)
    {
        await using var rig = await Rig.StartAsync();
        string[] how = ["--endpoint", rig.Endpoint(rig.ConformanceServer, viaProxy), "--framing", framing, "--protocol", protocol];
        var run = await Trellis(["call", ConformanceIdl, "Conformance", "echo", EverythingJson, .. how]);
        Assert.Equal(0, run.Code);
        var sent = Json(EverythingJson).GetProperty("value");
        var back = Json(run.Out).GetProperty("result");
        Assert.Equal(9007199254740993, back.GetProperty("i64v").GetInt64());
        Assert.Equal(-128, back.GetProperty("i8v").GetInt32());
        Assert.Equal("ünïcode ✓", back.GetProperty("str").GetString());
        Assert.Equal("AAEC/w==", back.GetProperty("bin").GetString());
        Assert.Equal("BLUE", back.GetProperty("color").GetString());
        Assert.Equal(long.MinValue, back.GetProperty("m").GetProperty("y").GetInt64());
        Assert.Equal("five", back.GetProperty("deep").GetProperty("5")[0].GetProperty("name").GetString());
        Assert.Equal(0, back.GetProperty("deep").GetProperty("-1").GetArrayLength());
        Assert.True(back.GetProperty("small").GetProperty("-3").GetBoolean());
        Assert.Equal(-1e300, back.GetProperty("dbls")[1].GetDouble());
        Assert.Equal(["", "/w=="], back.GetProperty("bins").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("far", back.GetProperty("opt_inner").GetProperty("name").GetString());
        Assert.Equal(300, back.GetProperty("opt_inner").GetProperty("id").GetInt32());
        // every field sent came back with the same value (i64 sent as a string comes back a number)
        foreach (var field in sent.EnumerateObject().Where(f => f.Name is not ("i64v" or "longs")))
        {
            Assert.True(JsonElement.DeepEquals(field.Value, back.GetProperty(field.Name)), $"{field.Name}: sent {field.Value}, got {back.GetProperty(field.Name)}");
        }

        // the server's declared exception (it throws Oops for i32v 42)
        var oops = await Trellis(["call", ConformanceIdl, "Conformance", "echo", """{"value": {"i32v": 42}}""", .. how]);
        Assert.Equal(1, oops.Code);
        Assert.Equal("Oops", Json(oops.Out).GetProperty("exception").GetString());
        Assert.Equal(42, Json(oops.Out).GetProperty("value").GetProperty("code").GetInt32());

        // void
        var ping = await Trellis(["call", ConformanceIdl, "Conformance", "ping", .. how]);
        Assert.Equal(0, ping.Code);
        Assert.Equal(JsonValueKind.Null, Json(ping.Out).GetProperty("result").ValueKind);
    }

    [Fact]
    public async Task BadArguments_AreRefusedWithTheirJsonPath_AndNothingIsSent()
    {
        await using var rig = await Rig.StartAsync();
        string[] how = ["--endpoint", rig.Endpoint(rig.EchoServer, viaProxy: false)];
        (string Json, string Expected)[] cases =
        [
            ("""{"text": 5}""", "$.text: expected a string, got the number 5"),
            ("""{"txt": "a"}""", "$.txt: the arguments of echo has no field 'txt' (it has: text)"),
            ("""{"text": "a""", "the arguments are not JSON"),
            ("""["a"]""", "$: expected an object for the arguments of echo"),
        ];
        foreach (var (json, expected) in cases)
        {
            var run = await Trellis(["call", EchoIdl, "Echo", "echo", json, .. how]);
            Assert.Equal(2, run.Code);
            Assert.Contains(expected, run.Err);
            Assert.Equal("", run.Out);
        }

        string[] conformance = ["call", ConformanceIdl, "Conformance", "echo", .. how];
        (string Json, string Expected)[] deep =
        [
            ("""{"value": {"inner": {"id": "x"}}}""", "$.value.inner.id: expected an i32"),
            ("""{"value": {"inners": [{"id": 1}, {"id": 2.5}]}}""", "$.value.inners[1].id: expected an i32, got the number 2.5"),
            ("""{"value": {"i8v": 300}}""", "$.value.i8v: 300 is out of range for an i8"),
            ("""{"value": {"small": {"x": true}}}""", "$.value.small[\"x\"]: the key 'x' is not a number"),
            ("""{"value": {"color": "PURPLE"}}""", "$.value.color: 'PURPLE' is not a member of enum Color (RED, GREEN, BLUE)"),
            ("""{"value": {"bin": "not base64!"}}""", "$.value.bin: binary is given as base64"),
            ("""{"value": {"i64v": "12x"}}""", "$.value.i64v: expected an i64"),
        ];
        foreach (var (json, expected) in deep)
        {
            var run = await Trellis([.. conformance, json]);
            Assert.Equal(2, run.Code);
            Assert.Contains(expected, run.Err);
            Assert.Contains("nothing was sent", run.Err);
        }

        // the servers saw nothing: Echo counted no call, and a good call afterwards is the first
        Assert.Equal(0, rig.Echo.Echoes);
        Assert.Equal(0, (await Trellis(["call", EchoIdl, "Echo", "echo", """{"text": "a"}""", .. how])).Code);
        Assert.Equal(1, rig.Echo.Echoes);
    }

    [Fact]
    public async Task Describe_PrintsASkeletonThatCanBeSentBack_AndDiscoveryListsServicesAndMethods()
    {
        var services = await Trellis("call", EchoIdl);
        Assert.Equal(0, services.Code);
        Assert.Equal(["Echo", "Other"], services.Out.Trim().Split('\n'));

        var methods = await Trellis("call", EchoIdl, "Echo");
        Assert.Equal(0, methods.Code);
        Assert.Contains("i32 fail(1: string kind) throws (1: EchoError error)", methods.Out);
        Assert.Contains("oneway void fire(1: string text)", methods.Out);

        var described = await Trellis("call", ConformanceIdl, "Conformance", "echo", "--describe");
        Assert.Equal(0, described.Code);
        var skeleton = Json(described.Out);
        Assert.Equal("Everything echo(1: Everything value) throws (1: Oops oops)", skeleton.GetProperty("signature").GetString());
        var arguments = skeleton.GetProperty("arguments");
        Assert.Equal("RED", arguments.GetProperty("value").GetProperty("color").GetString());
        Assert.Equal(JsonValueKind.Object, arguments.GetProperty("value").GetProperty("deep").ValueKind);
        Assert.Equal(0, skeleton.GetProperty("throws").GetProperty("Oops").GetProperty("code").GetInt32());

        // the skeleton is valid input: sent to a server it comes back unchanged
        await using var rig = await Rig.StartAsync();
        var run = await Trellis("call", ConformanceIdl, "Conformance", "echo", arguments.GetRawText(), "--endpoint", rig.Endpoint(rig.ConformanceServer, viaProxy: true));
        Assert.Equal(0, run.Code);
        Assert.True(JsonElement.DeepEquals(arguments.GetProperty("value"), Json(run.Out).GetProperty("result")), run.Out);

        var unknown = await Trellis("call", EchoIdl, "Echo", "nosuch", "--describe");
        Assert.Equal(2, unknown.Code);
        Assert.Contains("service Echo has no method 'nosuch' (methods: echo, echoBinary, slow, stuck, fail, fire)", unknown.Err);
    }

    [Fact]
    public async Task InheritedMethods_Typedefs_Includes_AndRequiredFields()
    {
        await using var rig = await Rig.StartAsync();
        var idlDir = Path.GetDirectoryName(EchoIdl)!;
        string[] how = ["-I", idlDir, "--endpoint", rig.Endpoint(rig.EchoServer, viaProxy: false)];

        // without -I the include is not found: an IDL problem, exit 2
        var noInclude = await Trellis("call", LoudIdl, "Loud");
        Assert.Equal(2, noInclude.Code);
        Assert.Contains("does not compile", noInclude.Err);

        var methods = await Trellis(["call", LoudIdl, "Loud", .. how]);
        Assert.Equal(0, methods.Code);
        Assert.Contains("string echo(1: string text)", methods.Out); // inherited from echo.Echo
        Assert.Contains("string shout(1: required Shout shout, 2: list<string> more)", methods.Out); // typedefs resolved

        // an inherited method, sent with its bare name to the Echo server (its default service)
        var echo = await Trellis(["call", LoudIdl, "Loud", "echo", """{"text": "up"}""", "--multiplexed", "false", .. how]);
        Assert.Equal(0, echo.Code);
        Assert.Equal("up", Json(echo.Out).GetProperty("result").GetString());

        // multiplexed, the name is Loud:echo, which the server does not serve
        var named = await Trellis(["call", LoudIdl, "Loud", "echo", """{"text": "up"}""", .. how]);
        Assert.Equal(1, named.Code);
        Assert.Contains("UnknownMethod", named.Err);

        (string Json, string Expected)[] cases =
        [
            ("{}", "$.shout: required field of the arguments of shout is missing (Shout)"),
            ("""{"shout": {"volume": "LOUD"}}""", "$.shout.text: required field of struct Shout is missing (string)"),
            ("""{"shout": {"text": 1}}""", "$.shout.text: expected a string"),
            ("""{"shout": {"text": "a", "echoes": ["b", 2]}}""", "$.shout.echoes[1]: expected a string"),
            ("""{"shout": {"text": "a", "counts": {"MEDIUM": 1}}}""", "$.shout.counts[\"MEDIUM\"]: 'MEDIUM' is not a member of enum Volume"),
            ("""{"shout": {"text": "a"}, "more": "b"}""", "$.more: expected an array for a list"),
        ];
        foreach (var (json, expected) in cases)
        {
            var run = await Trellis(["call", LoudIdl, "Loud", "shout", json, .. how]);
            Assert.Equal(2, run.Code);
            Assert.Contains(expected, run.Err);
        }

        var described = await Trellis(["call", LoudIdl, "Loud", "shout", "--describe", .. how]);
        Assert.Equal(0, described.Code);
        var skeleton = Json(described.Out);
        Assert.Equal("shout", skeleton.GetProperty("required")[0].GetString());
        Assert.Equal("QUIET", skeleton.GetProperty("arguments").GetProperty("shout").GetProperty("volume").GetString());
        Assert.Equal(0, skeleton.GetProperty("arguments").GetProperty("shout").GetProperty("counts").GetProperty("QUIET").GetInt32());
    }

    [Fact]
    public async Task Call_Failures_AreOneLineOnStderr_WithTheirExitCodes()
    {
        var port = LoopbackPorts.Free();
        var down = await Trellis("call", EchoIdl, "Echo", "echo", """{"text": "a"}""", "--endpoint", $"127.0.0.1:{port}");
        Assert.Equal(2, down.Code);
        Assert.Equal("", down.Out);
        Assert.Single(down.Err.Trim().Split('\n'));
        Assert.Contains($"tcp://127.0.0.1:{port}", down.Err);

        var framing = await Trellis("call", EchoIdl, "Echo", "echo", "--framing", "framed", "--header", "trellis-tag=canary", "--endpoint", $"127.0.0.1:{port}");
        Assert.Equal(2, framing.Code);
        Assert.Contains("--header needs --framing header", framing.Err);

        await using var rig = await Rig.StartAsync();
        var timeout = await Trellis("call", EchoIdl, "Echo", "slow", """{"milliseconds": 5000, "text": "late"}""", "--timeout", "300ms",
            "--endpoint", rig.Endpoint(rig.EchoServer, viaProxy: true));
        Assert.Equal(1, timeout.Code);
        Assert.Single(timeout.Err.Trim().Split('\n'));

        var headers = await Trellis("call", EchoIdl, "Echo", "echo", """{"text": "tagged"}""", "--header", "trellis-tag=canary", "-H", "x-who=test",
            "--endpoint", rig.Endpoint(rig.EchoServer, viaProxy: false));
        Assert.Equal(0, headers.Code);
        Assert.Equal("tagged", Json(headers.Out).GetProperty("result").GetString());

        var noService = await Trellis("call", EchoIdl, "Nope", "echo");
        Assert.Equal(2, noService.Code);
        Assert.Contains("no service 'Nope' in the IDL (services: Echo, Other)", noService.Err);
    }

    [Fact]
    public async Task Bench_AgainstARealServer_PrintsASummary_AndJson()
    {
        await using var rig = await Rig.StartAsync();
        var json = await Trellis("bench", EchoIdl, "Echo", "echo", """{"text": "load"}""", "--endpoint", rig.Endpoint(rig.EchoServer, viaProxy: false),
            "--calls", "3000", "--concurrency", "32", "--connections", "2", "--protocol", "compact", "--json");
        Assert.Equal(0, json.Code);
        var summary = Json(json.Out);
        Assert.Equal(3000, summary.GetProperty("calls").GetInt64());
        Assert.Equal(3000, summary.GetProperty("ok").GetInt64());
        Assert.Equal(0, summary.GetProperty("errors").GetInt64());
        Assert.True(summary.GetProperty("callsPerSecond").GetDouble() > 0);
        var latency = summary.GetProperty("latencyMs");
        Assert.True(latency.GetProperty("p50").GetDouble() > 0);
        Assert.True(latency.GetProperty("p50").GetDouble() <= latency.GetProperty("p99").GetDouble());
        Assert.True(latency.GetProperty("p99.9").GetDouble() <= latency.GetProperty("max").GetDouble());
        Assert.True(rig.Echo.Echoes >= 3000, $"{rig.Echo.Echoes} echoes");

        // through the proxy, for a duration, at a rate, plain output: progress lines on stderr, the summary table on stdout
        var plain = await Trellis("bench", ConformanceIdl, "Conformance", "echo", """{"value": {"str": "x", "ints": [1, 2, 3]}}""",
            "--endpoint", rig.Endpoint(rig.ConformanceServer, viaProxy: true), "--duration", "2500ms", "--rate", "400", "--warmup", "300ms");
        Assert.Equal(0, plain.Code);
        Assert.Contains("calls/s", plain.Out);
        Assert.Contains("latency p99.9", plain.Out);
        Assert.DoesNotContain("\u001b[", plain.Out);
        Assert.True(plain.Err.Split('\n').Count(l => l.Contains(" errors 0 ", StringComparison.Ordinal)) >= 2, plain.Err);
        var calls = long.Parse(plain.Out.Split('\n').First(l => l.Contains("│ calls ", StringComparison.Ordinal)).Split('│', StringSplitOptions.TrimEntries)[2],
            System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture);
        // 400/s for 2.5 s: an open loop never sends more than its rate (a busy machine may let it send fewer: the
        // figures are the benchmark's to judge, not a test's)
        Assert.InRange(calls, 1, 1100);

        // declared exceptions are errors of their own kind; --max-error-rate lets a run with some pass
        var oops = await Trellis("bench", ConformanceIdl, "Conformance", "echo", """{"value": {"i32v": 42}}""",
            "--endpoint", rig.Endpoint(rig.ConformanceServer, viaProxy: false), "--calls", "100", "--json");
        Assert.Equal(1, oops.Code);
        Assert.Equal(100, Json(oops.Out).GetProperty("errorsByKind").GetProperty("declared:Oops").GetProperty("count").GetInt64());
        var allowed = await Trellis("bench", ConformanceIdl, "Conformance", "echo", """{"value": {"i32v": 42}}""",
            "--endpoint", rig.Endpoint(rig.ConformanceServer, viaProxy: false), "--calls", "100", "--json", "--max-error-rate", "1");
        Assert.Equal(0, allowed.Code);
    }

    [Fact]
    public async Task Bench_CountsErrors_WhenTheServerIsDown()
    {
        var port = LoopbackPorts.Free();
        var run = await Trellis("bench", EchoIdl, "Echo", "echo", """{"text": "a"}""", "--endpoint", $"127.0.0.1:{port}", "--calls", "40", "--concurrency", "4", "--json");
        Assert.Equal(1, run.Code);
        var summary = Json(run.Out);
        Assert.Equal(40, summary.GetProperty("calls").GetInt64());
        Assert.Equal(40, summary.GetProperty("errors").GetInt64());
        Assert.Equal(40, summary.GetProperty("errorsByKind").GetProperty("connect").GetProperty("count").GetInt64());
        Assert.False(summary.GetProperty("passed").GetBoolean());

        var bad = await Trellis("bench", EchoIdl, "Echo", "echo", """{"text": 1}""", "--endpoint", $"127.0.0.1:{port}", "--calls", "40");
        Assert.Equal(2, bad.Code);
        Assert.Contains("$.text: expected a string", bad.Err);
    }
}
