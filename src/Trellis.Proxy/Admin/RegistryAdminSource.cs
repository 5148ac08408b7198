using System.Collections.Concurrent;
using System.Text.Json;
using Trellis.Rpc.Governance;
using Trellis.Rpc.Registry;

namespace Trellis.Proxy.Admin;

/// <summary>
/// The admin page of a registry (<c>trellis admin</c>), without a proxy of its own: services, instances and configs
/// from the registry; live state (ejections, calls in flight) and statistics from the admin endpoints of the proxies
/// given, added up; without any, the page says it has no statistics.
/// </summary>
public sealed class RegistryAdminSource : IAdminSource, IAsyncDisposable
{
    private readonly IServiceRegistry _registry;
    private readonly IReadOnlyList<Uri> _proxies;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<string, Task<IServiceWatch>> _watches = new(StringComparer.Ordinal);

    /// <param name="registry">The registry (ZooKeeper or local); it must also be an <see cref="IConfigStore"/> and an <see cref="IRegistryBrowser"/>.</param>
    /// <param name="product">The product shown.</param>
    /// <param name="proxyAdmins">Admin endpoints of proxies (<c>http://host:port</c>) whose statistics are added up.</param>
    public RegistryAdminSource(IServiceRegistry registry, string product, IEnumerable<Uri>? proxyAdmins = null)
    {
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        if (!RegistryPaths.IsName(product))
        {
            throw new ArgumentException($"'{product}' is not a product name", nameof(product));
        }

        Product = product;
        _proxies = [.. proxyAdmins ?? []];
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
    }

    public string Mode => "registry";

    public string Product { get; }

    public bool RegistryConnected => true;

    public IConfigStore? Store => _registry as IConfigStore;

    public async Task<IReadOnlyList<AdminService>> ServicesAsync(CancellationToken cancellationToken)
    {
        var names = _registry is IRegistryBrowser browser ? await browser.ListServicesAsync(Product, cancellationToken).ConfigureAwait(false) : [];
        var live = await FromProxiesAsync("/api/services", cancellationToken).ConfigureAwait(false);
        var states = new Dictionary<(string Service, string Id), (bool Ejected, int InFlight)>();
        foreach (var document in live)
        {
            using (document)
            {
                if (!document.RootElement.TryGetProperty("services", out var services) || services.ValueKind != JsonValueKind.Array)
                {
                    continue;
                }

                foreach (var service in services.EnumerateArray())
                {
                    var name = service.GetProperty("name").GetString() ?? "";
                    foreach (var instance in service.GetProperty("instances").EnumerateArray())
                    {
                        var key = (name, instance.GetProperty("id").GetString() ?? "");
                        states.TryGetValue(key, out var state);
                        var inFlight = instance.TryGetProperty("inFlight", out var f) && f.ValueKind == JsonValueKind.Number ? f.GetInt32() : 0;
                        states[key] = (state.Ejected || instance.GetProperty("health").GetString() == "ejected", state.InFlight + inFlight);
                    }
                }
            }
        }

        var result = new List<AdminService>();
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            IServiceWatch watch;
            try
            {
                watch = await _watches.GetOrAdd(name, n => _registry.WatchAsync(Product, n, CancellationToken.None)).ConfigureAwait(false);
            }
            catch
            {
                _watches.TryRemove(name, out _); // tried again on the next refresh
                throw;
            }

            var stored = Store is { } store ? await store.GetConfigAsync(Product, name, cancellationToken).ConfigureAwait(false) : null;
            var config = stored is null ? ServiceConfig.Empty : ServiceConfig.Parse(stored.Data).Config ?? ServiceConfig.Empty;
            var instances = new List<AdminInstance>();
            foreach (var i in watch.Instances.OrderBy(i => i.InstanceId, StringComparer.Ordinal))
            {
                var known = states.TryGetValue((name, i.InstanceId), out var state);
                var health = config.Offline.Contains(i.InstanceId) ? "offline" : i.Draining ? "draining" : known && state.Ejected ? "ejected" : "ok";
                var weight = config.Weights.TryGetValue(i.InstanceId, out var w) ? w : i.Weight;
                instances.Add(new AdminInstance(i.InstanceId, i.Endpoint().ToString(), i.Zone, weight, health, known ? state.InFlight : null, null, i.Version));
            }

            result.Add(new AdminService(name, instances));
        }

        return result;
    }

    public async Task<AdminStats> StatsAsync(CancellationToken cancellationToken)
    {
        if (_proxies.Count == 0)
        {
            return new AdminStats(new Dictionary<string, StatsWindow>(), "no statistics: no proxy given (trellis admin --proxy-admin http://host:port)");
        }

        var answers = await FromProxiesAsync($"/api/stats?raw=1&window={ServiceStats.Seconds}", cancellationToken).ConfigureAwait(false);
        if (answers.Count == 0)
        {
            return new AdminStats(new Dictionary<string, StatsWindow>(), $"no statistics: none of the {_proxies.Count} proxies given answered");
        }

        var byService = new Dictionary<string, List<StatsWindow>>(StringComparer.Ordinal);
        foreach (var document in answers)
        {
            using (document)
            {
                foreach (var (service, window) in AdminPage.ParseRawStats(document.RootElement))
                {
                    (byService.TryGetValue(service, out var list) ? list : byService[service] = []).Add(window);
                }
            }
        }

        return new AdminStats(byService.ToDictionary(kv => kv.Key, kv => StatsWindow.Merge(kv.Value), StringComparer.Ordinal), null);
    }

    /// <summary>The JSON answers of the proxies that answered (the others are left out).</summary>
    private async Task<List<JsonDocument>> FromProxiesAsync(string path, CancellationToken cancellationToken)
    {
        var tasks = _proxies.Select(async proxy =>
        {
            try
            {
                var body = await _http.GetByteArrayAsync(new Uri(proxy, path), cancellationToken).ConfigureAwait(false);
                return JsonDocument.Parse(body);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                return null;
            }
        });
        return [.. (await Task.WhenAll(tasks).ConfigureAwait(false)).OfType<JsonDocument>()];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var watch in _watches.Values)
        {
            try
            {
                await (await watch.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // a watch that never started
            }
        }

        _http.Dispose();
    }
}
