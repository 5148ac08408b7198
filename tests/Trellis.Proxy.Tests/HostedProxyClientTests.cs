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
}
