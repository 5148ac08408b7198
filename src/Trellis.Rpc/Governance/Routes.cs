using System.Text.Json;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Governance;

/// <summary>What is known about a call when its route is chosen: the method, tags and caller, and its headers.</summary>
public readonly record struct CallFacts(
    string Method,
    string? Tag,
    string? CallerProduct,
    string? CallerService,
    string? CallerZone,
    string? CallerHost,
    IReadOnlyList<KeyValuePair<string, string>>? Headers)
{
    public string? Header(string name)
    {
        if (Headers is { } headers)
        {
            foreach (var (key, value) in headers)
            {
                if (string.Equals(key, name, StringComparison.Ordinal))
                {
                    return value;
                }
            }
        }

        return null;
    }
}

/// <summary>A value test: any of the patterns, each exact or a prefix ending in <c>*</c>; <c>!</c> before one negates the whole test.</summary>
public sealed record ValueMatch(IReadOnlyList<string> Patterns, bool Negated)
{
    public bool Matches(string? value)
    {
        var any = false;
        if (value is not null)
        {
            foreach (var pattern in Patterns)
            {
                if (pattern.EndsWith('*') ? value.StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal) : value == pattern)
                {
                    any = true;
                    break;
                }
            }
        }

        return any != Negated;
    }

    internal static ValueMatch? Parse(JsonElement v, string path, List<string> problems)
    {
        List<string> patterns = [];
        if (v.ValueKind == JsonValueKind.String)
        {
            patterns.Add(v.GetString()!);
        }
        else if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
        {
            patterns.AddRange(v.EnumerateArray().Select(e => e.GetString()!));
        }
        else
        {
            problems.Add($"{path}: must be a string or a non-empty array of strings (exact, or a prefix ending in *)");
            return null;
        }

        var negated = patterns[0].StartsWith('!');
        if (negated)
        {
            patterns[0] = patterns[0][1..];
        }

        if (patterns.Any(p => p.Length == 0 || p.StartsWith('!') || p.IndexOf('*') is var star && star >= 0 && star != p.Length - 1))
        {
            problems.Add($"{path}: a pattern is not empty, and has at most one * at its end (a leading ! negates the whole list)");
            return null;
        }

        return new ValueMatch(patterns, negated);
    }
}

/// <summary>The conditions of a route (<c>when</c>): all must hold. An empty condition matches every call.</summary>
public sealed record RouteCondition
{
    public ValueMatch? Method { get; init; }
    public ValueMatch? Tag { get; init; }
    public ValueMatch? CallerProduct { get; init; }
    public ValueMatch? CallerService { get; init; }
    public ValueMatch? CallerZone { get; init; }
    public ValueMatch? CallerHost { get; init; }
    public IReadOnlyDictionary<string, ValueMatch> Headers { get; init; } = new Dictionary<string, ValueMatch>(StringComparer.Ordinal);

    public bool Matches(in CallFacts call)
    {
        if (Method is { } m && !m.Matches(call.Method)) return false;
        if (Tag is { } t && !t.Matches(call.Tag)) return false;
        if (CallerProduct is { } p && !p.Matches(call.CallerProduct)) return false;
        if (CallerService is { } s && !s.Matches(call.CallerService)) return false;
        if (CallerZone is { } z && !z.Matches(call.CallerZone)) return false;
        if (CallerHost is { } h && !h.Matches(call.CallerHost)) return false;
        foreach (var (name, match) in Headers)
        {
            if (!match.Matches(call.Header(name))) return false;
        }

        return true;
    }

    private static readonly string[] Keys = ["method", "tag", "callerProduct", "callerService", "callerZone", "callerHost", "headers"];

    internal static RouteCondition? Parse(JsonElement v, string path, List<string> problems)
    {
        if (v.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be an object of conditions, such as {{\"tag\": \"canary\"}}");
            return null;
        }

        ServiceConfig.Unknown(v, path, Keys, problems);
        ValueMatch? Get(string key) => v.TryGetProperty(key, out var e) ? ValueMatch.Parse(e, $"{path}.{key}", problems) : null;
        var headers = new Dictionary<string, ValueMatch>(StringComparer.Ordinal);
        if (v.TryGetProperty("headers", out var h))
        {
            if (h.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{path}.headers: must be an object of THeader key → pattern(s)");
            }
            else
            {
                foreach (var pair in h.EnumerateObject())
                {
                    if (ValueMatch.Parse(pair.Value, $"{path}.headers.{pair.Name}", problems) is { } match)
                    {
                        headers[pair.Name] = match;
                    }
                }
            }
        }

        return new RouteCondition
        {
            Method = Get("method"),
            Tag = Get("tag"),
            CallerProduct = Get("callerProduct"),
            CallerService = Get("callerService"),
            CallerZone = Get("callerZone"),
            CallerHost = Get("callerHost"),
            Headers = headers,
        };
    }
}

/// <summary>The instances a route sends calls to (<c>to</c>): all the given tests must hold for an instance.</summary>
public sealed record InstanceSelector
{
    public ValueMatch? Zone { get; init; }
    public ValueMatch? Version { get; init; }
    public ValueMatch? Host { get; init; }
    public IReadOnlyDictionary<string, ValueMatch> Tags { get; init; } = new Dictionary<string, ValueMatch>(StringComparer.Ordinal);
    public IReadOnlySet<string>? Instances { get; init; }

