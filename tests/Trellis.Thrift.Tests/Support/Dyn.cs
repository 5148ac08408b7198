using System.Text;
using Trellis.Thrift;

namespace Trellis.Thrift.Tests.Support;

/// <summary>
/// A schema-less Thrift value: what any struct reads as without knowing its IDL. Strings are kept as
/// their bytes (on the wire string and binary are one type); sets and maps keep wire order, and
/// equality treats sets as unordered (a peer may iterate a set in any order).
/// </summary>
public sealed class DynValue : IEquatable<DynValue>
{
    private DynValue(TType type, object value)
    {
        Type = type;
        Value = value;
    }

    public TType Type { get; }
    public object Value { get; }

    public static DynValue Bool(bool v) => new(TType.Bool, v);
    public static DynValue Byte(sbyte v) => new(TType.Byte, v);
    public static DynValue I16(short v) => new(TType.I16, v);
    public static DynValue I32(int v) => new(TType.I32, v);
    public static DynValue I64(long v) => new(TType.I64, v);
    public static DynValue Double(double v) => new(TType.Double, v);
    public static DynValue Str(string v) => new(TType.String, Encoding.UTF8.GetBytes(v));
    public static DynValue Bin(byte[] v) => new(TType.String, v);
    public static DynValue Uuid(Guid v) => new(TType.Uuid, v);
    public static DynValue Struct(DynStruct v) => new(TType.Struct, v);
    public static DynValue List(TType element, IEnumerable<DynValue> items) => new(TType.List, new DynList(element, items.ToList()));
    public static DynValue Set(TType element, IEnumerable<DynValue> items) => new(TType.Set, new DynList(element, items.ToList()));
    public static DynValue Map(TType key, TType value, IEnumerable<(DynValue Key, DynValue Value)> entries) =>
        new(TType.Map, new DynMap(key, value, entries.ToList()));

    public static DynValue Read<TReader>(ref TReader reader, TType type)
        where TReader : IThriftReader, allows ref struct
    {
        switch (type)
        {
            case TType.Bool: return Bool(reader.ReadBool());
            case TType.Byte: return Byte(reader.ReadByte());
            case TType.I16: return I16(reader.ReadI16());
            case TType.I32: return I32(reader.ReadI32());
            case TType.I64: return I64(reader.ReadI64());
            case TType.Double: return Double(reader.ReadDouble());
            case TType.String: return Bin(reader.ReadBinary());
            case TType.Uuid: return Uuid(reader.ReadUuid());
            case TType.Struct:
                var s = new DynStruct();
                s.Read(ref reader);
                return Struct(s);
            case TType.List:
            case TType.Set:
                var header = type == TType.List ? reader.ReadListBegin() : reader.ReadSetBegin();
                var items = new List<DynValue>(header.Count);
                for (var i = 0; i < header.Count; i++)
                {
                    items.Add(Read(ref reader, header.ElementType));
                }

                if (type == TType.List) reader.ReadListEnd(); else reader.ReadSetEnd();
                return new DynValue(type, new DynList(header.ElementType, items));
            case TType.Map:
                var map = reader.ReadMapBegin();
                var entries = new List<(DynValue, DynValue)>(map.Count);
                for (var i = 0; i < map.Count; i++)
                {
                    var k = Read(ref reader, map.KeyType);
                    entries.Add((k, Read(ref reader, map.ValueType)));
                }

                reader.ReadMapEnd();
                return new DynValue(TType.Map, new DynMap(map.KeyType, map.ValueType, entries));
            default:
                throw new InvalidOperationException($"type {type}");
        }
    }

    public void Write<TWriter>(ref TWriter writer)
        where TWriter : IThriftWriter, allows ref struct
    {
        switch (Type)
        {
            case TType.Bool: writer.WriteBool((bool)Value); break;
            case TType.Byte: writer.WriteByte((sbyte)Value); break;
            case TType.I16: writer.WriteI16((short)Value); break;
            case TType.I32: writer.WriteI32((int)Value); break;
            case TType.I64: writer.WriteI64((long)Value); break;
            case TType.Double: writer.WriteDouble((double)Value); break;
            case TType.String: writer.WriteBinary((byte[])Value); break;
            case TType.Uuid: writer.WriteUuid((Guid)Value); break;
            case TType.Struct: ((DynStruct)Value).Write(ref writer); break;
            case TType.List:
            case TType.Set:
                var list = (DynList)Value;
                if (Type == TType.List) writer.WriteListBegin(list.Element, list.Items.Count); else writer.WriteSetBegin(list.Element, list.Items.Count);
                foreach (var item in list.Items)
                {
                    item.Write(ref writer);
                }

                if (Type == TType.List) writer.WriteListEnd(); else writer.WriteSetEnd();
                break;
            case TType.Map:
                var map = (DynMap)Value;
                writer.WriteMapBegin(map.Key, map.Val, map.Entries.Count);
                foreach (var (k, v) in map.Entries)
                {
                    k.Write(ref writer);
                    v.Write(ref writer);
                }

                writer.WriteMapEnd();
                break;
            default:
                throw new InvalidOperationException($"type {Type}");
        }
    }

