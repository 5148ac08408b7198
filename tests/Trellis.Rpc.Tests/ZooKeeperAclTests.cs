using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Trellis.Hosting;
using Trellis.Rpc.Registry;
using Trellis.ZooKeeper;

namespace Trellis.Rpc.Tests;

/// <summary>
/// A ZooKeeper server of its own for the ACL tests: they lock <c>/trellis</c> (under their own chroots), and one of them
/// restarts the server.
/// </summary>
public sealed class AclZooKeeper : IAsyncLifetime
{
    public ZooKeeperEnsemble Ensemble { get; private set; } = null!;

    public async Task InitializeAsync() => Ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);

    public async Task DisposeAsync() => await Ensemble.DisposeAsync();

    /// <summary>A fresh chroot (created open): each test has its own <c>/trellis</c>.</summary>
    public async Task<string> ChrootAsync(string? server = null)
    {
        var chroot = "/acl-" + Guid.NewGuid().ToString("N")[..10];
        await using var admin = await ZooKeeperClient.ConnectAsync(new ZooKeeperOptions { ConnectString = Ensemble.ConnectString });
        await admin.CreateAsync(chroot, ReadOnlyMemory<byte>.Empty);
        return (server ?? Ensemble.ConnectString) + chroot;
    }
}

[CollectionDefinition(Name)]
public sealed class AclZooKeeperCollection : ICollectionFixture<AclZooKeeper>
{
    public const string Name = "a ZooKeeper server for the ACL tests";
}

/// <summary>Product isolation in ZooKeeper: digest ACLs on what the registry creates, enforced by a real server.</summary>
[Collection(AclZooKeeperCollection.Name)]
public class ZooKeeperAclTests(AclZooKeeper zk)
{
    private const string Deployer = "deployer:d-s3cret";
    private const string Reader = "proxy:r-s3cret";
    private const string Tester = "tester:t-s3cret";
    private const string Online = "online-shop";
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(10); // a refusal is an answer, never a hang

    private static RegistryAclPolicy DeployerPolicy() => RegistryAclPolicy.Create(Deployer, null, [Id(Reader)])!;

    private static string Id(string credentials) => Acl.DigestId(credentials.Split(':')[0], credentials.Split(':')[1]);

    private static ZooKeeperOptions Options(string connect, string? credentials) => new()
    {
        ConnectString = connect,
        SessionTimeout = TimeSpan.FromSeconds(10),
        Authentication = credentials is null ? [] : [("digest", Encoding.UTF8.GetBytes(credentials))],
    };

    /// <summary>A registry as the hosting integration makes it: authenticated as <paramref name="credentials"/>, deploying as itself.</summary>
    private static Task<ZooKeeperRegistry> ConnectAsync(string connect, string? credentials, RegistryAclPolicy? policy = null) =>
        ZooKeeperRegistry.ConnectAsync(Options(connect, credentials), policy ?? (credentials is null ? null : RegistryAclPolicy.Create(credentials, null, null)));

    private static byte[] Config(string json) => Encoding.UTF8.GetBytes(json);

    /// <summary>The deployer's online product: an instance, a config (twice, so there is history).</summary>
    private static async Task<(ZooKeeperRegistry Registry, IRegistration Registration)> DeployAsync(string connect)
    {
        var deployer = await ConnectAsync(connect, Deployer, DeployerPolicy());
        var registration = await deployer.RegisterAsync(Instances.Make(Online, "Cart", "i-1")).WaitAsync(Quick);
        await deployer.SetConfigAsync(Online, "Cart", Config("""{ "strategy": "round_robin" }"""));
        await deployer.SetConfigAsync(Online, "Cart", Config("""{ "strategy": "p2c" }"""));
        return (deployer, registration);
    }

    private static async Task<List<string>> TreeAsync(ZooKeeperClient client, string path)
    {
        var all = new List<string> { path };
        foreach (var child in (await client.GetChildrenAsync(path)).Children)
        {
            all.AddRange(await TreeAsync(client, path + "/" + child));
        }

        return all;
    }

