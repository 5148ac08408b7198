using System.Diagnostics;
using Trellis.Bench.Rpc;
using Trellis.Rpc;

// Echo calls/s and latency through the Trellis server and channel with generated code: N connections, each
// with one call in flight, every reply checked; 64 B and 1 KiB payloads; TCP and a Unix socket. Client and
// server share this process and the machine's cores. Figures: the median of several rounds.
var quick = args.Contains("--quick");
var seconds = quick ? 1.0 : 3.0;
var rounds = quick ? 1 : 3;
var uds = Path.Combine(Path.GetTempPath(), $"trellis-bench-{Environment.ProcessId}", "bench.sock");
var options = new ThriftServerOptions { MaxConcurrentCalls = 100_000 };
options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
options.Endpoints.Add(RpcEndpoint.Unix(uds));
await using var server = new ThriftServer(options).AddService(new Bench.Dispatcher(new EchoHandler()));
await server.StartAsync();

Console.WriteLine($"Trellis echo, framed binary, {Environment.ProcessorCount} cores, client and server in one process; median of {rounds} x {seconds:F0} s");
Console.WriteLine();
Console.WriteLine("| transport | payload | connections | calls/s | p50 µs | p99 µs | p999 µs |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
foreach (var endpoint in server.Endpoints)
{
    foreach (var size in new[] { 64, 1024 })
    {
        foreach (var connections in new[] { 1, 16, 64 })
        {
            var results = new List<(double Rate, double P50, double P99, double P999)>();
            for (var round = 0; round < rounds; round++)
            {
                results.Add(await RunAsync(endpoint, size, connections, TimeSpan.FromSeconds(seconds)));
            }

            var m = results.OrderBy(r => r.Rate).ElementAt(results.Count / 2);
            Console.WriteLine($"| {(endpoint.IsUnix ? "unix" : "tcp")} | {size} B | {connections} | {m.Rate:N0} | {m.P50:N0} | {m.P99:N0} | {m.P999:N0} |");
        }
    }
}

return 0;

static async Task<(double, double, double, double)> RunAsync(RpcEndpoint endpoint, int size, int connections, TimeSpan duration)
{
    var text = new string('x', size);
    var channels = Enumerable.Range(0, connections)
        .Select(_ => new ThriftChannel(new ThriftChannelOptions { Endpoint = endpoint, PeerMultiplexesCalls = true, Multiplexed = false }))
        .ToList();
    try
    {
        var clients = channels.Select(c => new Bench.Client(c)).ToList();
        foreach (var client in clients)
        {
            await client.EchoAsync(text); // connect and warm up
        }

        var samples = new List<double>[connections];
        var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(clients.Select(async (client, i) =>
        {
            var mine = samples[i] = new List<double>(100_000);
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var t = Stopwatch.GetTimestamp();
                var reply = await client.EchoAsync(text);
                mine.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
                if (reply.Length != text.Length)
                {
                    throw new InvalidOperationException("wrong reply");
                }
            }
        }));
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var all = samples.SelectMany(s => s).Order().ToList();
        return (all.Count / elapsed, all[all.Count / 2], all[(int)(all.Count * 0.99)], all[Math.Min(all.Count - 1, (int)(all.Count * 0.999))]);
    }
    finally
    {
        foreach (var channel in channels)
        {
            await channel.DisposeAsync();
        }
    }
}

internal sealed class EchoHandler : Bench.IAsync
{
    public Task<string> EchoAsync(string? text, CancellationToken cancellationToken = default) => Task.FromResult(text ?? "");
}
