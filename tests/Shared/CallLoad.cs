using System.Diagnostics;

namespace Trellis.Testing;

/// <summary>
/// Steady load for fault tests: N callers, each making one call after another until stopped, counting successes and
/// recording failures with the time they happened (an assertion failing inside a call ends the load and the test).
/// </summary>
internal sealed class CallLoad
{
    private volatile bool _stopping;
    private readonly List<Task> _callers = [];
    private readonly List<(long AtMs, Exception Error)> _failures = [];
    private int _ok;

    private CallLoad()
    {
    }

    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    public int Ok => Volatile.Read(ref _ok);

    public IReadOnlyList<(long AtMs, Exception Error)> Failures
    {
        get
        {
            lock (_failures)
            {
                return [.. _failures];
            }
        }
    }

    public static CallLoad Start(int callers, Func<Task> call)
    {
        var load = new CallLoad();
        for (var i = 0; i < callers; i++)
        {
            load._callers.Add(Task.Run(async () =>
            {
                while (!load._stopping)
                {
                    try
                    {
                        await call();
                        Interlocked.Increment(ref load._ok);
                    }
                    catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                    {
                        lock (load._failures)
                        {
                            load._failures.Add((load.Clock.ElapsedMilliseconds, e));
                        }
                    }
                }
            }));
        }

        return load;
    }

    /// <summary>Waits until <paramref name="more"/> more calls have succeeded.</summary>
    public Task AfterAsync(int more)
    {
        var target = Ok + more;
        return Wait.UntilAsync(() => Ok >= target, TimeSpan.FromSeconds(30), $"{more} more successful calls");
    }

    public async Task StopAsync()
    {
        _stopping = true;
        await Task.WhenAll(_callers);
    }
}
