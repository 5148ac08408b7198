using System.Diagnostics;
using Trellis.Testing;
using Trellis.ZooKeeper;

// Throughput of getData/create/setData on ONE session with many operations in flight, and the latency
// of a watch notification (one client's setData until another client's watcher runs), against a real
// ZooKeeper 3.8 server started here on loopback. Figures are medians of several rounds.
var seconds = args.Contains("--quick") ? 1.0 : 3.0;
var rounds = args.Contains("--quick") ? 1 : 3;
await using var ensemble = await ZooKeeperEnsemble.StartAsync(size: 1);
var options = new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(20) };
await using var client = await ZooKeeperClient.ConnectAsync(options);
await using var other = await ZooKeeperClient.ConnectAsync(options);

var root = "/bench-" + Guid.NewGuid().ToString("N")[..8];
await client.CreateAsync(root, new byte[100]);
for (var i = 0; i < 1000; i++)
{
    await client.CreateAsync($"{root}/r{i}", new byte[100]);
}

var payload = new byte[100];
Console.WriteLine($"ZooKeeper 3.8 standalone on loopback, one session, 100-byte data, {Environment.ProcessorCount} cores; median of {rounds} x {seconds:F0} s");
Console.WriteLine();
Console.WriteLine($"| operation | in flight | ops/s | p50 µs | p99 µs |");
Console.WriteLine($"|---|---:|---:|---:|---:|");
var created = 0;
foreach (var (name, op) in new (string, Func<int, Task>)[]
{
    ("getData", i => client.GetDataAsync($"{root}/r{i % 1000}")),
    ("setData", i => client.SetDataAsync($"{root}/r{i % 1000}", payload)),
    ("create", _ => client.CreateAsync($"{root}/c{Interlocked.Increment(ref created)}", payload)),
})
{
    foreach (var inFlight in new[] { 1, 16, 128 })
    {
        var results = new List<(double Rate, double P50, double P99)>();
        for (var round = 0; round < rounds; round++)
        {
            results.Add(await MeasureAsync(op, inFlight, TimeSpan.FromSeconds(seconds)));
        }

        var median = results.OrderBy(r => r.Rate).ElementAt(results.Count / 2);
        Console.WriteLine($"| {name} | {inFlight} | {median.Rate:N0} | {median.P50:N0} | {median.P99:N0} |");
    }
}

// watch latency: a one-shot data watch, re-armed each time, fired by the other session's write
var latencies = new List<double>();
var watched = root + "/watched";
await client.CreateAsync(watched, payload);
for (var i = 0; i < 500; i++)
{
    var fired = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
    await client.GetDataAsync(watched, _ => fired.TrySetResult(Stopwatch.GetTimestamp()));
    var start = Stopwatch.GetTimestamp();
    await other.SetDataAsync(watched, payload);
    var end = await fired.Task;
    latencies.Add(Stopwatch.GetElapsedTime(start, end).TotalMicroseconds);
}

latencies.Sort();
Console.WriteLine();
Console.WriteLine($"watch notification (setData by one session → watcher of another runs), 500 samples: " +
                  $"p50 {latencies[250]:N0} µs, p99 {latencies[494]:N0} µs, max {latencies[^1]:N0} µs");
return 0;

static async Task<(double Rate, double P50, double P99)> MeasureAsync(Func<int, Task> op, int inFlight, TimeSpan duration)
{
    var samples = new List<double>[inFlight];
    var count = 0;
    var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var started = Stopwatch.GetTimestamp();
    var workers = Enumerable.Range(0, inFlight).Select(async w =>
    {
        var mine = samples[w] = [];
        while (Stopwatch.GetTimestamp() < stopAt)
        {
            var t = Stopwatch.GetTimestamp();
            await op(Interlocked.Increment(ref count));
            mine.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
        }
    }).ToList();
    await Task.WhenAll(workers);
    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
    var all = samples.SelectMany(s => s).OrderBy(x => x).ToList();
    return (all.Count / elapsed, all[all.Count / 2], all[(int)(all.Count * 0.99)]);
}
