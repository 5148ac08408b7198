namespace Trellis.Thrift;

/// <summary>One message taken off a connection: its protocol-encoded bytes and, for THeader, the header.</summary>
/// <remarks>
/// <see cref="Payload"/> points into the input buffer or into the decoder's scratch space: it is valid
/// until the input is advanced past the frame or the decoder reads the next frame. Copy what must live longer.
/// </remarks>
public readonly struct ThriftFrame
{
    internal ThriftFrame(ReadOnlyMemory<byte> payload, ThriftProtocol protocol, THeaderInfo? header)
    {
        Payload = payload;
        Protocol = protocol;
        Header = header;
    }

    /// <summary>The message: envelope and body, in <see cref="Protocol"/>, transforms already undone.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    public ThriftProtocol Protocol { get; }

    /// <summary>The THeader of this frame, or null for framed and unframed messages.</summary>
    public THeaderInfo? Header { get; }
}
