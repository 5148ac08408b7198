using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Trellis.ZooKeeper.Jute;

/// <summary>
/// Writes ZooKeeper's jute encoding: big-endian integers, length-prefixed strings, buffers and vectors
/// (-1 for null), one byte per boolean.
/// </summary>
internal readonly struct JuteWriter(ArrayBufferWriter<byte> output)
{
    public int Written => output.WrittenCount;

    public void Int(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(output.GetSpan(4), value);
        output.Advance(4);
    }

    public void Long(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(output.GetSpan(8), value);
        output.Advance(8);
    }

    public void Bool(bool value)
    {
        output.GetSpan(1)[0] = value ? (byte)1 : (byte)0;
        output.Advance(1);
    }

    public void String(string? value)
    {
        if (value is null)
        {
            Int(-1);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        Int(length);
        Encoding.UTF8.GetBytes(value, output.GetSpan(length));
        output.Advance(length);
    }

    public void Buffer(ReadOnlySpan<byte> value, bool isNull = false)
    {
        if (isNull)
        {
            Int(-1);
            return;
        }

        Int(value.Length);
        output.Write(value);
    }

    public void Strings(IReadOnlyCollection<string> values)
    {
        Int(values.Count);
        foreach (var value in values)
        {
            String(value);
        }
    }

    public void Acls(IReadOnlyList<Acl> acls)
    {
        Int(acls.Count);
        foreach (var acl in acls)
        {
            Int((int)acl.Permissions);
            String(acl.Scheme);
            String(acl.Id);
        }
    }
}
