using System.Text;
using System.Text.Json;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Governance;

/// <summary>What a degraded method (or service) answers instead of running: a failure with this message.</summary>
public sealed record DegradeRule(string Error);

/// <summary>A token bucket: <see cref="PerSecond"/> calls a second on average, bursts of up to <see cref="Burst"/>.</summary>
public sealed record RateLimit(double PerSecond, int Burst);

/// <summary>One method's own settings.</summary>
public sealed record MethodConfig
{
    /// <summary>The call's deadline at the proxy (the caller's own, if shorter, still wins).</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Attempts after the first for calls that failed after being sent; only for idempotent methods.</summary>
    public int? Retries { get; init; }

    /// <summary>Safe to send again after a failure once sent.</summary>
    public bool Idempotent { get; init; }

    /// <summary>Answered at once with this error instead of being forwarded.</summary>
    public DegradeRule? Degrade { get; init; }

    /// <summary>Calls of this method a second, at each proxy.</summary>
    public RateLimit? RateLimit { get; init; }

    /// <summary>Calls of this method in flight at most, at each proxy.</summary>
    public int? MaxConcurrent { get; init; }
}

/// <summary>
/// A service's configuration as operators set it in the registry (<c>/trellis/{product}/services/{service}/config</c>):
/// the balancing strategy, instance weights, instances taken offline, timeouts, retries and degradation. It is
/// validated as a whole before use: <see cref="Parse"/> returns every problem with its JSON path, and a config with
/// any problem is not used (the last good one stays in force).
/// </summary>
public sealed record ServiceConfig
{
    public static readonly ServiceConfig Empty = new();

    /// <summary>The balancing strategy (null: the consumer's default).</summary>
    public string? Strategy { get; init; }

    /// <summary>Weights by instance id, overriding what the instances registered.</summary>
    public IReadOnlyDictionary<string, int> Weights { get; init; } = new Dictionary<string, int>(StringComparer.Ordinal);

