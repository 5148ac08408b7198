using System.Diagnostics;
using System.Text;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Trellis.ZooKeeper;

namespace Trellis.Proxy.Tests;

/// <summary>One ZooKeeper server for the ACL program tests (each test has its own chroot, so its own <c>/trellis</c>).</summary>
public sealed class AclProgramZooKeeper : IAsyncLifetime
{
    public ZooKeeperEnsemble Ensemble { get; private set; } = null!;

    public async Task InitializeAsync() => Ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);

    public async Task DisposeAsync() => await Ensemble.DisposeAsync();

    public async Task<string> ChrootAsync()
    {
        var chroot = "/acl-" + Guid.NewGuid().ToString("N")[..10];
        await using var admin = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions { ConnectString = Ensemble.ConnectString });
        await admin.CreateAsync(chroot, ReadOnlyMemory<byte>.Empty);
        return Ensemble.ConnectString + chroot;
    }
}

/// <summary>ZooKeeper ACLs as operators and proxies meet them: <c>trellis registry acl</c>, the errors of the CLI, a proxy refused.</summary>
public sealed class ZooKeeperAclProgramTests(AclProgramZooKeeper zk) : IClassFixture<AclProgramZooKeeper>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trellis-acl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string AuthFile(string name, string credentials)
    {
        var path = Path.Combine(_dir, name + ".auth");
        File.WriteAllText(path, credentials + "\n");
        return path;
    }

    private static ZooKeeperOptions Options(string connect, string? credentials) => new()
    {
        ConnectString = connect,
        Authentication = credentials is null ? [] : [("digest", Encoding.UTF8.GetBytes(credentials))],
    };

    [Fact]
    public async Task RegistryAcl_SecuresAnOpenProduct_AndTheCliSaysWhoIsNotAllowed()
    {
        var connect = await zk.ChrootAsync();
        // a product made before ACLs: open to everyone
        await using (var legacy = await ZooKeeperRegistry.ConnectAsync(Options(connect, null)))
        {
            await legacy.SetConfigAsync("online-x", "Echo", """{ "strategy": "p2c" }"""u8.ToArray());
        }

        var deployer = AuthFile("deployer", "deployer:d-pw");
        var tester = AuthFile("tester", "tester:t-pw");
        var readerId = Acl.DigestId("proxy", "r-pw");
        var config = Path.Combine(_dir, "config.json");
        await File.WriteAllTextAsync(config, """{ "strategy": "round_robin" }""");

        var (code, stdout, stderr) = await TrellisCli.RunAsync("registry", "acl", "online-x", "--zk", connect, "--zk-auth-file", deployer, "--reader", readerId, "--dry-run");
        Assert.True(code == 0, stderr);
        Assert.Contains("would change  /trellis/online-x/services/Echo/config  anyone=cdrwa -> deployer=cdrwa proxy=r", stdout);
        (code, _, stderr) = await TrellisCli.RunAsync("config", "get", "-p", "online-x", "--zk", connect, "Echo");
        Assert.True(code == 0, stderr); // a dry run changed nothing: still open

        (code, stdout, stderr) = await TrellisCli.RunAsync("registry", "acl", "online-x", "--zk", connect, "--zk-auth-file", deployer, "--reader", readerId);
        Assert.True(code == 0, stderr);
        Assert.Contains("changed  /trellis  anyone=cdrwa -> anyone=r deployer=cdrwa", stdout);
        Assert.Contains("changed  /trellis/online-x/services/Echo/config  anyone=cdrwa -> deployer=cdrwa proxy=r", stdout);
        Assert.Contains("online-x: 7 nodes looked at, 7 changed, 0 not allowed; policy: deployer=cdrwa proxy=r", stdout);
        (code, stdout, _) = await TrellisCli.RunAsync("registry", "acl", "online-x", "--zk", connect, "--zk-auth-file", deployer, "--reader", readerId);
        Assert.Equal(0, code);
        Assert.Contains("0 changed", stdout);

        // nobody without an identity reads it, a test identity neither reads nor writes it: one line, exit code 3
        (code, _, stderr) = await TrellisCli.RunAsync("config", "get", "-p", "online-x", "--zk", connect, "Echo");
        Assert.Equal(3, code);
        Assert.Equal($"trellis: not allowed: {RegistryAclPolicy.Anonymous} may not read /trellis/online-x/services/Echo/config", stderr.Trim());
        (code, _, stderr) = await TrellisCli.RunAsync("config", "set", "-p", "online-x", "--zk", connect, "--zk-auth-file", tester, "Echo", config);
        Assert.Equal(3, code);
        Assert.Equal("trellis: not allowed: tester may not write /trellis/online-x/services/Echo/config", stderr.Trim().Split('\n')[^1]); // after "valid"
        (code, _, stderr) = await TrellisCli.RunAsync("registry", "describe", "-p", "online-x", "--zk", connect, "--zk-auth-file", tester, "Echo");
        Assert.Equal(3, code);
        Assert.Equal("trellis: not allowed: tester may not read /trellis/online-x", stderr.Trim());
        (code, _, stderr) = await TrellisCli.RunAsync("registry", "acl", "online-x", "--zk", connect, "--zk-auth-file", tester);
        Assert.Equal(3, code);
        Assert.Contains("trellis: not allowed: tester may not read /trellis/online-x", stderr);

        // the deployer writes, and describe shows who may do what
        (code, _, stderr) = await TrellisCli.RunAsync("config", "set", "-p", "online-x", "--zk", connect, "--zk-auth-file", deployer, "Echo", config);
        Assert.True(code == 0, stderr);
        (code, stdout, stderr) = await TrellisCli.RunAsync("registry", "describe", "-p", "online-x", "--zk", connect, "--zk-auth-file", deployer, "Echo");
        Assert.True(code == 0, stderr);
        Assert.Contains("round_robin", stdout);
        Assert.Contains("acl: deployer=cdrwa proxy=r", stdout);

        // settings said plainly, secrets never repeated
        (code, _, stderr) = await TrellisCli.RunAsync("registry", "acl", "online-x", "--zk", connect);
        Assert.Equal(2, code);
        Assert.Contains("a policy needs a deployer", stderr);
        (code, _, stderr) = await TrellisCli.RunAsync("config", "get", "-p", "online-x", "--zk", connect, "--zk-auth", "no-colon-secret", "Echo");
        Assert.Equal(2, code);
        Assert.Contains("ZooKeeper:Auth must be user:password", stderr);
        Assert.DoesNotContain("no-colon-secret", stderr);
        (code, _, stderr) = await TrellisCli.RunAsync("config", "get", "-p", "online-x", "--zk", connect, "--zk-auth-file", Path.Combine(_dir, "missing.auth"), "Echo");
        Assert.Equal(2, code);
        Assert.Contains("Trellis:ZooKeeper:AuthFile", stderr);
    }

    [Fact]
    public async Task AProxyThatMayNotReadAnOnlineProduct_SaysSoAtOnce_NotNoInstances()
    {
        var connect = await zk.ChrootAsync();
        var (server, _) = await Servers.StartAsync();
        await using var ___ = server;
        await using var deployer = await ZooKeeperRegistry.ConnectAsync(Options(connect, "deployer:d-pw"),
            RegistryAclPolicy.Create("deployer:d-pw", null, [Acl.DigestId("proxy", "r-pw")]));
        await using var registration = await deployer.RegisterAsync(new ServiceInstance
        {
            Product = "online-x", Service = "Echo", InstanceId = "a", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header",
        });

        var owned = new List<IAsyncDisposable>();
        async Task<(ProxyServer Proxy, Trellis.Rpc.Tests.Echo.Echo.Client Client, ThriftChannel Channel)> ProxyAsAsync(string credentials)
        {
            var registry = await ZooKeeperRegistry.ConnectAsync(Options(connect, credentials), RegistryAclPolicy.Create(credentials, null, null));
            owned.Add(registry);
            var options = new ProxyOptions { Product = "online-x", DefaultTimeout = TimeSpan.FromSeconds(10) };
            options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
            var proxy = new ProxyServer(options, registry);
            await proxy.StartAsync();
            var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = proxy.Endpoints[0], Multiplexed = true, PeerMultiplexesCalls = true, DefaultTimeout = TimeSpan.FromSeconds(10) });
            return (proxy, new Trellis.Rpc.Tests.Echo.Echo.Client(channel), channel);
        }

        // the product's reader routes
        var (readerProxy, readerClient, readerChannel) = await ProxyAsAsync("proxy:r-pw");
        await using (readerProxy)
        await using (readerChannel)
        {
            Assert.Equal("up", await readerClient.EchoAsync("up"));
        }

        // a test identity's proxy is refused, and its caller is told why at once (not after the wait for a first list)
        var (testerProxy, testerClient, testerChannel) = await ProxyAsAsync("tester:t-pw");
        await using (testerProxy)
        await using (testerChannel)
        {
            var clock = Stopwatch.StartNew();
            var refused = await Assert.ThrowsAsync<TApplicationException>(() => testerClient.EchoAsync("hi"));
            Assert.Equal("no instance available for Echo: the registry refuses this proxy: not allowed: tester may not read /trellis/online-x", refused.Message);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2.5), $"refused after {clock.Elapsed}");
            refused = await Assert.ThrowsAsync<TApplicationException>(() => testerClient.EchoAsync("again"));
            Assert.Contains("not allowed: tester may not read", refused.Message);
        }

        foreach (var registry in owned)
        {
            await registry.DisposeAsync();
        }
    }
}
