using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Trellis.Hosting;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Rpc.Tests;

/// <summary>
/// TLS and mTLS between callers and servers over real sockets, with certificates of a test CA written as PEM files:
/// chains validated against the product's CA only, the <c>trellis://{product}/{service}</c> name checked, the caller's
/// certificate name on <see cref="RpcContext.Caller"/>.
/// </summary>
public sealed class TlsTests : IDisposable
{
    private const string Product = "p";
    private readonly TestPki _pki = new("product-ca");
    private readonly TestPki _otherPki = new("other-ca");

    public void Dispose()
    {
        _pki.Dispose();
        _otherPki.Dispose();
    }

    private static readonly string EchoName = CallerIdentity.ToUri(Product, "Echo");

    /// <summary>A server whose TCP listener takes TLS, recording the caller each call saw.</summary>
    private static async Task<(ThriftServer Server, List<CallerIdentity?> Callers, ListLogger Log)> StartServerAsync(TlsOptions tls, string? unixPath = null, bool start = true)
    {
        var callers = new List<CallerIdentity?>();
        var log = new ListLogger();
        var options = new ThriftServerOptions { Tls = tls, Logger = log, DefaultService = "Echo", FrameReadTimeout = TimeSpan.FromMilliseconds(500) };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        if (unixPath is not null)
        {
            options.Endpoints.Add(RpcEndpoint.Unix(unixPath));
        }

        var service = new EchoService();
        var server = new ThriftServer(options).AddService(new Echo.Echo.Dispatcher(service)).AddService(new Echo.Other.Dispatcher(service));
        server.Use(RpcStackRole.AccessControl, "record-caller", next => context =>
        {
            lock (callers)
            {
                callers.Add(context.Caller);
            }

            return next(context);
        });
        if (start)
        {
            await server.StartAsync();
        }

        return (server, callers, log);
    }

    private static ThriftChannel Client(ThriftServer server, TlsOptions? tls, string? peerName = null) => new(new ThriftChannelOptions
    {
        Endpoint = server.Endpoints[0],
        PeerMultiplexesCalls = true,
        DefaultTimeout = TimeSpan.FromSeconds(10),
        Tls = tls,
        TlsPeerName = peerName ?? EchoName,
    });

    [Fact]
    public async Task MutualTls_CallSucceeds_AndTheServerSeesTheClientsCertificateName()
    {
        var (server, callers, _) = await StartServerAsync(_pki.Options("echo", [EchoName, CallerIdentity.ToUri(Product, "Other")], TlsMode.Mutual));
        await using var _ = server;
        await using var channel = Client(server, _pki.Options("web", [CallerIdentity.ToUri(Product, "web")], TlsMode.Mutual));
        var client = new Echo.Echo.Client(channel);

        Assert.Equal("over mtls", await client.EchoAsync("over mtls"));
        var big = new byte[200_000]; // more than a TLS record: the stream path cuts and joins frames too
        Random.Shared.NextBytes(big);
        Assert.Equal(big, await client.EchoBinaryAsync(big));
        await Task.WhenAll(Enumerable.Range(0, 50).Select(async i => Assert.Equal($"n{i}", await client.EchoAsync($"n{i}"))));

        lock (callers)
        {
            Assert.Equal(52, callers.Count);
            Assert.All(callers, c =>
            {
                Assert.NotNull(c);
                Assert.Equal(IdentitySource.Certificate, c.Source);
                Assert.Equal(Product, c.Product);
                Assert.Equal("web", c.Service);
            });
        }
    }

