using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trellis.Rpc.Governance;
using Trellis.Rpc.Registry;

namespace Trellis.Proxy.Admin;

/// <summary>
/// One instance of a service as the admin page shows it: <c>Health</c> is <c>ok</c>, <c>ejected</c>, <c>draining</c>,
/// <c>offline</c> (taken out by the config) or <c>pending</c> (not applied yet); <c>InFlight</c> and <c>LatencyMicros</c>
/// are null when not known (from the registry alone).
/// </summary>
public sealed record AdminInstance(string Id, string Address, string Zone, int Weight, string Health, int? InFlight, double? LatencyMicros, string Version);

/// <summary>A service and its instances (offline ones included).</summary>
public sealed record AdminService(string Name, IReadOnlyList<AdminInstance> Instances);

/// <summary>The per-service statistics behind the page, or why there are none.</summary>
public sealed record AdminStats(IReadOnlyDictionary<string, StatsWindow> Services, string? Note);

/// <summary>What the admin page shows and acts on: a proxy (<see cref="ProxyAdminSource"/>) or a registry (<see cref="RegistryAdminSource"/>).</summary>
public interface IAdminSource
{
    /// <summary><c>proxy</c> or <c>registry</c>.</summary>
    string Mode { get; }

    string Product { get; }

    bool RegistryConnected { get; }

    Task<IReadOnlyList<AdminService>> ServicesAsync(CancellationToken cancellationToken);

    Task<AdminStats> StatsAsync(CancellationToken cancellationToken);

    /// <summary>Where configs are read and written (null: the registry is not connected yet).</summary>
    IConfigStore? Store { get; }
}

/// <summary>
/// The admin page and its JSON API, served on an admin port (the proxy's <c>--admin</c>, or <c>trellis admin</c>):
/// <c>GET /</c> the page; <c>GET /api/services</c>, <c>GET /api/stats?window=N[&amp;raw=1]</c>,
/// <c>GET /api/services/{service}/config</c>; <c>POST /api/services/{service}/instances/{id}/offline|online</c>
/// (with the header <c>X-Trellis-Action: 1</c>, which a cross-site form cannot send).
/// </summary>
public static class AdminPage
{
    /// <summary>The header every action must carry (a browser sends it only from the page's own script).</summary>
    public const string ActionHeader = "X-Trellis-Action";

