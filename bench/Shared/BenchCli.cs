using System.Globalization;
using Microsoft.Extensions.Logging;

// Shared by the multi-process bench harnesses (Trellis.Bench.Proxy, Trellis.Bench.Balancer): option parsing and the
// children's log lines on stderr.
namespace Trellis.Bench
{
    internal static class Cli
    {
        /// <summary>The value after <paramref name="name"/>, or null when the option is absent.</summary>
        public static string? Value(string[] args, string name)
        {
            var i = Array.IndexOf(args, name);
            if (i < 0)
            {
                return null;
            }

            return i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{name} needs a value");
        }

        /// <summary>Every value given to <paramref name="name"/> (the option may be repeated).</summary>
        public static List<string> Values(string[] args, string name)
        {
            var values = new List<string>();
            for (var i = 0; i < args.Length; i++)
            {
                if (args[i] == name)
                {
                    values.Add(i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value"));
                }
            }

            return values;
        }

        public static string Required(string[] args, string name) =>
            Value(args, name) ?? throw new ArgumentException($"{name} is required");

        public static int Int(string[] args, string name, int fallback, int min, int max)
        {
            if (Value(args, name) is not { } text)
            {
                return fallback;
            }

            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                ? value
                : throw new ArgumentException($"{name} must be an integer from {min} to {max}, not '{text}'");
        }

        public static double Double(string[] args, string name, double fallback)
        {
            if (Value(args, name) is not { } text)
            {
                return fallback;
            }

            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && value <= 3600
                ? value
                : throw new ArgumentException($"{name} must be a positive number of seconds, not '{text}'");
        }

        public static int[] Ints(string[] args, string name, string fallback, int min, int max) =>
            [.. (Value(args, name) ?? fallback).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(c => int.TryParse(c, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                    ? n
                    : throw new ArgumentException($"{name} takes numbers from {min} to {max} separated by commas, not '{c}'"))
                .Distinct().Order()];

        public static int Fail(string message)
        {
            Console.Error.WriteLine($"error: {message}");
            return 2;
        }
    }

    /// <summary>Log lines on stderr (the driver prefixes them with the child's name).</summary>
    internal sealed class StderrLogger(LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                Console.Error.WriteLine($"{logLevel}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
            }
        }
    }
}