    /// <summary>Instances taken offline: registered, but no call is sent to them.</summary>
    public IReadOnlySet<string> Offline { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>The service's call deadline at the proxy.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>The whole service answers at once with this error.</summary>
    public DegradeRule? Degrade { get; init; }

    /// <summary>Calls of the service a second (all methods together), at each proxy.</summary>
    public RateLimit? RateLimit { get; init; }

    /// <summary>Calls of the service in flight at most (all methods together), at each proxy.</summary>
    public int? MaxConcurrent { get; init; }

    public IReadOnlyDictionary<string, MethodConfig> Methods { get; init; } = new Dictionary<string, MethodConfig>(StringComparer.Ordinal);

    /// <summary>The instances as the consumer should see them: offline ones left out, weights applied.</summary>
    public IReadOnlyList<ServiceInstance> Apply(IReadOnlyList<ServiceInstance> instances)
    {
        if (Offline.Count == 0 && Weights.Count == 0)
        {
            return instances;
        }

        return [.. instances
            .Where(i => !Offline.Contains(i.InstanceId))
            .Select(i => Weights.TryGetValue(i.InstanceId, out var weight) ? i with { Weight = weight } : i)];
    }

    /// <summary>The degradation that applies to <paramref name="method"/> (its own, else the service's), or null.</summary>
    public DegradeRule? DegradeFor(string method) =>
        Methods.TryGetValue(method, out var own) && own.Degrade is { } rule ? rule : Degrade;

    private static readonly string[] TopKeys = ["strategy", "weights", "offline", "timeoutMs", "degrade", "rateLimit", "maxConcurrent", "methods"];
    private static readonly string[] MethodKeys = ["timeoutMs", "retries", "idempotent", "degrade", "rateLimit", "maxConcurrent"];
    private static readonly string[] RateKeys = ["perSecond", "burst"];
    private static readonly string[] DegradeKeys = ["error"];

    /// <summary>Reads and checks a config; on any problem the config is null and every problem is listed (<c>$.path: what</c>).</summary>
    public static (ServiceConfig? Config, IReadOnlyList<string> Problems) Parse(ReadOnlySpan<byte> json)
    {
        var problems = new List<string>();
        if (json.Length > 1024 * 1024)
        {
            return (null, ["$: larger than 1 MiB"]);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            return (null, [$"$: not JSON: {e.Message}"]);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, ["$: must be an object"]);
            }

            Unknown(root, "$", TopKeys, problems);
            string? strategy = null;
            if (root.TryGetProperty("strategy", out var s))
            {
                if (s.ValueKind != JsonValueKind.String)
                {
                    problems.Add("$.strategy: must be a string");
                }
                else
                {
                    try
                    {
                        strategy = BalancerStrategy.Parse(s.GetString()!).Name;
                    }
                    catch (ArgumentException e)
                    {
                        problems.Add($"$.strategy: {e.Message.Split(" (Parameter", 2)[0]}");
                    }
                }
            }

            var weights = new Dictionary<string, int>(StringComparer.Ordinal);
            if (root.TryGetProperty("weights", out var w))
            {
                if (w.ValueKind != JsonValueKind.Object)
                {
                    problems.Add("$.weights: must be an object of instance id → weight");
                }
                else
                {
                    foreach (var pair in w.EnumerateObject())
                    {
                        if (!RegistryPaths.IsName(pair.Name))
                        {
                            problems.Add($"$.weights: '{pair.Name}' is not an instance id");
                        }
                        else if (Int(pair.Value, $"$.weights.{pair.Name}", 0, 100_000, problems) is { } weight)
                        {
                            weights[pair.Name] = weight;
                        }
                    }
                }
            }

            var offline = new HashSet<string>(StringComparer.Ordinal);
            if (root.TryGetProperty("offline", out var o))
            {
                if (o.ValueKind != JsonValueKind.Array)
                {
                    problems.Add("$.offline: must be an array of instance ids");
                }
                else
                {
                    var i = 0;
                    foreach (var id in o.EnumerateArray())
                    {
                        if (id.ValueKind != JsonValueKind.String || !RegistryPaths.IsName(id.GetString()))
                        {
                            problems.Add($"$.offline[{i}]: must be an instance id");
                        }
                        else
                        {
                            offline.Add(id.GetString()!);
                        }

                        i++;
                    }
                }
            }

            var timeout = root.TryGetProperty("timeoutMs", out var t) ? Millis(t, "$.timeoutMs", problems) : null;
            var degrade = root.TryGetProperty("degrade", out var d) ? DegradeRuleOf(d, "$.degrade", problems) : null;
            var rate = root.TryGetProperty("rateLimit", out var rl) ? RateLimitOf(rl, "$.rateLimit", problems) : null;
            var maxConcurrent = root.TryGetProperty("maxConcurrent", out var mc) ? Int(mc, "$.maxConcurrent", 1, 1_000_000, problems) : null;
            var methods = new Dictionary<string, MethodConfig>(StringComparer.Ordinal);
            if (root.TryGetProperty("methods", out var m))
            {
                if (m.ValueKind != JsonValueKind.Object)
                {
                    problems.Add("$.methods: must be an object of method name → settings");
                }
                else
                {
                    foreach (var method in m.EnumerateObject())
                    {
                        var path = $"$.methods.{method.Name}";
                        if (method.Name.Length == 0 || method.Name.Contains(':', StringComparison.Ordinal))
                        {
                            problems.Add($"{path}: not a method name");
                            continue;
                        }

                        if (method.Value.ValueKind != JsonValueKind.Object)
                        {
                            problems.Add($"{path}: must be an object");
                            continue;
                        }

                        Unknown(method.Value, path, MethodKeys, problems);
                        var v = method.Value;
                        var config = new MethodConfig
                        {
                            Timeout = v.TryGetProperty("timeoutMs", out var mt) ? Millis(mt, path + ".timeoutMs", problems) : null,
                            Retries = v.TryGetProperty("retries", out var r) ? Int(r, path + ".retries", 0, 10, problems) : null,
                            Idempotent = v.TryGetProperty("idempotent", out var idem) && Bool(idem, path + ".idempotent", problems),
                            Degrade = v.TryGetProperty("degrade", out var md) ? DegradeRuleOf(md, path + ".degrade", problems) : null,
                            RateLimit = v.TryGetProperty("rateLimit", out var mr) ? RateLimitOf(mr, path + ".rateLimit", problems) : null,
                            MaxConcurrent = v.TryGetProperty("maxConcurrent", out var mmc) ? Int(mmc, path + ".maxConcurrent", 1, 1_000_000, problems) : null,
                        };
                        if (config.Retries > 0 && !config.Idempotent)
                        {
                            problems.Add($"{path}.retries: a call that was sent is retried only for an idempotent method: set \"idempotent\": true, or retries 0");
                        }

                        methods[method.Name] = config;
                    }
                }
            }

            foreach (var id in offline.Where(weights.ContainsKey))
            {
                problems.Add($"$.weights.{id}: the instance is also offline; give it a weight or take it offline, not both");
            }

            if (problems.Count > 0)
            {
                return (null, problems);
            }

            return (new ServiceConfig
            {
                Strategy = strategy,
                Weights = weights,
                Offline = offline,
                Timeout = timeout,
                Degrade = degrade,
                RateLimit = rate,
                MaxConcurrent = maxConcurrent,
                Methods = methods,
            }, []);
        }
    }

