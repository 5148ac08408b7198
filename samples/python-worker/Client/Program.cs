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

    // A batch of concurrent calls, sleep(50) and pid() in turn: each goes to an idle worker, so the
    // pid() answers show the batch spread across the worker processes.
    var clock = Stopwatch.StartNew();
    var batch = Enumerable.Range(0, calls)
        .Select(async i => i % 2 == 0 ? (Pid: 0, Slept: await worker.SleepAsync(50)) : (Pid: await worker.PidAsync(), Slept: ""))
        .ToList();
    var answers = await Task.WhenAll(batch);
    clock.Stop();
    var sleeps = answers.Count(a => a.Pid == 0);
    Expect(answers.Where(a => a.Pid == 0).All(a => a.Slept == "slept 50"), "a sleep(50) returned something else than 'slept 50'");
    var byPid = answers.Where(a => a.Pid != 0).GroupBy(a => a.Pid).OrderBy(g => g.Key).ToList();
    Console.WriteLine($"batch: {calls} concurrent calls ({sleeps} x sleep(50), {calls - sleeps} x pid()) in {clock.ElapsedMilliseconds} ms "
        + $"(one worker alone would need at least {sleeps * 50} ms)");
    foreach (var group in byPid)
    {
        Console.WriteLine($"  pid() answered by worker pid {group.Key}: {group.Count()} call(s)");
    }

    Expect(byPid.Count >= Math.Min(expectWorkers, calls - sleeps), $"{byPid.Count} worker(s) answered, expected at least {expectWorkers}");

    try
    {
        await worker.FailAsync("on purpose");
        Expect(false, "fail() returned instead of throwing WorkerError");
    }
    catch (WorkerError e)
    {
        Console.WriteLine($"fail:  WorkerError(message='{e.Message_}')");
        Expect(e.Message_ == "on purpose", $"WorkerError carried '{e.Message_}'");
    }
}
catch (Exception e)
{
    Expect(false, $"{e.GetType().Name}: {e.Message}");
}

Console.WriteLine(problems.Count == 0 ? "ok" : $"FAILED: {problems.Count} unexpected result(s)");
return problems.Count == 0 ? 0 : 1;
