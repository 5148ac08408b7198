namespace Trellis.Testing;

/// <summary>Polls until a condition holds, for things that happen in the background.</summary>
internal static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting" + (what is null ? "" : " for " + what));
            }

            await Task.Delay(10);
        }
    }
}
