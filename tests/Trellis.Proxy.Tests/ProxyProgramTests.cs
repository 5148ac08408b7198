using System.Net;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;

namespace Trellis.Proxy.Tests;

/// <summary>The <c>trellis proxy</c> program as a service manager runs it: stop, reload, bad configuration.</summary>
public sealed class ProxyProgramTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "trellis-program-" + Guid.NewGuid().ToString("N")[..8]);

    public ProxyProgramTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task SigTerm_DrainsTheCallInFlight_HealthSaysStoppingMeanwhile_AndTheExitIsClean()
    {
        var registryDir = Path.Combine(_root, "registry");
        await using var registry = new LocalRegistry(registryDir);
        var (server, _) = await Servers.StartAsync();
        await using var backend = server;
        await using var registration = await registry.RegisterAsync(new ServiceInstance
        {
            Product = "p", Service = "Echo", InstanceId = "a", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
        });
        var socket = Path.Combine(_root, "proxy.sock");
        var config = Path.Combine(_root, "proxy.json");
        await File.WriteAllTextAsync(config, """{ "Trellis": { "Proxy": { "DrainSeconds": 10, "Listen": [ "127.0.0.1:1" ] } } }""");
        var admin = LoopbackPorts.Free();
        await using var proxy = await TrellisProxyProcess.StartAsync(socket, "--config", config, "--product", "p", "--local-registry", registryDir,
            "--listen", socket, "--admin", $"127.0.0.1:{admin}", "--snapshot-dir", Path.Combine(_root, "snapshot"));
        using var http = new HttpClient();
        await Wait.UntilAsync(() => Health(http, admin) == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the admin endpoint");

        // --listen replaced the file's address (port 1 would not bind for an unprivileged user, nor be free)
        await using var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = RpcEndpoint.Unix(socket), PeerMultiplexesCalls = true });
        var echo = new Trellis.Rpc.Tests.Echo.Echo.Client(channel);
        Assert.Equal("up", await echo.EchoAsync("up"));

        // SIGHUP reloads (and does not end the process)
        Posix.Kill(proxy.Process.Id, 1);
        Assert.Equal("still up", await echo.EchoAsync("still up"));

        var slow = echo.SlowAsync(3000, "drained");
        await Task.Delay(300);
        proxy.Terminate();
        await Wait.UntilAsync(() => Health(http, admin) == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(5), "/health to say stopping");
        Assert.Equal("drained", await slow); // longer than the command-line parser's own 2 s grace
        await proxy.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(0, proxy.Process.ExitCode);
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public async Task ABadConfiguration_OrAnAddressInUse_ExitsWith2_AndSaysWhy()
    {
        var config = Path.Combine(_root, "bad.json");
        await File.WriteAllTextAsync(config, """{ "Trellis": { "Proxy": { "TimeoutMs": "soon", "Listen": [ "127.0.0.1:0" ] } } }""");
        var (code, stderr) = await RunAsync("--config", config);
        Assert.Equal(2, code);
        Assert.Contains("Trellis:Proxy:TimeoutMs", stderr);

        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        (code, stderr) = await RunAsync("--listen", $"127.0.0.1:{port}", "--local-registry", Path.Combine(_root, "registry"));
        Assert.Equal(2, code);
        Assert.Contains("cannot start", stderr);
    }

    internal static HttpStatusCode? Health(HttpClient http, int port)
    {
        try
        {
            using var response = http.GetAsync($"http://127.0.0.1:{port}/health").GetAwaiter().GetResult();
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null; // not listening (yet, or any more)
        }
    }

    private static async Task<(int Code, string Stderr)> RunAsync(params string[] args)
    {
        var (code, _, stderr) = await TrellisCli.RunAsync(["proxy", .. args]);
        return (code, stderr);
    }
}
