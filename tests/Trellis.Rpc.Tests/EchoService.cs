using System.Text;
using Trellis.Rpc.Tests.Echo;
using Trellis.Thrift;

namespace Trellis.Rpc.Tests;

/// <summary>The test service: records what it saw, sleeps and blocks on request.</summary>
public sealed class EchoService : Echo.Echo.IAsync, Other.IAsync
{
    public List<string> Fired { get; } = [];
    public int Running;
    public int Echoes;
    public int StuckCalls;
    public CancellationToken LastToken;

    public Task<string> EchoAsync(string? text, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Echoes);
        return Task.FromResult(text ?? "");
    }

    public Task<byte[]> EchoBinaryAsync(byte[]? data, CancellationToken cancellationToken = default) => Task.FromResult(data ?? []);

    public async Task<string> SlowAsync(int milliseconds, string? text, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Running);
        try
        {
            LastToken = cancellationToken;
            await Task.Delay(milliseconds, cancellationToken);
            return text ?? "";
        }
        finally
        {
            Interlocked.Decrement(ref Running);
        }
    }

    public async Task<string> StuckAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Running);
        try
        {
            LastToken = cancellationToken;
            Interlocked.Increment(ref StuckCalls);
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return "never";
        }
        finally
        {
            Interlocked.Decrement(ref Running);
        }
    }

    public Task<int> FailAsync(string? kind, CancellationToken cancellationToken = default) => kind switch
    {
        "declared" => throw new EchoError { Message_ = "as declared", Code = 7 },
        "crash" => throw new InvalidOperationException("handler bug"),
        _ => Task.FromResult(0),
    };

    public Task FireAsync(string? text, CancellationToken cancellationToken = default)
    {
        lock (Fired)
        {
            Fired.Add(text ?? "");
        }

        return Task.CompletedTask;
    }

    public Task<string> HelloAsync(string? name, CancellationToken cancellationToken = default) => Task.FromResult("hello " + name);
}

internal static class Servers
{
    public static async Task<(ThriftServer Server, EchoService Service)> StartAsync(Action<ThriftServerOptions>? configure = null,
        int maxConcurrentCalls = 4096, TimeSpan? frameReadTimeout = null, TimeSpan? idleTimeout = null, string? unixPath = null, bool withOther = true,
        ThriftLimits? limits = null)
    {
        var options = new ThriftServerOptions
        {
            Limits = limits ?? ThriftLimits.Default,
            MaxConcurrentCalls = maxConcurrentCalls,
            FrameReadTimeout = frameReadTimeout ?? TimeSpan.FromSeconds(10),
            IdleTimeout = idleTimeout ?? TimeSpan.FromMinutes(5),
            DefaultService = "Echo",
        };
        options.Endpoints.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        if (unixPath is not null)
        {
            options.Endpoints.Add(RpcEndpoint.Unix(unixPath));
        }

        configure?.Invoke(options);
        var service = new EchoService();
        var server = new ThriftServer(options).AddService(new Echo.Echo.Dispatcher(service));
        if (withOther)
        {
            server.AddService(new Echo.Other.Dispatcher(service));
        }

        await server.StartAsync();
        return (server, service);
    }

    public static ThriftChannel Channel(ThriftServer server, ThriftEncoding? encoding = null, bool multiplexed = true, bool peerMultiplexes = true,
        TimeSpan? timeout = null, RpcEndpoint? endpoint = null) =>
        new(new ThriftChannelOptions
        {
            Endpoint = endpoint ?? server.Endpoints[0],
            Encoding = encoding ?? ThriftEncoding.FramedBinary,
            Multiplexed = multiplexed,
            PeerMultiplexesCalls = peerMultiplexes,
            DefaultTimeout = timeout ?? TimeSpan.FromSeconds(30),
        });

    public static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
}
