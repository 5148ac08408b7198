using System.Security.Cryptography;
using System.Text;

namespace Trellis.ZooKeeper;

/// <summary>A znode's metadata, as the server reports it.</summary>
public sealed record Stat(
    long Czxid,
    long Mzxid,
    long Ctime,
    long Mtime,
    int Version,
    int Cversion,
    int Aversion,
    long EphemeralOwner,
    int DataLength,
    int NumChildren,
    long Pzxid)
{
    public bool IsEphemeral => EphemeralOwner != 0;
}

[Flags]
public enum Permissions
{
    None = 0,
    Read = 1,
    Write = 2,
    Create = 4,
    Delete = 8,
    Admin = 16,
    All = Read | Write | Create | Delete | Admin,
}

/// <summary>An access control entry: permissions for an identity (<c>world:anyone</c>, <c>digest:user:hash</c>, <c>auth:</c>, <c>ip:…</c>).</summary>
public sealed record Acl(Permissions Permissions, string Scheme, string Id)
{
    /// <summary>Everyone may do everything.</summary>
    public static IReadOnlyList<Acl> OpenUnsafe { get; } = [new(Permissions.All, "world", "anyone")];

    /// <summary>Everyone may read.</summary>
    public static IReadOnlyList<Acl> ReadUnsafe { get; } = [new(Permissions.Read, "world", "anyone")];

    /// <summary>Everything for the identities the session authenticated with (<c>auth</c> scheme).</summary>
    public static IReadOnlyList<Acl> CreatorAll { get; } = [new(Permissions.All, "auth", "")];

    /// <summary>A digest ACL for <paramref name="user"/>: the id is <c>user:base64(sha1(user:password))</c>, as ZooKeeper computes it.</summary>
    public static Acl Digest(string user, string password, Permissions permissions) => new(permissions, "digest", DigestId(user, password));

    /// <summary>The digest scheme's id of <paramref name="user"/>: <c>user:base64(sha1(user:password))</c>, as ZooKeeper computes it.</summary>
    public static string DigestId(string user, string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(user);
        ArgumentNullException.ThrowIfNull(password);
#pragma warning disable CA5350 // SHA-1 is what ZooKeeper's digest scheme is defined with; the server computes the same
        var hash = SHA1.HashData(Encoding.UTF8.GetBytes($"{user}:{password}"));
#pragma warning restore CA5350
        return $"{user}:{Convert.ToBase64String(hash)}";
    }

    // The digest id carries a hash, never the password: safe to print.
    public override string ToString() => $"{Scheme}:{Id}={Permissions}";
}

public enum CreateMode
{
    Persistent = 0,
    Ephemeral = 1,
    PersistentSequential = 2,
    EphemeralSequential = 3,
    /// <summary>Deleted by the server some time after its last child goes.</summary>
    Container = 4,
    PersistentWithTtl = 5,
    PersistentSequentialWithTtl = 6,
}

public static class CreateModeExtensions
{
    public static bool IsEphemeral(this CreateMode mode) => mode is CreateMode.Ephemeral or CreateMode.EphemeralSequential;

    public static bool IsSequential(this CreateMode mode) => mode is CreateMode.PersistentSequential or CreateMode.EphemeralSequential or CreateMode.PersistentSequentialWithTtl;

    public static bool IsTtl(this CreateMode mode) => mode is CreateMode.PersistentWithTtl or CreateMode.PersistentSequentialWithTtl;
}

/// <summary>A persistent watch's reach: the node itself, or the node and every descendant.</summary>
public enum AddWatchMode
{
    Persistent = 0,
    PersistentRecursive = 1,
}

/// <summary>A node's data and metadata.</summary>
public sealed record NodeData(byte[] Data, Stat Stat);

/// <summary>A node's children (names, not paths) and its metadata.</summary>
public sealed record NodeChildren(IReadOnlyList<string> Children, Stat Stat);

/// <summary>What happened to a watched node.</summary>
public enum EventType
{
    None = -1,
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
    DataWatchRemoved = 5,
    ChildWatchRemoved = 6,
    PersistentWatchRemoved = 7,
}

/// <summary>A watch notification; the path is relative to the client's chroot.</summary>
public sealed record WatchedEvent(EventType Type, string Path);

/// <summary>Called with watch notifications, one at a time, in the order the server sent them.</summary>
public delegate void Watcher(WatchedEvent e);

/// <summary>A session's state, as the client knows it.</summary>
public enum SessionState
{
    /// <summary>Not connected yet (first connection in progress).</summary>
    Connecting,
    Connected,
    /// <summary>The connection was lost; the client is reconnecting and the session may still be alive.</summary>
    Disconnected,
    /// <summary>The server declared the session dead: its ephemerals and watches are gone. Terminal.</summary>
    Expired,
    /// <summary>The server refused the session's credentials. Terminal.</summary>
    AuthFailed,
    /// <summary>Closed by its owner. Terminal.</summary>
    Closed,
}

/// <summary>Chooses the ACL of a node about to be created at <paramref name="path"/> (for instance: its parent's).</summary>
public delegate Task<IReadOnlyList<Acl>> AclProvider(ZooKeeperClient client, string path, CancellationToken cancellationToken);