    /// <summary>Equal selectors share one subset (and picker).</summary>
    public string Key { get; init; } = "";

    public bool Matches(ServiceInstance instance)
    {
        if (Zone is { } z && !z.Matches(instance.Zone)) return false;
        if (Version is { } v && !v.Matches(instance.Version)) return false;
        if (Host is { } h && !h.Matches(instance.Host)) return false;
        if (Instances is { } ids && !ids.Contains(instance.InstanceId)) return false;
        foreach (var (name, match) in Tags)
        {
            if (!match.Matches(instance.Tags.TryGetValue(name, out var value) ? value : null)) return false;
        }

        return true;
    }

    private static readonly string[] Keys = ["zone", "version", "host", "tags", "instances"];

    internal static InstanceSelector? Parse(JsonElement v, string path, List<string> problems)
    {
        if (v.ValueKind != JsonValueKind.Object || !v.EnumerateObject().Any())
        {
            problems.Add($"{path}: must be an object selecting instances, such as {{\"tags\": {{\"track\": \"canary\"}}}} or {{\"version\": \"2.*\"}}");
            return null;
        }

        ServiceConfig.Unknown(v, path, Keys, problems);
        ValueMatch? Get(string key) => v.TryGetProperty(key, out var e) ? ValueMatch.Parse(e, $"{path}.{key}", problems) : null;
        var tags = new Dictionary<string, ValueMatch>(StringComparer.Ordinal);
        if (v.TryGetProperty("tags", out var t))
        {
            if (t.ValueKind != JsonValueKind.Object || !t.EnumerateObject().Any())
            {
                problems.Add($"{path}.tags: must be an object of tag → value(s), such as {{\"track\": \"canary\"}}");
            }
            else
            {
                foreach (var pair in t.EnumerateObject())
                {
                    if (ValueMatch.Parse(pair.Value, $"{path}.tags.{pair.Name}", problems) is { } match)
                    {
                        tags[pair.Name] = match;
                    }
                }
            }
        }

        HashSet<string>? ids = null;
        if (v.TryGetProperty("instances", out var i))
        {
            if (i.ValueKind != JsonValueKind.Array || i.GetArrayLength() == 0 || i.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || !RegistryPaths.IsName(e.GetString())))
            {
                problems.Add($"{path}.instances: must be a non-empty array of instance ids");
            }
            else
            {
                ids = [.. i.EnumerateArray().Select(e => e.GetString()!)];
            }
        }

        return new InstanceSelector
        {
            Zone = Get("zone"),
            Version = Get("version"),
            Host = Get("host"),
            Tags = tags,
            Instances = ids,
            Key = v.GetRawText(),
        };
    }
}

/// <summary>One target of a route: a selector, with its share of the route's calls (100 when the route has one target).</summary>
public sealed record RouteTarget(int Weight, InstanceSelector To, int Subset);

/// <summary>
/// A route: calls that match <see cref="When"/> go to the instances of one of its targets (by weight: an A/B split),
/// chosen per call at random or, with <see cref="StickyHeader"/>, by the hash of that header's value, so one user
/// stays on one side. When no instance of the target can be used, the call goes to any instance, unless
/// <see cref="Force"/>, when it fails.
/// </summary>
public sealed record RouteRule(string Name, RouteCondition When, IReadOnlyList<RouteTarget> Targets, bool Force, string? StickyHeader)
{
    public int TotalWeight { get; } = Targets.Sum(t => t.Weight);

    /// <summary>The target for one call of this route.</summary>
    public RouteTarget Choose(in CallFacts call)
    {
        if (Targets.Count == 1)
        {
            return Targets[0];
        }

        var point = StickyHeader is not null && call.Header(StickyHeader) is { } key
            ? (int)(Balancing.RingHashStrategy.Hash(key) % (ulong)TotalWeight)
            : Random.Shared.Next(TotalWeight);
        foreach (var target in Targets)
        {
            if ((point -= target.Weight) < 0)
            {
                return target;
            }
        }

        return Targets[^1];
    }
}

/// <summary>The routes of a service, in order (the first whose conditions hold is taken), and the instance subsets they use.</summary>
public sealed class RouteTable
{
    public static readonly RouteTable Empty = new([], []);

    public RouteTable(IReadOnlyList<RouteRule> rules, IReadOnlyList<InstanceSelector> subsets)
    {
        Rules = rules;
        Subsets = subsets;
    }

    public IReadOnlyList<RouteRule> Rules { get; }

    /// <summary>The distinct selectors, by subset index.</summary>
    public IReadOnlyList<InstanceSelector> Subsets { get; }

    public bool IsEmpty => Rules.Count == 0;

