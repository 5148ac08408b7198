using Microsoft.Extensions.Configuration;
using Trellis.Rpc;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;
using EchoClient = Trellis.Rpc.Tests.Echo.Echo.Client;

namespace Trellis.Proxy.Tests;

/// <summary>
/// The proxy and TLS: backend connections to instances whose record says <c>tls</c> (chain and <c>trellis://</c> name
/// checked, the proxy's own certificate presented for mTLS, a bad instance ejected and the call retried), the TLS
/// front end of a central proxy with the caller's proven identity, and the configuration keys.
/// </summary>
public sealed class ProxyTlsTests : IDisposable
{
    private readonly TestPki _pki = new("product-ca");
    private readonly TestPki _otherPki = new("other-ca");

    public void Dispose()
    {
        _pki.Dispose();
        _otherPki.Dispose();
    }

    private static readonly string ProxyName = CallerIdentity.ToUri(ProxyRig.Product, "proxy");

    private static readonly string[] BackendNames = [CallerIdentity.ToUri(ProxyRig.Product, "Echo"), CallerIdentity.ToUri(ProxyRig.Product, "Other")];

    /// <summary>A TLS Trellis backend (mTLS), registered as a TLS instance of Echo; records the caller of each call.</summary>
    private static async Task<List<CallerIdentity?>> AddTlsBackendAsync(ProxyRig rig, string id, TlsOptions tls)
    {
        var callers = new List<CallerIdentity?>();
        var options = new ThriftServerOptions { Tls = tls, DefaultService = "Echo" };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        var service = new EchoService();
        var server = new ThriftServer(options).AddService(new Trellis.Rpc.Tests.Echo.Echo.Dispatcher(service));
        server.Use(RpcStackRole.AccessControl, "record-caller", next => context =>
        {
            lock (callers)
            {
                callers.Add(context.Caller);
            }

            return next(context);
        });
        await server.StartAsync();
        rig.Own(server);
        rig.Own(await rig.Registry.RegisterAsync(new ServiceInstance
        {
            Product = ProxyRig.Product, Service = "Echo", InstanceId = id, Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header", Tls = true,
        }));
        return callers;
    }

