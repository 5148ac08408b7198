using System.Buffers.Binary;
using System.Text;

namespace Trellis.ZooKeeper.Jute;

/// <summary>
/// Reads jute from one whole packet. Every length is checked against the bytes left before anything is
/// allocated; a violation is a <see cref="ZooKeeperProtocolException"/> and the connection is dropped.
/// </summary>
internal ref struct JuteReader(ReadOnlySpan<byte> buffer)
{
    private readonly ReadOnlySpan<byte> _buffer = buffer;
    private int _pos;

    public readonly int Remaining => _buffer.Length - _pos;

    public int Int() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long Long() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public bool Bool() => Take(1)[0] != 0;

    public string? String()
    {
        var length = Int();
        return length < 0 ? null : Encoding.UTF8.GetString(Take(Checked(length)));
    }

    public byte[]? Buffer()
    {
        var length = Int();
        return length < 0 ? null : Take(Checked(length)).ToArray();
    }

    public List<string> Strings()
    {
        var count = Int();
        if (count < 0)
        {
            return [];
        }

        // each element takes at least its 4-byte length
        Checked(count, 4);
        var list = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(String() ?? "");
        }

        return list;
    }

    public List<Acl> Acls()
    {
        var count = Int();
        if (count < 0)
        {
            return [];
        }

        Checked(count, 12);
        var list = new List<Acl>(count);
        for (var i = 0; i < count; i++)
        {
            var perms = (Permissions)Int();
            list.Add(new Acl(perms, String() ?? "", String() ?? ""));
        }

        return list;
    }

    public Stat Stat() => new(Long(), Long(), Long(), Long(), Int(), Int(), Int(), Long(), Int(), Int(), Long());

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > Remaining)
        {
            throw new ZooKeeperProtocolException($"packet ends early: {count} bytes needed at offset {_pos} of {_buffer.Length}");
        }

        var span = _buffer.Slice(_pos, count);
        _pos += count;
        return span;
    }

    private readonly int Checked(int count, int elementSize = 1)
    {
        if ((long)count * elementSize > Remaining)
        {
            throw new ZooKeeperProtocolException($"declared size {count} exceeds the {Remaining} bytes left in the packet");
        }

        return count;
    }
}