    /// <summary>The route of a call and its target, or null (no route: any instance).</summary>
    public (RouteRule Rule, RouteTarget Target)? Select(in CallFacts call)
    {
        foreach (var rule in Rules)
        {
            if (rule.When.Matches(call))
            {
                return (rule, rule.Choose(call));
            }
        }

        return null;
    }

    private static readonly string[] RuleKeys = ["name", "when", "to", "split", "force", "stickyHeader"];
    private static readonly string[] SplitKeys = ["weight", "to"];

    internal static RouteTable Parse(JsonElement v, string path, List<string> problems)
    {
        if (v.ValueKind != JsonValueKind.Array)
        {
            problems.Add($"{path}: must be an array of routes, such as [{{\"when\": {{\"tag\": \"canary\"}}, \"to\": {{\"tags\": {{\"track\": \"canary\"}}}}}}]");
            return Empty;
        }

        var rules = new List<RouteRule>();
        var subsets = new List<InstanceSelector>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int SubsetOf(InstanceSelector selector)
        {
            var index = subsets.FindIndex(s => s.Key == selector.Key);
            if (index < 0)
            {
                subsets.Add(selector);
                index = subsets.Count - 1;
            }

            return index;
        }

        var i = 0;
        foreach (var r in v.EnumerateArray())
        {
            var at = $"{path}[{i++}]";
            if (r.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{at}: must be an object with \"when\" and \"to\" (or \"split\")");
                continue;
            }

            ServiceConfig.Unknown(r, at, RuleKeys, problems);
            var name = $"route {i - 1}";
            if (r.TryGetProperty("name", out var n))
            {
                if (n.ValueKind != JsonValueKind.String || n.GetString()!.Length is 0 or > 128)
                {
                    problems.Add($"{at}.name: 1 to 128 characters");
                }
                else if (!names.Add(n.GetString()!))
                {
                    problems.Add($"{at}.name: '{n.GetString()}' names another route too");
                }
                else
                {
                    name = n.GetString()!;
                }
            }

            var when = r.TryGetProperty("when", out var w) ? RouteCondition.Parse(w, at + ".when", problems) : new RouteCondition();
            var targets = new List<RouteTarget>();
            var hasTo = r.TryGetProperty("to", out var to);
            var hasSplit = r.TryGetProperty("split", out var split);
            if (hasTo == hasSplit)
            {
                problems.Add($"{at}: give either \"to\" (one set of instances) or \"split\" (weighted sets), not {(hasTo ? "both" : "neither")}");
            }
            else if (hasTo)
            {
                if (InstanceSelector.Parse(to, at + ".to", problems) is { } selector)
                {
                    targets.Add(new RouteTarget(100, selector, SubsetOf(selector)));
                }
            }
            else if (split.ValueKind != JsonValueKind.Array || split.GetArrayLength() < 2)
            {
                problems.Add($"{at}.split: must be an array of at least two {{\"weight\": N, \"to\": {{…}}}}");
            }
            else
            {
                var j = 0;
                foreach (var s in split.EnumerateArray())
                {
                    var sat = $"{at}.split[{j++}]";
                    if (s.ValueKind != JsonValueKind.Object)
                    {
                        problems.Add($"{sat}: must be {{\"weight\": N, \"to\": {{…}}}}");
                        continue;
                    }

                    ServiceConfig.Unknown(s, sat, SplitKeys, problems);
                    var weight = s.TryGetProperty("weight", out var sw) ? ServiceConfig.Int(sw, sat + ".weight", 0, 10_000, problems) : null;
                    if (weight is null && !s.TryGetProperty("weight", out _))
                    {
                        problems.Add($"{sat}.weight: required, a whole number from 0 to 10000");
                    }

                    var selector = s.TryGetProperty("to", out var st) ? InstanceSelector.Parse(st, sat + ".to", problems) : null;
                    if (!s.TryGetProperty("to", out _))
                    {
                        problems.Add($"{sat}.to: required");
                    }

                    if (weight is { } wt && selector is not null)
                    {
                        targets.Add(new RouteTarget(wt, selector, SubsetOf(selector)));
                    }
                }

                if (targets.Count == split.GetArrayLength() && targets.Sum(t => t.Weight) == 0)
                {
                    problems.Add($"{at}.split: the weights add up to 0");
                }
            }

            var force = r.TryGetProperty("force", out var f) && ServiceConfig.Bool(f, at + ".force", problems);
            string? sticky = null;
            if (r.TryGetProperty("stickyHeader", out var sh))
            {
                if (sh.ValueKind != JsonValueKind.String || sh.GetString()!.Length == 0)
                {
                    problems.Add($"{at}.stickyHeader: the THeader key whose value keeps a caller on one side of a split");
                }
                else if (!hasSplit)
                {
                    problems.Add($"{at}.stickyHeader: only for a route with a \"split\"");
                }
                else
                {
                    sticky = sh.GetString();
                }
            }

            if (when is not null && targets.Count > 0)
            {
                rules.Add(new RouteRule(name, when, targets, force, sticky));
            }
        }

        if (rules.Count > 64)
        {
            problems.Add($"{path}: at most 64 routes");
        }

        return new RouteTable(rules, subsets);
    }
}