    /// <summary>Parses or throws <see cref="FormatException"/> with every problem, one per line.</summary>
    public static ServiceConfig ParseOrThrow(ReadOnlySpan<byte> json)
    {
        var (config, problems) = Parse(json);
        return config ?? throw new FormatException(string.Join("\n", problems));
    }

    private static void Unknown(JsonElement element, string path, string[] known, List<string> problems)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (!known.Contains(property.Name, StringComparer.Ordinal))
            {
                problems.Add($"{path}.{property.Name}: unknown setting (known: {string.Join(", ", known)})");
            }
        }
    }

    private static int? Int(JsonElement value, string path, int min, int max, List<string> problems)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) && n >= min && n <= max)
        {
            return n;
        }

        problems.Add($"{path}: must be a whole number from {min} to {max}");
        return null;
    }

    private static TimeSpan? Millis(JsonElement value, string path, List<string> problems) =>
        Int(value, path, 1, 600_000, problems) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;

    private static bool Bool(JsonElement value, string path, List<string> problems)
    {
        if (value.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            return value.GetBoolean();
        }

        problems.Add($"{path}: must be true or false");
        return false;
    }

    private static DegradeRule? DegradeRuleOf(JsonElement value, string path, List<string> problems)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be an object such as {{\"error\": \"temporarily unavailable\"}}");
            return null;
        }

        Unknown(value, path, DegradeKeys, problems);
        if (!value.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.String || error.GetString()!.Length is 0 or > 1024)
        {
            problems.Add($"{path}.error: the message callers get, 1 to 1024 characters");
            return null;
        }

        return new DegradeRule(error.GetString()!);
    }

    private static RateLimit? RateLimitOf(JsonElement value, string path, List<string> problems)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be an object such as {{\"perSecond\": 100, \"burst\": 20}}");
            return null;
        }

        Unknown(value, path, RateKeys, problems);
        double? perSecond = null;
        if (!value.TryGetProperty("perSecond", out var rate) || rate.ValueKind != JsonValueKind.Number || !rate.TryGetDouble(out var r) || r is < 0.001 or > 10_000_000)
        {
            problems.Add($"{path}.perSecond: calls a second, from 0.001 to 10000000");
        }
        else
        {
            perSecond = r;
        }

        // default burst: one second's worth (at least 1)
        var burst = value.TryGetProperty("burst", out var b) ? Int(b, path + ".burst", 1, 10_000_000, problems) : (int)Math.Max(1, Math.Ceiling(perSecond ?? 1));
        return perSecond is { } ps && burst is { } bu ? new RateLimit(ps, bu) : null;
    }

    /// <summary>The config as indented JSON (for <c>trellis config get</c>).</summary>
    public static string Pretty(ReadOnlySpan<byte> json)
    {
        using var document = JsonDocument.Parse(json.ToArray());
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            document.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
