using Trellis.Proxy;

namespace Trellis.Admin.Tests;

public sealed class ServiceStatsTests
{
    [Fact]
    public void Window_counts_calls_errors_and_percentiles_per_second()
    {
        var stats = new ServiceStats();
        const long now = 1_000_000;
        for (var i = 1; i <= 100; i++)
        {
            stats.Record(now - 2, i * 10, error: i > 95); // 10 µs … 1000 µs, 5 errors
        }

        stats.Record(now, 5, error: false); // the current second: not complete, not shown
        var window = stats.Window(now);
        Assert.Equal(ServiceStats.Seconds, window.Seconds.Count);
        Assert.Equal(now - 1, window.Seconds[^1].Second);
        Assert.Equal(100, window.Seconds[^2].Calls);
        var summary = window.Summary(10);
        Assert.Equal(100, summary.Calls);
        Assert.Equal(5, summary.Errors);
        Assert.Equal(10.0, summary.CallsPerSecond);
        Assert.Equal(0.05, summary.ErrorRate, 3);
        Assert.InRange(summary.P50!.Value, 500, 500 * 1.25);
        Assert.InRange(summary.P99!.Value, 990, 990 * 1.25);
    }

    [Fact]
    public void A_second_that_comes_round_again_starts_from_zero()
    {
        var stats = new ServiceStats();
        stats.Record(100, 50, error: true);
        stats.Record(100 + 62, 50, error: false); // the same ring slot, 62 s later
        var window = stats.Window(100 + 63);
        Assert.Equal(1, window.Summary(60).Calls);
        Assert.Equal(0, window.Summary(60).Errors);
        Assert.DoesNotContain(window.Seconds, s => s.Second == 100);
    }

    [Fact]
    public void Merged_windows_add_up_second_by_second_and_percentiles_come_from_the_sum()
    {
        var a = new ServiceStats();
        var b = new ServiceStats();
        for (var i = 0; i < 90; i++)
        {
            a.Record(500, 100, error: false);
        }

        for (var i = 0; i < 10; i++)
        {
            b.Record(500, 100_000, error: true);
        }

        var merged = StatsWindow.Merge([a.Window(501), b.Window(501)]);
        Assert.Equal(ServiceStats.Seconds, merged.Seconds.Count);
        var summary = merged.Summary(1);
        Assert.Equal(100, summary.Calls);
        Assert.Equal(10, summary.Errors);
        Assert.InRange(summary.P50!.Value, 100, 125);
        Assert.InRange(summary.P99!.Value, 100_000, 125_000);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(7)]
    [InlineData(1000)]
    [InlineData(123_456)]
    [InlineData(30_000_000)]
    public void A_latency_falls_in_a_bucket_whose_upper_bound_is_within_25_percent(long micros)
    {
        var upper = LatencyHistogram.Upper(LatencyHistogram.Index(micros));
        Assert.InRange(upper, micros, Math.Max(micros * 1.25, micros + 1));
    }
}
