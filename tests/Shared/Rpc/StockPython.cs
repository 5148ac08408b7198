using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Trellis.Rpc.Registry;
using Xunit;

namespace Trellis.Testing;

/// <summary>A stock Apache Thrift python server (TThreadedServer, <c>thrift_peer.py tcp-serve</c>) as a child process.</summary>
internal sealed class PythonServer : IAsyncDisposable
{
    public required Process Process { get; init; }

    public required int Port { get; init; }

    public static async Task<PythonServer> StartAsync(string framing = "framed", string protocol = "binary", string? multiplexed = null)
    {
        var process = Process.Start(PythonPeer.Conformance.StartInfo("tcp-serve",
            ["--port", "0", "--framing", framing, "--protocol", protocol, .. multiplexed is null ? Array.Empty<string>() : ["--multiplexed", multiplexed]]))!;
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotNull(line);
            return new PythonServer { Process = process, Port = int.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture) };
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }

    /// <summary>Its registry record as the Conformance service of <paramref name="product"/>.</summary>
    public ServiceInstance Instance(string product, string id, string framing = "framed", string protocol = "binary", bool multiplexed = false) => new()
    {
        Product = product,
        Service = "Conformance",
        InstanceId = id,
        Host = "127.0.0.1",
        Port = Port,
        Framing = framing,
        Protocol = protocol,
        Multiplexed = multiplexed,
    };

    public void Kill() => Process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }

            await Process.WaitForExitAsync();
        }
        finally
        {
            Process.Dispose();
        }
    }
}

/// <summary>The Conformance service in C#, behaving as the python peer's handler does.</summary>
internal sealed class ConformanceHandler : global::Conformance.IAsync
{
    public List<string> Notified { get; } = [];

    public Task<Everything> EchoAsync(Everything? value, CancellationToken cancellationToken = default) =>
        value!.I32v == 42 ? throw new Oops { Code = 42, Message_ = "forty-two" } : Task.FromResult(value);

    public Task PingAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task NotifyAsync(string? what, CancellationToken cancellationToken = default)
    {
        lock (Notified)
        {
            Notified.Add(what ?? "");
        }

        return Task.CompletedTask;
    }
}

/// <summary>The JSON lines <c>thrift_peer.py tcp-call</c> prints, one per call.</summary>
internal static class PeerLines
{
    public static List<JsonElement> Parse(byte[] stdout) =>
        System.Text.Encoding.UTF8.GetString(stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
}
