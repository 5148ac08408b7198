using System.Runtime.InteropServices;

// Shared by the bench harnesses' child roles (the proxy bench's server and proxy, the suite's Kestrel ceiling).
namespace Trellis.Bench
{
    /// <summary>Completes when stdin reaches its end (the driver closed it or died) or on SIGTERM / SIGINT.</summary>
    internal static class StopSignal
    {
        public static async Task WaitAsync()
        {
            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            var watch = new Thread(() =>
            {
                try
                {
                    using var stdin = Console.OpenStandardInput();
                    var buffer = new byte[64];
                    while (stdin.Read(buffer, 0, buffer.Length) > 0)
                    {
                        // nothing is expected on stdin; only its end matters
                    }
                }
                catch (IOException)
                {
                    // a broken stdin is an end too
                }

                stop.TrySetResult();
            })
            { IsBackground = true, Name = "stdin watch" };
            watch.Start();
            await stop.Task;
        }
    }
}
