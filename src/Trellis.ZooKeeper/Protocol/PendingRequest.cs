using System.Buffers.Binary;
using Trellis.ZooKeeper.Jute;

namespace Trellis.ZooKeeper.Protocol;

internal delegate object? ReplyParser(ref JuteReader reader);

/// <summary>A request on its way: its encoded packet, how to read its reply, and who waits for it.</summary>
internal sealed class PendingRequest(OpCode op, string? path, bool isWrite, byte[] packet, ReplyParser? parse)
{
    public OpCode Op { get; } = op;

    /// <summary>The client path (for errors).</summary>
    public string? Path { get; } = path;

    /// <summary>Changes server state: losing the connection after sending it leaves the outcome unknown.</summary>
    public bool IsWrite { get; } = isWrite;

    /// <summary>Length prefix, request header (xid filled in when queued), body.</summary>
    public byte[] Packet { get; } = packet;

    public ReplyParser? Parse { get; } = parse;

    /// <summary>Runs with the reply's error code before the caller sees the result (watch registration).</summary>
    public Action<ErrorCode>? OnReply { get; init; }

    /// <summary>A reply whose error code still carries a body to read (multi).</summary>
    public bool ParseOnError { get; init; }

    public int Xid { get; private set; }

    public volatile bool Sent;

    public TaskCompletionSource<object?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void AssignXid(int xid)
    {
        Xid = xid;
        BinaryPrimitives.WriteInt32BigEndian(Packet.AsSpan(4), xid);
    }
}
