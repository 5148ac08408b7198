namespace Trellis.Bench.Suite
{
    /// <summary>One round of one echo system at one connection count. <see cref="CpuPerCall"/>: µs of CPU the measured process (server or proxy) used per call, NaN when unknown.</summary>
    internal sealed record EchoRound(int Round, double Rate, double P50, double P99, double P999, double CpuPerCall, long Calls, long Errors);

    /// <summary>Every round of one echo system (e.g. "c++ tcp") at one connection count, in one comparison (e.g. "server").</summary>
    internal sealed class EchoPoint(string comparison, string system, int connections)
    {
        public string Comparison { get; } = comparison;

        public string System { get; } = system;

        public int Connections { get; } = connections;

        public List<EchoRound> Rounds { get; } = [];

        public Spread Rate => Spread.Of(Rounds.Select(r => r.Rate));

        public Spread P50 => Spread.Of(Rounds.Select(r => r.P50));

        public Spread P99 => Spread.Of(Rounds.Select(r => r.P99));

        public Spread P999 => Spread.Of(Rounds.Select(r => r.P999));

        public Spread CpuPerCall => Spread.Of(Rounds.Select(r => r.CpuPerCall));

        public long Errors => Rounds.Sum(r => r.Errors);
    }

    /// <summary>One serialization benchmark row's rounds: ns and allocated bytes per operation.</summary>
    internal sealed class SerializationRow(string name)
    {
        public string Name { get; } = name;

        public List<(int Round, double Ns, double Bytes)> Rounds { get; } = [];

        public Spread Ns => Spread.Of(Rounds.Select(r => r.Ns));

        public Spread Bytes => Spread.Of(Rounds.Select(r => r.Bytes));
    }

    /// <summary>Median and range (min–max) of a point's rounds; NaN values (no data) are left out.</summary>
    internal readonly record struct Spread(double Median, double Min, double Max, int Count)
    {
        public static Spread Of(IEnumerable<double> values)
        {
            var v = values.Where(x => !double.IsNaN(x)).ToArray();
            return v.Length == 0 ? new(double.NaN, double.NaN, double.NaN, 0) : new(EchoLoad.Median(v), v.Min(), v.Max(), v.Length);
        }
    }

    /// <summary>A ratio A ÷ B: of the medians, and the range of the per-round ratios (rounds are paired: A and B ran back to back in each round).</summary>
    internal sealed record Ratio(string Name, string Metric, string Point, double OfMedians, double RoundMin, double RoundMax, string Meaning);
}
