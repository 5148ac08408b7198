using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

using Trellis.Rpc;
using Trellis.Rpc.Tests;
using Trellis.Thrift.Services;
using Xunit;

namespace Trellis.Testing;

/// <summary>
/// shared/RELIABILITY.md's malformed-input table against something that takes Thrift calls on a socket (the server,
/// the proxy): each case gets its expected result, and a healthy client on another connection keeps working
/// throughout. A derived class says how to start the target and what differs (names, name errors).
/// </summary>
public abstract class MalformedInputCases : IAsyncLifetime
{
    private IAsyncDisposable _target = null!;
    private int _port;
    private EchoService _service = null!;
    private IThriftChannel _healthy = null!;
    private Task _healthyLoop = Task.CompletedTask;
    private readonly CancellationTokenSource _stop = new();
    private int _healthyCalls;
    private Exception? _healthyFailure;

    /// <summary>
    /// Starts the target with <paramref name="limits"/> (and, when given, the read timeouts): where it listens on TCP,
    /// the Echo service behind it, a channel a well-behaved client would use, and what stops it all.
    /// </summary>
    protected abstract Task<(int Port, EchoService Service, IThriftChannel Healthy, IAsyncDisposable Target)> StartAsync(
        ThriftLimits limits, TimeSpan? frameReadTimeout = null, TimeSpan? idleTimeout = null);

    /// <summary>The name a call of an Echo method goes under.</summary>
    protected abstract string Name(string method);

