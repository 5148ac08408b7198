using System.Text;
using Trellis.Thrift;

namespace Trellis.Thrift.Tests.Support;

/// <summary>Just enough of an IDL type to generate random values that a typed peer can read.</summary>
public abstract record TypeDesc(TType Type);
public sealed record PrimDesc(TType Prim) : TypeDesc(Prim);
public sealed record TextDesc() : TypeDesc(TType.String);
public sealed record BinaryDesc() : TypeDesc(TType.String);
public sealed record ListDesc(TypeDesc Element) : TypeDesc(TType.List);
public sealed record SetDesc(TypeDesc Element) : TypeDesc(TType.Set);
public sealed record MapDesc(TypeDesc Key, TypeDesc Value) : TypeDesc(TType.Map);
public sealed record StructDesc(string Name, (short Id, TypeDesc Type)[] Fields) : TypeDesc(TType.Struct);

/// <summary>The types of tests/peers/python/conformance.thrift.</summary>
public static class ConformanceSchema
{
    public static readonly StructDesc Inner = new("Inner", [(1, new PrimDesc(TType.I32)), (2, new TextDesc())]);

    public static readonly StructDesc Everything = new("Everything",
    [
        (1, new PrimDesc(TType.Bool)),
        (2, new PrimDesc(TType.Bool)),
        (3, new PrimDesc(TType.Byte)),
        (4, new PrimDesc(TType.I16)),
        (5, new PrimDesc(TType.I32)),
        (6, new PrimDesc(TType.I64)),
        (7, new PrimDesc(TType.Double)),
        (8, new TextDesc()),
        (9, new BinaryDesc()),
        (10, Inner),
        (11, new ListDesc(new PrimDesc(TType.I32))),
        (12, new SetDesc(new TextDesc())),
        (13, new MapDesc(new TextDesc(), new PrimDesc(TType.I64))),
        (14, new ListDesc(Inner)),
        (15, new ListDesc(new ListDesc(new PrimDesc(TType.I16)))),
        (16, new MapDesc(new PrimDesc(TType.I32), new ListDesc(Inner))),
        (17, new PrimDesc(TType.I32)),
        (18, new ListDesc(new PrimDesc(TType.Bool))),
        (19, new SetDesc(new PrimDesc(TType.I64))),
        (20, new ListDesc(new PrimDesc(TType.Double))),
        (21, new ListDesc(new BinaryDesc())),
        (22, new MapDesc(new PrimDesc(TType.Byte), new PrimDesc(TType.Bool))),
        (40, new PrimDesc(TType.I32)),
        (300, Inner),
    ]);

    public static readonly StructDesc Extended = new("Extended",
    [
        (1, new PrimDesc(TType.I32)),
        (2, new TextDesc()),
        (3, new PrimDesc(TType.Bool)),
        (4, new PrimDesc(TType.Byte)),
        (5, new PrimDesc(TType.I16)),
        (6, new PrimDesc(TType.I64)),
        (7, new PrimDesc(TType.Double)),
        (8, new BinaryDesc()),
        (9, Inner),
        (10, new ListDesc(new MapDesc(new TextDesc(), new SetDesc(new PrimDesc(TType.I32))))),
        (200, Everything),
    ]);
}

/// <summary>
/// Random values of a described type, valid for any stock peer: text is valid UTF-8, set elements
/// and map keys are distinct, doubles are never NaN (a NaN's payload is not preserved by every runtime).
/// Each field is present with probability 3/4, as optional fields would be.
/// </summary>
/// <remarks>
/// <paramref name="utf8Binaries"/> makes binary values valid UTF-8: pure-Python python3-thrift 0.17
/// skips an unknown binary field with readString, which fails on bytes that are not UTF-8.
/// </remarks>
public sealed class RandomValues(int seed, bool utf8Binaries = false)
{
    private readonly Random _random = new(seed);

