using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Trellis.Bench.Suite
{
    /// <summary>What the figures were measured on.</summary>
    internal sealed record MachineInfo(string Cpu, int Cores, string Kernel, string Os, string DotNet, string LoadAverageStart)
    {
        public string LoadAverageEnd { get; set; } = "";

        public string ThriftCpp { get; set; } = "";

        public string Haproxy { get; set; } = "";

        public static MachineInfo Read() => new(
            CpuModel(),
            Environment.ProcessorCount,
            FirstLine("/proc/sys/kernel/osrelease") ?? RuntimeInformation.OSDescription,
            RuntimeInformation.OSDescription,
            RuntimeInformation.FrameworkDescription,
            LoadAverage());

        /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg.</summary>
        public static string LoadAverage() =>
            FirstLine("/proc/loadavg") is { } line ? string.Join(' ', line.Split(' ').Take(3)) : "unknown";

        /// <summary>The first line <paramref name="file"/> <paramref name="arguments"/> prints, or null.</summary>
        public static string? Command(string file, params string[] arguments)
        {
            try
            {
                var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var a in arguments)
                {
                    info.ArgumentList.Add(a);
                }

                using var process = Process.Start(info);
                if (process is null)
                {
                    return null;
                }

                var output = process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                return process.ExitCode == 0 ? output.Split('\n')[0].Trim() : null;
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
            {
                return null;
            }
        }

        private static string CpuModel()
        {
            try
            {
                var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                return line is null ? RuntimeInformation.ProcessArchitecture.ToString() : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
            catch (IOException)
            {
                return RuntimeInformation.ProcessArchitecture.ToString();
            }
        }

        private static string? FirstLine(string path)
        {
            try
            {
                return File.Exists(path) ? File.ReadLines(path).FirstOrDefault()?.Trim() : null;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }
}
