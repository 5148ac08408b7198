using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Trellis.Rpc.Tests;

/// <summary>The receive side of the proxy's connections: what it holds while idle, and that waiting for data first loses no byte.</summary>
public sealed class SocketReaderTests
{
    private static async Task<(Socket Client, Socket Server)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await listener.AcceptAsync());
    }

    [Fact]
    public async Task WaitingForData_AnIdleReaderHoldsNoBuffer_AndAPartialFrameIsKeptAcrossReads()
    {
        var (client, server) = await PairAsync();
        using var clientSide = client;
        using var serverSide = server;
        using var reader = new SocketReader(server, SocketReader.Always, initialSize: 64);

        var pending = reader.ReadAsync().AsTask();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        Assert.False(reader.HoldsBuffer); // waiting for the first byte with no buffer

        await client.SendAsync("hello, "u8.ToArray());
        var (data, completed) = await pending;
        Assert.False(completed);
        Assert.True(reader.HoldsBuffer);
        Assert.Equal("hello, ", System.Text.Encoding.ASCII.GetString(data.ToArray()));
        reader.AdvanceTo(data.GetPosition(5)); // ", " is not consumed: a frame's first part

        // more than the initial buffer, so it grows while keeping the unconsumed part in front
        var rest = new string('w', 200);
        await client.SendAsync(System.Text.Encoding.ASCII.GetBytes(rest));
        var text = "";
        while (text.Length < 2 + rest.Length)
        {
            (data, _) = await reader.ReadAsync();
            text = System.Text.Encoding.ASCII.GetString(data.ToArray());
        }

        Assert.Equal(", " + rest, text);
        reader.AdvanceTo(data.End);

        pending = reader.ReadAsync().AsTask();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted, "the wait ended with nothing sent");
        Assert.False(reader.HoldsBuffer); // everything consumed: the buffer went back to the pool while waiting
        client.Shutdown(SocketShutdown.Send);
        (data, completed) = await pending;
        Assert.True(completed);
        Assert.True(data.IsEmpty);
    }

    [Fact]
    public async Task WithoutWaitingForData_TheBufferIsKeptForTheConnection()
    {
        var (client, server) = await PairAsync();
        using var clientSide = client;
        using var serverSide = server;
        using var reader = new SocketReader(server);
        await client.SendAsync("x"u8.ToArray());
        var (data, _) = await reader.ReadAsync();
        reader.AdvanceTo(data.End);
        var pending = reader.ReadAsync().AsTask();
        await Task.Delay(50);
        Assert.True(reader.HoldsBuffer); // a busy backend connection keeps its buffer: no extra system call per read
        client.Shutdown(SocketShutdown.Send);
        Assert.True((await pending).Completed);
    }

    [Fact]
    public async Task ThePeekingNetworkStream_AZeroByteReadWaitsForData_AlsoAfterEarlierReads()
    {
        var (client, server) = await PairAsync();
        using var clientSide = client;
        using var stream = new PeekingNetworkStream(server); // the server's pipe reader waits with zero-byte reads on it
        var buffer = new byte[16];
        for (var i = 0; i < 4; i++)
        {
            // a read that finds its data already there, then one that pends and completes by the socket engine's event:
            // after the first kind the runtime completes a plain zero-byte receive at once, with nothing to read
            Task<int> read;
            if (i % 2 == 0)
            {
                await client.SendAsync(new byte[] { 1, 2, 3 });
                read = stream.ReadAsync(buffer).AsTask(); // at once: before the socket engine has seen the arrival
            }
            else
            {
                read = stream.ReadAsync(buffer).AsTask();
                await Task.Delay(20);
                await client.SendAsync(new byte[] { 1, 2, 3 });
            }

            Assert.Equal(3, await read);

            var wait = stream.ReadAsync(Memory<byte>.Empty).AsTask();
            await Task.Delay(50);
            Assert.False(wait.IsCompleted, "the zero-byte read ended with nothing sent");
            await client.SendAsync(new byte[] { 4 });
            Assert.Equal(0, await wait);
            Assert.Equal(1, await stream.ReadAsync(buffer)); // the byte that ended the wait was not consumed by it
        }

        client.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await stream.ReadAsync(Memory<byte>.Empty));
        Assert.Equal(0, await stream.ReadAsync(buffer)); // the end
    }
}
