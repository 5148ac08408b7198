using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trellis.Rpc.Registry;

/// <summary>
/// What a service instance publishes about itself: where it listens and how to talk to it. Stored as JSON
/// at <c>/trellis/{product}/services/{service}/instances/{instanceId}</c> (ZooKeeper) or in the local
/// registry's directory of the same shape.
/// </summary>
public sealed record ServiceInstance
{
    public required string Product { get; init; }
    public required string Service { get; init; }
    public required string InstanceId { get; init; }
    public string? Host { get; init; }
    public int Port { get; init; }
    /// <summary>A Unix socket path, for callers on the same machine.</summary>
    public string? Uds { get; init; }
    public string Zone { get; init; } = "";
    public int Weight { get; init; } = 100;
    /// <summary><c>binary</c> or <c>compact</c>.</summary>
    public string Protocol { get; init; } = "binary";
    /// <summary><c>framed</c>, <c>unframed</c> or <c>header</c>.</summary>
    public string Framing { get; init; } = "framed";
    /// <summary>The instance takes <c>service:method</c> names (and answers many calls per connection).</summary>
    public bool Multiplexed { get; init; } = true;
    public int MaxConcurrency { get; init; }
    public string Version { get; init; } = "";
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    public int Pid { get; init; }
    public DateTimeOffset StartedAt { get; init; }
    /// <summary>Stopping: serve what arrives, but send nothing new.</summary>
    public bool Draining { get; init; }
    /// <summary>
    /// The TCP address takes TLS only (the instance's certificate names <c>trellis://{product}/{service}</c>); the Unix
    /// socket is always plaintext. Left out of the record when false.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Tls { get; init; }

    /// <summary>The endpoint a caller uses (the Unix socket when asked for and present, else TCP).</summary>
    public RpcEndpoint Endpoint(bool preferUnixSocket = false) =>
        preferUnixSocket && Uds is not null ? RpcEndpoint.Unix(Uds)
        : Host is not null ? RpcEndpoint.Tcp(Host, Port)
        : Uds is not null ? RpcEndpoint.Unix(Uds)
        : throw new InvalidOperationException($"instance {InstanceId} has neither host nor uds");

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, RegistryJson.Default.ServiceInstance);

    /// <summary>Parses a record; null (never an exception) for a record that is not valid.</summary>
    public static ServiceInstance? TryParse(ReadOnlySpan<byte> json)
    {
        try
        {
            var instance = JsonSerializer.Deserialize(json, RegistryJson.Default.ServiceInstance);
            return instance is not null && instance.Validate() is null ? instance.Deduplicated() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The record with its repeated strings shared: a proxy holds every instance of every service it routes, and each
    /// parse gives each record its own copies of the same few texts (product, host, protocol, framing, version) and its
    /// own tag dictionary, though most instances of a deployment carry the same tags: about 450 bytes per instance.
    /// </summary>
    private ServiceInstance Deduplicated() => this with
    {
        Product = StringPool.Share(Product),
        Service = StringPool.Share(Service),
        Host = Host is null ? null : StringPool.Share(Host),
        Zone = StringPool.Share(Zone),
        Protocol = Protocol switch { "binary" => "binary", "compact" => "compact", _ => Protocol }, // validated: one of these
        Framing = Framing switch { "framed" => "framed", "unframed" => "unframed", "header" => "header", _ => Framing },
        Version = StringPool.Share(Version),
        Tags = StringPool.Share(Tags),
    };

    /// <summary>What is wrong with this record, or null.</summary>
    public string? Validate()
    {
        if (!RegistryPaths.IsName(Product) || !RegistryPaths.IsName(Service) || !RegistryPaths.IsName(InstanceId))
        {
            return "product, service and instance id must be non-empty names without '/'";
        }

        if (Host is null && Uds is null)
        {
            return "an instance needs a host and port, or a uds path";
        }

        if (Host is not null && Port is <= 0 or > 65535)
        {
            return $"port {Port} is out of range";
        }

        if (Protocol is not ("binary" or "compact") || Framing is not ("framed" or "unframed" or "header"))
        {
            return $"unknown protocol/framing {Protocol}/{Framing}";
        }

        return Weight < 0 ? "weight must not be negative" : null;
    }
}

/// <summary>
/// Shares equal strings of parsed records. Bounded: once it holds <see cref="Capacity"/> texts, new ones are kept as
/// they are (a registry with endless distinct tag values cannot grow it without limit). Short texts only.
/// </summary>
internal static class StringPool
{
    internal const int Capacity = 16_384;
    private const int MaxLength = 128;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Pool = new(StringComparer.Ordinal);

    public static string Share(string text)
    {
        if (text.Length == 0)
        {
            return "";
        }

        if (text.Length > MaxLength)
        {
            return text;
        }

        if (Pool.TryGetValue(text, out var shared))
        {
            return shared;
        }

        return Pool.Count < Capacity ? Pool.GetOrAdd(text, text) : text;
    }

    private static readonly IReadOnlyDictionary<string, string> NoTags = new Dictionary<string, string>().AsReadOnly();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyDictionary<string, string>> TagSets = new(StringComparer.Ordinal);

    /// <summary>
    /// Equal tag sets as one read-only dictionary (tags are never changed once parsed), its texts shared. Bounded as the
    /// texts are; a set with a text over 128 characters is kept as parsed.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Share(IReadOnlyDictionary<string, string> tags)
    {
        if (tags.Count == 0)
        {
            return NoTags;
        }

        var sorted = tags.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var key = new System.Text.StringBuilder();
        foreach (var (name, value) in sorted)
        {
            if (name.Length > MaxLength || value.Length > MaxLength)
            {
                return tags;
            }

            // length-prefixed: no two different sets give the same key, whatever characters they hold
            key.Append(name.Length).Append(':').Append(name).Append(value.Length).Append(':').Append(value);
        }

        var text = key.ToString();
        if (TagSets.TryGetValue(text, out var shared))
        {
            return shared;
        }

        var copy = sorted.ToDictionary(kv => Share(kv.Key), kv => Share(kv.Value), StringComparer.Ordinal).AsReadOnly();
        return TagSets.Count < Capacity ? TagSets.GetOrAdd(text, copy) : copy;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ServiceInstance))]
