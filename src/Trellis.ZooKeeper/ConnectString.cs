using System.Globalization;

namespace Trellis.ZooKeeper;

/// <summary>A parsed connect string: <c>host:port,host:port/chroot</c>.</summary>
public sealed record ConnectString(IReadOnlyList<(string Host, int Port)> Servers, string? Chroot)
{
    public const int DefaultPort = 2181;

    public static ConnectString Parse(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        string? chroot = null;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            chroot = text[slash..].TrimEnd('/');
            if (chroot.Length == 0)
            {
                chroot = null;
            }
            else
            {
                PathValidation.Validate(chroot, nameof(text));
            }

            text = text[..slash];
        }

        var servers = new List<(string, int)>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.LastIndexOf(':');
            if (colon > 0 && part.IndexOf(']', StringComparison.Ordinal) < colon)
            {
                if (!int.TryParse(part[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
                {
                    throw new ArgumentException($"bad port in '{part}'", nameof(text));
                }

                servers.Add((part[..colon].Trim('[', ']'), port));
            }
            else
            {
                servers.Add((part.Trim('[', ']'), DefaultPort));
            }
        }

        if (servers.Count == 0)
        {
            throw new ArgumentException("the connect string names no server", nameof(text));
        }

        return new ConnectString(servers, chroot);
    }
}

/// <summary>ZooKeeper's rules for node paths.</summary>
public static class PathValidation
{
    public static void Validate(string path, string parameterName = "path", bool isSequentialPrefix = false)
    {
        ArgumentNullException.ThrowIfNull(path, parameterName);
        string? problem = null;
        if (path.Length == 0 || path[0] != '/')
        {
            problem = "must start with '/'";
        }
        else if (path.Length > 1 && path[^1] == '/' && !isSequentialPrefix)
        {
            problem = "must not end with '/'";
        }
        else if (path.Contains("//", StringComparison.Ordinal))
        {
            problem = "has an empty segment";
        }
        else if (path.Split('/').Any(s => s is "." or ".."))
        {
            problem = "has a '.' or '..' segment";
        }
        else if (path.Any(c => c == '\0' || (c > '\u0000' && c <= '\u001f') || (c >= '\u007f' && c <= '\u009f') ||
                               (c >= '\ud800' && c <= '\uf8ff') || (c >= '\ufff0' && c <= '\uffff')))
        {
            problem = "has a character ZooKeeper does not allow";
        }

        if (problem is not null)
        {
            throw new ArgumentException($"invalid ZooKeeper path '{path}': {problem}", parameterName);
        }
    }
}
