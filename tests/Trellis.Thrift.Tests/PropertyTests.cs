using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

/// <summary>Randomised properties (FsCheck): every value round-trips; no byte sequence escapes as anything but a typed error.</summary>
public class PropertyTests
{
    private static readonly Config Quick = Config.QuickThrowOnFailure.WithMaxTest(300);
    private static readonly ThriftProtocol[] Protocols = [ThriftProtocol.Binary, ThriftProtocol.Compact];

    private static bool RoundTrips(DynValue value)
    {
        var s = new DynStruct().Add(1, value).Add(-7, value).Add(300, value);
        return Protocols.All(p => s.Equals(Bytes.ReadStruct(Bytes.Write(s, p), p)));
    }

    [Fact]
    public void Integers_RoundTrip_InBothProtocols()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<long>(), x => RoundTrips(DynValue.I64(x))).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<int>(), x => RoundTrips(DynValue.I32(x))).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<short>(), x => RoundTrips(DynValue.I16(x))).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<sbyte>(), x => RoundTrips(DynValue.Byte(x))).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<bool>(), x => RoundTrips(DynValue.Bool(x))).Check(Quick);
        // the extremes FsCheck's size-bounded generators rarely reach
        foreach (var x in new[] { long.MinValue, long.MaxValue, int.MinValue, int.MaxValue, -1L, 1L << 62, -(1L << 62) })
        {
            Assert.True(RoundTrips(DynValue.I64(x)));
        }
    }

    [Fact]
    public void Doubles_RoundTripBitForBit_IncludingNaNAndNegativeZero()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<double>(), x => RoundTrips(DynValue.Double(x))).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<long>(), bits => RoundTrips(DynValue.Double(BitConverter.Int64BitsToDouble(bits)))).Check(Quick);
    }

    [Fact]
    public void StringsBinariesAndUuids_RoundTrip()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<NonNull<string>>(), s =>
        {
            // lone surrogates are not UTF-8: compare what UTF-8 can carry
            var text = System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(s.Get));
            return RoundTrips(DynValue.Str(text));
        }).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), b => RoundTrips(DynValue.Bin(b ?? []))).Check(Quick);
        Prop.ForAll(ArbMap.Default.ArbFor<Guid>(), g => RoundTrips(DynValue.Uuid(g))).Check(Quick);
    }

    [Fact]
    public void StringWriters_AgreeWithTheByteCount_ForEveryLength()
    {
        // around the one-pass thresholds of both writers, with 1-, 2-, 3- and 4-byte characters
        foreach (var unit in new[] { "a", "é", "✓", "😀" })
        {
            foreach (var repeat in new[] { 0, 1, 13, 14, 40, 41, 42, 43, 682, 683, 2047, 2048, 2049, 30000 })
            {
                var text = string.Concat(Enumerable.Repeat(unit, repeat));
                Assert.True(RoundTrips(DynValue.Str(text)), $"{repeat} x {unit}");
            }
        }
    }

    [Fact]
    public void RandomStructTrees_RoundTrip_InBothProtocols_AndEverySegmentation()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<int>(), seed =>
        {
            var value = new RandomValues(seed).Struct(ConformanceSchema.Extended);
            foreach (var protocol in Protocols)
            {
                var bytes = Bytes.Write(value, protocol);
                if (!value.Equals(Bytes.ReadStruct(bytes, protocol)))
                {
                    return false;
                }

                var read = ThriftSerializer.Deserialize<DynStruct>(Bytes.Segmented(bytes, 1 + (seed & 0x3F)), protocol);
                if (!value.Equals(read))
                {
                    return false;
                }
            }

            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    [Fact]
    public void RandomBytes_OnlyEverRaiseTypedErrors()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), bytes =>
        {
            bytes ??= [];
            foreach (var protocol in Protocols)
            {
                AssertTyped(() => Bytes.ReadStruct(bytes, protocol));
            }

            foreach (var framing in Enum.GetValues<ThriftFraming>())
            {
                foreach (var protocol in Protocols)
                {
                    AssertTyped(() =>
                    {
                        using var decoder = new ThriftFrameDecoder(new ThriftEncoding(framing, protocol));
                        var buffer = new ReadOnlySequence<byte>(bytes);
                        while (decoder.TryReadFrame(ref buffer, out var frame))
                        {
                            ThriftMessages.Read(frame, new DynStruct(), out _);
                        }
                    });
                }
            }

            ThriftEncodingDetector.Detect(bytes, out _, out _);
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(2000));
    }

    [Fact]
    public void MutatedValidMessages_OnlyEverRaiseTypedErrors()
    {
        // flipping bytes of real messages reaches much deeper into the decoders than random noise
        var random = new Random(1234);
        foreach (var encoding in new[] { ThriftEncoding.FramedBinary, ThriftEncoding.FramedCompact, ThriftEncoding.HeaderCompact, ThriftEncoding.UnframedBinary, ThriftEncoding.UnframedCompact })
        {
            var info = new THeaderInfo();
            info.Add("k", "v");
            info.Transforms.Add(THeaderTransform.Zlib);
            var original = Bytes.Message(encoding, new TMessageHeader("echo", TMessageType.Call, 5), Samples.Sample0(), encoding.Framing == ThriftFraming.Header ? info : null);
            for (var i = 0; i < 3000; i++)
            {
                var mutated = (byte[])original.Clone();
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
                }

                AssertTyped(() =>
                {
                    using var decoder = new ThriftFrameDecoder(encoding);
                    var buffer = new ReadOnlySequence<byte>(mutated);
                    while (decoder.TryReadFrame(ref buffer, out var frame))
                    {
                        ThriftMessages.Read(frame, new DynStruct(), out _);
                    }
                });
            }
        }
    }

    private static void AssertTyped(Action action)
    {
        try
        {
            action();
        }
        catch (TException)
        {
        }
    }
}
