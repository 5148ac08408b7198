using System.Buffers;
using System.Text.Json;
using Trellis.Thrift.Buffers;
using Trellis.Testing;
using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

/// <summary>
/// Whole messages exchanged with Apache Thrift's Python runtime: its generated Processor serving our
/// calls, its generated Client's calls read by us, and our replies read by its Client — for every
/// framing (framed, unframed, THeader with info headers and zlib), both protocols, plain and multiplexed.
/// </summary>
public class MessageConformanceTests
{
    public static TheoryData<string, string, bool> Matrix() => EncodingMatrix.WithFlag();

    private static ThriftEncoding Encoding(string framing, string protocol) => EncodingMatrix.Encoding(framing, protocol);

    private static DynStruct Args(DynStruct value) => new DynStruct().Add(1, DynValue.Struct(value));

    private static DynStruct FortyTwo() => new DynStruct().Add(5, DynValue.I32(42));

    [Theory]
    [MemberData(nameof(Matrix))]
    public void PythonProcessor_ServesOurPipelinedCalls(string framing, string protocol, bool multiplexed)
    {
        var encoding = Encoding(framing, protocol);
        var prefix = multiplexed ? "Conformance:" : "";
        THeaderInfo? Info()
        {
            if (encoding.Framing != ThriftFraming.Header) return null;
            var info = new THeaderInfo();
            info.Add("caller", "trellis-tests");
            info.Transforms.Add(THeaderTransform.Zlib);
            return info;
        }

        using var requests = new PooledBufferWriter();
        ThriftMessages.Write(requests, encoding, new TMessageHeader(prefix + "echo", TMessageType.Call, 7), Args(Samples.Sample0()), Info());
        ThriftMessages.Write(requests, encoding, new TMessageHeader(prefix + "echo", TMessageType.Call, 8), Args(FortyTwo()), Info());
        ThriftMessages.Write(requests, encoding, new TMessageHeader(prefix + "nosuch", TMessageType.Call, 9), new DynStruct(), Info());
        ThriftMessages.Write(requests, encoding, new TMessageHeader(prefix + "notify", TMessageType.Oneway, 10), new DynStruct().Add(1, DynValue.Str("hi")), Info());
        ThriftMessages.Write(requests, encoding, new TMessageHeader(prefix + "ping", TMessageType.Call, -11), new DynStruct(), Info());

        string[] args = ["serve", "--framing", framing, "--protocol", protocol, .. multiplexed ? new[] { "--multiplexed", "Conformance" } : [],
            .. framing == "header" ? new[] { "--zlib" } : []];
        var result = PythonPeer.Conformance.Run(requests.WrittenSpan.ToArray(), args);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains("notify:hi", result.Stderr);

        Assert.Equal(ThriftDetectStatus.Detected, ThriftEncodingDetector.Detect(result.Stdout, out var replyEncoding, out _));
        Assert.Equal(encoding, replyEncoding);
        var replies = ReadAll(result.Stdout, encoding);
        Assert.Equal(4, replies.Count);

        var (echo, echoBody, _, echoInfo) = replies[0];
        Assert.Equal(new TMessageHeader("echo", TMessageType.Reply, 7), echo);
        Assert.Equal(new DynStruct().Add(0, DynValue.Struct(Samples.Sample0())), echoBody);

        var (oops, oopsBody, _, _) = replies[1];
        Assert.Equal(new TMessageHeader("echo", TMessageType.Reply, 8), oops);
        Assert.Equal(new DynStruct().Add(1, DynValue.Struct(new DynStruct().Add(1, DynValue.I32(42)).Add(2, DynValue.Str("forty-two")))), oopsBody);

        var (unknown, _, error, _) = replies[2];
        Assert.Equal(TMessageType.Exception, unknown.Type);
        Assert.Equal(9, unknown.SeqId);
        Assert.Equal(TApplicationExceptionType.UnknownMethod, error!.Type);
        Assert.Contains("nosuch", error.Message);

        Assert.Equal(new TMessageHeader("ping", TMessageType.Reply, -11), replies[3].Header);
        Assert.Empty(replies[3].Body.Fields);

        if (encoding.Framing == ThriftFraming.Header)
        {
            Assert.Equal([new("caller", "trellis-tests"), new("peer", "python")], echoInfo!.Headers);
            Assert.Equal([THeaderTransform.Zlib], echoInfo.Transforms);
            Assert.Equal(7, echoInfo.SeqId);
            Assert.Equal(encoding.Protocol, echoInfo.Protocol);
        }
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public void PythonClientCalls_AreReadByUs(string framing, string protocol, bool multiplexed)
    {
        var encoding = Encoding(framing, protocol);
        string[] common = ["--framing", framing, "--protocol", protocol, .. multiplexed ? new[] { "--multiplexed", "Conformance" } : [],
            .. framing == "header" ? new[] { "--zlib", "--header", "deadline=250", "--header", "trace=abc" } : []];
        var name = multiplexed ? "Conformance:" : "";

        var echo = Single(PythonPeer.Conformance.Ok([], ["call", .. common, "--method", "echo", "--sample", "2", "--seqid", "31"]), encoding);
        Assert.Equal(new TMessageHeader(name + "echo", TMessageType.Call, 31), echo.Header);
        Assert.Equal(Args(Samples.Sample2()), echo.Body);

        var notify = Single(PythonPeer.Conformance.Ok([], ["call", .. common, "--method", "notify", "--seqid", "-2"]), encoding);
        Assert.Equal(new TMessageHeader(name + "notify", TMessageType.Oneway, -2), notify.Header);
        Assert.Equal(new DynStruct().Add(1, DynValue.Str("hello")), notify.Body);

        var ping = Single(PythonPeer.Conformance.Ok([], ["call", .. common, "--method", "ping", "--seqid", "2147483647"]), encoding);
        Assert.Equal(new TMessageHeader(name + "ping", TMessageType.Call, int.MaxValue), ping.Header);

        var nosuch = Single(PythonPeer.Conformance.Ok([], ["call", .. common, "--method", "nosuch"]), encoding);
        Assert.Equal(name + "nosuch", nosuch.Header.Name);

        if (encoding.Framing == ThriftFraming.Header)
        {
            Assert.Equal([new("deadline", "250"), new("trace", "abc")], echo.Info!.Headers);
            Assert.Equal([THeaderTransform.Zlib], echo.Info.Transforms);
            Assert.Equal(31, echo.Info.SeqId);
        }
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public void OurReplies_AreReadByPythonClient(string framing, string protocol, bool zlibAndHeaders)
    {
        var encoding = Encoding(framing, protocol);
        if (encoding.Framing != ThriftFraming.Header && zlibAndHeaders)
        {
            return; // the matrix's third axis means THeader extras here; framed/unframed run once
        }

        THeaderInfo? Info()
        {
            if (encoding.Framing != ThriftFraming.Header) return null;
            var info = new THeaderInfo();
            if (zlibAndHeaders)
            {
                info.Add("server", "trellis");
                info.Add("ünï", "cødé");
                info.Transforms.Add(THeaderTransform.Zlib);
            }

            return info;
        }

        string[] args = ["read-reply", "--framing", framing, "--protocol", protocol];

        var result = ReplyAsPythonSees(encoding, new TMessageHeader("echo", TMessageType.Reply, 5),
            new DynStruct().Add(0, DynValue.Struct(Samples.Sample0())), Info(), [.. args, "--method", "echo"]);
        Assert.Equal("result", result.GetProperty("kind").GetString());
        Assert.Equal(5, result.GetProperty("seqid").GetInt32());
        Assert.Equal(Samples.Sample0(), Bytes.ReadStruct(Convert.FromHexString(result.GetProperty("value").GetString()!), ThriftProtocol.Binary));
        if (zlibAndHeaders)
        {
            var headers = result.GetProperty("headers");
            Assert.Equal("trellis", headers.GetProperty("server").GetString());
            Assert.Equal("cødé", headers.GetProperty("ünï").GetString());
        }

        var oops = ReplyAsPythonSees(encoding, new TMessageHeader("echo", TMessageType.Reply, 6),
            new DynStruct().Add(1, DynValue.Struct(new DynStruct().Add(1, DynValue.I32(7)).Add(2, DynValue.Str("no")))), Info(), [.. args, "--method", "echo"]);
        Assert.Equal("oops", oops.GetProperty("kind").GetString());
        Assert.Equal(7, oops.GetProperty("code").GetInt32());
        Assert.Equal("no", oops.GetProperty("message").GetString());

        var failed = ReplyAsPythonSees(encoding, new TMessageHeader("ping", TMessageType.Exception, 8),
            new TApplicationException(TApplicationExceptionType.InternalError, "boom"), Info(), [.. args, "--method", "ping"]);
        Assert.Equal("app_exception", failed.GetProperty("kind").GetString());
        Assert.Equal((int)TApplicationExceptionType.InternalError, failed.GetProperty("type").GetInt32());
        Assert.Equal("boom", failed.GetProperty("message").GetString());

        var ping = ReplyAsPythonSees(encoding, new TMessageHeader("ping", TMessageType.Reply, 9), new DynStruct(), Info(), [.. args, "--method", "ping"]);
        Assert.Equal("void", ping.GetProperty("kind").GetString());
    }

    private static JsonElement ReplyAsPythonSees(ThriftEncoding encoding, TMessageHeader header, IThriftWritable body, THeaderInfo? info, string[] args)
    {
        using var output = new PooledBufferWriter();
        ThriftMessages.Write(output, encoding, header, body, info);
        return PythonPeer.Conformance.Json(output.WrittenSpan.ToArray(), args);
    }

    private sealed record Message(TMessageHeader Header, DynStruct Body, TApplicationException? Error, THeaderInfo? Info);

    private static Message Single(byte[] bytes, ThriftEncoding expected)
    {
        Assert.Equal(ThriftDetectStatus.Detected, ThriftEncodingDetector.Detect(bytes, out var detected, out _));
        Assert.Equal(expected, detected);
        var all = ReadAll(bytes, detected);
        return Assert.Single(all);
    }

    private static List<Message> ReadAll(byte[] bytes, ThriftEncoding encoding)
    {
        using var decoder = new ThriftFrameDecoder(encoding);
        var buffer = new ReadOnlySequence<byte>(bytes);
        var messages = new List<Message>();
        while (decoder.TryReadFrame(ref buffer, out var frame))
        {
            var body = new DynStruct();
            var header = ThriftMessages.Read(frame, body, out var error);
            THeaderInfo? info = null;
            if (frame.Header is { } h)
            {
                // the decoder reuses its header object: copy what the test inspects
                info = new THeaderInfo { Flags = h.Flags, SeqId = h.SeqId, Protocol = h.Protocol };
                foreach (var (k, v) in h.Headers) info.Add(k, v);
                foreach (var t in h.Transforms) info.Transforms.Add(t);
            }

            messages.Add(new Message(header, body, error, info));
        }

        Assert.True(buffer.IsEmpty, $"{buffer.Length} bytes left that are not a whole message");
        return messages;
    }
}
