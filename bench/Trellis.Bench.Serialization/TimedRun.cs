using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Trellis.Bench.Serialization;

/// <summary>
/// <c>--timed</c>: a short in-process timing of the same benchmark bodies, without BenchmarkDotNet (no separate
/// build, seconds instead of minutes), for Trellis.Bench.Suite. Rough: one process, a plain loop, no outlier
/// removal. Per round and benchmark it prints one line <c>timed ROUND NAME NS_PER_OP BYTES_PER_OP</c>;
/// options <c>--rounds N</c> (default 3) and <c>--seconds S</c> (per benchmark and round, default 0.5).
/// The fixture is verified first (as in <c>--verify</c>); exits 1 if it does not round-trip.
/// </summary>
internal static class TimedRun
{
    public static int Run(string[] args, TextWriter output)
    {
        var rounds = int.Parse(Option(args, "--rounds") ?? "3", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Option(args, "--seconds") ?? "0.5", CultureInfo.InvariantCulture);
        using var benchmarks = new SerializationBenchmarks();
        try
        {
            benchmarks.Setup(); // verifies that both codecs decode back to the source data
        }
        catch (InvalidOperationException e)
        {
            output.WriteLine($"error: {e.Message}");
            return 1;
        }

        (string Name, Func<object> Body)[] rows =
        [
            ("Protobuf_Encode", () => benchmarks.Protobuf_Encode()),
            ("Thrift_Binary_Encode", () => benchmarks.Thrift_Binary_Encode()),
            ("Thrift_Compact_Encode", () => benchmarks.Thrift_Compact_Encode()),
            ("Protobuf_Decode", benchmarks.Protobuf_Decode),
            ("Thrift_Binary_Decode", benchmarks.Thrift_Binary_Decode),
            ("Thrift_Compact_Decode", benchmarks.Thrift_Compact_Decode),
        ];

        // warm-up: long enough for tiered compilation to reach the optimized code before timing
        var warmup = (long)(Math.Max(0.25, seconds) * Stopwatch.Frequency);
        foreach (var (_, body) in rows)
        {
            var until = Stopwatch.GetTimestamp() + warmup;
            while (Stopwatch.GetTimestamp() < until)
            {
                for (var i = 0; i < 64; i++)
                {
                    Consume(body());
                }
            }
        }

        for (var round = 1; round <= rounds; round++)
        {
            for (var k = 0; k < rows.Length; k++)
            {
                var (name, body) = rows[(k + round - 1) % rows.Length]; // rotating order
                long ops = 0;
                var allocated = GC.GetAllocatedBytesForCurrentThread();
                var started = Stopwatch.GetTimestamp();
                var stopAt = started + (long)(seconds * Stopwatch.Frequency);
                do
                {
                    for (var i = 0; i < 64; i++)
                    {
                        Consume(body());
                    }

                    ops += 64;
                }
                while (Stopwatch.GetTimestamp() < stopAt);

                var ns = Stopwatch.GetElapsedTime(started).TotalNanoseconds / ops;
                var bytes = (double)(GC.GetAllocatedBytesForCurrentThread() - allocated) / ops;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"timed {round} {name} {ns:0.0} {bytes:0.0}"));
            }
        }

        return 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Consume(object value) => GC.KeepAlive(value);

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
