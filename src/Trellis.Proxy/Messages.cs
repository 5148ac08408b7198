using System.Buffers;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Proxy;

/// <summary>The envelope of a message and where its body starts; the body itself is never decoded.</summary>
internal static class Envelope
{
    public static TMessageHeader Read(ReadOnlySpan<byte> payload, ThriftProtocol protocol, ThriftLimits limits, out int bodyOffset)
    {
        if (protocol == ThriftProtocol.Binary)
        {
            var binary = new ThriftBinaryReader(payload, limits);
            var header = binary.ReadMessageBegin();
            bodyOffset = binary.Position;
            return header;
        }

        var compact = new ThriftCompactReader(payload, limits);
        var h = compact.ReadMessageBegin();
        bodyOffset = compact.Position;
        return h;
    }

    /// <summary>
    /// Appends a whole frame: <paramref name="framing"/>, a new envelope, and <paramref name="body"/> copied as it is
    /// when it is already in <paramref name="protocol"/>, re-encoded otherwise.
    /// </summary>
    public static void WriteFrame(PooledBufferWriter output, ThriftFraming framing, ThriftProtocol protocol, in TMessageHeader message,
        ReadOnlySpan<byte> body, ThriftProtocol bodyProtocol, THeaderInfo? header, ThriftLimits limits)
    {
        if (framing == ThriftFraming.Header)
        {
            header ??= new THeaderInfo();
            header.Protocol = protocol;
            header.SeqId = message.SeqId;
        }

        var mark = ThriftFrameWriter.Begin(output, framing, header);
        try
        {
            if (protocol == ThriftProtocol.Binary)
            {
                var writer = new ThriftBinaryWriter(output);
                writer.WriteMessageBegin(message);
                writer.Flush();
            }
            else
            {
                var writer = new ThriftCompactWriter(output);
                writer.WriteMessageBegin(message);
                writer.Flush();
            }

            if (bodyProtocol == protocol)
            {
                output.Write(body);
            }
            else
            {
                ThriftTranscoder.CopyStruct(body, bodyProtocol, output, protocol, limits);
            }
        }
        catch
        {
            ThriftFrameWriter.Abandon(output, mark);
            throw;
        }

        ThriftFrameWriter.End(output, mark, limits);
    }
}

/// <summary>A message body taken off a connection, in a pooled array (the connection's buffer moves on).</summary>
internal readonly struct PooledBody : IDisposable
{
    private readonly byte[]? _array;

    public PooledBody(ReadOnlySpan<byte> bytes)
    {
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(bytes.Length, 16));
        bytes.CopyTo(_array);
        Length = bytes.Length;
    }

    public int Length { get; }

    public ReadOnlySpan<byte> Span => _array is null ? default : _array.AsSpan(0, Length);

    public void Dispose()
    {
        if (_array is not null)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }
    }
}

/// <summary>One application call in flight through the proxy.</summary>
internal sealed class ForwardCall
{
    public required FrontendConnection Client { get; init; }

    /// <summary>The name as the caller sent it (<c>service:method</c>), restored on the reply.</summary>
    public required string Name { get; init; }

    public required string Service { get; init; }

    public required string Method { get; init; }

    public required TMessageType Type { get; init; }

    /// <summary>The caller's seqid, restored on the reply.</summary>
    public required int SeqId { get; init; }

    /// <summary>The caller's protocol (the body's).</summary>
    public required ThriftProtocol Protocol { get; init; }

    public required PooledBody Body { get; init; }

    /// <summary>The caller's THeader info headers (forwarded to THeader backends), or null.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Headers { get; init; }

    public ushort HeaderFlags { get; init; }

    /// <summary>When the call must be answered (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    public long Deadline { get; set; }

    public bool IsOneway => Type == TMessageType.Oneway;
}

/// <summary>What a backend answered: REPLY or EXCEPTION, with the body in the backend's protocol.</summary>
internal readonly record struct BackendReply(TMessageType Type, PooledBody Body, ThriftProtocol Protocol, IReadOnlyList<KeyValuePair<string, string>>? Headers);