    public async Task InitializeAsync()
    {
        (_port, _service, _healthy, _target) = await StartAsync(new ThriftLimits { MaxFrameSize = 64 * 1024 });
        var client = new Trellis.Rpc.Tests.Echo.Echo.Client(_healthy);
        _healthyLoop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await client.EchoAsync("healthy");
                    Interlocked.Increment(ref _healthyCalls);
                }
                catch (Exception e)
                {
                    _healthyFailure ??= e;
                }
            }
        });
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _healthyLoop;
        await _target.DisposeAsync();
        Assert.Null(_healthyFailure);
        Assert.True(_healthyCalls > 0);
    }

    protected int Port => _port;

    protected EchoService Service => _service;

    protected sealed class Raw : IDisposable
    {
        private readonly TcpClient _client = new();
        private readonly byte[] _buffer = new byte[256 * 1024];
        private int _filled;

        public static async Task<Raw> ConnectAsync(int port)
        {
            var raw = new Raw();
            await raw._client.ConnectAsync("127.0.0.1", port);
            return raw;
        }

        public async Task SendAsync(byte[] bytes) => await _client.GetStream().WriteAsync(bytes);

        /// <summary>Reads one framed reply, or null when the server closed the connection.</summary>
        public async Task<(TMessageHeader Header, TApplicationException? Error, string? Text)?> ReadReplyAsync(ThriftProtocol protocol = ThriftProtocol.Binary)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using var decoder = new ThriftFrameDecoder(new ThriftEncoding(ThriftFraming.Framed, protocol));
            while (true)
            {
                var sequence = new ReadOnlySequence<byte>(_buffer, 0, _filled);
                if (decoder.TryReadFrame(ref sequence, out var frame))
                {
                    var result = new StringResult();
                    var header = ThriftMessages.Read(frame, result, out var error);
                    var consumed = _filled - (int)sequence.Length;
                    Array.Copy(_buffer, consumed, _buffer, 0, _filled - consumed);
                    _filled -= consumed;
                    return (header, error, result.Text);
                }

                var read = await _client.GetStream().ReadAsync(_buffer.AsMemory(_filled), timeout.Token);
                if (read == 0)
                {
                    return null;
                }

                _filled += read;
            }
        }

        public async Task<bool> ClosedAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                while (true)
                {
                    if (await _client.GetStream().ReadAsync(_buffer, timeout.Token) == 0)
                    {
                        return true;
                    }
                }
            }
            catch (IOException)
            {
                return true; // reset by the server
            }
        }

        public void Dispose() => _client.Dispose();
    }

    /// <summary>Reads field 0 (a string result) if there is one.</summary>
    protected sealed class StringResult : IThriftStruct
    {
        public string? Text { get; private set; }

        public void Read<TReader>(ref TReader reader) where TReader : IThriftReader, allows ref struct
        {
            var scope = reader.ReadStructBegin();
            for (var f = reader.ReadFieldBegin(); !f.IsStop; f = reader.ReadFieldBegin())
            {
                if (f is { Id: 0, Type: TType.String })
                {
                    Text = reader.ReadString();
                }
                else
                {
                    reader.Skip(f.Type);
                }
            }

            reader.ReadStructEnd(scope);
        }

        public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct => throw new NotSupportedException();
    }

    /// <summary>A call of an Echo method (named as the target wants it) with one string argument, as raw bytes.</summary>
    protected byte[] EchoCall(string method, int seqId, string text, TMessageType type = TMessageType.Call, ThriftEncoding? encoding = null) =>
        RawCall(Name(method), seqId, text, type, encoding);

    /// <summary>A call with one string argument under exactly <paramref name="name"/>.</summary>
    protected static byte[] RawCall(string name, int seqId, string text, TMessageType type = TMessageType.Call, ThriftEncoding? encoding = null)
    {
        using var output = new PooledBufferWriter();
        ThriftMessages.Write(output, encoding ?? ThriftEncoding.FramedBinary, new TMessageHeader(name, type, seqId), new TextArgs(text));
        return output.WrittenSpan.ToArray();
    }

    private sealed class SlowArgs(int milliseconds) : IThriftWritable
    {
        public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct
        {
            var scope = writer.WriteStructBegin();
            writer.WriteFieldBegin(TType.I32, 1);
            writer.WriteI32(milliseconds);
            writer.WriteFieldBegin(TType.String, 2);
            writer.WriteString("slow");
            writer.WriteFieldStop();
            writer.WriteStructEnd(scope);
        }
    }

    private sealed class TextArgs(string text) : IThriftWritable
    {
        public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct
        {
            var scope = writer.WriteStructBegin();
            writer.WriteFieldBegin(TType.String, 1);
            writer.WriteString(text);
            writer.WriteFieldStop();
            writer.WriteStructEnd(scope);
        }
    }

    protected static byte[] Framed(byte[] payload)
    {
        var framed = new byte[payload.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(framed, payload.Length);
        payload.CopyTo(framed, 4);
        return framed;
    }

    [Theory]
    [InlineData("7FFFFFFF")]
    [InlineData("80000000")]
    [InlineData("FFFFFFFF")]
    [InlineData("00000000")]
    [InlineData("474554202F20485454502F312E310D0A0D0A")] // GET / HTTP/1.1
    [InlineData("16030100A5010000A10303")]               // a TLS ClientHello
    [InlineData("80020001000000046563686F00000001")]     // binary version 0x8002
    [InlineData("8223010465636800")]                     // compact version 3
    public async Task NotThriftOrImpossibleFrames_CloseTheConnection_WithoutAnswer(string hex)
    {
        using var raw = await Raw.ConnectAsync(_port);
        await raw.SendAsync(Convert.FromHexString(hex));
        Assert.True(await raw.ClosedAsync());
    }

    [Fact]
    public async Task TheFrameLimit_ExactlyTheMaxIsServed_OneByteMoreIsRefused()
    {
        var template = EchoCall("echo", 1, "");
        var room = 64 * 1024 - (template.Length - 4);
        using (var raw = await Raw.ConnectAsync(_port))
        {
            var exact = EchoCall("echo", 1, new string('x', room)); // a binary string's length prefix is 4 bytes, whatever its length
            Assert.Equal(64 * 1024, BinaryPrimitives.ReadInt32BigEndian(exact));
            await raw.SendAsync(exact);
            var reply = await raw.ReadReplyAsync();
            Assert.NotNull(reply);
            Assert.Equal(room, reply.Value.Text!.Length);
        }

        using (var raw = await Raw.ConnectAsync(_port))
        {
            await raw.SendAsync(EchoCall("echo", 1, new string('x', room + 1)));
            Assert.True(await raw.ClosedAsync());
        }
    }

    [Fact]
    public async Task HalfAFrameThenEof_NeverRunsTheHandler()
    {
        using var raw = await Raw.ConnectAsync(_port);
        var call = EchoCall("fire", 1, "half", TMessageType.Oneway);
        await raw.SendAsync(call[..(call.Length / 2)]);
        raw.Dispose();
        // a whole oneway on another connection is the marker: once it ran, the half one had its chance
        using var other = await Raw.ConnectAsync(_port);
        await other.SendAsync(EchoCall("fire", 1, "whole", TMessageType.Oneway));
        await Wait.UntilAsync(() => { lock (_service.Fired) return _service.Fired.Contains("whole"); });
        await Task.Delay(100);
        lock (_service.Fired)
        {
            Assert.DoesNotContain("half", _service.Fired);
        }
    }

    [Fact]
    public async Task TrailingBytesInAFrame_IsAProtocolError_AndTheConnectionGoesOn()
    {
        using var raw = await Raw.ConnectAsync(_port);
        var call = EchoCall("echo", 5, "x");
        var payload = call[4..].Concat(new byte[] { 0, 0, 0 }).ToArray();
        await raw.SendAsync(Framed(payload));
        var reply = await raw.ReadReplyAsync();
        Assert.Equal(5, reply!.Value.Header.SeqId);
        Assert.Equal(TApplicationExceptionType.ProtocolError, reply.Value.Error!.Type);
        await raw.SendAsync(EchoCall("echo", 6, "next"));
        Assert.Equal("next", (await raw.ReadReplyAsync())!.Value.Text);
    }

    [Fact]
    public async Task TwoCallsInOneSegment_AreBothAnswered()
    {
        using var raw = await Raw.ConnectAsync(_port);
        await raw.SendAsync([.. EchoCall("echo", 1, "one"), .. EchoCall("echo", 2, "two")]);
        var replies = new[] { await raw.ReadReplyAsync(), await raw.ReadReplyAsync() };
        Assert.Equal(["one", "two"], replies.OrderBy(r => r!.Value.Header.SeqId).Select(r => r!.Value.Text));
    }

    [Theory]
    [InlineData("80010001 FFFFFFFF")]          // name length -1
    [InlineData("80010001 7FFFFFFF 6563686F")] // name length 2^31-1
    public async Task ImpossibleNames_CloseTheConnection(string hex)
    {
        using var raw = await Raw.ConnectAsync(_port);
        await raw.SendAsync(Framed(Convert.FromHexString(hex.Replace(" ", ""))));
        Assert.True(await raw.ClosedAsync());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]   // REPLY sent to a server
    [InlineData(3)]   // EXCEPTION sent to a server
    [InlineData(5)]
    [InlineData(255)]
    public async Task MessagesThatAreNotCalls_GetInvalidMessageType_WithTheirSeqId(int type)
    {
        using var raw = await Raw.ConnectAsync(_port);
        var call = EchoCall("echo", 77, "x");
        call[7] = (byte)type; // the type byte of the strict version word
        await raw.SendAsync(call);
        var reply = await raw.ReadReplyAsync();
        Assert.Equal(77, reply!.Value.Header.SeqId);
        Assert.Equal(TApplicationExceptionType.InvalidMessageType, reply.Value.Error!.Type);
    }

    /// <summary>A call under <paramref name="name"/> gets UNKNOWN_METHOD naming <paramref name="expected"/>, and the connection goes on.</summary>
    protected async Task AssertUnknownMethodAsync(string name, string expected)
    {
        using var raw = await Raw.ConnectAsync(_port);
        await raw.SendAsync(RawCall(name, 9, "x"));
        var reply = await raw.ReadReplyAsync();
        Assert.Equal(9, reply!.Value.Header.SeqId);
        Assert.Equal(TApplicationExceptionType.UnknownMethod, reply.Value.Error!.Type);
        Assert.Contains(expected, reply.Value.Error.Message);
        await raw.SendAsync(EchoCall("echo", 10, "usable"));
        Assert.Equal("usable", (await raw.ReadReplyAsync())!.Value.Text);
    }

    [Fact]
    public async Task AHugeName_IsEchoedAtMost256Bytes()
    {
        using var raw = await Raw.ConnectAsync(_port);
        await raw.SendAsync(RawCall("Nope:" + new string('n', 10_000), 1, "x"));
        var reply = await raw.ReadReplyAsync();
        Assert.True(Encoding.UTF8.GetByteCount(reply!.Value.Error!.Message) < 400, reply.Value.Error.Message.Length.ToString());
    }

    [Theory]
    [InlineData("0B0001 FFFFFFFF 00")]                 // negative string length
    [InlineData("0F0001 0B FFFFFFFF 00")]              // negative list size
    [InlineData("0B0001 40000000 6162 00")]            // a 1 GB string in a small frame
    [InlineData("0D0001 0808 20000000 00000001 00")]   // map count 2^29
    [InlineData("200001 00")]                          // unknown type
    public async Task BadArguments_GetProtocolError_AndTheConnectionGoesOn(string argumentsHex)
    {
        using var raw = await Raw.ConnectAsync(_port);
        var header = EchoCall("echo", 3, "")[4..];
        var envelope = header[..EnvelopeLength]; // version, name length, name, seqid
        await raw.SendAsync(Framed([.. envelope, .. Convert.FromHexString(argumentsHex.Replace(" ", ""))]));
        var reply = await raw.ReadReplyAsync();
        Assert.Equal(3, reply!.Value.Header.SeqId);
        Assert.Equal(TApplicationExceptionType.ProtocolError, reply.Value.Error!.Type);
        await raw.SendAsync(EchoCall("echo", 4, "fine"));
        Assert.Equal("fine", (await raw.ReadReplyAsync())!.Value.Text);
    }

    private int EnvelopeLength => 4 + 4 + Encoding.UTF8.GetByteCount(Name("echo")) + 4;

    [Fact]
    public async Task DeepNesting_IsADepthLimit_NotACrash()
    {
        using var raw = await Raw.ConnectAsync(_port);
        var envelope = EchoCall("echo", 8, "")[4..][..EnvelopeLength];
        var nested = Enumerable.Repeat(new byte[] { 0x0C, 0x00, 0x01 }, 10_000).SelectMany(b => b).Concat(new byte[10_001]).ToArray(); // within the frame limit
        await raw.SendAsync(Framed([.. envelope, .. nested]));
        var reply = await raw.ReadReplyAsync();
        Assert.Equal(TApplicationExceptionType.ProtocolError, reply!.Value.Error!.Type);
        Assert.Contains("nesting", reply.Value.Error.Message);
    }

    [Fact]
    public async Task ASlowSender_IsCutOffAtTheFrameDeadline()
    {
        var (port, _, _, target) = await StartAsync(ThriftLimits.Default, frameReadTimeout: TimeSpan.FromMilliseconds(300));
        await using var _ = target;
        using var raw = await Raw.ConnectAsync(port);
        var call = EchoCall("echo", 1, "slow");
        await raw.SendAsync(call[..10]);
        Assert.True(await raw.ClosedAsync());
    }

    [Fact]
    public async Task AnIdleConnection_IsClosedAfterTheIdleTimeout()
    {
        var (port, _, _, target) = await StartAsync(ThriftLimits.Default, idleTimeout: TimeSpan.FromMilliseconds(300));
        await using var _ = target;
        using var raw = await Raw.ConnectAsync(port);
        await raw.SendAsync(EchoCall("echo", 1, "then idle"));
        Assert.Equal("then idle", (await raw.ReadReplyAsync())!.Value.Text);
        Assert.True(await raw.ClosedAsync());
    }

    [Fact]
    public async Task AConnectionGoingIdleAfterASlowCall_IsClosedAfterTheIdleTimeoutToo()
    {
        var (port, _, _, target) = await StartAsync(ThriftLimits.Default, idleTimeout: TimeSpan.FromMilliseconds(300));
        await using var _ = target;
        using var raw = await Raw.ConnectAsync(port);
        using var output = new PooledBufferWriter();
        // the read after this call starts while the call is still running: the idle clock must start at its answer
        ThriftMessages.Write(output, ThriftEncoding.FramedBinary, new TMessageHeader(Name("slow"), TMessageType.Call, 1), new SlowArgs(200));
        await raw.SendAsync(output.WrittenSpan.ToArray());
        Assert.Equal("slow", (await raw.ReadReplyAsync())!.Value.Text);
        Assert.True(await raw.ClosedAsync());
    }
}
