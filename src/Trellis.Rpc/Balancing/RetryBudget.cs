using System.Diagnostics;

namespace Trellis.Rpc.Balancing;

/// <summary>
/// Finagle's retry budget: retries may add at most <paramref name="ratio"/> of the calls of the last ten seconds,
/// plus a floor of <paramref name="minPerSecond"/>, so a failing backend is not hammered by retries. Calls
/// deposit; retries withdraw. Counted in ten one-second buckets: constant memory at any call rate.
/// </summary>
public sealed class RetryBudget(double ratio = 0.2, int minPerSecond = 10)
{
    private const int Buckets = 10;
    private readonly object _lock = new();
    private readonly long[] _second = new long[Buckets];
    private readonly int[] _calls = new int[Buckets];
    private readonly int[] _retries = new int[Buckets];

    public void Deposit()
    {
        lock (_lock)
        {
            _calls[Bucket(CurrentSecond())]++;
        }
    }

    /// <summary>Takes one retry if the budget allows it now.</summary>
    public bool TryWithdraw()
    {
        lock (_lock)
        {
            var now = CurrentSecond();
            var current = Bucket(now);
            long calls = 0, retries = 0;
            for (var i = 0; i < Buckets; i++)
            {
                if (now - _second[i] < Buckets)
                {
                    calls += _calls[i];
                    retries += _retries[i];
                }
            }

            if (retries + 1 > calls * ratio + minPerSecond * Buckets)
            {
                return false;
            }

            _retries[current]++;
            return true;
        }
    }

    private static long CurrentSecond() => Stopwatch.GetTimestamp() / Stopwatch.Frequency;

    /// <summary>The bucket of <paramref name="second"/>, emptied first if it still holds an older second.</summary>
    private int Bucket(long second)
    {
        var index = (int)(second % Buckets);
        if (_second[index] != second)
        {
            _second[index] = second;
            _calls[index] = 0;
            _retries[index] = 0;
        }

        return index;
    }
}
