using System.Buffers;
using Trellis.Thrift.Buffers;
using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

/// <summary>
/// The write path allocates nothing once its buffer has grown: counted with the runtime's own
/// allocation counter, not timed.
/// </summary>
public class AllocationTests
{
    /// <summary>
    /// Bytes allocated by one call of <paramref name="action"/> once warm: the least of several rounds,
    /// because the runtime's own tier-up work can land on the thread now and then; an allocation made
    /// by the code itself shows up in every round.
    /// </summary>
    private static long SteadyStateAllocation(Action action)
    {
        for (var i = 0; i < 3; i++)
        {
            action();
        }

        var least = long.MaxValue;
        for (var round = 0; round < 5 && least > 0; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            action();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return least;
    }

    [Theory]
    [InlineData(ThriftFraming.Framed, ThriftProtocol.Binary)]
    [InlineData(ThriftFraming.Framed, ThriftProtocol.Compact)]
    [InlineData(ThriftFraming.Unframed, ThriftProtocol.Compact)]
    [InlineData(ThriftFraming.Header, ThriftProtocol.Binary)]
    [InlineData(ThriftFraming.Header, ThriftProtocol.Compact)]
    public void WritingMessages_AllocatesNothing_InSteadyState(ThriftFraming framing, ThriftProtocol protocol)
    {
        var encoding = new ThriftEncoding(framing, protocol);
        var body = Samples.Sample0();
        var info = new THeaderInfo();
        info.Add("deadline", "100");
        var header = new TMessageHeader("echo", TMessageType.Call, 1);
        using var output = new PooledBufferWriter();

        void WriteSome()
        {
            for (var i = 0; i < 100; i++)
            {
                output.Clear();
                ThriftMessages.Write(output, encoding, header, body, info);
            }
        }

        Assert.Equal(0, SteadyStateAllocation(WriteSome));
    }

    [Fact]
    public void StringsOfEveryWidth_AreEncodedWithoutAllocating()
    {
        var s = new DynStruct();
        using var output = new PooledBufferWriter();
        var texts = new[] { "ascii", "héllo wörld ✓ 😀", new string('é', 5000), new string('x', 100_000) };
        var protocols = new[] { ThriftProtocol.Binary, ThriftProtocol.Compact };

        void WriteAll()
        {
            foreach (var protocol in protocols)
            {
                output.Clear();
                if (protocol == ThriftProtocol.Binary)
                {
                    var w = new ThriftBinaryWriter(output);
                    foreach (var t in texts) w.WriteString(t);
                    w.Flush();
                }
                else
                {
                    var w = new ThriftCompactWriter(output);
                    foreach (var t in texts) w.WriteString(t);
                    w.Flush();
                }
            }
        }

        Assert.Equal(0, SteadyStateAllocation(WriteAll));
    }

    [Fact]
    public void ReadingFrames_AllocatesOnlyTheValues()
    {
        // a struct of numbers only: decoding the frame and skipping the body allocates nothing at all
        var body = new DynStruct().Add(1, DynValue.I64(5)).Add(2, DynValue.List(TType.I32, Enumerable.Range(0, 100).Select(DynValue.I32)));
        var bytes = Enumerable.Repeat(Bytes.Message(ThriftEncoding.FramedCompact, new TMessageHeader("m", TMessageType.Call, 1), body), 50).SelectMany(b => b).ToArray();
        using var decoder = new ThriftFrameDecoder(ThriftEncoding.FramedCompact);
        var bodyLength = Bytes.Write(body, ThriftProtocol.Compact).Length;

        int ReadAll()
        {
            var buffer = new ReadOnlySequence<byte>(bytes);
            var n = 0;
            while (decoder.TryReadFrame(ref buffer, out var frame))
            {
                // the envelope holds a name string, so skip just the body
                var reader = new ThriftCompactReader(frame.Payload.Span.Slice(frame.Payload.Length - bodyLength));
                reader.Skip(TType.Struct);
                n++;
            }

            return n;
        }

        Assert.Equal(50, ReadAll());
        Assert.Equal(0, SteadyStateAllocation(() => ReadAll()));
    }
}
