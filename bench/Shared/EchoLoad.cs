using System.Diagnostics;
using System.Globalization;

// The echo load generator shared by the echo harnesses (Trellis.Bench.Proxy, Trellis.Bench.Suite): N connections,
// each with exactly one call in flight, for a while; every reply compared with what was sent.
namespace Trellis.Bench
{
    /// <summary>One run's figures: calls/s and latency percentiles in µs of the calls answered correctly.</summary>
    internal readonly record struct LoadResult(double Rate, double P50, double P99, double P999, long Calls, long Errors, double Seconds);

    internal static class EchoLoad
    {
        /// <summary>
        /// Keeps one call in flight on each of <paramref name="connections"/> connections for <paramref name="duration"/>:
        /// <paramref name="call"/>(connection index, payload, token) sends one echo on that connection and returns the reply.
        /// Every payload is unique (<paramref name="pathId"/>, connection, sequence number), so a reply delivered to the
        /// wrong call is caught. A failed or wrong call is counted, handed to <paramref name="error"/>, and left out of the
        /// latencies; <paramref name="sent"/> is called once per call sent.
        /// </summary>
        public static async Task<LoadResult> RunAsync(
            int connections,
            Func<int, string, CancellationToken, Task<string>> call,
            int size,
            int pathId,
            TimeSpan duration,
            Action<string> error,
            Action? sent,
            CancellationToken cancellationToken)
        {
            var samples = new List<long>[connections];
            var errors = new long[connections];
            var started = Stopwatch.GetTimestamp();
            var stopAt = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            await Task.WhenAll(Enumerable.Range(0, connections).Select(i => Task.Run(async () =>
            {
                var mine = samples[i] = new List<long>(64 * 1024);
                var connection = pathId * 1000 + i;
                for (long seq = 0; Stopwatch.GetTimestamp() < stopAt; seq++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var text = Payload(size, connection, seq);
                    sent?.Invoke();
                    var t = Stopwatch.GetTimestamp();
                    string reply;
                    try
                    {
                        reply = await call(i, text, cancellationToken);
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                    {
                        errors[i]++;
                        error($"{e.GetType().Name}: {e.Message} (after {Stopwatch.GetElapsedTime(t).TotalMilliseconds:F1} ms)");
                        await Task.Delay(10, cancellationToken);
                        continue;
                    }

                    var elapsed = Stopwatch.GetTimestamp() - t;
                    if (!string.Equals(reply, text, StringComparison.Ordinal))
                    {
                        errors[i]++;
                        error($"wrong reply: sent '{text}', got '{reply}'");
                        continue;
                    }

                    mine.Add(elapsed);
                }
            }, cancellationToken)));
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var all = samples.SelectMany(s => s).ToArray();
            Array.Sort(all);
            double Micros(double q) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)(all.Length * q))] * 1e6 / Stopwatch.Frequency;
            return new LoadResult(all.Length / seconds, Micros(0.5), Micros(0.99), Micros(0.999), all.Length, errors.Sum(), seconds);
        }

        /// <summary>Exactly <paramref name="size"/> ASCII characters, starting with the connection and sequence number, so a reply meant for another call cannot pass.</summary>
        public static string Payload(int size, int connection, long seq) => string.Create(size, (connection, seq), static (span, s) =>
        {
            span.Fill('x');
            if (!s.connection.TryFormat(span, out var n, default, CultureInfo.InvariantCulture))
            {
                return;
            }

            if (n < span.Length)
            {
                span[n++] = '.';
                s.seq.TryFormat(span[n..], out _, default, CultureInfo.InvariantCulture);
            }
        });

        /// <summary>The median of the values that are not NaN (NaN when there are none).</summary>
        public static double Median(IEnumerable<double> values)
        {
            var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
            return sorted.Length == 0 ? double.NaN
                : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
                : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
    }
}
