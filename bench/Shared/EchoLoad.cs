using System.Diagnostics;
using System.Globalization;

// The echo load generator shared by the echo harnesses (Trellis.Bench.Proxy, Trellis.Bench.Suite): N connections,
// each with exactly one call in flight, for a while; every reply compared with what was sent. Trellis.Bench.Balancer
// runs the same loop with its own payloads and replies (a sleep answers "slept N", not the text it was sent).
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
        public static Task<LoadResult> RunAsync(
            int connections,
            Func<int, string, CancellationToken, Task<string>> call,
            int size,
            int pathId,
            TimeSpan duration,
            Action<string> error,
            Action? sent,
            CancellationToken cancellationToken) =>
            RunAsync(connections, call, (i, seq) => Payload(size, pathId * 1000 + i, seq), SameText, duration, error, sent, cancellationToken);

        /// <summary>
        /// The same loop with the caller's payloads and check: <paramref name="payload"/>(connection index, sequence
        /// number) is the text of each call, and <paramref name="check"/>(text sent, reply) returns null when the reply
        /// is right, else what is wrong with it (counted and handed to <paramref name="error"/> like a failed call).
        /// </summary>
        public static async Task<LoadResult> RunAsync(
            int connections,
            Func<int, string, CancellationToken, Task<string>> call,
            Func<int, long, string> payload,
            Func<string, string, string?> check,
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
                for (long seq = 0; Stopwatch.GetTimestamp() < stopAt; seq++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var text = payload(i, seq);
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
                    if (check(text, reply) is { } wrong)
                    {
                        errors[i]++;
                        error(wrong);
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

        /// <summary>The echo check: null when <paramref name="reply"/> is <paramref name="text"/>, else what is wrong.</summary>
        public static string? SameText(string text, string reply) =>
            string.Equals(reply, text, StringComparison.Ordinal) ? null : $"wrong reply: sent '{text}', got '{reply}'";

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
