using System.Runtime.InteropServices;
using System.Text.Json;

namespace Trellis.Rpc.Governance;

/// <summary>
/// The callers allowed to call a service or a method (a config's <c>allow</c>). Entries:
/// <c>product:NAME</c> and <c>service:PRODUCT/SERVICE</c> (a trailing <c>*</c> makes either a prefix) match a caller
/// proven by its certificate (mTLS), or one that only says who it is in THeader when the config sets
/// <c>trustClaimedCallers</c>; <c>uid:N</c> and <c>user:NAME</c> match a local process proven by Unix socket peer
/// credentials; <c>*</c> matches every caller.
/// </summary>
public sealed class AccessList
{
    private readonly List<Entry> _entries;

    private AccessList(List<Entry> entries, IReadOnlyList<string> text)
    {
        _entries = entries;
        Entries = text;
    }

    /// <summary>The entries as configured.</summary>
    public IReadOnlyList<string> Entries { get; }

    private abstract record Entry
    {
        public abstract bool Matches(CallerIdentity? caller, bool trustClaimed);
    }

    private sealed record AnyEntry : Entry
    {
        public override bool Matches(CallerIdentity? caller, bool trustClaimed) => true;
    }

    private sealed record NameEntry(ValueMatch Product, ValueMatch? Service) : Entry
    {
        public override bool Matches(CallerIdentity? caller, bool trustClaimed) =>
            caller is { Product: { } product } && (caller.Source == IdentitySource.Certificate || (trustClaimed && caller.Source == IdentitySource.Claimed))
            && Product.Matches(product) && (Service is null || Service.Matches(caller.Service));
    }

    private sealed record UidEntry(int Uid) : Entry
    {
        public override bool Matches(CallerIdentity? caller, bool trustClaimed) =>
            caller is { Source: IdentitySource.UnixPeer, Uid: { } uid } && uid == Uid;
    }

    /// <summary>A user unknown on this machine: matches nobody here.</summary>
    private sealed record NobodyEntry : Entry
    {
        public override bool Matches(CallerIdentity? caller, bool trustClaimed) => false;
    }

    public bool Allows(CallerIdentity? caller, bool trustClaimed)
    {
        foreach (var entry in _entries)
        {
            if (entry.Matches(caller, trustClaimed))
            {
                return true;
            }
        }

        return false;
    }

    internal static AccessList? Parse(JsonElement v, string path, List<string> problems)
    {
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
        {
            problems.Add($"{path}: must be an array of callers such as [\"product:online-shop\", \"service:online-shop/cart\", \"uid:1000\", \"user:www-data\"] (an empty array allows nobody)");
            return null;
        }

        var entries = new List<Entry>();
        var text = new List<string>();
        var i = 0;
        foreach (var e in v.EnumerateArray())
        {
            var at = $"{path}[{i++}]";
            var s = e.GetString()!;
            text.Add(s);
            var colon = s.IndexOf(':');
            var (kind, value) = colon < 0 ? (s, "") : (s[..colon], s[(colon + 1)..]);
            switch (kind)
            {
                case "*" when colon < 0:
                    entries.Add(new AnyEntry());
                    break;
                case "product" when Pattern(value) is { } product:
                    entries.Add(new NameEntry(product, null));
                    break;
                case "service" when value.Split('/') is [var p, var svc] && Pattern(p) is { } product && Pattern(svc) is { } service:
                    entries.Add(new NameEntry(product, service));
                    break;
                case "uid" when int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var uid):
                    entries.Add(new UidEntry(uid));
                    break;
                case "user" when value.Length > 0:
                    entries.Add(UserId(value) is { } id ? new UidEntry(id) : new NobodyEntry());
                    break;
                default:
                    problems.Add($"{at}: '{s}' is not a caller: product:NAME, service:PRODUCT/SERVICE, uid:N, user:NAME or *");
                    break;
            }
        }

        return new AccessList(entries, text);
    }

    private static ValueMatch? Pattern(string value) =>
        value.Length == 0 || value.IndexOf('*') is var star && star >= 0 && star != value.Length - 1 ? null : new ValueMatch([value], false);

    private static readonly object PasswdLock = new();

    /// <summary>The uid of a local user name (getpwnam), or null when there is none (or not on Unix).</summary>
    public static int? UserId(string name)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        lock (PasswdLock) // getpwnam returns a static buffer
        {
            var entry = getpwnam(name);
            if (entry == IntPtr.Zero)
            {
                return null;
            }

            // struct passwd { char *pw_name; char *pw_passwd; uid_t pw_uid; … }
            return Marshal.ReadInt32(entry, 2 * IntPtr.Size);
        }
    }

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern IntPtr getpwnam(string name);
}
