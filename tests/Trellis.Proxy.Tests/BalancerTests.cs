using System.Diagnostics;
using Trellis.Proxy.Balancer;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Samples.Worker;
using Trellis.Thrift;
using Trellis.ZooKeeper;
using Xunit.Abstractions;

namespace Trellis.Proxy.Tests;

/// <summary>A balancer over Python workers (samples/python-worker, Debian's python3-thrift), in a temp directory.</summary>
internal sealed class BalancerRig : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    private BalancerRig(string root) => Root = root;

    public string Root { get; }

    public WorkerBalancer Balancer { get; private set; } = null!;

    public RpcEndpoint Tcp => Balancer.Endpoints.First(e => !e.IsUnix);

    public static string WorkerScript => Path.Combine(AppContext.BaseDirectory, "samples", "python-worker", "worker.py");

    /// <summary>The sample worker on its own socket, as the balancer's command template.</summary>
    public static string Command(string extra = "") => $"/usr/bin/python3 {WorkerScript} --socket {{socket}}{extra}";

    public static async Task<BalancerRig> StartAsync(Action<BalancerOptions>? configure = null, Action<ProxyOptions>? front = null,
        IServiceRegistry? registry = null, BalancerRegistration? registration = null, bool waitForAll = true)
    {
        Assert.True(File.Exists("/usr/bin/python3"), "/usr/bin/python3 is missing: run scripts/setup.sh");
        var root = Path.Combine(Path.GetTempPath(), "trellis-bal-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var rig = new BalancerRig(root);
        var options = new BalancerOptions
        {
            Service = "Worker",
            Command = Command(),
            Workers = 2,
            SocketDirectory = Path.Combine(root, "workers"),
            StopTimeout = TimeSpan.FromSeconds(3),
        };
        configure?.Invoke(options);
        var frontOptions = new ProxyOptions { Product = ProxyRig.Product, DefaultTimeout = TimeSpan.FromSeconds(20) };
        frontOptions.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        front?.Invoke(frontOptions);
        rig.Balancer = new WorkerBalancer(options, frontOptions, registry, registration ?? new BalancerRegistration { DeregisterDelay = TimeSpan.FromMilliseconds(500) });
        await rig.Balancer.StartAsync();
        if (waitForAll && options.Command is not null)
        {
            await rig.AllReadyAsync(options.Workers);
        }

        return rig;
    }

    public Task AllReadyAsync(int count) =>
        Wait.UntilAsync(() => Balancer.Workers.Count(w => w.State == WorkerState.Ready) >= count, TimeSpan.FromSeconds(60), $"{count} workers ready");

    public Worker.Client Client(RpcEndpoint? endpoint = null, bool multiplexed = true, TimeSpan? timeout = null)
    {
        var channel = new ThriftChannel(new ThriftChannelOptions
        {
            Endpoint = endpoint ?? Tcp,
            Encoding = ThriftEncoding.FramedBinary,
            Multiplexed = multiplexed,
            PeerMultiplexesCalls = true,
            DefaultTimeout = timeout ?? TimeSpan.FromSeconds(30),
        });
        _owned.Add(channel);
        return new Worker.Client(channel);
    }

    public IReadOnlyList<int> ReadyPids => [.. Balancer.Workers.Where(w => w.State == WorkerState.Ready).Select(w => w.Pid)];

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }

        var pids = Balancer.Workers.Select(w => w.Pid).Where(p => p > 0).ToList();
        await Balancer.DisposeAsync();
        foreach (var pid in pids)
        {
            // a test that failed half-way must not leave a Python process behind
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }
            catch (ArgumentException)
            {
                // gone, as it should be
            }
        }

        Directory.Delete(Root, recursive: true);
    }
}