    [Fact]
    public async Task TheProxy_ReachesATlsInstance_WithMutualTls_AndTheInstanceSeesTheProxysName()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Tls = _pki.Options("proxy", [ProxyName], TlsMode.Mutual));
        var callers = await AddTlsBackendAsync(rig, "tls-1", _pki.Options("echo", BackendNames, TlsMode.Mutual));
        var client = new EchoClient(rig.Channel(rig.Unix));
        Assert.Equal("through the proxy over mtls", await client.EchoAsync("through the proxy over mtls"));
        var big = new byte[300_000];
        Random.Shared.NextBytes(big);
        Assert.Equal(big, await client.EchoBinaryAsync(big));
        await Task.WhenAll(Enumerable.Range(0, 100).Select(async i => Assert.Equal($"c{i}", await client.EchoAsync($"c{i}"))));
        lock (callers)
        {
            Assert.Equal(102, callers.Count);
            Assert.All(callers, c => Assert.Equal((IdentitySource.Certificate, "p", "proxy"), (c!.Source, c.Product, c.Service)));
        }
    }

    [Fact]
    public async Task AnInstanceWithTheWrongNameOrCa_FailsItsConnections_IsEjected_AndCallsGoToTheGoodOne()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Tls = _pki.Options("proxy", [ProxyName], TlsMode.Mutual));
        var good = await AddTlsBackendAsync(rig, "good", _pki.Options("good", BackendNames, TlsMode.Mutual));
        var misnamed = await AddTlsBackendAsync(rig, "misnamed", _pki.Options("misnamed", [CallerIdentity.ToUri(ProxyRig.Product, "Other")], TlsMode.Mutual));
        var foreign = await AddTlsBackendAsync(rig, "foreign", _otherPki.Options("foreign", BackendNames, TlsMode.Tls));
        var client = new EchoClient(rig.Channel(rig.Unix));
        for (var i = 0; i < 60; i++)
        {
            Assert.Equal($"call {i}", await client.EchoAsync($"call {i}"));
        }

        lock (good)
        {
            Assert.Equal(60, good.Count);
        }

        Assert.Empty(misnamed);
        Assert.Empty(foreign);
        Assert.True(rig.Proxy.Stats.Retries > 0, "calls picked onto a bad instance were retried");
        // each bad instance counted failures; the outlier cap (at most half the set ejected at once) lets one be ejected
        var bad = rig.Proxy.Routes["Echo"].Where(e => e.Key != "good").ToList();
        Assert.Equal(2, bad.Count);
        Assert.All(bad, e => Assert.True(e.Health.Ejections > 0 || e.Health.ConsecutiveFailures > 0, $"{e.Key} counted its failed handshakes"));
        Assert.Contains(bad, e => e.Health.Ejections > 0);
    }

    [Fact]
    public async Task ACallWithOnlyABadInstance_FailsWithTheTlsReason()
    {
        await using var rig = await ProxyRig.StartAsync(o => o.Tls = _pki.Options("proxy", [ProxyName], TlsMode.Mutual));
        await AddTlsBackendAsync(rig, "misnamed", _pki.Options("misnamed", [CallerIdentity.ToUri(ProxyRig.Product, "Other")], TlsMode.Mutual));
        var error = await Assert.ThrowsAsync<TApplicationException>(() => new EchoClient(rig.Channel(rig.Unix)).EchoAsync("to a misnamed instance"));
        Assert.Contains("TLS with misnamed at tcp://127.0.0.1", error.Message);
        Assert.Contains("names trellis://p/Other, not trellis://p/Echo", error.Message);
    }

    [Fact]
    public async Task AProxyWithoutTls_RefusesATlsInstance_SayingWhy()
    {
        await using var rig = await ProxyRig.StartAsync();
        var callers = await AddTlsBackendAsync(rig, "tls-only", _pki.Options("echo", BackendNames));
        var error = await Assert.ThrowsAsync<TApplicationException>(() => new EchoClient(rig.Channel(rig.Unix)).EchoAsync("plain proxy"));
        Assert.Contains("instance tls-only of p/Echo takes TLS only (its record says tls), and this side has no TLS settings (Trellis:Tls)", error.Message);
        Assert.Empty(callers);
    }

    [Fact]
    public async Task ACentralProxy_ListensWithMutualTls_ProvesItsCallers_AndApplicationsFallBackToItOverTls()
    {
        await using var rig = await ProxyRig.StartAsync(o =>
        {
            o.Tls = _pki.Options("central", [ProxyName], TlsMode.Mutual);
            o.ListenTls = true;
            o.Central = true;
            o.Zone = "z1";
        });
        var (_, service, _) = await rig.AddTrellisBackendAsync("plain-backend"); // plaintext instances are reached as before
        await using (var watch = await rig.Registry.WatchProxiesAsync(ProxyRig.Product, "z1"))
        {
            await Wait.UntilAsync(() => watch.Instances.Count == 1, what: "the central proxy's record");
            Assert.True(watch.Instances[0].Tls);
        }

        // an application with its certificate, over TLS to the proxy's TCP address
        await using (var channel = new ThriftChannel(new ThriftChannelOptions
        {
            Endpoint = rig.Tcp,
            PeerMultiplexesCalls = true,
            Tls = _pki.Options("app", [CallerIdentity.ToUri(ProxyRig.Product, "web")], TlsMode.Mutual),
            TlsPeerName = ProxyName,
        }))
        {
            Assert.Equal("app over mtls", await new EchoClient(channel).EchoAsync("app over mtls"));
            var tcp = rig.Proxy.Connections.Single(c => c.Peer.StartsWith("tcp://", StringComparison.Ordinal));
            Assert.Equal(new CallerIdentity { Source = IdentitySource.Certificate, Product = "p", Service = "web" }, tcp.ProvenIdentity);
        }

        // no certificate, or plaintext: refused; the Unix socket stays plaintext
        await using (var anonymous = new ThriftChannel(new ThriftChannelOptions { Endpoint = rig.Tcp, PeerMultiplexesCalls = true, Tls = _pki.TrustOnly(), TlsPeerName = ProxyName }))
        {
            await Assert.ThrowsAnyAsync<TException>(() => new EchoClient(anonymous).EchoAsync("anonymous"));
        }

        await Assert.ThrowsAnyAsync<TException>(() => new EchoClient(rig.Channel(rig.Tcp)).EchoAsync("plaintext"));
        Assert.Equal("uds", await new EchoClient(rig.Channel(rig.Unix)).EchoAsync("uds"));

        // an application whose local proxy is down falls back to the central proxy, found in the registry, over TLS
        await using var fallback = new ProxyChannel(new ProxyChannelOptions
        {
            Local = RpcEndpoint.Unix(Path.Combine(rig.Root, "no-local-proxy.sock")),
            Central = RegistryResolver.ForCentralProxies(rig.Registry, ProxyRig.Product, "z1"),
            Tls = _pki.Options("fallback-app", [CallerIdentity.ToUri(ProxyRig.Product, "batch")], TlsMode.Mutual),
            DefaultTimeout = TimeSpan.FromSeconds(10),
        });
        Assert.Equal("via the central proxy", await new EchoClient(fallback).EchoAsync("via the central proxy"));
        Assert.True(fallback.OnCentral);
        Assert.NotNull(service);
    }

    [Fact]
    public void ProxyConfiguration_ReadsTrellisTls_AndListenTls()
    {
        var (certificate, key) = _pki.Issue("configured", [ProxyName]);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Trellis:Product"] = "p",
            ["Trellis:Proxy:Listen:0"] = "tcp://127.0.0.1:0",
            ["Trellis:Proxy:ListenTls"] = "true",
            ["Trellis:Tls:Mode"] = "mtls",
            ["Trellis:Tls:CertificateFile"] = certificate,
            ["Trellis:Tls:KeyFile"] = key,
            ["Trellis:Tls:CaFile"] = _pki.CaFile,
        }).Build();
        var options = ProxyConfiguration.Bind(configuration);
        Assert.True(options.ListenTls);
        Assert.Equal((TlsMode.Mutual, certificate, key, _pki.CaFile), (options.Tls!.Mode, options.Tls.CertificateFile, options.Tls.KeyFile, options.Tls.CaFile));
        Assert.Null(options.Validate());

        // a balancer is a service of its product: with Trellis:Tls on, its front end listens with TLS
        var (_, front, _) = Trellis.Proxy.Balancer.BalancerConfiguration.Bind(configuration);
        Assert.True(front.ListenTls);
        Assert.Equal(TlsMode.Mutual, front.Tls!.Mode);

        // ListenTls without TLS settings, a missing file, an unknown mode: refused with the reason
        var noTls = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Trellis:Proxy:Listen:0"] = "tcp://127.0.0.1:0",
            ["Trellis:Proxy:ListenTls"] = "true",
        }).Build();
        Assert.Contains("ListenTls needs TLS settings", ProxyConfiguration.Bind(noTls).Validate());
        var missing = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Trellis:Proxy:Listen:0"] = "tcp://127.0.0.1:0",
            ["Trellis:Tls:Mode"] = "tls",
            ["Trellis:Tls:CaFile"] = "/nonexistent/ca.pem",
        }).Build();
        Assert.Equal("TLS CA file (Trellis:Tls:CaFile) /nonexistent/ca.pem: not found", ProxyConfiguration.Bind(missing).Validate());
        var badMode = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Trellis:Tls:Mode"] = "maybe" }).Build();
        Assert.StartsWith("Trellis:Tls:Mode (tls_mode): 'maybe' is not a TLS mode", Assert.Throws<FormatException>(() => ProxyConfiguration.Bind(badMode)).Message);
    }
}