internal sealed partial class RegistryJson : JsonSerializerContext;

/// <summary>The registry's paths, the same for ZooKeeper and the local registry.</summary>
public static class RegistryPaths
{
    public const string Root = "/trellis";

    public static string Instances(string product, string service) => $"{Root}/{product}/services/{service}/instances";

    /// <summary>A service's directory: its <c>instances</c> and its <c>config</c>.</summary>
    public static string Service(string product, string service) => $"{Root}/{product}/services/{service}";

    public static string Config(string product, string service) => $"{Root}/{product}/services/{service}/config";

    public static string Instance(string product, string service, string instanceId) => $"{Instances(product, service)}/{instanceId}";

    /// <summary>Where the central proxies of a zone register (<c>zone</c> empty: the product's default zone <c>_</c>).</summary>
    public static string Proxies(string product, string zone) => $"{Root}/{product}/proxies/{(zone.Length == 0 ? "_" : zone)}";

    public static bool IsName(string? name) =>
        !string.IsNullOrWhiteSpace(name) && !name.Contains('/', StringComparison.Ordinal) && name is not ("." or "..") && name.Length <= 255;
}

/// <summary>A registered instance; dispose (or <see cref="DeregisterAsync"/>) to withdraw it.</summary>
public interface IRegistration : IAsyncDisposable
{
    ServiceInstance Instance { get; }

    /// <summary>Replaces the published record (e.g. to mark it draining).</summary>
    Task UpdateAsync(ServiceInstance instance, CancellationToken cancellationToken = default);

    /// <summary>Withdraws the instance: consumers stop seeing it.</summary>
    Task DeregisterAsync(CancellationToken cancellationToken = default);
}

/// <summary>The instances of one service, as the registry knows them now, and every change after.</summary>
public interface IServiceWatch : IAsyncDisposable
{
    IReadOnlyList<ServiceInstance> Instances { get; }

    /// <summary>Raised with the full new list after each change.</summary>
    event Action<IReadOnlyList<ServiceInstance>>? Changed;
}

/// <summary>What a registry holds, for operators (<c>trellis registry ls</c>).</summary>
public interface IRegistryBrowser
{
    Task<IReadOnlyList<string>> ListProductsAsync(CancellationToken cancellationToken = default);

    Task<IReadOnlyList<string>> ListServicesAsync(string product, CancellationToken cancellationToken = default);
}

/// <summary>Where instances register and where callers find them.</summary>
public interface IServiceRegistry : IAsyncDisposable
{
    Task<IRegistration> RegisterAsync(ServiceInstance instance, CancellationToken cancellationToken = default);

    Task<IServiceWatch> WatchAsync(string product, string service, CancellationToken cancellationToken = default);

    /// <summary>Registers a central proxy under <see cref="RegistryPaths.Proxies"/> of its product and zone.</summary>
    Task<IRegistration> RegisterProxyAsync(ServiceInstance proxy, CancellationToken cancellationToken = default);

    /// <summary>Watches the central proxies of a zone.</summary>
    Task<IServiceWatch> WatchProxiesAsync(string product, string zone, CancellationToken cancellationToken = default);
}
