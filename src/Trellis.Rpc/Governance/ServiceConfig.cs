using System.Text;
using System.Text.Json;
using Trellis.Rpc.Balancing;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Governance;

/// <summary>
/// What a degraded method (or service) answers instead of running: a failure with <see cref="Error"/>, or the
/// configured <see cref="Reply"/> as if an instance had answered it.
/// </summary>
public sealed record DegradeRule(string? Error, StaticReply? Reply = null);

/// <summary>
/// A token bucket: <see cref="PerSecond"/> calls a second on average, bursts of up to <see cref="Burst"/>; with
/// <see cref="PerCaller"/>, each caller (by identity) has a bucket of its own.
/// </summary>
public sealed record RateLimit(double PerSecond, int Burst, bool PerCaller = false);

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

    /// <summary>The method's own circuit breaker.</summary>
    public BreakerPolicy? CircuitBreaker { get; init; }

    /// <summary>The callers allowed to call this method (instead of the service's list).</summary>
    public AccessList? Allow { get; init; }
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

    /// <summary>Routes: which calls go to which instances (gray release, canaries, caller conditions, A/B splits).</summary>
    public RouteTable Routes { get; init; } = RouteTable.Empty;

    /// <summary>The per-instance circuit breaker (outlier ejection) settings, when the config sets them.</summary>
    public Balancing.OutlierPolicy? Outliers { get; init; }

    /// <summary>The service's circuit breaker (all methods together).</summary>
    public BreakerPolicy? CircuitBreaker { get; init; }

    /// <summary>The callers allowed (null: everyone). A method's own list replaces it.</summary>
    public AccessList? Allow { get; init; }

    /// <summary>Let <c>product:</c>/<c>service:</c> entries match a caller that only says who it is in THeader (no certificate).</summary>
    public bool TrustClaimedCallers { get; init; }

    /// <summary>The access list that applies to <paramref name="method"/> (its own, else the service's), or null: everyone.</summary>
    public AccessList? AllowFor(string method) =>
        Methods.TryGetValue(method, out var own) && own.Allow is { } list ? list : Allow;

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

    private static readonly string[] TopKeys = ["strategy", "weights", "offline", "timeoutMs", "degrade", "rateLimit", "maxConcurrent", "methods",
        "routes", "outlier", "circuitBreaker", "allow", "trustClaimedCallers"];
    private static readonly string[] MethodKeys = ["timeoutMs", "retries", "idempotent", "degrade", "rateLimit", "maxConcurrent", "circuitBreaker", "allow"];
    private static readonly string[] RateKeys = ["perSecond", "burst", "perCaller"];
    private static readonly string[] DegradeKeys = ["error", "reply"];
    private static readonly string[] OutlierKeys = ["consecutiveFailures", "errorRate", "minimumCalls", "windowMs", "ejectionMs", "maxEjectionMs", "maxEjectedPercent"];

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
                            CircuitBreaker = v.TryGetProperty("circuitBreaker", out var mcb) ? BreakerPolicy.Parse(mcb, path + ".circuitBreaker", problems) : null,
                            Allow = v.TryGetProperty("allow", out var ma) ? AccessList.Parse(ma, path + ".allow", problems) : null,
                        };
                        if (config.Retries > 0 && !config.Idempotent)
                        {
                            problems.Add($"{path}.retries: a call that was sent is retried only for an idempotent method: set \"idempotent\": true, or retries 0");
                        }

                        methods[method.Name] = config;
                    }
                }
            }

            var routes = root.TryGetProperty("routes", out var rt) ? RouteTable.Parse(rt, "$.routes", problems) : RouteTable.Empty;
            var outliers = root.TryGetProperty("outlier", out var ol) ? OutlierPolicyOf(ol, "$.outlier", problems) : null;
            var breaker = root.TryGetProperty("circuitBreaker", out var cb) ? BreakerPolicy.Parse(cb, "$.circuitBreaker", problems) : null;
            var allow = root.TryGetProperty("allow", out var al) ? AccessList.Parse(al, "$.allow", problems) : null;
            var trustClaimed = root.TryGetProperty("trustClaimedCallers", out var tc) && Bool(tc, "$.trustClaimedCallers", problems);
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
                Routes = routes,
                Outliers = outliers,
                CircuitBreaker = breaker,
                Allow = allow,
                TrustClaimedCallers = trustClaimed,
            }, []);
        }
    }

    /// <summary>Parses or throws <see cref="FormatException"/> with every problem, one per line.</summary>
    public static ServiceConfig ParseOrThrow(ReadOnlySpan<byte> json)
    {
        var (config, problems) = Parse(json);
        return config ?? throw new FormatException(string.Join("\n", problems));
    }

    internal static void Unknown(JsonElement element, string path, string[] known, List<string> problems)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (!known.Contains(property.Name, StringComparer.Ordinal))
            {
                problems.Add($"{path}.{property.Name}: unknown setting (known: {string.Join(", ", known)})");
            }
        }
    }

    internal static int? Int(JsonElement value, string path, int min, int max, List<string> problems)
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

    internal static bool Bool(JsonElement value, string path, List<string> problems)
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
            problems.Add($"{path}: must be an object such as {{\"error\": \"temporarily unavailable\"}} or {{\"reply\": {{\"str\": \"cached\"}}}}");
            return null;
        }

        Unknown(value, path, DegradeKeys, problems);
        var hasError = value.TryGetProperty("error", out var error);
        var hasReply = value.TryGetProperty("reply", out var reply);
        if (hasError == hasReply)
        {
            problems.Add($"{path}: give either \"error\" (fail fast with this message) or \"reply\" (answer with this value), not {(hasError ? "both" : "neither")}");
            return null;
        }

        if (hasReply)
        {
            return StaticReply.Parse(reply, path + ".reply", problems) is { } staticReply ? new DegradeRule(null, staticReply) : null;
        }

        if (error.ValueKind != JsonValueKind.String || error.GetString()!.Length is 0 or > 1024)
        {
            problems.Add($"{path}.error: the message callers get, 1 to 1024 characters");
            return null;
        }

        return new DegradeRule(error.GetString()!);
    }

    private static Balancing.OutlierPolicy? OutlierPolicyOf(JsonElement value, string path, List<string> problems)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be an object such as {{\"consecutiveFailures\": 5, \"ejectionMs\": 10000}}");
            return null;
        }

        Unknown(value, path, OutlierKeys, problems);
        var before = problems.Count;
        var policy = new Balancing.OutlierPolicy();
        if (value.TryGetProperty("consecutiveFailures", out var cf) && Int(cf, path + ".consecutiveFailures", 1, 1000, problems) is { } consecutive)
        {
            policy = policy with { ConsecutiveFailures = consecutive };
        }

        if (value.TryGetProperty("errorRate", out var er))
        {
            if (er.ValueKind == JsonValueKind.Number && er.TryGetDouble(out var rate) && rate is > 0 and <= 1)
            {
                policy = policy with { ErrorRate = rate };
            }
            else
            {
                problems.Add($"{path}.errorRate: the failing share that ejects an instance, above 0 and at most 1");
            }
        }

        if (value.TryGetProperty("minimumCalls", out var mc) && Int(mc, path + ".minimumCalls", 1, 1_000_000, problems) is { } minimum)
        {
            policy = policy with { MinimumCalls = minimum };
        }

        if (value.TryGetProperty("windowMs", out var w) && Int(w, path + ".windowMs", 100, 3_600_000, problems) is { } window)
        {
            policy = policy with { Window = TimeSpan.FromMilliseconds(window) };
        }

        if (value.TryGetProperty("ejectionMs", out var ej) && Int(ej, path + ".ejectionMs", 10, 3_600_000, problems) is { } ejection)
        {
            policy = policy with { BaseEjection = TimeSpan.FromMilliseconds(ejection) };
        }

        if (value.TryGetProperty("maxEjectionMs", out var mej) && Int(mej, path + ".maxEjectionMs", 10, 3_600_000, problems) is { } maxEjection)
        {
            policy = policy with { MaxEjection = TimeSpan.FromMilliseconds(maxEjection) };
        }

        if (value.TryGetProperty("maxEjectedPercent", out var mp) && Int(mp, path + ".maxEjectedPercent", 0, 100, problems) is { } percent)
        {
            policy = policy with { MaxEjectedShare = percent / 100.0 };
        }

        if (policy.MaxEjection < policy.BaseEjection)
        {
            problems.Add($"{path}.maxEjectionMs: shorter than ejectionMs");
        }

        return problems.Count > before ? null : policy;
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
        var perCaller = value.TryGetProperty("perCaller", out var pc) && Bool(pc, path + ".perCaller", problems);
        return perSecond is { } ps && burst is { } bu ? new RateLimit(ps, bu, perCaller) : null;
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
