using Trellis.Thrift.Buffers;

namespace Trellis.Thrift;

/// <summary>Whole messages: framing, envelope and body in one call.</summary>
public static class ThriftMessages
{
    /// <summary>
    /// Appends one framed message to <paramref name="output"/>. For THeader, <paramref name="header"/>
    /// supplies flags, info headers and transforms; its protocol and sequence id are set from the message.
    /// </summary>
    public static void Write<TBody>(PooledBufferWriter output, ThriftEncoding encoding, in TMessageHeader message, TBody body,
        THeaderInfo? header = null, ThriftLimits? limits = null)
        where TBody : IThriftWritable
    {
        ArgumentNullException.ThrowIfNull(body);
        if (encoding.Framing == ThriftFraming.Header)
        {
            header ??= new THeaderInfo();
            header.Protocol = encoding.Protocol;
            header.SeqId = message.SeqId;
        }

        var mark = ThriftFrameWriter.Begin(output, encoding.Framing, header);
        try
        {
            switch (encoding.Protocol)
            {
                case ThriftProtocol.Binary:
                    var binary = new ThriftBinaryWriter(output);
                    binary.WriteMessageBegin(message);
                    body.Write(ref binary);
                    binary.WriteMessageEnd();
                    binary.Flush();
                    break;
                case ThriftProtocol.Compact:
                    var compact = new ThriftCompactWriter(output);
                    compact.WriteMessageBegin(message);
                    body.Write(ref compact);
                    compact.WriteMessageEnd();
                    compact.Flush();
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "unknown protocol");
            }
        }
        catch
        {
            ThriftFrameWriter.Abandon(output, mark);
            throw;
        }

        ThriftFrameWriter.End(output, mark, limits);
    }

    /// <summary>Reads only the envelope of a frame's message.</summary>
    public static TMessageHeader ReadHeader(in ThriftFrame frame, ThriftLimits? limits = null, bool strictRead = false)
    {
        var span = frame.Payload.Span;
        if (frame.Protocol == ThriftProtocol.Binary)
        {
            var binary = new ThriftBinaryReader(span, limits, strictRead);
            return binary.ReadMessageBegin();
        }

        var compact = new ThriftCompactReader(span, limits);
        return compact.ReadMessageBegin();
    }

    /// <summary>
    /// Reads a frame's message into <paramref name="body"/>; an EXCEPTION message is read into
    /// <paramref name="exception"/> instead and <paramref name="body"/> is left alone. The message
    /// must fill its frame exactly.
    /// </summary>
    public static TMessageHeader Read<TBody>(in ThriftFrame frame, TBody body, out TApplicationException? exception,
        ThriftLimits? limits = null, bool strictRead = false)
        where TBody : IThriftStruct
    {
        ArgumentNullException.ThrowIfNull(body);
        var span = frame.Payload.Span;
        TMessageHeader header;
        int consumed;
        if (frame.Protocol == ThriftProtocol.Binary)
        {
            var binary = new ThriftBinaryReader(span, limits, strictRead);
            header = ReadBody(ref binary, body, out exception);
            consumed = binary.Position;
        }
        else
        {
            var compact = new ThriftCompactReader(span, limits);
            header = ReadBody(ref compact, body, out exception);
            consumed = compact.Position;
        }

        if (consumed != span.Length)
        {
            throw new TProtocolException(TProtocolErrorKind.InvalidData, $"{span.Length - consumed} bytes left over after the message in its frame");
        }

        return header;
    }

    private static TMessageHeader ReadBody<TReader, TBody>(ref TReader reader, TBody body, out TApplicationException? exception)
        where TReader : IThriftReader, allows ref struct
        where TBody : IThriftStruct
    {
        var header = reader.ReadMessageBegin();
        if (header.Type == TMessageType.Exception)
        {
            exception = TApplicationException.Read(ref reader);
        }
        else
        {
            exception = null;
            body.Read(ref reader);
        }

        reader.ReadMessageEnd();
        return header;
    }
}