    [Fact]
    public async Task TheDeployer_RegistersAndWritesConfig_InAnOnlineProduct_AndEveryNodeCarriesThePolicy()
    {
        var connect = await zk.ChrootAsync();
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;

        await using var watch = await deployer.WatchAsync(Online, "Cart");
        await Wait.UntilAsync(() => watch.Instances.Count == 1);
        Assert.Contains("p2c", Encoding.UTF8.GetString((await deployer.GetConfigAsync(Online, "Cart"))!.Data));
        Assert.Equal(2, (await deployer.GetConfigHistoryAsync(Online, "Cart")).Count);

        // every node of the product: the deployer ALL, the reader READ, and nobody else anything
        var client = deployer.Sessions.Current;
        var wanted = new[] { new Acl(Permissions.All, "digest", Id(Deployer)), new Acl(Permissions.Read, "digest", Id(Reader)) };
        var nodes = await TreeAsync(client, "/trellis/" + Online);
        Assert.Contains("/trellis/online-shop/services/Cart/instances/i-1", nodes);
        Assert.Contains("/trellis/online-shop/services/Cart/config", nodes);
        Assert.Contains(nodes, n => n.StartsWith("/trellis/online-shop/services/Cart/config-history/v-", StringComparison.Ordinal));
        foreach (var node in nodes)
        {
            var (acl, _) = await client.GetAclAsync(node);
            Assert.True(acl.ToHashSet().SetEquals(wanted), $"{node}: {RegistryAclPolicy.Describe(acl)}");
        }

        // /trellis: everyone lists the products; only its creator does anything else
        var (root, _) = await client.GetAclAsync("/trellis");
        Assert.True(root.ToHashSet().SetEquals([new Acl(Permissions.Read, "world", "anyone"), new Acl(Permissions.All, "digest", Id(Deployer))]), RegistryAclPolicy.Describe(root));

        // the deployer updates its own record (draining) and deregisters
        await registration.UpdateAsync(registration.Instance with { Draining = true });
        await Wait.UntilAsync(() => watch.Instances.Single().Draining);
        await registration.DeregisterAsync();
        await Wait.UntilAsync(() => watch.Instances.Count == 0);
    }