    public bool Equals(DynValue? other)
    {
        if (other is null || other.Type != Type)
        {
            return false;
        }

        switch (Type)
        {
            case TType.Double:
                return BitConverter.DoubleToInt64Bits((double)Value) == BitConverter.DoubleToInt64Bits((double)other.Value);
            case TType.String:
                return ((byte[])Value).AsSpan().SequenceEqual((byte[])other.Value);
            case TType.Struct:
                return ((DynStruct)Value).Equals((DynStruct)other.Value);
            case TType.List:
            {
                var (a, b) = ((DynList)Value, (DynList)other.Value);
                return a.Element == b.Element && a.Items.SequenceEqual(b.Items);
            }
            case TType.Set:
            {
                var (a, b) = ((DynList)Value, (DynList)other.Value);
                return a.Element == b.Element && SameElements(a.Items, b.Items);
            }
            case TType.Map:
            {
                var (a, b) = ((DynMap)Value, (DynMap)other.Value);
                // the compact protocol writes no key/value types for an empty map
                if (a.Entries.Count == 0 && b.Entries.Count == 0)
                {
                    return true;
                }

                return a.Key == b.Key && a.Val == b.Val && a.Entries.Count == b.Entries.Count &&
                       a.Entries.All(e => b.Entries.Any(f => f.Key.Equals(e.Key) && f.Value.Equals(e.Value)));
            }
            default:
                return Value.Equals(other.Value);
        }
    }

    private static bool SameElements(List<DynValue> a, List<DynValue> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        var used = new bool[b.Count];
        foreach (var x in a)
        {
            var found = false;
            for (var j = 0; j < b.Count; j++)
            {
                if (!used[j] && x.Equals(b[j]))
                {
                    used[j] = found = true;
                    break;
                }
            }

            if (!found)
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as DynValue);

    public override int GetHashCode() => Type.GetHashCode();

    public override string ToString() => Type switch
    {
        TType.String => Describe((byte[])Value),
        TType.Struct => Value.ToString()!,
        TType.List => "[" + string.Join(", ", ((DynList)Value).Items) + "]",
        TType.Set => "{" + string.Join(", ", ((DynList)Value).Items) + "}",
        TType.Map => "{" + string.Join(", ", ((DynMap)Value).Entries.Select(e => $"{e.Key}: {e.Value}")) + "}",
        TType.Double => ((double)Value).ToString("R"),
        _ => Value.ToString()!,
    };

    private static string Describe(byte[] bytes)
    {
        var text = bytes.Length > 40 ? $"{bytes.Length} bytes" : Convert.ToHexString(bytes);
        return "0x" + text;
    }
}

public sealed record DynList(TType Element, List<DynValue> Items);

public sealed record DynMap(TType Key, TType Val, List<(DynValue Key, DynValue Value)> Entries);

/// <summary>A struct read field by field, in wire order.</summary>
public sealed class DynStruct : IThriftStruct, IEquatable<DynStruct>
{
    public List<(short Id, DynValue Value)> Fields { get; } = [];

    public DynStruct Add(short id, DynValue value)
    {
        Fields.Add((id, value));
        return this;
    }

    public DynValue? this[short id] => Fields.Where(f => f.Id == id).Select(f => f.Value).FirstOrDefault();

    public void Read<TReader>(ref TReader reader)
        where TReader : IThriftReader, allows ref struct
    {
        Fields.Clear();
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var field = reader.ReadFieldBegin();
            if (field.IsStop)
            {
                break;
            }

            Fields.Add((field.Id, DynValue.Read(ref reader, field.Type)));
            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
    }

    public void Write<TWriter>(ref TWriter writer)
        where TWriter : IThriftWriter, allows ref struct
    {
        var scope = writer.WriteStructBegin();
        foreach (var (id, value) in Fields)
        {
            writer.WriteFieldBegin(value.Type, id);
            value.Write(ref writer);
            writer.WriteFieldEnd();
        }

        writer.WriteFieldStop();
        writer.WriteStructEnd(scope);
    }

    /// <summary>Same fields with equal values, in any order.</summary>
    public bool Equals(DynStruct? other) =>
        other is not null && other.Fields.Count == Fields.Count &&
        Fields.All(f => other.Fields.Any(g => g.Id == f.Id && g.Value.Equals(f.Value)));

    public override bool Equals(object? obj) => Equals(obj as DynStruct);

    public override int GetHashCode() => Fields.Count;

    public override string ToString() => "(" + string.Join(", ", Fields.Select(f => $"{f.Id}: {f.Value}")) + ")";
}