    private static readonly Lazy<byte[]> Html = new(() =>
    {
        using var stream = typeof(AdminPage).Assembly.GetManifestResourceStream("Trellis.Proxy.Admin.admin.html")
            ?? throw new InvalidOperationException("the admin page is not embedded");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static IEndpointRouteBuilder MapTrellisAdminPage(this IEndpointRouteBuilder endpoints, IAdminSource source)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(source);
        endpoints.MapGet("/", (HttpContext http) =>
        {
            http.Response.Headers["Content-Security-Policy"] = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'";
            http.Response.Headers["X-Content-Type-Options"] = "nosniff";
            return Results.Bytes(Html.Value, "text/html; charset=utf-8");
        });
        endpoints.MapGet("/api/services", async (CancellationToken ct) => Json(await ServicesJsonAsync(source, ct).ConfigureAwait(false)));
        endpoints.MapGet("/api/stats", async (HttpContext http, CancellationToken ct) =>
        {
            var window = int.TryParse(http.Request.Query["window"], NumberStyles.None, CultureInfo.InvariantCulture, out var w) ? Math.Clamp(w, 1, ServiceStats.Seconds) : 10;
            var raw = http.Request.Query["raw"] == "1";
            return Json(StatsJson(await source.StatsAsync(ct).ConfigureAwait(false), window, raw));
        });
        endpoints.MapGet("/api/services/{service}/config", async (string service, CancellationToken ct) =>
        {
            if (!RegistryPaths.IsName(service))
            {
                return Error(StatusCodes.Status400BadRequest, $"'{Clip(service)}' is not a service name");
            }

            if (source.Store is not { } store)
            {
                return Error(StatusCodes.Status503ServiceUnavailable, "the registry is not connected");
            }

            var stored = await store.GetConfigAsync(source.Product, service, ct).ConfigureAwait(false);
            return Json(ConfigJson(service, stored));
        });
        endpoints.MapPost("/api/services/{service}/instances/{instance}/{action}", async (HttpContext http, string service, string instance, string action, CancellationToken ct) =>
        {
            if (action is not ("offline" or "online"))
            {
                return Error(StatusCodes.Status404NotFound, $"unknown action '{Clip(action)}': offline or online");
            }

            if (http.Request.Headers[ActionHeader] != "1")
            {
                return Error(StatusCodes.Status403Forbidden, $"an action needs the header {ActionHeader}: 1 (sent by the admin page)");
            }

            if (!RegistryPaths.IsName(service) || !RegistryPaths.IsName(instance))
            {
                return Error(StatusCodes.Status400BadRequest, $"'{Clip(service)}' / '{Clip(instance)}' is not a service name and instance id");
            }

            if (source.Store is not { } store)
            {
                return Error(StatusCodes.Status503ServiceUnavailable, "the registry is not connected: nothing was changed");
            }

            OfflineResult result;
            try
            {
                result = await OfflineList.SetAsync(store, source.Product, service, instance, action == "offline", ct).ConfigureAwait(false);
            }
            catch (UnauthorizedAccessException e)
            {
                return Error(StatusCodes.Status403Forbidden, $"the registry does not allow it: {e.Message}");
            }

            var status = result.Outcome switch
            {
                OfflineOutcome.Changed or OfflineOutcome.Unchanged => StatusCodes.Status200OK,
                OfflineOutcome.BadName => StatusCodes.Status400BadRequest,
                _ => StatusCodes.Status409Conflict,
            };
            return Json(Write(json =>
            {
                json.WriteStartObject();
                json.WriteBoolean("ok", result.Succeeded);
                json.WriteString("outcome", result.Outcome.ToString().ToLowerInvariant());
                json.WriteString(result.Succeeded ? "message" : "error", result.Message);
                if (result.Version is { } version)
                {
                    json.WriteNumber("version", version);
                }

                json.WriteEndObject();
            }), status);
        });
        return endpoints;
    }

    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";

    private static IResult Json(string body, int status = StatusCodes.Status200OK) =>
        Results.Text(body, "application/json; charset=utf-8", Encoding.UTF8, status);

    private static IResult Error(int status, string message) => Json(Write(json =>
    {
        json.WriteStartObject();
        json.WriteBoolean("ok", false);
        json.WriteString("error", message);
        json.WriteEndObject();
    }), status);

    private static string Write(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            write(json);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static async Task<string> ServicesJsonAsync(IAdminSource source, CancellationToken ct)
    {
        var services = await source.ServicesAsync(ct).ConfigureAwait(false);
        return Write(json =>
        {
            json.WriteStartObject();
            json.WriteString("mode", source.Mode);
            json.WriteString("product", source.Product);
            json.WriteBoolean("registryConnected", source.RegistryConnected);
            json.WriteStartArray("services");
            foreach (var service in services)
            {
                json.WriteStartObject();
                json.WriteString("name", service.Name);
                json.WriteStartArray("instances");
                foreach (var i in service.Instances)
                {
                    json.WriteStartObject();
                    json.WriteString("id", i.Id);
                    json.WriteString("address", i.Address);
                    json.WriteString("zone", i.Zone);
                    json.WriteNumber("weight", i.Weight);
                    json.WriteString("health", i.Health);
                    WriteNumber(json, "inFlight", i.InFlight);
                    WriteNumber(json, "latencyMicros", i.LatencyMicros);
                    json.WriteString("version", i.Version);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    private static void WriteNumber(Utf8JsonWriter json, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            json.WriteNumber(name, Math.Round(v, 1));
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static string StatsJson(AdminStats stats, int window, bool raw) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteBoolean("available", stats.Note is null);
        if (stats.Note is { } note)
        {
            json.WriteString("note", note);
        }

        json.WriteNumber("window", window);
        json.WriteStartObject("services");
        foreach (var (name, series) in stats.Services.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            json.WriteStartObject(name);
            var summary = series.Summary(window);
            json.WriteStartObject("summary");
            json.WriteNumber("calls", summary.Calls);
            json.WriteNumber("errors", summary.Errors);
            json.WriteNumber("callsPerSecond", Math.Round(summary.CallsPerSecond, 2));
            json.WriteNumber("errorRate", Math.Round(summary.ErrorRate, 4));
            WriteNumber(json, "p50Micros", summary.P50);
            WriteNumber(json, "p90Micros", summary.P90);
            WriteNumber(json, "p99Micros", summary.P99);
            json.WriteEndObject();
            json.WriteStartArray("series");
            foreach (var second in series.Seconds)
            {
                json.WriteStartObject();
                json.WriteNumber("t", second.Second);
                json.WriteNumber("calls", second.Calls);
                json.WriteNumber("errors", second.Errors);
                WriteNumber(json, "p50", LatencyHistogram.Quantile(second.Histogram, 0.5));
                WriteNumber(json, "p99", LatencyHistogram.Quantile(second.Histogram, 0.99));
                if (raw)
                {
                    json.WriteStartArray("hist"); // sparse: [bucket, count] pairs, for merging several proxies
                    for (var b = 0; b < second.Histogram.Length; b++)
                    {
                        if (second.Histogram[b] != 0)
                        {
                            json.WriteStartArray();
                            json.WriteNumberValue(b);
                            json.WriteNumberValue(second.Histogram[b]);
                            json.WriteEndArray();
                        }
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WriteEndObject();
    });

    /// <summary>Reads the <c>raw=1</c> form of <c>/api/stats</c> (another proxy's) back into windows.</summary>
    public static Dictionary<string, StatsWindow> ParseRawStats(JsonElement root)
    {
        var result = new Dictionary<string, StatsWindow>(StringComparer.Ordinal);
        if (!root.TryGetProperty("services", out var services) || services.ValueKind != JsonValueKind.Object)
        {
            return result;
        }

        foreach (var service in services.EnumerateObject())
        {
            if (!RegistryPaths.IsName(service.Name) || !service.Value.TryGetProperty("series", out var series) || series.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            var seconds = new List<StatsSecond>();
            foreach (var s in series.EnumerateArray())
            {
                var histogram = new long[LatencyHistogram.Buckets];
                if (s.TryGetProperty("hist", out var hist) && hist.ValueKind == JsonValueKind.Array)
                {
                    foreach (var pair in hist.EnumerateArray())
                    {
                        var b = pair[0].GetInt32();
                        if (b >= 0 && b < histogram.Length)
                        {
                            histogram[b] += pair[1].GetInt64();
                        }
                    }
                }

                seconds.Add(new StatsSecond(s.GetProperty("t").GetInt64(), s.GetProperty("calls").GetInt64(), s.GetProperty("errors").GetInt64(), histogram));
            }

            result[service.Name] = new StatsWindow(seconds);
        }

        return result;
    }

    private static string ConfigJson(string service, StoredConfig? stored) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("service", service);
        if (stored is null)
        {
            json.WriteNull("version");
            json.WriteBoolean("valid", true);
            json.WriteString("text", "");
            json.WriteStartArray("problems");
            json.WriteEndArray();
            json.WriteStartArray("routes");
            json.WriteEndArray();
            json.WriteEndObject();
            return;
        }

        var (config, problems) = ServiceConfig.Parse(stored.Data);
        json.WriteNumber("version", stored.Version);
        json.WriteBoolean("valid", config is not null);
        string text;
        JsonNode? node = null;
        try
        {
            node = JsonNode.Parse(stored.Data);
            text = ServiceConfig.Pretty(stored.Data);
        }
        catch (JsonException)
        {
            text = Encoding.UTF8.GetString(stored.Data);
        }

        json.WriteString("text", text);
        json.WriteStartArray("problems");
        foreach (var problem in problems)
        {
            json.WriteStringValue(problem);
        }

        json.WriteEndArray();
        json.WriteStartArray("routes");
        if (node?["routes"] is JsonArray routes)
        {
            var index = 0;
            foreach (var route in routes)
            {
                index++;
                if (route is not JsonObject r)
                {
                    continue;
                }

                json.WriteStartObject();
                json.WriteString("name", r["name"] is JsonValue n && n.TryGetValue<string>(out var name) ? name : $"#{index}");
                json.WriteString("when", r["when"]?.ToJsonString() ?? "(every call)");
                json.WriteString("to", r["split"] is { } split ? "split " + split.ToJsonString() : r["to"]?.ToJsonString() ?? "");
                json.WriteBoolean("force", r["force"] is JsonValue f && f.TryGetValue<bool>(out var force) && force);
                json.WriteEndObject();
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
    });
}
