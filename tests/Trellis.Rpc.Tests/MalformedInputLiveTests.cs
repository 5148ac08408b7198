using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Rpc.Tests;

/// <summary>The malformed-input table (<see cref="MalformedInputCases"/>) against a live Trellis server.</summary>
public sealed class MalformedInputLiveTests : MalformedInputCases
{
    protected override async Task<(int Port, EchoService Service, IThriftChannel Healthy, IAsyncDisposable Target)> StartAsync(
        ThriftLimits limits, TimeSpan? frameReadTimeout = null, TimeSpan? idleTimeout = null)
    {
        var (server, service) = await Servers.StartAsync(limits: limits, frameReadTimeout: frameReadTimeout, idleTimeout: idleTimeout);
        var healthy = Servers.Channel(server);
        return (server.Endpoints[0].Port, service, healthy, new Both(healthy, server));
    }

    protected override string Name(string method) => method;

    [Theory]
    [InlineData("nosuch", "unknown method 'nosuch' of service Echo")]
    [InlineData("Nope:echo", "unknown service 'Nope'")]
    [InlineData("Echo:", "malformed multiplexed name")]
    [InlineData("a:b:c", "malformed multiplexed name")]
    public Task UnknownOrMalformedNames_GetUnknownMethod_AndTheConnectionStaysUsable(string name, string expected) => AssertUnknownMethodAsync(name, expected);
}

/// <summary>Disposes a channel, then a server.</summary>
internal sealed class Both(IAsyncDisposable first, IAsyncDisposable second) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await first.DisposeAsync();
        await second.DisposeAsync();
    }
}