    public DynStruct Struct(StructDesc desc, int depth = 0)
    {
        var s = new DynStruct();
        foreach (var (id, type) in desc.Fields)
        {
            if (_random.Next(4) != 0 && !(type is StructDesc && depth > 3))
            {
                s.Add(id, Value(type, depth + 1));
            }
        }

        return s;
    }

    public DynValue Value(TypeDesc desc, int depth) => desc switch
    {
        PrimDesc { Prim: TType.Bool } => DynValue.Bool(_random.Next(2) == 0),
        PrimDesc { Prim: TType.Byte } => DynValue.Byte((sbyte)_random.Next(-128, 128)),
        PrimDesc { Prim: TType.I16 } => DynValue.I16((short)Edge(short.MinValue, short.MaxValue)),
        PrimDesc { Prim: TType.I32 } => DynValue.I32((int)Edge(int.MinValue, int.MaxValue)),
        PrimDesc { Prim: TType.I64 } => DynValue.I64(Edge(long.MinValue, long.MaxValue)),
        PrimDesc { Prim: TType.Double } => DynValue.Double(Double()),
        PrimDesc { Prim: TType.Uuid } => DynValue.Uuid(Guid.NewGuid()),
        TextDesc => DynValue.Str(Text()),
        BinaryDesc => utf8Binaries ? DynValue.Str(Text()) : DynValue.Bin(Bytes()),
        StructDesc s => DynValue.Struct(Struct(s, depth)),
        ListDesc l => DynValue.List(l.Element.Type, Many(() => Value(l.Element, depth + 1), distinct: false)),
        SetDesc s => DynValue.Set(s.Element.Type, Many(() => Value(s.Element, depth + 1), distinct: true)),
        MapDesc m => DynValue.Map(m.Key.Type, m.Value.Type,
            Many(() => Value(m.Key, depth + 1), distinct: true).Select(k => (k, Value(m.Value, depth + 1)))),
        _ => throw new ArgumentOutOfRangeException(nameof(desc)),
    };

    private List<DynValue> Many(Func<DynValue> next, bool distinct)
    {
        // Mostly short containers, sometimes past the compact protocol's 14-element short form.
        var count = _random.Next(10) == 0 ? _random.Next(15, 40) : _random.Next(0, 6);
        var items = new List<DynValue>();
        for (var i = 0; i < count; i++)
        {
            var item = next();
            if (!distinct || !items.Contains(item))
            {
                items.Add(item);
            }
        }

        return items;
    }

    private long Edge(long min, long max) => _random.Next(6) switch
    {
        0 => min,
        1 => max,
        2 => 0,
        3 => _random.Next(-200, 200),
        _ => _random.NextInt64(min, max),
    };

    private double Double() => _random.Next(8) switch
    {
        0 => 0.0,
        1 => -0.0,
        2 => double.PositiveInfinity,
        3 => double.NegativeInfinity,
        4 => double.Epsilon,
        5 => double.MaxValue,
        _ => (_random.NextDouble() - 0.5) * Math.Pow(10, _random.Next(-300, 300)),
    };

    private string Text()
    {
        var length = _random.Next(10) == 0 ? _random.Next(100, 400) : _random.Next(0, 12);
        var sb = new StringBuilder();
        for (var i = 0; i < length; i++)
        {
            switch (_random.Next(5))
            {
                case 0: sb.Append((char)_random.Next(0x80, 0x800)); break;
                case 1: sb.Append((char)_random.Next(0x800, 0xD800)); break;
                case 2: sb.Append(char.ConvertFromUtf32(_random.Next(0x10000, 0x10FFFF))); break;
                default: sb.Append((char)_random.Next(0x20, 0x7F)); break;
            }
        }

        return sb.ToString();
    }

    private byte[] Bytes()
    {
        var bytes = new byte[_random.Next(10) == 0 ? _random.Next(100, 1000) : _random.Next(0, 10)];
        _random.NextBytes(bytes);
        return bytes;
    }
}
