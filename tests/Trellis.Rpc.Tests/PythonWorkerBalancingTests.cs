using System.Diagnostics;
using System.Globalization;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;
using Trellis.Testing;
using Trellis.Thrift;
using Xunit;

namespace Trellis.Rpc.Tests;

/// <summary>
/// Balancing over real worker processes: three stock Apache Thrift python servers (TThreadedServer,
/// framed binary), one of them killed with SIGKILL while calls flow.
/// </summary>
public sealed class PythonWorkerBalancingTests
{
    [Fact]
    public async Task KillMinus9OfOneOfThreeStockWorkers_UnderLoad_FailsAtMostItsCallsInFlight_AndNothingAfter()
    {
        await using var a = await PythonServer.StartAsync();
        await using var b = await PythonServer.StartAsync();
        await using var c = await PythonServer.StartAsync();
        await using var channel = new BalancedChannel(new StaticResolver([a.Instance("p", "a"), b.Instance("p", "b"), c.Instance("p", "c")]), new BalancedChannelOptions
        {
            Strategy = new LeastActiveStrategy(),
            Outliers = new OutlierPolicy { ConsecutiveFailures = 1 },
            DefaultTimeout = TimeSpan.FromSeconds(10),
            ChannelOptions = instance => new ThriftChannelOptions
            {
                Endpoint = RpcEndpoint.Tcp(instance.Host!, instance.Port),
                Encoding = new ThriftEncoding(ThriftFraming.Framed, ThriftProtocol.Binary),
                Multiplexed = false,
                PeerMultiplexesCalls = false,
            },
        });
        var client = new global::Conformance.Client(channel);
        const int callers = 6;
        var ok = 0;
        var failed = 0;
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await client.PingAsync(); // not idempotent: a call cut on the killed worker is not retried
                    Interlocked.Increment(ref ok);
                }
                catch (Exception e)
                {
                    Interlocked.Increment(ref failed);
                    errors.Enqueue(e.GetType().Name + ": " + e.Message);
                }
            }
        })).ToArray();
        try
        {
            try
            {
                await Wait.UntilAsync(() => Volatile.Read(ref ok) > 1000, TimeSpan.FromSeconds(60), "load on the workers");
            }
            catch (TimeoutException)
            {
                Assert.Fail($"{ok} ok, {failed} failed before the kill: {string.Join("; ", errors.Take(5))}");
            }
            var victim = channel.Endpoints.Single(e => e.Key == "c");
            Assert.True(victim.Active >= 0);

            c.Process.Kill(); // SIGKILL, no goodbye
            await c.Process.WaitForExitAsync();
            await Wait.UntilAsync(() => victim.Health.Ejections > 0, TimeSpan.FromSeconds(10), "c to be ejected");
            // the stock server takes one call per connection, so the calls c held fail one by one as their
            // connections report the reset; none is routed to c once it is ejected
            await Wait.UntilAsync(() => victim.Active == 0, TimeSpan.FromSeconds(10), "the calls c held to conclude");
            var failedAtEjection = Volatile.Read(ref failed);
            var okAtEjection = Volatile.Read(ref ok);
            await Wait.UntilAsync(() => Volatile.Read(ref ok) > okAtEjection + 1000, TimeSpan.FromSeconds(60), "calls after the ejection");
            await stop.CancelAsync();
            await Task.WhenAll(load);

            // each caller has at most one call in flight, so the killed worker held at most `callers`
            Assert.True(failedAtEjection <= callers, $"{failedAtEjection} failed: {string.Join("; ", errors)}");
            Assert.True(failed == failedAtEjection, $"{failed - failedAtEjection} failed after the ejection and the end of c's calls: {string.Join("; ", errors)}");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
