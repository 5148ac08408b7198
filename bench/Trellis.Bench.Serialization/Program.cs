using BenchmarkDotNet.Running;

namespace Trellis.Bench.Serialization;

/// <summary>
/// Entry point. Every argument goes to BenchmarkDotNet's switcher, except:
/// <list type="bullet">
/// <item><c>--verify</c>: check the encodings round-trip and run each benchmark body once, then exit 0 (ok) or 1.</item>
/// <item><c>--timed</c>: a short in-process timing without BenchmarkDotNet (see <see cref="TimedRun"/>).</item>
/// <item><c>--quick</c>: short for <c>--job Short</c> (3 warm-ups, 3 iterations: rough numbers, fast).</item>
/// </list>
/// Without a <c>--filter</c>, every benchmark runs (as with <c>--filter '*'</c>) instead of an interactive prompt.
/// Exits 1 when a benchmark failed to build or run. Run it from inside the repository: BenchmarkDotNet
/// finds this project by searching the current directory.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (Array.IndexOf(args, "--verify") >= 0)
        {
            return SmokeCheck.Run(Console.Out);
        }

        if (Array.IndexOf(args, "--timed") >= 0)
        {
            return TimedRun.Run(args, Console.Out);
        }

        var forwarded = new List<string>(args.Length + 2);
        foreach (var arg in args)
        {
            if (arg == "--quick")
            {
                forwarded.Add("--job");
                forwarded.Add("Short");
            }
            else
            {
                forwarded.Add(arg);
            }
        }

        if (!HasAny(forwarded, "--filter", "-f", "--list", "--help", "-h", "-?", "--info", "--version"))
        {
            forwarded.Add("--filter");
            forwarded.Add("*");
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run([.. forwarded]);

        // BenchmarkDotNet reports a benchmark that failed to build or run in its table (NA) but still
        // returns normally; make that a failing exit code for scripts.
        foreach (var summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                return 1;
            }

            foreach (var report in summary.Reports)
            {
                if (!report.Success)
                {
                    return 1;
                }
            }
        }

        return 0;
    }

    private static bool HasAny(List<string> args, params string[] names)
    {
        foreach (var arg in args)
        {
            if (Array.IndexOf(names, arg) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
