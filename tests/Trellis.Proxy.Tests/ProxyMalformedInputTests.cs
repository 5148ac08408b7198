using Trellis.Rpc.Tests;
using Trellis.Thrift;
using Trellis.Thrift.Services;

namespace Trellis.Proxy.Tests;

/// <summary>
/// The malformed-input table (<see cref="MalformedInputCases"/>) against the proxy: what it can judge from the envelope
/// it answers or closes on itself; a body it forwards untouched is judged by the backend, whose answer comes back with
/// the caller's seqid.
/// </summary>
public sealed class ProxyMalformedInputTests : MalformedInputCases
{
    protected override async Task<(int Port, EchoService Service, IThriftChannel Healthy, IAsyncDisposable Target)> StartAsync(
        ThriftLimits limits, TimeSpan? frameReadTimeout = null, TimeSpan? idleTimeout = null)
    {
        var rig = await ProxyRig.StartAsync(o =>
        {
            o.Limits = limits;
            o.FrameReadTimeout = frameReadTimeout ?? o.FrameReadTimeout;
            o.IdleTimeout = idleTimeout ?? o.IdleTimeout;
        });
        var (_, service, _) = await rig.AddTrellisBackendAsync("a");
        return (rig.Tcp.Port, service, rig.Channel(rig.Tcp), rig);
    }

    protected override string Name(string method) => "Echo:" + method;

    [Theory]
    [InlineData("nosuch", "call the proxy as service:method")]
    [InlineData("Echo:nosuch", "unknown method 'nosuch' of service Echo")]
    [InlineData("Nope:echo", "unknown service 'Nope'")]
    [InlineData("Echo:", "malformed multiplexed name")]
    [InlineData("a:b:c", "malformed multiplexed name")]
    [InlineData("../x:echo", "not a valid service name")]
    public Task UnknownOrMalformedNames_GetUnknownMethod_AndTheConnectionStaysUsable(string name, string expected) => AssertUnknownMethodAsync(name, expected);
}
