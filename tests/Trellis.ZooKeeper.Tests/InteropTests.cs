using System.Diagnostics;
using System.Text;
using Trellis.ZooKeeper;

namespace Trellis.ZooKeeper.Tests;

/// <summary>Nodes our client writes, read by the Java client (zkCli.sh) and by kazoo (Debian python3-kazoo), and the reverse.</summary>
[Collection(SingleServerCollection.Name)]
public class InteropTests(SingleServer zk)
{
    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private const string KazooScript = """
        import sys, binascii
        from kazoo.client import KazooClient
        from kazoo.security import make_digest_acl
        hosts, root = sys.argv[1], sys.argv[2]
        zk = KazooClient(hosts=hosts, auth_data=[("digest", "kazoo:kpw")])
        zk.start(timeout=30)
        data, stat = zk.get(root + "/ours")
        print("ours-data", binascii.hexlify(data).decode())
        print("ours-owner", hex(stat.ephemeralOwner))
        print("children", ",".join(sorted(zk.get_children(root))))
        zk.set(root + "/guarded", b"kazoo wrote this")
        zk.create(root + "/theirs", "from kazoo ✓".encode("utf-8"), acl=[make_digest_acl("kazoo", "kpw", all=True)])
        zk.stop()
        """;

    [Fact]
    public async Task Kazoo_ReadsWhatWeWrite_AndWeReadWhatKazooWrites_DigestAclsAgree()
    {
        var root = SingleServer.NewRoot();
        await using var client = await zk.ConnectAsync();
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        await client.CreateAsync(root, ReadOnlyMemory<byte>.Empty);
        await client.CreateAsync(root + "/ours", bytes, CreateMode.Ephemeral);
        var sequential = await client.CreateAsync(root + "/seq-", ReadOnlyMemory<byte>.Empty, CreateMode.PersistentSequential);
        // only kazoo's identity may write it: our digest must hash as ZooKeeper (and kazoo) do
        await client.CreateAsync(root + "/guarded", ReadOnlyMemory<byte>.Empty,
            acl: [Acl.Digest("kazoo", "kpw", Permissions.All), new Acl(Permissions.Read, "world", "anyone")]);

        var script = Path.Combine(Path.GetTempPath(), $"kazoo-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(script, KazooScript);
        try
        {
            var (code, output) = await RunAsync("/usr/bin/python3", script, zk.ConnectString, root);
            Assert.True(code == 0, output);
            Assert.Contains("ours-data " + Convert.ToHexString(bytes).ToLowerInvariant(), output);
            Assert.Contains($"ours-owner 0x{client.SessionId:x}", output);
            Assert.Contains($"children guarded,ours,{sequential[(root.Length + 1)..]}", output);
        }
        finally
        {
            File.Delete(script);
        }

        Assert.Equal("kazoo wrote this", Encoding.UTF8.GetString((await client.GetDataAsync(root + "/guarded")).Data));
        await Assert.ThrowsAsync<NoAuthException>(() => client.GetDataAsync(root + "/theirs"));
        await client.AddAuthAsync("digest", Encoding.UTF8.GetBytes("kazoo:kpw"));
        Assert.Equal("from kazoo ✓", Encoding.UTF8.GetString((await client.GetDataAsync(root + "/theirs")).Data));
    }

    [Fact]
    public async Task TheJavaClient_ReadsWhatWeWrite_AndWeReadWhatItWrites()
    {
        var root = SingleServer.NewRoot();
        await using var client = await zk.ConnectAsync();
        await client.CreateAsync(root, Encoding.UTF8.GetBytes("written by Trellis"));
        await client.CreateAsync(root + "/eph", ReadOnlyMemory<byte>.Empty, CreateMode.Ephemeral);

        const string ZkCli = "/usr/share/zookeeper/bin/zkCli.sh";
        var (getCode, get) = await RunAsync(ZkCli, "-server", zk.ConnectString, "get", root);
        Assert.True(getCode == 0, get);
        Assert.Contains("written by Trellis", get);

        var (statCode, stat) = await RunAsync(ZkCli, "-server", zk.ConnectString, "stat", root + "/eph");
        Assert.True(statCode == 0, stat);
        Assert.Contains($"ephemeralOwner = 0x{client.SessionId:x}", stat);

        var (createCode, created) = await RunAsync(ZkCli, "-server", zk.ConnectString, "create", root + "/java", "from the Java client");
        Assert.True(createCode == 0, created);
        Assert.Equal("from the Java client", Encoding.UTF8.GetString((await client.GetDataAsync(root + "/java")).Data));
    }
}