    [Fact]
    public async Task ATestIdentity_CanNeitherReadNorWrite_AnOnlineProduct()
    {
        var connect = await zk.ChrootAsync();
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;
        await using var tester = await ConnectAsync(connect, Tester);

        var refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.WatchAsync(Online, "Cart").WaitAsync(Quick));
        Assert.Equal("not allowed: tester may not read /trellis/online-shop", refused.Message);
        refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.WatchConfigAsync(Online, "Cart").WaitAsync(Quick));
        Assert.Contains("tester may not read", refused.Message);
        refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.GetConfigAsync(Online, "Cart").WaitAsync(Quick));
        Assert.Equal("not allowed: tester may not read /trellis/online-shop/services/Cart/config", refused.Message);
        await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.GetConfigHistoryAsync(Online, "Cart").WaitAsync(Quick));
        await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.ListServicesAsync(Online).WaitAsync(Quick));

        refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.SetConfigAsync(Online, "Cart", Config("""{ "offline": ["i-1"] }""")).WaitAsync(Quick));
        Assert.Equal("not allowed: tester may not write /trellis/online-shop/services/Cart/config", refused.Message);
        refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.RegisterAsync(Instances.Make(Online, "Cart", "fake")).WaitAsync(Quick));
        Assert.Equal("not allowed: tester may not create /trellis/online-shop/services/Cart/instances/fake", refused.Message);
        refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => tester.SetConfigAsync(Online, "NewService", Config("{}")).WaitAsync(Quick));
        Assert.Contains("tester may not create /trellis/online-shop/services/NewService", refused.Message);

        // the server itself refuses, whatever the registry's own checks
        var raw = tester.Sessions.Current;
        await Assert.ThrowsAsync<NoAuthException>(() => raw.GetDataAsync("/trellis/online-shop/services/Cart/instances/i-1"));
        await Assert.ThrowsAsync<NoAuthException>(() => raw.GetChildrenAsync("/trellis/online-shop/services/Cart/instances"));
        await Assert.ThrowsAsync<NoAuthException>(() => raw.GetDataAsync("/trellis/online-shop/services/Cart/config"));
        await Assert.ThrowsAsync<NoAuthException>(() => raw.SetAclAsync("/trellis/online-shop", Acl.OpenUnsafe));
        await Assert.ThrowsAsync<NoAuthException>(() => raw.CreateAsync("/trellis/online-evil", ReadOnlyMemory<byte>.Empty)); // no squatting on new online names

        // and nothing the tester tried left a trace
        Assert.DoesNotContain("offline", Encoding.UTF8.GetString((await deployer.GetConfigAsync(Online, "Cart"))!.Data));
        Assert.Equal(["Cart"], await deployer.ListServicesAsync(Online));
    }

    [Fact]
    public async Task AnUnauthenticatedClient_CannotReadOnlinePaths_ButListsTheProducts()
    {
        var connect = await zk.ChrootAsync();
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;
        await using var anonymous = await ConnectAsync(connect, null);

        var refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => anonymous.WatchAsync(Online, "Cart").WaitAsync(Quick));
        Assert.Equal($"not allowed: {RegistryAclPolicy.Anonymous} may not read /trellis/online-shop", refused.Message);
        await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => anonymous.GetConfigAsync(Online, "Cart").WaitAsync(Quick));
        var raw = anonymous.Sessions.Current;
        await Assert.ThrowsAsync<NoAuthException>(() => raw.GetChildrenAsync("/trellis/online-shop"));
        await Assert.ThrowsAsync<NoAuthException>(() => raw.GetDataAsync("/trellis/online-shop/services/Cart/instances/i-1"));
        Assert.Equal([Online], await anonymous.ListProductsAsync());
    }

    [Fact]
    public async Task AnOnlineReader_DiscoversInstancesAndConfig_ButCannotWrite()
    {
        var connect = await zk.ChrootAsync();
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;
        await using var reader = await ConnectAsync(connect, Reader);

        await using var watch = await reader.WatchAsync(Online, "Cart").WaitAsync(Quick);
        Assert.Equal("i-1", Assert.Single(watch.Instances).InstanceId);
        await using var config = await reader.WatchConfigAsync(Online, "Cart").WaitAsync(Quick);
        Assert.Contains("p2c", Encoding.UTF8.GetString(config.Current!));

        // changes reach it through the watch on the protected tree
        await using var second = await deployer.RegisterAsync(Instances.Make(Online, "Cart", "i-2"));
        await Wait.UntilAsync(() => watch.Instances.Count == 2, what: "the reader to see the second instance");
        await deployer.SetConfigAsync(Online, "Cart", Config("""{ "strategy": "least_active" }"""));
        await Wait.UntilAsync(() => Encoding.UTF8.GetString(config.Current!).Contains("least_active", StringComparison.Ordinal), what: "the reader to see the new config");

        var refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => reader.SetConfigAsync(Online, "Cart", Config("{}")).WaitAsync(Quick));
        Assert.Equal("not allowed: proxy may not write /trellis/online-shop/services/Cart/config", refused.Message);
        await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => reader.RegisterAsync(Instances.Make(Online, "Cart", "i-3")).WaitAsync(Quick));
        await Assert.ThrowsAsync<NoAuthException>(() => reader.Sessions.Current.DeleteAsync("/trellis/online-shop/services/Cart/instances/i-1"));
        Assert.Equal(2, watch.Instances.Count);
    }

    [Fact]
    public async Task AWatchOfAListItMayNotRead_FailsAtOnce_NotAsAnEmptyList()
    {
        var connect = await zk.ChrootAsync();
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;
        // the product is readable, this one list is not (an ACL set by hand)
        await deployer.Sessions.Current.SetAclAsync("/trellis/online-shop/services/Cart/instances", [new Acl(Permissions.All, "digest", Id(Deployer))]);
        await using var reader = await ConnectAsync(connect, Reader);

        var refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => reader.WatchAsync(Online, "Cart").WaitAsync(Quick));
        Assert.Equal("not allowed: proxy may not read /trellis/online-shop/services/Cart/instances", refused.Message);
    }

    [Fact]
    public async Task ANonOnlineProduct_StaysWorldReadable_ButOnlyItsDeployerWrites()
    {
        var connect = await zk.ChrootAsync();
        const string Test = "test-shop";
        await using var owner = await ConnectAsync(connect, Tester);
        await using var registration = await owner.RegisterAsync(Instances.Make(Test, "Cart", "t-1"));
        await owner.SetConfigAsync(Test, "Cart", Config("""{ "strategy": "random" }"""));

        await using var anonymous = await ConnectAsync(connect, null);
        await using var watch = await anonymous.WatchAsync(Test, "Cart");
        Assert.Equal("t-1", Assert.Single(watch.Instances).InstanceId);
        Assert.Contains("random", Encoding.UTF8.GetString((await anonymous.GetConfigAsync(Test, "Cart"))!.Data));
        await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => anonymous.SetConfigAsync(Test, "Cart", Config("{}")));

        // another product's deployer neither
        await using var deployer = await ConnectAsync(connect, Deployer);
        var refused = await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => deployer.SetConfigAsync(Test, "Cart", Config("{}")));
        Assert.Equal("not allowed: deployer may not write /trellis/test-shop/services/Cart/config", refused.Message);

        var (acl, _) = await owner.Sessions.Current.GetAclAsync("/trellis/test-shop/services/Cart/instances/t-1");
        Assert.True(acl.ToHashSet().SetEquals([new Acl(Permissions.All, "digest", Id(Tester)), new Acl(Permissions.Read, "world", "anyone")]), RegistryAclPolicy.Describe(acl));
    }

    [Fact]
    public async Task WithoutAclSettings_NodesAreOpen_AsBefore()
    {
        Assert.Null(RegistryAclPolicy.Create(null, null, []));
        var connect = await zk.ChrootAsync();
        await using var open = await ConnectAsync(connect, null);
        Assert.Null(open.Acls);
        await using var registration = await open.RegisterAsync(Instances.Make(Online, "Cart", "i-1"));
        await open.SetConfigAsync(Online, "Cart", Config("{}"));
        foreach (var node in await TreeAsync(open.Sessions.Current, "/trellis"))
        {
            var (acl, _) = await open.Sessions.Current.GetAclAsync(node);
            Assert.Equal(Acl.OpenUnsafe, acl);
        }
    }

    [Fact]
    public async Task Credentials_AreSentAgainAfterAConnectionDrop_SoTheDeployerKeepsWriting()
    {
        await using var proxy = TcpFaultProxy.Start(zk.Ensemble.ConnectString);
        var connect = await zk.ChrootAsync(proxy.Address);
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;
        await using var reader = await ConnectAsync(connect, Reader);
        await using var watch = await reader.WatchAsync(Online, "Cart");
        var sessions = (deployer.Sessions.Current.SessionId, reader.Sessions.Current.SessionId);

        proxy.DropAll();
        await Wait.UntilAsync(() => proxy.Accepted >= 4 && deployer.Sessions.Current.State == SessionState.Connected && reader.Sessions.Current.State == SessionState.Connected,
            what: "both sessions to reconnect");
        Assert.Equal(sessions, (deployer.Sessions.Current.SessionId, reader.Sessions.Current.SessionId)); // the same sessions: only the connections are new

        // the digest identity lives on the connection: without it sent again, these are NoAuth
        await deployer.SetConfigAsync(Online, "Cart", Config("""{ "strategy": "least_active" }"""));
        await registration.UpdateAsync(registration.Instance with { Draining = true });
        await Wait.UntilAsync(() => watch.Instances.SingleOrDefault()?.Draining == true, what: "the reader to see the update after its own reconnect");
        Assert.Contains("least_active", Encoding.UTF8.GetString((await reader.GetConfigAsync(Online, "Cart"))!.Data));
    }

    [Fact]
    public async Task Credentials_AreSentAgainAfterTheServerRestarts()
    {
        var connect = await zk.ChrootAsync();
        var (deployer, registration) = await DeployAsync(connect);
        await using var _ = deployer;
        await using var __ = registration;
        await using var reader = await ConnectAsync(connect, Reader);
        await using var watch = await reader.WatchAsync(Online, "Cart");

        await zk.Ensemble.Servers[0].RestartAsync();
        await zk.Ensemble.WaitUntilServingAsync(TimeSpan.FromSeconds(60));

        // the first write may meet the reconnection still under way: give it the session timeout
        await Wait.UntilAsync(() => deployer.Sessions.Current.State == SessionState.Connected, what: "the deployer to reconnect");
        await deployer.SetConfigAsync(Online, "Cart", Config("""{ "strategy": "least_active" }""")).WaitAsync(Quick);
        await registration.UpdateAsync(registration.Instance with { Draining = true });
        await Wait.UntilAsync(() => watch.Instances.SingleOrDefault()?.Draining == true, what: "the reader to see the update");
        var (acl, _) = await deployer.Sessions.Current.GetAclAsync("/trellis/online-shop/services/Cart/instances/i-1");
        Assert.True(acl.ToHashSet().SetEquals(DeployerPolicy().ForProduct(Online)), RegistryAclPolicy.Describe(acl));
    }

    private static IHost Host(Dictionary<string, string?> settings)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddTrellisServer(builder.Configuration, _ => new Echo.Echo.Dispatcher(new EchoService()));
        return builder.Build();
    }

    [Fact]
    public async Task AHostedService_TakesItsIdentityFromAnAuthFile_AndRegistersUnderThePolicy()
    {
        var connect = await zk.ChrootAsync();
        var authFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(authFile, Deployer + "\n");
            using var host = Host(new()
            {
                ["Trellis:Product"] = Online,
                ["Trellis:Registry"] = "zookeeper",
                ["Trellis:ZooKeeper:ConnectString"] = connect,
                ["Trellis:ZooKeeper:AuthFile"] = authFile,
                ["Trellis:ZooKeeper:Readers:0"] = Id(Reader),
                ["Trellis:Server:Listen:0"] = "tcp://127.0.0.1:0",
                ["Trellis:Server:AdvertisedHost"] = "127.0.0.1",
                ["Trellis:Server:DeregisterDelaySeconds"] = "0",
            });
            await host.StartAsync();
            try
            {
                await using var reader = await ConnectAsync(connect, Reader);
                await using var watch = await reader.WatchAsync(Online, "Echo");
                await Wait.UntilAsync(() => watch.Instances.Count == 1, what: "the hosted instance");
                var node = RegistryPaths.Instance(Online, "Echo", watch.Instances[0].InstanceId);
                await using var deployer = await ConnectAsync(connect, Deployer);
                var (acl, _) = await deployer.Sessions.Current.GetAclAsync(node);
                Assert.True(acl.ToHashSet().SetEquals(DeployerPolicy().ForProduct(Online)), RegistryAclPolicy.Describe(acl));
                await using var anonymous = await ConnectAsync(connect, null);
                await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => anonymous.WatchAsync(Online, "Echo").WaitAsync(Quick));
            }
            finally
            {
                await host.StopAsync();
            }
        }
        finally
        {
            File.Delete(authFile);
        }

        // settings that cannot work stop the start, named, and the secret is not repeated
        using var bad = Host(new()
        {
            ["Trellis:Product"] = Online,
            ["Trellis:Registry"] = "zookeeper",
            ["Trellis:ZooKeeper:ConnectString"] = connect,
            ["Trellis:ZooKeeper:Auth"] = "no-colon-secret",
        });
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => bad.StartAsync());
        var text = string.Join("\n", error.Failures);
        Assert.Contains("Trellis:ZooKeeper:Auth must be user:password", text);
        Assert.DoesNotContain("no-colon-secret", text);
        using var noDeployer = Host(new()
        {
            ["Trellis:Product"] = Online,
            ["Trellis:Registry"] = "zookeeper",
            ["Trellis:ZooKeeper:ConnectString"] = connect,
            ["Trellis:ZooKeeper:Readers:0"] = Id(Reader),
        });
        error = await Assert.ThrowsAsync<OptionsValidationException>(() => noDeployer.StartAsync());
        Assert.Contains("Trellis:ZooKeeper:Readers are set but there is no Deployer", string.Join("\n", error.Failures));
    }

    [Fact]
    public async Task SecureProduct_ClosesAnOpenTree_SaysWhatItChanged_AndASecondRunChangesNothing()
    {
        var connect = await zk.ChrootAsync();
        // a product made before ACLs: everything open
        await using var legacy = await ConnectAsync(connect, null);
        await using var registration = await legacy.RegisterAsync(Instances.Make(Online, "Cart", "i-1"));
        await legacy.SetConfigAsync(Online, "Cart", Config("{}"));
        var nodes = await TreeAsync(legacy.Sessions.Current, "/trellis/" + Online);
        await using (var before = await legacy.WatchAsync(Online, "Cart"))
        {
            Assert.Single(before.Instances); // anybody reads it
        }

        await using var deployer = await ConnectAsync(connect, Deployer, DeployerPolicy());
        var dry = await deployer.SecureProductAsync(Online, DeployerPolicy(), dryRun: true);
        Assert.Equal(nodes.Count + 1, dry.Changes.Count); // the product's nodes and /trellis
        Assert.Equal(Acl.OpenUnsafe, (await deployer.GetAclAsync("/trellis/online-shop/services/Cart/config"))!); // a dry run changes nothing

        var repair = await deployer.SecureProductAsync(Online, DeployerPolicy());
        Assert.Empty(repair.Refused);
        Assert.Equal(nodes.Count + 1, repair.Visited); // /trellis, the product's node and its tree
        Assert.Equal(["/trellis", .. nodes.Order(StringComparer.Ordinal)], repair.Changes.Select(c => c.Path).Order(StringComparer.Ordinal));
        Assert.All(repair.Changes.Skip(1), c => Assert.Equal(Acl.OpenUnsafe, c.Before));
        Assert.Equal("deployer=cdrwa proxy=r", RegistryAclPolicy.Describe(repair.Changes[^1].After));

        await using var anonymous = await ConnectAsync(connect, null);
        await Assert.ThrowsAsync<RegistryAccessDeniedException>(() => anonymous.WatchAsync(Online, "Cart").WaitAsync(Quick));
        await Assert.ThrowsAsync<NoAuthException>(() => anonymous.Sessions.Current.GetDataAsync("/trellis/online-shop/services/Cart/instances/i-1"));
        await using var reader = await ConnectAsync(connect, Reader);
        await using var watch = await reader.WatchAsync(Online, "Cart");
        Assert.Single(watch.Instances);

        var again = await deployer.SecureProductAsync(Online, DeployerPolicy());
        Assert.Empty(again.Changes);
        Assert.Empty(again.Refused);

        // another identity may not undo it, and is told so for each node
        await using var tester = await ConnectAsync(connect, Tester);
        var refused = await tester.SecureProductAsync(Online, RegistryAclPolicy.Create(Tester, null, null)!);
        Assert.NotEmpty(refused.Refused);
        Assert.Contains(refused.Refused, r => r.Message == "not allowed: tester may not read /trellis/online-shop");
        Assert.Empty(refused.Changes);
    }
}
