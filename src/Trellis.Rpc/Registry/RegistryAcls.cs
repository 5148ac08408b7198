using System.Text;
using Trellis.ZooKeeper;

namespace Trellis.Rpc.Registry;

/// <summary>
/// Who may do what in a product's part of ZooKeeper (docs/governance.md, "ZooKeeper ACLs"). Identities are ZooKeeper
/// digest users. A product's nodes may be written only by its <see cref="Deployer"/> (the identity its services,
/// central proxies and operators run with); an <c>online*</c> product's nodes may be read only by the deployer and the
/// <see cref="Readers"/> (no <c>world:anyone</c> at all); any other product's nodes are readable by everyone.
/// <c>/trellis</c> itself is readable by everyone (to list products) and writable only by whoever created it.
/// </summary>
/// <remarks>
/// The policy decides the ACL of <c>/trellis</c> and of a product's node when the registry creates them. Every node
/// below a product's node is created with its parent's ACL, so a tree stays consistent with what
/// <c>trellis registry acl</c> last set on it, whatever the creating process was configured with.
/// </remarks>
public sealed class RegistryAclPolicy
{
    private RegistryAclPolicy(string? identity, string? identityId, string deployer, IReadOnlyList<string> readers)
    {
        Identity = identity;
        IdentityId = identityId;
        Deployer = deployer;
        Readers = readers;
    }

    /// <summary>The digest user this process authenticates as (for messages; never the password), or null.</summary>
    public string? Identity { get; }

    /// <summary>This process's digest id (<c>user:base64(sha1(user:password))</c>), or null.</summary>
    public string? IdentityId { get; }

    /// <summary>The digest id allowed to write (ALL) a product's nodes.</summary>
    public string Deployer { get; }

    /// <summary>Digest ids allowed to read an online product's nodes.</summary>
    public IReadOnlyList<string> Readers { get; }

    /// <summary>
    /// The policy of settings: <paramref name="auth"/> (<c>user:password</c> this process authenticates as, or null),
    /// <paramref name="deployer"/> (a digest id <c>user:base64hash</c>, or <c>user:password</c> to compute it from; default:
    /// this process's own identity), <paramref name="readers"/> (the same forms). Null when there is neither an identity
    /// nor a deployer: nodes are then created open, as before ACLs existed. A malformed value is an
    /// <see cref="ArgumentException"/> that names the setting, never its secret.
    /// </summary>
    public static RegistryAclPolicy? Create(string? auth, string? deployer, IEnumerable<string>? readers)
    {
        string? identity = null;
        string? identityId = null;
        if (!string.IsNullOrEmpty(auth))
        {
            var (user, password) = SplitCredentials(auth, "Auth");
            identity = user;
            identityId = Acl.DigestId(user, password);
        }

        var readerIds = (readers ?? []).Where(r => !string.IsNullOrWhiteSpace(r)).Select(r => ToDigestId(r, "Readers")).Distinct(StringComparer.Ordinal).ToList();
        var deployerId = string.IsNullOrWhiteSpace(deployer) ? identityId : ToDigestId(deployer, "Deployer");
        if (deployerId is null)
        {
            return readerIds.Count > 0 ? throw new ArgumentException("ZooKeeper:Readers are set but there is no Deployer (set Deployer, or Auth to deploy as this process's identity)") : null;
        }

        return new RegistryAclPolicy(identity, identityId, deployerId, readerIds);
    }

    /// <summary><c>/trellis</c>: everyone reads (lists products); whoever bootstraps it (this identity, else the deployer) does the rest.</summary>
    public IReadOnlyList<Acl> ForRoot() =>
        [new Acl(Permissions.Read, "world", "anyone"), new Acl(Permissions.All, "digest", IdentityId ?? Deployer)];

    /// <summary>A product's nodes: the deployer ALL; for an <c>online*</c> product the readers READ and nobody else anything, otherwise everyone READ.</summary>
    public IReadOnlyList<Acl> ForProduct(string product)
    {
        ArgumentNullException.ThrowIfNull(product);
        var acl = new List<Acl> { new(Permissions.All, "digest", Deployer) };
        if (Governance.ProductIsolation.IsOnline(product))
        {
            acl.AddRange(Readers.Where(r => r != Deployer).Select(r => new Acl(Permissions.Read, "digest", r)));
        }
        else
        {
            acl.Add(new Acl(Permissions.Read, "world", "anyone"));
        }

        return acl;
    }

    /// <summary>A digest id as given (<c>user:base64(sha1)</c>: 28 characters of base64 after the colon), or computed from <c>user:password</c>.</summary>
    public static string ToDigestId(string value, string setting)
    {
        ArgumentNullException.ThrowIfNull(value);
        value = value.Trim();
        if (IsDigestId(value))
        {
            return value;
        }

        var (user, password) = SplitCredentials(value, setting);
        return Acl.DigestId(user, password);
    }

    /// <summary>True for <c>user:hash</c> where hash is the base64 of a 20-byte SHA-1, as ZooKeeper stores digest ids.</summary>
    public static bool IsDigestId(string value)
    {
        var colon = value?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (colon <= 0 || value!.Length - colon - 1 != 28 || value[^1] != '=')
        {
            return false;
        }

        Span<byte> hash = stackalloc byte[21];
        return Convert.TryFromBase64String(value[(colon + 1)..], hash, out var written) && written == 20;
    }

