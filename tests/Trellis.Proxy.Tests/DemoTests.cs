using Trellis.Rpc.Tests;
using Trellis.ZooKeeper;
using Xunit.Abstractions;

namespace Trellis.Proxy.Tests;

/// <summary><c>trellis demo</c>, the README's first command, run as a newcomer runs it (output to a log, not a terminal).</summary>
public sealed class DemoTests(ITestOutputHelper output)
{
    private static void Check(int code, string stdout, string stderr)
    {
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("every call succeeded", stdout);
        Assert.Contains("greeter-1 stopped gracefully", stdout);
        Assert.Contains("kill -9 of greeter-2", stdout);
        Assert.Contains("greeter-4 serving on 127.0.0.1:", stdout);
        Assert.False(stdout.Contains('\u001b', StringComparison.Ordinal), "escape sequences in a log"); // plain text in a log
        // every instance served calls (the summary's rows: instance, zone, final state, calls, share)
        foreach (var (id, state) in new[] { ("greeter-1", "stopped"), ("greeter-2", "killed"), ("greeter-3", "serving"), ("greeter-4", "serving") })
        {
            var row = stdout.Split('\n').Last(l => l.Contains($"│ {id} ", StringComparison.Ordinal));
            Assert.Contains(state, row);
            var calls = int.Parse(row.Split('│', StringSplitOptions.TrimEntries)[4], System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(calls > 0, $"{id} served no call: {row}");
        }
    }

    [Fact]
    public async Task TheDemo_OnTheEmbeddedRegistry_SurvivesAGracefulStopAndACrash_AndExitsZero()
    {
        var (code, stdout, stderr) = await TrellisCli.RunAsync("demo", "--seconds", "12");
        output.WriteLine(stdout);
        Check(code, stdout, stderr);
    }

    [Fact]
    public async Task TheDemo_OnZooKeeper_DoesTheSame()
    {
        await using var ensemble = await ZooKeeperEnsemble.StartAsync();
        var (code, stdout, stderr) = await TrellisCli.RunAsync("demo", "--seconds", "12", "--zk", ensemble.ConnectString);
        output.WriteLine(stdout);
        Check(code, stdout, stderr);
        Assert.Contains("ZooKeeper at " + ensemble.ConnectString, stdout);
    }

    [Fact]
    public async Task BadOptions_AreOneClearLine_AndExitTwo()
    {
        var (code, _, stderr) = await TrellisCli.RunAsync("demo", "--seconds", "3");
        Assert.Equal(2, code);
        Assert.Equal("trellis demo: --seconds must be 10 to 3600 and --instances 3 to 20", stderr.Trim());
    }
}

/// <summary>The trellis command's conventions: --help everywhere, a usage mistake is one line and exit code 2.</summary>
public sealed class CliConventionTests
{
    [Theory]
    [InlineData(new[] { "config", "get" }, "trellis config get: Option '--product' is required (and 1 more); see 'trellis config get --help'")]
    [InlineData(new[] { "nosuch" }, "trellis: Required command was not provided (and 1 more); see 'trellis --help'")]
    [InlineData(new[] { "demo", "--seconds", "x" }, "trellis demo: Cannot parse argument 'x' for option '--seconds' as expected type 'System.Int32'; see 'trellis demo --help'")]
    public async Task AUsageMistake_IsOneLine_AndExitTwo(string[] args, string expected)
    {
        var (code, stdout, stderr) = await TrellisCli.RunAsync(args);
        Assert.Equal(2, code);
        Assert.Equal(expected, stderr.Trim());
        Assert.Empty(stdout);
    }

    [Theory]
    [InlineData("demo")]
    [InlineData("gen")]
    [InlineData("proxy")]
    [InlineData("balancer")]
    [InlineData("config")]
    [InlineData("registry")]
    [InlineData("admin")]
    [InlineData("call")]
    [InlineData("bench")]
    public async Task EveryCommand_HasHelp(string command)
    {
        var (code, stdout, _) = await TrellisCli.RunAsync(command, "--help");
        Assert.Equal(0, code);
        Assert.Contains($"trellis {command}", stdout);
        Assert.Contains("Usage:", stdout);
    }
}
