using System.Net.Sockets;

namespace Trellis.Rpc;

/// <summary>
/// Safe handling of Unix socket paths: the directory is created 0750 and must not be writable by others; an
/// existing path is removed only if it is a socket nobody answers on (a leftover), never whatever is there.
/// </summary>
internal static class UnixSocketFiles
{
    public static void Prepare(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Unix-socket endpoints need Linux or macOS");
        }

        var directory = Path.GetDirectoryName(path) ?? "/";
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                                 UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }

        var mode = File.GetUnixFileMode(directory);
        if ((mode & UnixFileMode.OtherWrite) != 0 && (mode & UnixFileMode.StickyBit) == 0)
        {
            throw new InvalidOperationException($"refusing to create a socket in {directory}: others may write there (use a 0750 directory)");
        }

        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }

        var info = new FileInfo(path);
        if ((info.Attributes & FileAttributes.Directory) != 0 || !IsSocket(path))
        {
            throw new InvalidOperationException($"{path} exists and is not a socket: not touching it");
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            throw new InvalidOperationException($"{path} is in use by another server");
        }
        catch (SocketException)
        {
            File.Delete(path); // a socket nobody listens on: a previous run's leftover
        }
    }

    public static void Remove(string path)
    {
        try
        {
            if (IsSocket(path))
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
            // already gone
        }
    }

    /// <summary>
    /// True for a Unix socket: it exists, is no symlink or directory, and opening it fails with ENXIO
    /// ("no such device or address"), which is what opening a socket file gives (a regular file opens).
    /// </summary>
    private static bool IsSocket(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return false;
        }

        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return false;
        }
        catch (IOException e) when (e.HResult == 6)
        {
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
