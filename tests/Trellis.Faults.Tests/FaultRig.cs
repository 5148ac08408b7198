using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Trellis.Rpc.Registry;

[assembly: CollectionBehavior(DisableTestParallelization = true)] // timing figures on a 2-core machine: one scenario at a time

namespace Trellis.Faults.Tests;

/// <summary>Closed-loop callers that record every call's start, latency and outcome.</summary>
internal sealed class MeasuredLoad
{
    private volatile bool _stopping;
    private readonly List<Task> _callers = [];
    private readonly ConcurrentQueue<(double AtMs, double LatencyMs, Exception? Error)> _calls = new();

    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    public double NowMs => Clock.Elapsed.TotalMilliseconds;

    public IReadOnlyList<(double AtMs, double LatencyMs, Exception? Error)> Calls => [.. _calls];

    public static MeasuredLoad Start(int callers, Func<int, Task> call, TimeSpan? pause = null)
    {
        var load = new MeasuredLoad();
        for (var i = 0; i < callers; i++)
        {
            var caller = i;
            load._callers.Add(Task.Run(async () =>
            {
                while (!load._stopping)
                {
                    var at = load.NowMs;
                    try
                    {
                        await call(caller);
                        load._calls.Enqueue((at, load.NowMs - at, null));
                    }
                    catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                    {
                        load._calls.Enqueue((at, load.NowMs - at, e));
                    }

                    if (pause is { } p)
                    {
                        await Task.Delay(p);
                    }
                }
            }));
        }

        return load;
    }

    public IReadOnlyList<(double AtMs, double LatencyMs, Exception? Error)> Between(double fromMs, double toMs) =>
        [.. _calls.Where(c => c.AtMs >= fromMs && c.AtMs < toMs)];

    public async Task StopAsync()
    {
        _stopping = true;
        await Task.WhenAll(_callers);
    }
}

internal static class Figures
{
    public static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}

/// <summary>
/// A black-holed address without firewall rules: a listener with a backlog of 0 that never accepts, its one
/// queue slot taken by a filler connection. The kernel then drops every further SYN, so a connect hangs until the
/// caller's connect timeout (exactly what a host behind a DROP rule or gone off the network looks like).
/// </summary>
internal sealed class BlackHole : IDisposable
{
    private readonly Socket _listener;
    private readonly List<Socket> _fillers = [];

    public BlackHole()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(0);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        // fill the accept queue: the first connect completes, the next ones hang
        for (var i = 0; i < 2; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _fillers.Add(filler);
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                filler.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), timeout.Token).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                return; // the queue is full already
            }
        }
    }

    public int Port { get; }

    public void Dispose()
    {
        foreach (var filler in _fillers)
        {
            filler.Dispose();
        }

        _listener.Dispose();
    }
}

/// <summary>
/// A registry whose whole view the test pushes at once (as a registry's watch delivers it), so an empty push is one
/// update. In memory: no files, no inotify (a busy machine may have none left).
/// </summary>
internal sealed class PushRegistry : IServiceRegistry
{
    private readonly List<Watch> _watches = [];
    private IReadOnlyList<ServiceInstance> _current = [];

    public void Push(IReadOnlyList<ServiceInstance> instances)
    {
        List<Watch> watches;
        lock (_watches)
        {
            _current = instances;
            watches = [.. _watches];
        }

        foreach (var watch in watches)
        {
            watch.Raise(instances);
        }
    }

    public Task<IServiceWatch> WatchAsync(string product, string service, CancellationToken cancellationToken = default)
    {
        lock (_watches)
        {
            var watch = new Watch(_current);
            _watches.Add(watch);
            return Task.FromResult<IServiceWatch>(watch);
        }
    }

    public Task<IRegistration> RegisterAsync(ServiceInstance instance, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<IRegistration> RegisterProxyAsync(ServiceInstance proxy, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<IServiceWatch> WatchProxiesAsync(string product, string zone, CancellationToken cancellationToken = default) => Task.FromResult<IServiceWatch>(new Watch([]));

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class Watch(IReadOnlyList<ServiceInstance> initial) : IServiceWatch
    {
        public IReadOnlyList<ServiceInstance> Instances { get; private set; } = initial;

        public event Action<IReadOnlyList<ServiceInstance>>? Changed;

        public void Raise(IReadOnlyList<ServiceInstance> instances)
        {
            Instances = instances;
            Changed?.Invoke(instances);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
