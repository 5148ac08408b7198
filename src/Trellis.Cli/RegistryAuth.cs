using System.Collections;
using System.CommandLine;
using Trellis.Hosting;

namespace Trellis.Cli;

/// <summary>
/// The ZooKeeper identity a <c>trellis</c> command authenticates as: <c>--zk-auth-file FILE</c> (its first line is
/// <c>user:password</c>), <c>--zk-auth USER:PASSWORD</c> (other users see it in <c>ps</c>: prefer the file), else the
/// environment (<c>Trellis__ZooKeeper__AuthFile</c>, <c>Trellis__ZooKeeper__Auth</c>), as for the hosted programs.
/// </summary>
internal static class RegistryAuth
{
    public static Option<string?> AuthFile { get; } = new("--zk-auth-file")
    {
        Description = "File whose first line is the ZooKeeper digest identity user:password (default: $Trellis__ZooKeeper__AuthFile)",
        Recursive = true,
    };

    public static Option<string?> Auth { get; } = new("--zk-auth")
    {
        Description = "ZooKeeper digest identity user:password (visible to other users: prefer --zk-auth-file or $Trellis__ZooKeeper__Auth)",
        Recursive = true,
    };

    /// <summary>Sets <c>Auth</c> / <c>AuthFile</c>: the command line's, else the environment's.</summary>
    public static void Apply(ParseResult? result, TrellisOptions.ZooKeeperSection zooKeeper)
    {
        ArgumentNullException.ThrowIfNull(zooKeeper);
        var (auth, file) = (result?.GetValue(Auth), result?.GetValue(AuthFile));
        if (auth is null && file is null)
        {
            (auth, file) = (Environment("Trellis__ZooKeeper__Auth"), Environment("Trellis__ZooKeeper__AuthFile"));
        }

        zooKeeper.Auth = auth;
        zooKeeper.AuthFile = file;
    }

    /// <summary>An environment variable, its name matched as configuration matches keys (without regard to case).</summary>
    private static string? Environment(string name)
    {
        foreach (DictionaryEntry variable in System.Environment.GetEnvironmentVariables())
        {
            if (string.Equals((string)variable.Key, name, StringComparison.OrdinalIgnoreCase) && variable.Value is string { Length: > 0 } value)
            {
                return value;
            }
        }

        return null;
    }
}
