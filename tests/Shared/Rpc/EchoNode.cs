using System.Collections.Concurrent;
using System.Diagnostics;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Testing;

// Shared by the tests that balance over several in-process servers (Trellis.Rpc.Tests' BalancedEndToEndTests,
// Trellis.Faults.Tests): an Echo backend the test steers (delay, failures, a prefix on the answer) and counts, and a
// server around it that the test can stop and restart on its port.

/// <summary>An Echo backend whose delay, answers and failures are set by the test, counting what reached it.</summary>
#pragma warning disable CS0649 // the knobs a linking project's tests never turn (Trellis.Rpc.Tests fails no call; Trellis.Proxy.Tests links it unused) stay at their defaults
internal sealed class EchoBackend : Trellis.Rpc.Tests.Echo.Echo.IAsync
{
    public int Echoes;
    public int Binaries;
    public int Slows;
    public int SlowsCancelled;
    public volatile int DelayMs;
    /// <summary>Put before every echo's answer, to tell which instance answered.</summary>
    public volatile string Prefix = "";
    /// <summary>When set, every other call of echo/echoBinary fails after it ran, the way a balancer may retry (no answer).</summary>
    public volatile bool FailHalf;
    /// <summary>When set, every call fails after it ran (no answer).</summary>
    public volatile bool FailAll;
    private int _turn;
    public readonly ConcurrentQueue<double> CancelledAfterMs = new();

    private void MaybeFail()
    {
        if (FailAll || (FailHalf && (Interlocked.Increment(ref _turn) & 1) == 0))
        {
            // a call that ran and lost its answer: the balancer may retry it only when the method is idempotent
            throw new TApplicationException(TApplicationExceptionType.InternalError, "shutting down: injected failure");
        }
    }

    public async Task<string> EchoAsync(string? text, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Echoes);
        if (DelayMs > 0)
        {
            await Task.Delay(DelayMs, cancellationToken);
        }

        MaybeFail();
        return Prefix + text;
    }

    public Task<byte[]> EchoBinaryAsync(byte[]? data, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Binaries);
        MaybeFail();
        return Task.FromResult(data ?? []);
    }

    public async Task<string> SlowAsync(int milliseconds, string? text, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Slows);
        var clock = Stopwatch.StartNew();
        try
        {
            await Task.Delay(milliseconds, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref SlowsCancelled);
            CancelledAfterMs.Enqueue(clock.Elapsed.TotalMilliseconds);
            throw;
        }

        return text ?? "";
    }

    public Task<string> StuckAsync(CancellationToken cancellationToken = default) => Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(_ => "", TaskScheduler.Default);
    public Task<int> FailAsync(string? kind, CancellationToken cancellationToken = default) => Task.FromResult(0);
    public Task FireAsync(string? text, CancellationToken cancellationToken = default) => Task.CompletedTask;
}
#pragma warning restore CS0649

/// <summary>One in-process Trellis server with an <see cref="EchoBackend"/> on 127.0.0.1, restartable on its port.</summary>
/// <remarks>
/// <see cref="Instance"/> advertises <c>framing</c> (the registry's default, framed, unless the test asks for
/// another, e.g. header, which carries the caller's deadline to the server); the server itself takes every encoding.
/// </remarks>
internal sealed class EchoNode : IAsyncDisposable
{
    private readonly string _framing;

    private EchoNode(string framing) => _framing = framing;

    public EchoBackend Backend { get; } = new();
    public ThriftServer Server { get; private set; } = null!;
    public ServiceInstance Instance { get; private set; } = null!;

    public static async Task<EchoNode> StartAsync(string id, int port = 0, string framing = "framed")
    {
        var node = new EchoNode(framing);
        await node.StartServerAsync(id, port);
        return node;
    }

    /// <summary>Starts the server (again, after the test stopped and disposed it) on <paramref name="port"/>, with the same backend.</summary>
    public async Task StartServerAsync(string id, int port)
    {
        var options = new ThriftServerOptions { DefaultService = "Echo" };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", port));
        Server = new ThriftServer(options).AddService(new Trellis.Rpc.Tests.Echo.Echo.Dispatcher(Backend));
        await Server.StartAsync();
        Instance = new ServiceInstance { Product = "p", Service = "Echo", InstanceId = id, Host = "127.0.0.1", Port = Server.Endpoints[0].Port, Framing = _framing };
    }

    /// <summary>
    /// Restarts this node gracefully, as the registry would show it to the callers of <paramref name="nodes"/> through
    /// <paramref name="resolver"/>: draining, then gone, then drained and stopped, started again on its port, back.
    /// </summary>
    public async Task RestartGracefullyAsync(Trellis.Rpc.Balancing.StaticResolver resolver, IReadOnlyList<EchoNode> nodes)
    {
        var port = Instance.Port;
        resolver.Set(nodes.Select(n => n == this ? n.Instance with { Draining = true } : n.Instance));
        await Task.Delay(200);
        resolver.Set(nodes.Where(n => n != this).Select(n => n.Instance));
        await Server.StopAsync(TimeSpan.FromSeconds(5));
        await Server.DisposeAsync();
        await StartServerAsync(Instance.InstanceId, port);
        resolver.Set(nodes.Select(n => n.Instance));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Server.DisposeAsync();
        }
        catch (ObjectDisposedException)
        {
            // stopped by the test already
        }
    }
}