public sealed class BalancerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Calls_ReachTheWorkers_EachToAnIdleOne()
    {
        await using var rig = await BalancerRig.StartAsync();
        var client = rig.Client();
        Assert.Equal("hi", await client.EchoAsync("hi"));

        // two slow calls at once run on the two workers, one each
        var pids = rig.ReadyPids;
        var slow = new[] { client.SleepAsync(400), rig.Client().SleepAsync(400) };
        await Wait.UntilAsync(() => rig.Balancer.Workers.Count(w => w.InFlight == 1) == 2, TimeSpan.FromSeconds(5), "one call on each worker");
        Assert.Equal(["slept 400", "slept 400"], await Task.WhenAll(slow));

        // sequential calls are spread over both
        var seen = new HashSet<int>();
        for (var i = 0; i < 20; i++)
        {
            seen.Add(await client.PidAsync());
        }

        Assert.Equal(pids.Order(), seen.Order());

        // a declared exception comes back as itself; a bare method name (a stock client of this one service) works too
        var error = await Assert.ThrowsAsync<WorkerError>(() => client.FailAsync("boom"));
        Assert.Equal("boom", error.Message_);
        Assert.Equal("bare", await rig.Client(multiplexed: false).EchoAsync("bare"));
    }

    [Fact]
    public async Task AnotherServiceName_IsRefusedAsUnknown()
    {
        await using var rig = await BalancerRig.StartAsync(o => o.Workers = 1);
        var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = rig.Tcp, Multiplexed = true, DefaultTimeout = TimeSpan.FromSeconds(10) });
        await using (channel)
        {
            // the Echo service's client: its calls are named Echo:echo
            var e = await Assert.ThrowsAsync<TApplicationException>(() => new Trellis.Rpc.Tests.Echo.Echo.Client(channel).EchoAsync("x"));
            Assert.Equal(TApplicationExceptionType.UnknownMethod, e.Type);
            Assert.Contains("serves Worker only", e.Message);
        }
    }

    [Fact]
    public async Task KillMinus9_OfAWorkerUnderLoad_FailsAtMostItsCalls_AndItIsReplaced()
    {
        await using var rig = await BalancerRig.StartAsync();
        var clients = Enumerable.Range(0, 4).Select(_ => rig.Client()).ToArray();
        var n = 0;
        var load = CallLoad.Start(4, () => clients[Interlocked.Increment(ref n) & 3].SleepAsync(20));
        await load.AfterAsync(40);
        var victim = rig.ReadyPids[0];
        Process.GetProcessById(victim).Kill(); // SIGKILL
        await Wait.UntilAsync(() => rig.ReadyPids.Count == 2 && !rig.ReadyPids.Contains(victim), TimeSpan.FromSeconds(20), "a replacement worker");
        await load.AfterAsync(40);
        await load.StopAsync();
        output.WriteLine($"{load.Ok} calls, {load.Failures.Count} failed: {string.Join("; ", load.Failures.Select(f => f.Error.Message))}");
        // pool size 1: the killed worker had at most one call in flight
        Assert.True(load.Failures.Count <= 1, $"{load.Failures.Count} calls failed");
        Assert.Equal(1, rig.Balancer.Restarts);
    }

    [Fact]
    public async Task RecyclingEveryWorkerUnderLoad_FailsNoCall()
    {
        await using var rig = await BalancerRig.StartAsync(o => o.MaxRequestsPerWorker = 40);
        var first = rig.ReadyPids;
        var clients = Enumerable.Range(0, 4).Select(_ => rig.Client()).ToArray();
        var n = 0;
        var load = CallLoad.Start(4, () => clients[Interlocked.Increment(ref n) & 3].EchoAsync("x"));
        await Wait.UntilAsync(() => rig.Balancer.Recycled >= 4, TimeSpan.FromSeconds(60), "every worker recycled twice");
        await load.StopAsync();
        output.WriteLine($"{load.Ok} calls, {rig.Balancer.Recycled} recycled, {load.Failures.Count} failed");
        Assert.Empty(load.Failures);
        Assert.DoesNotContain(rig.ReadyPids, first.Contains);
        Assert.Equal(0, rig.Balancer.Restarts); // recycled, not crashed
    }

    [Fact]
    public async Task AWorkerThatNeverAnswers_IsKilledAndReplaced_AndOnlyItsCallFails()
    {
        await using var rig = await BalancerRig.StartAsync(front: f => f.DefaultTimeout = TimeSpan.FromSeconds(1));
        var stuck = rig.ReadyPids;
        var hang = rig.Client().HangAsync();
        var others = Enumerable.Range(0, 10).Select(async i => await rig.Client().EchoAsync($"e{i}")).ToList();
        // the balancer answers "deadline exceeded", which the Trellis client reports as a timeout at the server
        var e = await Assert.ThrowsAsync<TTransportException>(() => hang);
        Assert.Equal(TTransportErrorKind.TimedOut, e.Kind);
        Assert.Contains("deadline exceeded", e.InnerException!.Message);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"e{i}"), await Task.WhenAll(others));
        await Wait.UntilAsync(() => rig.ReadyPids.Count == 2 && rig.ReadyPids.Except(stuck).Any(), TimeSpan.FromSeconds(20), "the stuck worker replaced");
        Assert.Equal(1, rig.Balancer.Killed);
        Assert.Equal("after", await rig.Client().EchoAsync("after"));
    }

    [Fact]
    public async Task BeyondTheQueue_ACallFailsAtOnceAsOverloaded_AndQueuedOnesAreServed()
    {
        await using var rig = await BalancerRig.StartAsync(o => { o.Workers = 1; o.QueueSize = 2; });
        var busy = rig.Client().SleepAsync(1500);
        await Wait.UntilAsync(() => rig.Balancer.Workers.Sum(w => w.InFlight) == 1, TimeSpan.FromSeconds(5), "the worker busy");
        var queued = new[] { rig.Client().EchoAsync("q1"), rig.Client().EchoAsync("q2") };
        await Wait.UntilAsync(() => rig.Balancer.Queued == 2, TimeSpan.FromSeconds(5), "two calls queued");
        var e = await Assert.ThrowsAsync<TApplicationException>(() => rig.Client().EchoAsync("q3"));
        Assert.StartsWith(RpcErrors.OverloadedPrefix, e.Message);
        Assert.Contains("are busy", e.Message);
        Assert.True(busy.IsCompleted is false, "the overload error came at once, not after the busy call");
        Assert.Equal("slept 1500", await busy);
        Assert.Equal(["q1", "q2"], await Task.WhenAll(queued));
        Assert.Equal(1, rig.Balancer.Overloaded);
    }

    [Fact]
    public async Task AQueuedCall_WaitsNoLongerThanTheQueueTimeout()
    {
        await using var rig = await BalancerRig.StartAsync(o => { o.Workers = 1; o.QueueTimeout = TimeSpan.FromMilliseconds(300); });
        var busy = rig.Client().SleepAsync(2000);
        await Wait.UntilAsync(() => rig.Balancer.Workers.Sum(w => w.InFlight) == 1, TimeSpan.FromSeconds(5), "the worker busy");
        // refused unrun, and said so: not a timeout of the call (its own deadline is 20 s)
        var e = await Assert.ThrowsAsync<TApplicationException>(() => rig.Client().EchoAsync("late"));
        Assert.StartsWith(RpcErrors.OverloadedPrefix, e.Message);
        Assert.Contains("became free within 300 ms", e.Message);
        Assert.Equal("slept 2000", await busy);
    }

    [Fact]
    public async Task AWorkerOverItsMemoryLimit_IsReplaced_WithoutFailingACall()
    {
        await using var rig = await BalancerRig.StartAsync(o => { o.Workers = 1; o.MaxWorkerMemoryMb = 100; o.MemoryCheckInterval = TimeSpan.FromMilliseconds(200); });
        var first = rig.ReadyPids.Single();
        var client = rig.Client();
        Assert.Equal(first, await client.PidAsync());
        Assert.True(await client.GrowAsync(150) >= 150);
        await Wait.UntilAsync(() => rig.Balancer.Recycled == 1 && rig.ReadyPids.Count == 1 && rig.ReadyPids[0] != first, TimeSpan.FromSeconds(30), "the big worker replaced");
        Assert.NotEqual(first, await client.PidAsync());
        await Wait.UntilAsync(() => !Process.GetProcesses().Any(p => p.Id == first), TimeSpan.FromSeconds(10), "the old worker gone");
    }

    [Fact]
    public async Task ACrashingWorker_IsStartedAgainWithBackoff()
    {
        // a command that fails at once: restarts slow down instead of spinning
        await using var rig = await BalancerRig.StartAsync(o =>
        {
            o.Command = "/bin/sh -c 'exit 3' {socket}";
            o.Workers = 1;
            o.RestartDelay = TimeSpan.FromMilliseconds(50);
            o.MaxRestartDelay = TimeSpan.FromMilliseconds(400);
        }, waitForAll: false);
        var clock = Stopwatch.StartNew();
        await Wait.UntilAsync(() => rig.Balancer.Restarts >= 6, TimeSpan.FromSeconds(30), "six restarts");
        // 50 + 100 + 200 + 400 + 400 ms at least between the first and the sixth start
        Assert.True(clock.ElapsedMilliseconds >= 1100, $"six restarts took {clock.ElapsedMilliseconds} ms");
        Assert.DoesNotContain(rig.Balancer.Workers, w => w.State == WorkerState.Ready);
    }

    [Fact]
    public async Task WorkersThatConnectToTheBackAddress_ServeCalls()
    {
        var back = Path.Combine(Path.GetTempPath(), $"trellis-back-{Guid.NewGuid():N}"[..24] + ".sock");
        await using var rig = await BalancerRig.StartAsync(o => { o.Command = null; o.BackAddress = RpcEndpoint.Unix(back); });
        using var worker = Process.Start(new ProcessStartInfo("/usr/bin/python3") { ArgumentList = { BalancerRig.WorkerScript, "--connect", back }, UseShellExecute = false })!;
        try
        {
            await Wait.UntilAsync(() => rig.ReadyPids.Count == 1, TimeSpan.FromSeconds(60), "the worker connected");
            var client = rig.Client();
            Assert.Equal("via back", await client.EchoAsync("via back"));
            Assert.Equal(worker.Id, await client.PidAsync());
            Assert.True(rig.Balancer.Workers.Single().External);
        }
        finally
        {
            worker.Kill();
            await worker.WaitForExitAsync();
        }

        await Wait.UntilAsync(() => rig.Balancer.Workers.Count == 0, TimeSpan.FromSeconds(10), "the disconnected worker forgotten");
    }

    [Fact]
    public async Task BadOptions_AreRefusedWithAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => new WorkerBalancer(new BalancerOptions { Service = "S", Command = "python3 w.py" }, new ProxyOptions(), (IServiceRegistry?)null));
        Assert.Contains("{socket}", e.Message);
        e = Assert.Throws<ArgumentException>(() => new WorkerBalancer(new BalancerOptions { Service = "S" }, new ProxyOptions(), (IServiceRegistry?)null));
        Assert.Contains("no workers", e.Message);
        e = Assert.Throws<ArgumentException>(() => new WorkerBalancer(new BalancerOptions { Command = "w {socket}" }, new ProxyOptions(), (IServiceRegistry?)null));
        Assert.Contains("no service", e.Message);
    }

    [Fact]
    public async Task InZooKeeper_TheServiceIsRegisteredOnlyOnceAWorkerIsReady_AndGoneAfterTheStop()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync();
        var zk = new ZooKeeperOptions { ConnectString = ensemble.ConnectString, SessionTimeout = TimeSpan.FromSeconds(10) };
        var product = "p" + Guid.NewGuid().ToString("N")[..8];
        await using var registry = await ZooKeeperRegistry.ConnectAsync(zk);
        await using var reader = await ZooKeeperClient.ConnectAsync(zk);
        var instances = $"/trellis/{product}/services/Worker/instances";
        // a worker that takes a while to start: nothing may be registered before it accepts
        var slowStart = $"/bin/sh -c 'sleep 1.5 && exec {BalancerRig.Command()}'";
        await using var rig = await BalancerRig.StartAsync(o => { o.Workers = 1; o.Command = slowStart; }, f => f.Product = product,
            registry: registry, registration: new BalancerRegistration { InstanceId = "b1", AdvertisedHost = "127.0.0.1", DeregisterDelay = TimeSpan.FromMilliseconds(200) },
            waitForAll: false);
        await Task.Delay(500);
        Assert.Equal(WorkerState.Starting, rig.Balancer.Workers.Single().State);
        Assert.Null(await reader.ExistsAsync($"{instances}/b1"));

        await rig.AllReadyAsync(1);
        await Wait.UntilAsync(() => reader.ExistsAsync($"{instances}/b1").Result is not null, TimeSpan.FromSeconds(10), "the instance node");
        var (data, _) = await reader.GetDataAsync($"{instances}/b1");
        var record = ServiceInstance.TryParse(data);
        Assert.NotNull(record);
        Assert.Equal(("127.0.0.1", rig.Tcp.Port, "header"), (record.Host, record.Port, record.Framing));

        await rig.Balancer.StopAsync();
        Assert.Null(await reader.ExistsAsync($"{instances}/b1"));
    }

    [Fact]
    public async Task GracefulStop_UnderLoadThroughAProxy_FailsNoCall()
    {
        await using var proxy = await ProxyRig.StartAsync();
        var registration = new BalancerRegistration { InstanceId = "a", DeregisterDelay = TimeSpan.FromSeconds(1) };
        var a = await BalancerRig.StartAsync(o => o.Workers = 1, registry: proxy.Registry, registration: registration);
        await using var b = await BalancerRig.StartAsync(o => o.Workers = 1, registry: proxy.Registry, registration: new BalancerRegistration { InstanceId = "b" });
        try
        {
            await Wait.UntilAsync(() => a.Balancer.Registration is not null && b.Balancer.Registration is not null, TimeSpan.FromSeconds(20), "both registered");
            var clients = Enumerable.Range(0, 4).Select(_ => new Worker.Client(proxy.Channel(proxy.Tcp))).ToArray();
            await Wait.UntilAsync(() => clients[0].PidAsync().Wait(5000) && proxy.Proxy.Routes.TryGetValue("Worker", out var r) && r.Count == 2, TimeSpan.FromSeconds(20), "the proxy sees both");
            var n = 0;
            var load = CallLoad.Start(4, () => clients[Interlocked.Increment(ref n) & 3].SleepAsync(10));
            await load.AfterAsync(50);
            var aPid = a.ReadyPids.Single();
            await a.Balancer.StopAsync();
            await load.AfterAsync(50);
            await load.StopAsync();
            output.WriteLine($"{load.Ok} calls, {load.Failures.Count} failed: {string.Join("; ", load.Failures.Select(f => f.Error.Message).Distinct())}");
            Assert.Empty(load.Failures);
            Assert.False(Process.GetProcesses().Any(p => p.Id == aPid), "the stopped balancer's worker exited");
        }
        finally
        {
            await a.DisposeAsync();
        }
    }
}

