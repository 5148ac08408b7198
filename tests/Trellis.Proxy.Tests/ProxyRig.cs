using System.Diagnostics;
using System.Globalization;
using Trellis.Proxy;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Rpc.Tests;
using Trellis.Thrift;

namespace Trellis.Proxy.Tests;

/// <summary>A proxy over a local registry in a temp directory, with helpers to add instances and clients.</summary>
internal sealed class ProxyRig : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    private ProxyRig(string root, LocalRegistry registry)
    {
        Root = root;
        Registry = registry;
    }

    public string Root { get; }

    public LocalRegistry Registry { get; }

    public ProxyServer Proxy { get; private set; } = null!;

    public RpcEndpoint Tcp => Proxy.Endpoints.First(e => !e.IsUnix);

    public RpcEndpoint Unix => Proxy.Endpoints.First(e => e.IsUnix);

    public const string Product = "p";

    public static async Task<ProxyRig> StartAsync(Action<ProxyOptions>? configure = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "trellis-proxy-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var rig = new ProxyRig(root, new LocalRegistry(Path.Combine(root, "registry"), lease: TimeSpan.FromSeconds(2)));
        var options = NewOptions(root);
        configure?.Invoke(options);
        rig.Proxy = new ProxyServer(options, rig.Registry);
        await rig.Proxy.StartAsync();
        return rig;
    }

    public static ProxyOptions NewOptions(string root, string name = "proxy")
    {
        var options = new ProxyOptions { Product = Product, SnapshotDirectory = Path.Combine(root, name + "-snapshot"), DefaultTimeout = TimeSpan.FromSeconds(10) };
        options.Listen.Add(RpcEndpoint.Tcp("127.0.0.1", 0));
        options.Listen.Add(RpcEndpoint.Unix(Path.Combine(root, name + ".sock")));
        return options;
    }

    /// <summary>A Trellis Echo server (Echo and Other services), registered as one multiplexed instance of each.</summary>
    public async Task<(ThriftServer Server, EchoService Service, IRegistration[] Registrations)> AddTrellisBackendAsync(string id, int maxConcurrentCalls = 4096)
    {
        var (server, service) = await Servers.StartAsync(maxConcurrentCalls: maxConcurrentCalls);
        _owned.Add(server);
        var port = server.Endpoints[0].Port;
        var echo = await Registry.RegisterAsync(new ServiceInstance { Product = Product, Service = "Echo", InstanceId = id, Host = "127.0.0.1", Port = port, Framing = "header" });
        var other = await Registry.RegisterAsync(new ServiceInstance { Product = Product, Service = "Other", InstanceId = id, Host = "127.0.0.1", Port = port, Framing = "header" });
        _owned.Add(echo);
        _owned.Add(other);
        return (server, service, [echo, other]);
    }

    /// <summary>A channel to the proxy as an application would use it: service:method names, calls pipelined.</summary>
    public ThriftChannel Channel(RpcEndpoint endpoint, ThriftEncoding? encoding = null)
    {
        var channel = new ThriftChannel(new ThriftChannelOptions
        {
            Endpoint = endpoint,
            Encoding = encoding ?? ThriftEncoding.FramedBinary,
            Multiplexed = true,
            PeerMultiplexesCalls = true,
            DefaultTimeout = TimeSpan.FromSeconds(20),
        });
        _owned.Add(channel);
        return channel;
    }

    public void Own(IAsyncDisposable thing) => _owned.Add(thing);

    public async ValueTask DisposeAsync()
    {
        await Proxy.DisposeAsync();
        foreach (var thing in Enumerable.Reverse(_owned))
        {
            try
            {
                await thing.DisposeAsync();
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or TException)
            {
                // already gone: the test stopped it
            }
        }

        await Registry.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // a late writer; the temp directory is cleaned by the OS
        }
    }
}

/// <summary>The trellis program, as built next to the tests.</summary>
internal sealed class TrellisProxyProcess : IAsyncDisposable
{
    private readonly Process _process;

    private TrellisProxyProcess(Process process) => _process = process;

    /// <summary>Starts <c>trellis proxy ARGS</c> and waits until <paramref name="socket"/> exists.</summary>
    public static Task<TrellisProxyProcess> StartAsync(string socket, params string[] args) =>
        StartAsync("proxy", () => File.Exists(socket), "the local proxy's socket", args);

    /// <summary>Starts <c>trellis COMMAND ARGS</c> and waits until <paramref name="ready"/> holds.</summary>
    public static async Task<TrellisProxyProcess> StartAsync(string command, Func<bool> ready, string what, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "trellis.dll"), command }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var proxy = new TrellisProxyProcess(process);
        try
        {
            await Wait.UntilAsync(() => ready() || process.HasExited, TimeSpan.FromSeconds(60), what);
            Assert.False(process.HasExited, $"trellis {command} exited at start");
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>What a service manager's stop sends.</summary>
    public void Terminate() => Posix.Kill(_process.Id, 15);

    public Process Process => _process;

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}

/// <summary>Runs the trellis program (built next to the tests) to its end: exit code, stdout, stderr; killed if it outlives the timeout.</summary>
internal static class TrellisCli
{
    public static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "trellis.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}

internal static class Posix
{
    /// <summary>Sends a signal with the system's kill(1).</summary>
    public static void Kill(int pid, int signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {pid} failed");
        }
    }
}