    [Fact]
    public async Task TlsListener_RefusesPlaintext_WhileItsUnixSocketStaysPlain()
    {
        var dir = Path.Combine(Path.GetTempPath(), "trellis-tls-" + Guid.NewGuid().ToString("N")[..8]);
        var (server, callers, log) = await StartServerAsync(_pki.Options("echo", [EchoName]), Path.Combine(dir, "echo.sock"));
        try
        {
            await using var _ = server;
            await using (var plain = Client(server, tls: null))
            {
                await Assert.ThrowsAnyAsync<TTransportException>(() => new Echo.Echo.Client(plain).EchoAsync("plaintext to a TLS port"));
            }

            await Wait.UntilAsync(() => log.Lines.Any(l => l.Contains("TLS refused")), what: "the refusal in the server's log");
            await using var unix = new ThriftChannel(new ThriftChannelOptions { Endpoint = server.Endpoints.First(e => e.IsUnix), PeerMultiplexesCalls = true });
            Assert.Equal("over uds", await new Echo.Echo.Client(unix).EchoAsync("over uds"));
            lock (callers)
            {
                // the plaintext call never ran; the Unix caller has no certificate, but the kernel says who it is
                var caller = Assert.Single(callers);
                Assert.Equal(IdentitySource.UnixPeer, caller!.Source);
                Assert.Equal(Environment.ProcessId, caller.Pid);
                Assert.Equal(Trellis.Rpc.Governance.AccessList.UserId(Environment.UserName), caller.Uid);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Tls_WithoutAClientCertificate_IsServed_WithNoIdentity()
    {
        var (server, callers, _) = await StartServerAsync(_pki.Options("echo", [EchoName], TlsMode.Tls));
        await using var _ = server;
        await using var channel = Client(server, _pki.TrustOnly());
        Assert.Equal("no client cert", await new Echo.Echo.Client(channel).EchoAsync("no client cert"));
        lock (callers)
        {
            Assert.Equal([null], callers);
        }
    }

    [Fact]
    public async Task ServerCertificateFromAnotherCa_IsRefused()
    {
        var (server, callers, _) = await StartServerAsync(_otherPki.Options("impostor", [EchoName]));
        await using var _ = server;
        await using var channel = Client(server, _pki.TrustOnly());
        var error = await Assert.ThrowsAsync<TTransportException>(() => new Echo.Echo.Client(channel).EchoAsync("to an impostor"));
        Assert.Equal(TTransportErrorKind.NotOpen, error.Kind); // not sent: safe to try elsewhere
        Assert.Contains("TLS with tcp://127.0.0.1", error.Message);
        Assert.Contains("not issued by a CA of the CA bundle", error.Message);
        lock (callers)
        {
            Assert.Empty(callers);
        }
    }

    [Fact]
    public async Task ServerCertificateWithTheWrongName_IsRefused()
    {
        var (server, callers, _) = await StartServerAsync(_pki.Options("other", [CallerIdentity.ToUri(Product, "Other")]));
        await using var _ = server;
        await using var channel = Client(server, _pki.TrustOnly());
        var error = await Assert.ThrowsAsync<TTransportException>(() => new Echo.Echo.Client(channel).EchoAsync("to the wrong service"));
        Assert.Equal(TTransportErrorKind.NotOpen, error.Kind);
        Assert.Contains("names trellis://p/Other, not trellis://p/Echo", error.Message);

        // another product's service of the same name is just as wrong
        await using var otherProduct = Client(server, _pki.TrustOnly(), CallerIdentity.ToUri("q", "Other"));
        error = await Assert.ThrowsAsync<TTransportException>(() => new Echo.Echo.Client(otherProduct).EchoAsync("to another product"));
        Assert.Contains("not trellis://q/Other", error.Message);
        lock (callers)
        {
            Assert.Empty(callers);
        }
    }

    [Fact]
    public async Task MutualTls_RefusesAClientWithoutACertificate_AndLogsWhy()
    {
        var (server, callers, log) = await StartServerAsync(_pki.Options("echo", [EchoName], TlsMode.Mutual));
        await using var _ = server;
        await using var channel = Client(server, _pki.TrustOnly());
        await Assert.ThrowsAnyAsync<TException>(() => new Echo.Echo.Client(channel).EchoAsync("without a certificate"));
        await Wait.UntilAsync(() => log.Lines.Any(l => l.Contains("TLS refused: the client presented no certificate (mTLS is required)")), what: "the reason in the log");
        Assert.Single(log.Lines, l => l.Contains("TLS refused")); // once per connection
        lock (callers)
        {
            Assert.Empty(callers);
        }
    }

    [Fact]
    public async Task MutualTls_RefusesAClientCertificateFromAnotherCa()
    {
        var (server, callers, log) = await StartServerAsync(_pki.Options("echo", [EchoName], TlsMode.Mutual));
        await using var _ = server;
        // the client trusts both CAs (so it accepts the server), but its own certificate is the other CA's
        var bundle = Path.Combine(_otherPki.Directory, "both.pem");
        File.WriteAllText(bundle, File.ReadAllText(_pki.CaFile) + "\n" + File.ReadAllText(_otherPki.CaFile));
        var (certificate, key) = _otherPki.Issue("intruder", [CallerIdentity.ToUri(Product, "web")]);
        await using var channel = Client(server, new TlsOptions { Mode = TlsMode.Mutual, CertificateFile = certificate, KeyFile = key, CaFile = bundle });
        await Assert.ThrowsAnyAsync<TException>(() => new Echo.Echo.Client(channel).EchoAsync("with a foreign certificate"));
        await Wait.UntilAsync(() => log.Lines.Any(l => l.Contains("TLS refused: the client's certificate (CN=intruder) is refused: not issued by a CA")),
            what: "the reason in the log: " + string.Join(" | ", log.Lines));
        lock (callers)
        {
            Assert.Empty(callers);
        }
    }

    [Fact]
    public async Task AClientThatNeverHandshakes_IsClosed_AfterTheFrameReadTimeout()
    {
        var (server, _, log) = await StartServerAsync(_pki.Options("echo", [EchoName]));
        await using var _ = server;
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.Endpoints[0].ToEndPoint());
        var started = DateTime.UtcNow;
        var received = await socket.ReceiveAsync(new byte[16], SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, received); // closed by the server, not answered
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(5));
        Assert.Equal(0, server.CallsInFlight);
        Assert.Contains(log.Lines, l => l.Contains("closing tcp://"));
    }

    [Fact]
    public void BadTlsFiles_AreClearStartupErrors()
    {
        var (certificate, key) = _pki.Issue("good", [EchoName]);
        var (_, otherKey) = _pki.Issue("second", [EchoName]);
        var (expired, expiredKey) = _pki.Issue("expired", [EchoName], DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1));
        var (foreign, foreignKey) = _otherPki.Issue("foreign", [EchoName]);
        var empty = Path.Combine(_pki.Directory, "empty.pem");
        File.WriteAllText(empty, "not a certificate\n");
        var missing = Path.Combine(_pki.Directory, "missing.pem");

        string Error(TlsOptions tls) => Assert.Throws<TlsConfigurationException>(() => new ThriftServer(new ThriftServerOptions { Tls = tls })).Message;

        Assert.Equal($"TLS certificate file (Trellis:Tls:CertificateFile) {missing}: not found",
            Error(new TlsOptions { CertificateFile = missing, KeyFile = key, CaFile = _pki.CaFile }));
        Assert.Equal($"TLS CA file (Trellis:Tls:CaFile) {missing}: not found", Error(new TlsOptions { CertificateFile = certificate, KeyFile = key, CaFile = missing }));
        Assert.Contains("Trellis:Tls:CaFile) is not set", Error(new TlsOptions { CertificateFile = certificate, KeyFile = key }));
        Assert.Contains($"{empty}: holds no PEM certificate", Error(new TlsOptions { CertificateFile = certificate, KeyFile = key, CaFile = empty }));
        Assert.Contains($"key file (Trellis:Tls:KeyFile) {otherKey}: the private key does not match the certificate in {certificate}",
            Error(new TlsOptions { CertificateFile = certificate, KeyFile = otherKey, CaFile = _pki.CaFile }));
        Assert.Contains($"{certificate} (no Trellis:Tls:KeyFile set): holds no PEM private key", Error(new TlsOptions { CertificateFile = certificate, CaFile = _pki.CaFile }));
        Assert.Matches(@"the certificate \(CN=expired\) expired on \d{4}-\d\d-\d\d", Error(new TlsOptions { CertificateFile = expired, KeyFile = expiredKey, CaFile = _pki.CaFile }));
        Assert.Contains("does not chain to a CA in", Error(new TlsOptions { CertificateFile = foreign, KeyFile = foreignKey, CaFile = _pki.CaFile }));
        Assert.Contains("a TLS server needs its certificate", Error(_pki.TrustOnly()));
        Assert.Contains("mtls needs this side's certificate", Error(new TlsOptions { Mode = TlsMode.Mutual, CaFile = _pki.CaFile }));
    }