    /// <summary><c>user:password</c> split; a value without a user or a colon is refused without repeating it.</summary>
    public static (string User, string Password) SplitCredentials(string value, string setting)
    {
        ArgumentNullException.ThrowIfNull(value);
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == value.Length - 1 || value.AsSpan(0, colon).ContainsAny(" /\t\r\n"))
        {
            throw new ArgumentException($"ZooKeeper:{setting} must be user:password (or a digest id user:base64hash where one is allowed); the value given is not (not shown: it may be a secret)");
        }

        return (value[..colon], value[(colon + 1)..]);
    }

    /// <summary>The digest user names of a session's credentials, for messages (never the passwords): <c>anonymous</c> without any.</summary>
    public static string IdentityOf(IEnumerable<(string Scheme, byte[] Auth)> authentication)
    {
        var users = (authentication ?? [])
            .Where(a => a.Scheme == "digest")
            .Select(a => Encoding.UTF8.GetString(a.Auth))
            .Select(s => s.IndexOf(':', StringComparison.Ordinal) is var c and > 0 ? s[..c] : "?")
            .ToList();
        return users.Count == 0 ? Anonymous : string.Join("+", users);
    }

    /// <summary>How a session without credentials is named in messages.</summary>
    public const string Anonymous = "anonymous (no ZooKeeper credentials)";

    /// <summary>True when two ACLs grant the same (order does not matter).</summary>
    public static bool Same(IReadOnlyList<Acl> a, IReadOnlyList<Acl> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.ToHashSet().SetEquals(b);
    }

    /// <summary>True when ZooKeeper hid the id's hash (<c>user:x</c>): the reader may read the node but not administer it.</summary>
    public static bool IsRedacted(Acl acl) => acl is { Scheme: "digest" } && acl.Id.EndsWith(":x", StringComparison.Ordinal);

    /// <summary>True when an ACL lets everyone do more than read (what a node created before ACLs has: world:anyone ALL).</summary>
    public static bool IsOpen(IReadOnlyList<Acl> acl) =>
        acl?.Any(a => a is { Scheme: "world", Id: "anyone" } && (a.Permissions & ~Permissions.Read) != 0) ?? false;

    /// <summary>An ACL for people: <c>deployer=cdrwa reader=r anyone=r</c> (user names, never hashes).</summary>
    public static string Describe(IReadOnlyList<Acl> acl)
    {
        if (acl is null || acl.Count == 0)
        {
            return "(none)";
        }

        return string.Join(" ", acl.Select(a =>
        {
            var who = a.Scheme switch
            {
                "world" when a.Id == "anyone" => "anyone",
                "digest" => a.Id.IndexOf(':', StringComparison.Ordinal) is var c and > 0 ? a.Id[..c] : a.Id,
                _ => $"{a.Scheme}:{a.Id}",
            };
            return $"{who}={Letters(a.Permissions)}";
        }));
    }

    /// <summary>Permissions as zkCli writes them: <c>cdrwa</c>.</summary>
    public static string Letters(Permissions permissions)
    {
        var text = new StringBuilder(5);
        if (permissions.HasFlag(Permissions.Create)) text.Append('c');
        if (permissions.HasFlag(Permissions.Delete)) text.Append('d');
        if (permissions.HasFlag(Permissions.Read)) text.Append('r');
        if (permissions.HasFlag(Permissions.Write)) text.Append('w');
        if (permissions.HasFlag(Permissions.Admin)) text.Append('a');
        return text.Length == 0 ? "-" : text.ToString();
    }
}

/// <summary>
/// ZooKeeper refused an operation of the registry for lack of permission (a digest ACL): the message says who may not do
/// what where, e.g. <c>not allowed: tester may not read /trellis/online-shop/services/Cart/instances</c>.
/// </summary>
public sealed class RegistryAccessDeniedException : UnauthorizedAccessException
{
    public RegistryAccessDeniedException(string identity, string action, string path, Exception? inner = null)
        : base($"not allowed: {identity} may not {action} {path}", inner)
    {
        Identity = identity;
        Action = action;
        Path = path;
    }

    public RegistryAccessDeniedException()
    {
        Identity = Action = Path = "";
    }

    public RegistryAccessDeniedException(string message)
        : base(message)
    {
        Identity = Action = Path = "";
    }

    public RegistryAccessDeniedException(string message, Exception inner)
        : base(message, inner)
    {
        Identity = Action = Path = "";
    }

    /// <summary>Who was refused (a digest user name, or <see cref="RegistryAclPolicy.Anonymous"/>).</summary>
    public string Identity { get; }

    /// <summary>read, write, create, delete, change the ACL of.</summary>
    public string Action { get; }

    /// <summary>The node refused.</summary>
    public string Path { get; }
}

/// <summary>What <see cref="ZooKeeperRegistry.SecureProductAsync"/> found and did.</summary>
/// <param name="Visited">The nodes looked at (<c>/trellis</c> and the product's tree).</param>
/// <param name="Changes">Each node whose ACL was (or, in a dry run, would be) set, with its ACL before (empty: created).</param>
/// <param name="Refused">What the identity was not allowed to do, one message each.</param>
public sealed record AclRepair(int Visited, IReadOnlyList<AclChange> Changes, IReadOnlyList<RegistryAccessDeniedException> Refused);

/// <summary>One node's ACL before and after.</summary>
public sealed record AclChange(string Path, IReadOnlyList<Acl> Before, IReadOnlyList<Acl> After);
