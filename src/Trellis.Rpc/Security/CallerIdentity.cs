namespace Trellis.Rpc;

/// <summary>How a caller's identity became known, from the weakest to the strongest.</summary>
public enum IdentitySource
{
    /// <summary>The caller said who it is in THeader (<c>trellis-caller-product</c>, …): believed, not proven.</summary>
    Claimed,

    /// <summary>The kernel said which process is on the other end of a Unix socket (<c>SO_PEERCRED</c>).</summary>
    UnixPeer,

    /// <summary>The caller presented a client certificate that chains to a trusted CA (mTLS).</summary>
    Certificate,
}

/// <summary>
/// Who is calling, as far as the connection can tell: a product and service (from a certificate's
/// <c>trellis://{product}/{service}</c> URI name, or claimed in headers), or a local user (from Unix socket
/// peer credentials). Access-control rules match against it.
/// </summary>
public sealed record CallerIdentity
{
    public IdentitySource Source { get; init; }

    public string? Product { get; init; }

    public string? Service { get; init; }

    /// <summary>The calling process's user id (Unix peer credentials).</summary>
    public int? Uid { get; init; }

    /// <summary>The calling process's id (Unix peer credentials).</summary>
    public int? Pid { get; init; }

    /// <summary>The URI scheme of the identity names in certificates' subject alternative names.</summary>
    public const string UriScheme = "trellis";

    /// <summary><c>trellis://{product}/{service}</c>: the name a certificate carries for a product's service (or proxy).</summary>
    public static string ToUri(string product, string service) => $"{UriScheme}://{product}/{service}";

    /// <summary>Reads <c>trellis://{product}/{service}</c>; false for anything else.</summary>
    public static bool TryParseUri(string? uri, out string product, out string service)
    {
        product = service = "";
        if (uri is null || !uri.StartsWith(UriScheme + "://", StringComparison.Ordinal))
        {
            return false;
        }

        var rest = uri.AsSpan(UriScheme.Length + 3);
        var slash = rest.IndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1 || rest[(slash + 1)..].Contains('/'))
        {
            return false;
        }

        product = rest[..slash].ToString();
        service = rest[(slash + 1)..].ToString();
        return true;
    }

    public override string ToString() => Source switch
    {
        IdentitySource.UnixPeer => $"uid {Uid} (pid {Pid})",
        _ when Service is not null => $"{Product}/{Service} ({Source.ToString().ToLowerInvariant()})",
        _ => $"{Product ?? "unknown product"} ({Source.ToString().ToLowerInvariant()})",
    };
}