    [Fact]
    public void TheInstanceRecord_CarriesTls_RoundTripped_AndLeavesItOutWhenPlain()
    {
        var plain = new ServiceInstance { Product = Product, Service = "Echo", InstanceId = "a", Host = "127.0.0.1", Port = 1 };
        var tls = plain with { Tls = true };
        Assert.DoesNotContain("\"tls\"", System.Text.Encoding.UTF8.GetString(plain.ToJson()));
        Assert.True(JsonDocument.Parse(tls.ToJson()).RootElement.GetProperty("tls").GetBoolean());
        Assert.True(ServiceInstance.TryParse(tls.ToJson())!.Tls);
        Assert.False(ServiceInstance.TryParse(plain.ToJson())!.Tls);
    }

    [Fact]
    public async Task ServiceHost_RegistersTls_AndDirectModeReachesTheInstance_EjectingOneWithTheWrongName()
    {
        var root = Path.Combine(Path.GetTempPath(), "trellis-tls-reg-" + Guid.NewGuid().ToString("N")[..8]);
        await using var registry = new LocalRegistry(root, lease: TimeSpan.FromSeconds(2));
        try
        {
            // a good instance registered by its host, and one whose certificate names another service
            var (good, goodCallers, _) = await StartServerAsync(_pki.Options("good", [EchoName, CallerIdentity.ToUri(Product, "Other")], TlsMode.Mutual), start: false);
            await using var host = new ServiceHost(good, registry, ["Echo"], new ServiceHostOptions { Product = Product, InstanceId = "good", AdvertisedHost = "127.0.0.1", DeregisterDelay = TimeSpan.Zero });
            await host.StartAsync();
            Assert.True(host.Registrations.Single().Instance.Tls);
            var (wrong, wrongCallers, _) = await StartServerAsync(_pki.Options("wrong", [CallerIdentity.ToUri(Product, "Other")], TlsMode.Mutual));
            await using var __ = wrong;
            await using var wrongRecord = await registry.RegisterAsync(new ServiceInstance
            {
                Product = Product, Service = "Echo", InstanceId = "wrong", Host = "127.0.0.1", Port = wrong.Endpoints[0].Port, Framing = "header", Tls = true,
            });

            await using var resolver = new RegistryResolver(registry, Product, "Echo");
            await resolver.StartAsync();
            await Wait.UntilAsync(() => resolver.Instances.Count == 2);
            await using var channel = new BalancedChannel(resolver, new BalancedChannelOptions
            {
                Strategy = new SmoothWeightedRoundRobinStrategy(),
                Tls = _pki.Options("caller", [CallerIdentity.ToUri(Product, "caller")], TlsMode.Mutual),
                MaxRetries = 2,
                Budget = new RetryBudget(ratio: 1, minPerSecond: 1000),
            });
            var client = new Echo.Echo.Client(channel);
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal($"call {i}", await client.EchoAsync($"call {i}")); // the wrong one fails unsent: retried on the good one
            }

            lock (goodCallers)
            {
                Assert.Equal(20, goodCallers.Count);
                Assert.All(goodCallers, c => Assert.Equal("caller", c!.Service));
            }

            lock (wrongCallers)
            {
                Assert.Empty(wrongCallers);
            }

            var wrongEndpoint = channel.Endpoints.Single(e => e.Key == "wrong");
            Assert.True(wrongEndpoint.Health.Ejections > 0 || wrongEndpoint.Health.ConsecutiveFailures > 0);
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    [Fact]
    public async Task DirectMode_WithoutTlsSettings_RefusesATlsInstance_SayingWhy()
    {
        var (server, callers, _) = await StartServerAsync(_pki.Options("echo", [EchoName]));
        await using var _ = server;
        var instance = new ServiceInstance { Product = Product, Service = "Echo", InstanceId = "tls-only", Host = "127.0.0.1", Port = server.Endpoints[0].Port, Framing = "header", Tls = true };
        await using var channel = new BalancedChannel(new StaticResolver([instance]), new BalancedChannelOptions { MaxRetries = 0 });
        var error = await Assert.ThrowsAsync<TTransportException>(() => new Echo.Echo.Client(channel).EchoAsync("plain to TLS"));
        Assert.Equal(TTransportErrorKind.NotOpen, error.Kind);
        Assert.Contains("instance tls-only of p/Echo takes TLS only (its record says tls), and this side has no TLS settings (Trellis:Tls)", error.Message);
        lock (callers)
        {
            Assert.Empty(callers);
        }
    }

    [Fact]
    public async Task RequirePeerTls_RefusesAPlaintextInstance_SoTheRegistryCannotDowngradeCallers()
    {
        var (plainServer, plainService) = await Servers.StartAsync();
        await using var _ = plainServer;
        var plain = new ServiceInstance { Product = Product, Service = "Echo", InstanceId = "plain", Host = "127.0.0.1", Port = plainServer.Endpoints[0].Port, Framing = "header" };
        var client = _pki.Options("client", [CallerIdentity.ToUri(Product, "web")]);
        await using (var lenient = new BalancedChannel(new StaticResolver([plain]), new BalancedChannelOptions { MaxRetries = 0, Tls = client }))
        {
            Assert.Equal("plain is fine", await new Echo.Echo.Client(lenient).EchoAsync("plain is fine")); // moving to TLS one instance at a time
        }

        var strict = new TlsOptions { Mode = client.Mode, CertificateFile = client.CertificateFile, KeyFile = client.KeyFile, CaFile = client.CaFile, RequirePeerTls = true };
        await using var channel = new BalancedChannel(new StaticResolver([plain]), new BalancedChannelOptions { MaxRetries = 0, Tls = strict });
        var error = await Assert.ThrowsAsync<TTransportException>(() => new Echo.Echo.Client(channel).EchoAsync("downgraded"));
        Assert.Equal(TTransportErrorKind.NotOpen, error.Kind);
        Assert.Contains("instance plain of p/Echo does not take TLS (its record has no tls), and this side requires TLS of every instance (Trellis:Tls:RequirePeerTls)", error.Message);
        Assert.Equal(1, plainService.Echoes);
    }

    [Fact]
    public async Task ApachePythonClient_CallsOverMutualTls_WithTSSLSocket()
    {
        var (server, callers, _) = await StartServerAsync(_pki.Options("echo", [EchoName], TlsMode.Mutual));
        await using var _ = server;
        var (certificate, key) = _pki.Issue("python", [CallerIdentity.ToUri(Product, "pyclient")]);
        var port = server.Endpoints[0].Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var reply = await PythonTlsCallAsync("--port", port, "--ca", _pki.CaFile, "--cert", certificate, "--key", key, "--name", EchoName, "--text", "from python");
        Assert.Equal("reply", reply.GetProperty("kind").GetString());
        Assert.Equal("from python", reply.GetProperty("value").GetString());
        lock (callers)
        {
            var caller = Assert.Single(callers);
            Assert.Equal(("p", "pyclient", IdentitySource.Certificate), (caller!.Product, caller.Service, caller.Source));
        }

        // the stock client's own checks: another CA, another name
        var foreign = await PythonTlsCallAsync("--port", port, "--ca", _otherPki.CaFile, "--cert", certificate, "--key", key);
        Assert.Equal("error", foreign.GetProperty("kind").GetString());
        Assert.True(foreign.GetRawText().Contains("CERTIFICATE_VERIFY_FAILED"), foreign.GetRawText());
        var misnamed = await PythonTlsCallAsync("--port", port, "--ca", _pki.CaFile, "--cert", certificate, "--key", key, "--name", "trellis://p/Other");
        Assert.Contains("not trellis://p/Other", misnamed.GetProperty("message").GetString());
        // and the server's: no client certificate under mTLS
        var anonymous = await PythonTlsCallAsync("--port", port, "--ca", _pki.CaFile, "--name", EchoName);
        Assert.Equal("error", anonymous.GetProperty("kind").GetString());
        lock (callers)
        {
            Assert.Single(callers);
        }
    }

    private static async Task<JsonElement> PythonTlsCallAsync(params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(PythonPeer.Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(PythonPeer.PeerDirectory, "tls_call.py"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(process.ExitCode == 0, $"tls_call.py exited {process.ExitCode}: {await stderr}");
        return JsonDocument.Parse(await stdout).RootElement.Clone();
    }

    [Fact]
    public async Task HostedServerAndDirectClient_UseTheTrellisTlsSection()
    {
        var root = Path.Combine(Path.GetTempPath(), "trellis-tls-host-" + Guid.NewGuid().ToString("N")[..8]);
        var (serverCertificate, serverKey) = _pki.Issue("hosted", [EchoName]);
        var (clientCertificate, clientKey) = _pki.Issue("hosted-client", [CallerIdentity.ToUri(Product, "frontend")]);
        try
        {
            static IHost Build(Dictionary<string, string?> settings, Action<IServiceCollection, IConfiguration> configure)
            {
                var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
                builder.Configuration.AddInMemoryCollection(settings);
                configure(builder.Services, builder.Configuration);
                return builder.Build();
            }

            var service = new EchoService();
            using var serverHost = Build(new()
            {
                ["Trellis:Product"] = Product,
                ["Trellis:Registry"] = "local",
                ["Trellis:LocalRegistryPath"] = root,
                ["Trellis:Server:Listen:0"] = "tcp://127.0.0.1:0",
                ["Trellis:Server:AdvertisedHost"] = "127.0.0.1",
                ["Trellis:Server:DeregisterDelaySeconds"] = "0",
                ["Trellis:Tls:Mode"] = "mtls",
                ["Trellis:Tls:CertificateFile"] = serverCertificate,
                ["Trellis:Tls:KeyFile"] = serverKey,
                ["Trellis:Tls:CaFile"] = _pki.CaFile,
            }, (services, configuration) => services.AddTrellisServer(configuration, _ => new Echo.Echo.Dispatcher(service)));
            await serverHost.StartAsync();

            using var clientHost = Build(new()
            {
                ["Trellis:Product"] = Product,
                ["Trellis:Registry"] = "local",
                ["Trellis:LocalRegistryPath"] = root,
                ["Trellis:Clients:Echo:Mode"] = "direct",
                ["Trellis:Tls:Mode"] = "mtls",
                ["Trellis:Tls:CertificateFile"] = clientCertificate,
                ["Trellis:Tls:KeyFile"] = clientKey,
                ["Trellis:Tls:CaFile"] = _pki.CaFile,
            }, (services, configuration) => services.AddTrellisClient(configuration, "Echo", channel => new Echo.Echo.Client(channel)));
            await clientHost.StartAsync();
            Assert.Equal("hosted over mtls", await clientHost.Services.GetRequiredService<Echo.Echo.Client>().EchoAsync("hosted over mtls"));

            await clientHost.StopAsync();
            await serverHost.StopAsync();

            // a TLS file that is not there stops the start, named
            using var bad = Build(new()
            {
                ["Trellis:Product"] = Product,
                ["Trellis:Registry"] = "local",
                ["Trellis:LocalRegistryPath"] = root,
                ["Trellis:Tls:Mode"] = "mtls",
                ["Trellis:Tls:CaFile"] = Path.Combine(root, "nowhere.pem"),
                ["Trellis:Clients:Echo:Endpoint"] = "tcp://127.0.0.1:1",
            }, (services, configuration) => services.AddTrellisClient(configuration, "Echo", channel => new Echo.Echo.Client(channel)));
            var error = await Assert.ThrowsAnyAsync<Exception>(() => bad.StartAsync());
            Assert.Contains("nowhere.pem: not found", error.Message);
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    [Fact]
    public void RpcProxyConfigIni_TlsKeys_MapOntoTheTlsSection()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(RpcProxyIni.Parse([
            "tls_mode=mtls", "tls_cert_file=/etc/trellis/svc.crt", "tls_key_file=/etc/trellis/svc.key", "tls_ca_file=/etc/trellis/ca.pem",
        ])).Build();
        var options = configuration.GetSection(TrellisOptions.Section).Get<TrellisOptions>()!;
        var tls = options.Tls.ToOptions()!;
        Assert.Equal((TlsMode.Mutual, "/etc/trellis/svc.crt", "/etc/trellis/svc.key", "/etc/trellis/ca.pem"), (tls.Mode, tls.CertificateFile, tls.KeyFile, tls.CaFile));
        Assert.Null(new TrellisOptions().Tls.ToOptions()); // off by default
        Assert.Throws<FormatException>(() => new TrellisOptions.TlsSection { Mode = "sometimes" }.ToOptions());
    }
}
