using System.Globalization;

namespace Trellis.Bench.Serialization;

/// <summary>
/// <c>--verify</c>: the global setup's verification, then every benchmark body run twice (the
/// buffers are reused between calls, as in a measurement) with its result checked.
/// </summary>
public static class SmokeCheck
{
    public static int Run(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        try
        {
            using var bench = new SerializationBenchmarks();
            bench.Setup();
            var fixture = bench.Fixture;

            for (var pass = 0; pass < 2; pass++)
            {
                Expect("Protobuf_Encode", bench.Protobuf_Encode(), fixture.ProtoBytes.Length);
                Expect("Thrift_Binary_Encode", bench.Thrift_Binary_Encode(), fixture.ThriftBinaryBytes.Length);
                Expect("Thrift_Compact_Encode", bench.Thrift_Compact_Encode(), fixture.ThriftCompactBytes.Length);

                var proto = bench.Protobuf_Decode();
                if (!proto.Equals(fixture.Proto))
                {
                    throw new InvalidOperationException("Protobuf_Decode: result differs from the source");
                }

                Same("Protobuf_Decode", OrderEquality.Difference(fixture.Thrift, proto));
                Same("Thrift_Binary_Decode", OrderEquality.Difference(fixture.Thrift, bench.Thrift_Binary_Decode()));
                Same("Thrift_Compact_Decode", OrderEquality.Difference(fixture.Thrift, bench.Thrift_Compact_Decode()));
            }

            output.WriteLine("verify: ok (3 encodings round-trip, 6 benchmark bodies checked, unknown and mismatched fields skipped)");
            return 0;
        }
#pragma warning disable CA1031 // A smoke check turns every failure, whatever its type, into exit code 1.
        catch (Exception e)
#pragma warning restore CA1031
        {
            output.WriteLine($"verify: FAILED: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    private static void Expect(string name, int actual, int expected)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"{name}: wrote {actual} bytes, the verified encoding has {expected}"));
        }
    }

    private static void Same(string name, string? difference)
    {
        if (difference is not null)
        {
            throw new InvalidOperationException($"{name}: {difference}");
        }
    }
}
