using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Trellis.Hosting;
using Trellis.Rpc;
using Trellis.Thrift.Services;

namespace Trellis.Proxy.Tests;

/// <summary>An application configured the way the original rpc_proxy clients were: Trellis:ProxyAddress, nothing else.</summary>
public sealed class HostedProxyClientTests
{
    [Fact]
    public async Task AHostedClientInProxyMode_CallsThroughTheLocalProxy_OverItsUnixSocket()
    {
        await using var rig = await ProxyRig.StartAsync();
        await rig.AddTrellisBackendAsync("a");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Trellis:Product"] = ProxyRig.Product,
            ["Trellis:Registry"] = "local",
            ["Trellis:LocalRegistryPath"] = Path.Combine(rig.Root, "registry"),
            ["Trellis:ProxyAddress"] = rig.Unix.UnixPath,
            ["Trellis:Clients:echo:Framing"] = "header",
        });
        builder.Services.AddTrellisClient(builder.Configuration, "echo", channel => new Trellis.Rpc.Tests.Echo.Echo.Client(channel));
        using var host = builder.Build();
        await host.StartAsync();
        Assert.IsType<ProxyChannel>(host.Services.GetRequiredKeyedService<IThriftChannel>("echo"));
        var echo = host.Services.GetRequiredService<Trellis.Rpc.Tests.Echo.Echo.Client>();
        Assert.Equal("via the proxy", await echo.EchoAsync("via the proxy"));
        Assert.Equal(1, rig.Proxy.Stats.Replies);
        await host.StopAsync();
    }

    [Fact]
    public async Task AHostedClient_SaysWhoItIs_SoTheServicesRoutesAndAccessRulesApply()
    {
        await using var rig = await ProxyRig.StartAsync();
        var (_, stable, _) = await rig.AddTrellisBackendAsync("stable");
        var (canaryServer, canary) = await Trellis.Rpc.Tests.Servers.StartAsync();
        rig.Own(canaryServer);
        rig.Own(await rig.Registry.RegisterAsync(new Trellis.Rpc.Registry.ServiceInstance
        {
            Product = ProxyRig.Product, Service = "Echo", InstanceId = "canary", Host = "127.0.0.1", Port = canaryServer.Endpoints[0].Port,
            Framing = "header", Tags = new Dictionary<string, string> { ["track"] = "canary" },
        }));
        await rig.Registry.SetConfigAsync(ProxyRig.Product, "Echo", System.Text.Encoding.UTF8.GetBytes("""
            {
              "routes": [ { "when": { "tag": "canary" }, "to": { "tags": { "track": "canary" } } }, { "to": { "instances": ["stable"] } } ],
              "allow": ["service:p/web"], "trustClaimedCallers": true
            }
            """));

        IHost App(string? service, string? tag)
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Trellis:Product"] = ProxyRig.Product,
                ["Trellis:Registry"] = "local",
                ["Trellis:LocalRegistryPath"] = Path.Combine(rig.Root, "registry"),
                ["Trellis:ProxyAddress"] = rig.Tcp.ToString(),
                ["Trellis:Service"] = service,
                ["Trellis:Tag"] = tag,
            });
            builder.Services.AddTrellisClient(builder.Configuration, "echo", channel => new Trellis.Rpc.Tests.Echo.Echo.Client(channel));
            return builder.Build();
        }

        using var web = App("web", null);
        using var webCanary = App("web", "canary");
        using var batch = App("batch", null);
        foreach (var app in new[] { web, webCanary, batch })
        {
            await app.StartAsync();
        }

        var client = web.Services.GetRequiredService<Trellis.Rpc.Tests.Echo.Echo.Client>();
        var tagged = webCanary.Services.GetRequiredService<Trellis.Rpc.Tests.Echo.Echo.Client>();
        Assert.Equal("first", await client.EchoAsync("first")); // the proxy starts routing Echo
        await Wait.UntilAsync(() => rig.Proxy.ConfigOf("Echo")?.Allow is not null && rig.Proxy.Routes["Echo"].Count == 2, TimeSpan.FromSeconds(10), "config and instances");
        (stable.Echoes, canary.Echoes) = (0, 0);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("s", await client.EchoAsync("s"));
            Assert.Equal("c", await tagged.EchoAsync("c"));
        }

        Assert.Equal((10, 10), (stable.Echoes, canary.Echoes)); // the tag the application carries chose its instances
        var denied = await Assert.ThrowsAsync<Trellis.Thrift.TApplicationException>(() => batch.Services.GetRequiredService<Trellis.Rpc.Tests.Echo.Echo.Client>().EchoAsync("x"));
        Assert.Equal("access denied: Echo:echo does not allow p/batch (claimed)", denied.Message);
        foreach (var app in new[] { web, webCanary, batch })
        {
            await app.StopAsync();
        }
    }
}