/// <summary>The <c>trellis balancer</c> program with the original rpc_proxy config.ini keys.</summary>
public sealed class BalancerProgramTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "trellis-balprog-" + Guid.NewGuid().ToString("N")[..8]);

    public BalancerProgramTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task TheOriginalConfigIni_Works_AndSigTermStopsEverythingCleanly()
    {
        var port = LoopbackPorts.Free();
        var registryDir = Path.Combine(_root, "registry");
        var ini = Path.Combine(_root, "config.ini");
        await File.WriteAllTextAsync(ini, $"""
            # rpc_proxy's balancer settings, unchanged
            service=Worker
            product=p
            front_host=127.0.0.1
            front_port={port}
            worker_pool_size=1
            back_address={Path.Combine(_root, "back.sock")}
            """);
        var record = Path.Combine(registryDir, "p", "services", "Worker", "instances");
        var admin = LoopbackPorts.Free();
        await using var balancer = await TrellisProxyProcess.StartAsync("balancer",
            () => Directory.Exists(record) && Directory.EnumerateFiles(record).Any(), "the balancer's registration",
            "--config", ini, "--local-registry", registryDir, "--workers", "2", "--worker-command", BalancerRig.Command(), "--admin", $"127.0.0.1:{admin}");
        var instance = ServiceInstance.TryParse(File.ReadAllBytes(Directory.EnumerateFiles(record).Single()));
        Assert.NotNull(instance);
        Assert.Equal(("127.0.0.1", port), (instance.Host, instance.Port));

        await using var channel = new ThriftChannel(new ThriftChannelOptions { Endpoint = RpcEndpoint.Tcp("127.0.0.1", port), PeerMultiplexesCalls = true });
        var client = new Worker.Client(channel);
        Assert.Equal("from ini", await client.EchoAsync("from ini"));
        var pids = new HashSet<int>();
        for (var i = 0; i < 10; i++)
        {
            pids.Add(await client.PidAsync());
        }

        Assert.Equal(2, pids.Count);
        using (var http = new HttpClient())
        {
            Assert.StartsWith("ok (2 workers ready", await http.GetStringAsync($"http://127.0.0.1:{admin}/health"));
            Assert.Contains("trellis_balancer_workers{state=\"ready\"} 2", await http.GetStringAsync($"http://127.0.0.1:{admin}/metrics"));
            var workers = await http.GetStringAsync($"http://127.0.0.1:{admin}/workers");
            Assert.All(pids, pid => Assert.Contains($"\"pid\": {pid}", workers));
        }

        var slow = client.SleepAsync(1500);
        await Task.Delay(200);
        balancer.Terminate();
        Assert.Equal("slept 1500", await slow); // drained, not cut off
        await balancer.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, balancer.Process.ExitCode);
        Assert.Empty(Directory.EnumerateFiles(record));
        Assert.DoesNotContain(Process.GetProcesses(), p => pids.Contains(p.Id));
    }

    [Fact]
    public async Task AWorkerCommandWithoutSocket_ExitsWith2_AndSaysWhy()
    {
        var (code, _, stderr) = await TrellisCli.RunAsync("balancer", "--service", "Worker", "--port", "0", "--worker-command", "python3 worker.py");
        Assert.Equal(2, code);
        Assert.Contains("{socket}", stderr);
    }
}
