using Trellis.Thrift;

namespace Trellis.Thrift.Tests.Support;

/// <summary>The four fixed samples, built exactly as tests/peers/python/thrift_peer.py builds them.</summary>
public static class Samples
{
    public static DynValue Inner(int id, string name) => DynValue.Struct(new DynStruct().Add(1, DynValue.I32(id)).Add(2, DynValue.Str(name)));

    public static DynStruct Sample0() => new DynStruct()
        .Add(1, DynValue.Bool(true))
        .Add(2, DynValue.Bool(false))
        .Add(3, DynValue.Byte(-128))
        .Add(4, DynValue.I16(short.MinValue))
        .Add(5, DynValue.I32(int.MaxValue))
        .Add(6, DynValue.I64(long.MinValue))
        .Add(7, DynValue.Double(3.141592653589793))
        .Add(8, DynValue.Str("héllo wörld ✓ 😀"))
        .Add(9, DynValue.Bin(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray()))
        .Add(10, Inner(7, "seven"))
        .Add(11, DynValue.List(TType.I32, new[] { 0, 1, -1, 127, 128, int.MinValue, int.MaxValue }.Select(DynValue.I32)))
        .Add(12, DynValue.Set(TType.String, [DynValue.Str("only")]))
        .Add(13, DynValue.Map(TType.String, TType.I64,
            [(DynValue.Str("a"), DynValue.I64(1)), (DynValue.Str("b"), DynValue.I64(-1)), (DynValue.Str("long"), DynValue.I64(long.MaxValue))]))
        .Add(14, DynValue.List(TType.Struct, [Inner(1, "one"), Inner(2, "two")]))
        .Add(15, DynValue.List(TType.List,
        [
            DynValue.List(TType.I16, [DynValue.I16(1), DynValue.I16(2)]),
            DynValue.List(TType.I16, []),
            DynValue.List(TType.I16, [DynValue.I16(-3)]),
        ]))
        .Add(16, DynValue.Map(TType.I32, TType.List,
        [
            (DynValue.I32(1), DynValue.List(TType.Struct, [Inner(1, "x")])),
            (DynValue.I32(-5), DynValue.List(TType.Struct, [])),
        ]))
        .Add(17, DynValue.I32(3))
        .Add(18, DynValue.List(TType.Bool, [DynValue.Bool(true), DynValue.Bool(false), DynValue.Bool(true)]))
        .Add(19, DynValue.Set(TType.I64, [DynValue.I64(42)]))
        .Add(20, DynValue.List(TType.Double, new[] { 0.0, -0.0, 1.5, -2.25e300, double.PositiveInfinity, double.NegativeInfinity, 5e-324 }.Select(DynValue.Double)))
        .Add(21, DynValue.List(TType.String, [DynValue.Bin([]), DynValue.Bin([0x00, 0xFF])]))
        .Add(22, DynValue.Map(TType.Byte, TType.Bool, [(DynValue.Byte(-1), DynValue.Bool(true)), (DynValue.Byte(0), DynValue.Bool(false))]))
        .Add(40, DynValue.I32(40))
        .Add(300, Inner(300, "far away"));

    public static DynStruct Sample1() => new();

    public static DynStruct Sample2() => new DynStruct()
        .Add(8, DynValue.Str(new string('x', 70000)))
        .Add(9, DynValue.Bin(Enumerable.Range(0, 100000).Select(i => (byte)(i % 251)).ToArray()))
        .Add(11, DynValue.List(TType.I32, Enumerable.Range(-500, 1000).Select(DynValue.I32)))
        .Add(12, DynValue.Set(TType.String, Enumerable.Range(0, 20).Select(i => DynValue.Str($"s{i}"))))
        .Add(13, DynValue.Map(TType.String, TType.I64, Enumerable.Range(0, 50).Select(i => (DynValue.Str($"k{i:D3}"), DynValue.I64(i * 1000003L)))))
        .Add(14, DynValue.List(TType.Struct, Enumerable.Range(0, 100).Select(i => Inner(i, $"n{i}"))))
        .Add(15, DynValue.List(TType.List, Enumerable.Range(0, 17).Select(i => DynValue.List(TType.I16, Enumerable.Range(0, i).Select(j => DynValue.I16((short)j))))))
        .Add(18, DynValue.List(TType.Bool, Enumerable.Range(0, 30).Select(i => DynValue.Bool(i % 3 == 0))))
        .Add(19, DynValue.Set(TType.I64, Enumerable.Range(0, 20).Select(i => DynValue.I64(i * (1L << 40)))));

    public static DynStruct Sample3() => new DynStruct()
        .Add(2, DynValue.Bool(false))
        .Add(5, DynValue.I32(int.MinValue))
        .Add(40, DynValue.I32(-1))
        .Add(300, Inner(0, ""));

    public static DynStruct[] All() => [Sample0(), Sample1(), Sample2(), Sample3()];
}
