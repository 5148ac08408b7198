using System.Diagnostics;

namespace Trellis.Rpc;

/// <summary>
/// A caller's connection's two read deadlines — a started frame must arrive whole within the frame timeout, and a
/// connection with nothing in flight is closed after the idle timeout — kept as timestamps and checked by one
/// housekeeping tick per server or proxy, instead of a timer set on every read.
/// </summary>
internal sealed class ReadDeadlines
{
    private long _lastActivity = Stopwatch.GetTimestamp();
    private long _frameStarted = Stopwatch.GetTimestamp();
    private volatile bool _framePending = true; // until the first bytes tell the encoding

    public bool FramePending => _framePending;

    /// <summary>Bytes came in, or the last call was answered.</summary>
    public void Activity() => Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());

    /// <summary>After a read: whether part of a frame is waiting for the rest.</summary>
    public void Pending(bool pending)
    {
        if (pending && !_framePending)
        {
            Volatile.Write(ref _frameStarted, Stopwatch.GetTimestamp());
        }

        _framePending = pending;
    }

    /// <summary>Why the connection should close now, or null.</summary>
    public string? Expired(long now, int callsInFlight, TimeSpan frameReadTimeout, TimeSpan idleTimeout) =>
        _framePending && Stopwatch.GetElapsedTime(Volatile.Read(ref _frameStarted), now) > frameReadTimeout ? "a frame was not completed in time"
        : !_framePending && callsInFlight == 0 && Stopwatch.GetElapsedTime(Volatile.Read(ref _lastActivity), now) > idleTimeout ? "idle"
        : null;

    /// <summary>
    /// Runs <paramref name="check"/> a few times per the shorter timeout (10 ms to 1 s apart) until
    /// <paramref name="stopping"/>: the one timer behind every connection's read deadlines.
    /// </summary>
    public static async Task HousekeepAsync(TimeSpan frameReadTimeout, TimeSpan idleTimeout, Action<long> check, CancellationToken stopping)
    {
        var shortest = frameReadTimeout < idleTimeout ? frameReadTimeout : idleTimeout;
        var interval = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(1).Ticks));
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                check(Stopwatch.GetTimestamp());
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }
}
