// Calls the Python workers of samples/python-worker through the local Trellis proxy:
// C# client → proxy (Unix socket) → trellis balancer → one of N `worker.py` processes.
using System.Diagnostics;
using System.Globalization;
using Trellis.Rpc;
using Trellis.Samples.Worker;

var proxy = "/tmp/trellis-sample/proxy.sock";
var calls = 20;
var expectWorkers = 1;
for (var i = 0; i < args.Length; i++)
{
    var value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--proxy" when value is not null:
            proxy = value;
            break;
        case "--calls" when int.TryParse(value, CultureInfo.InvariantCulture, out calls) && calls > 0:
            break;
        case "--expect-workers" when int.TryParse(value, CultureInfo.InvariantCulture, out expectWorkers) && expectWorkers > 0:
            break;
        default:
            Console.Error.WriteLine("usage: worker-client [--proxy PATH] [--calls N] [--expect-workers N]");
            return 2;
    }

    i++;
}

var problems = new List<string>();
var summary = new List<string>();
void Expect(bool ok, string what)
{
    if (!ok)
    {
        problems.Add(what);
        Console.WriteLine($"  UNEXPECTED: {what}");
    }
}

// The channel an application uses in proxy mode: `Worker:method` names, calls pipelined on one connection.
var endpoint = RpcEndpoint.Unix(Path.GetFullPath(proxy));
await using var channel = new ProxyChannel(new ProxyChannelOptions { Local = endpoint, DefaultTimeout = TimeSpan.FromSeconds(10) });
var worker = new Worker.Client(channel);
Console.WriteLine($"calling Worker through the proxy at {endpoint}");

try
{
    var echo = await worker.EchoAsync("hello from C#");
    Console.WriteLine($"echo:  '{echo}'");
    Expect(echo == "hello from C#", $"echo returned '{echo}'");
    summary.Add("echo");

    // A batch of concurrent pid() calls: the balancer gives each call to an idle worker (round robin
    // among equals), so the answers show the calls spread over the worker processes.
    var pids = await Task.WhenAll(Enumerable.Range(0, calls).Select(_ => worker.PidAsync()));
    var byPid = pids.GroupBy(pid => pid).OrderBy(g => g.Key).ToList();
    Console.WriteLine($"pid:   {calls} concurrent calls answered by {byPid.Count} worker(s)");
    foreach (var group in byPid)
    {
        Console.WriteLine($"         worker pid {group.Key}: {group.Count()} call(s)");
    }

    Expect(pids.All(pid => pid > 0), "a pid() returned a pid <= 0");
    Expect(byPid.Count >= Math.Min(expectWorkers, calls), $"{byPid.Count} worker(s) answered, expected at least {expectWorkers}");
    summary.Add($"{calls} pid() over {byPid.Count} worker(s)");

    // A batch of concurrent sleep(50) calls: the workers are single-threaded, so N of them take about calls / N × 50 ms.
    var clock = Stopwatch.StartNew();
    var slept = await Task.WhenAll(Enumerable.Range(0, calls).Select(_ => worker.SleepAsync(50)));
    Console.WriteLine($"sleep: {calls} concurrent sleep(50) calls took {clock.ElapsedMilliseconds} ms (one worker alone: at least {calls * 50} ms)");
    Expect(slept.All(s => s == "slept 50"), "a sleep(50) returned something else than 'slept 50'");
    summary.Add($"{calls} sleep(50) in {clock.ElapsedMilliseconds} ms");

    try
    {
        await worker.FailAsync("on purpose");
        Expect(false, "fail() returned instead of throwing WorkerError");
    }
    catch (WorkerError e)
    {
        Console.WriteLine($"fail:  WorkerError(message='{e.Message_}')");
        Expect(e.Message_ == "on purpose", $"WorkerError carried '{e.Message_}'");
        summary.Add("fail() threw WorkerError");
    }
}
catch (Exception e)
{
    Expect(false, $"{e.GetType().Name}: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : "")}");
}

Console.WriteLine(problems.Count == 0 ? $"ok: {string.Join(", ", summary)}" : $"FAILED: {problems.Count} unexpected result(s)");
return problems.Count == 0 ? 0 : 1;
