using Trellis.Rpc.Balancing;
using Trellis.Rpc.Governance;

namespace Trellis.Proxy.Admin;

/// <summary>The admin page of a proxy: the services it routes, their instances' live state, and its own statistics.</summary>
public sealed class ProxyAdminSource(ProxyServer proxy) : IAdminSource
{
    public string Mode => "proxy";

    public string Product => proxy.Options.Product;

    public bool RegistryConnected => proxy.RegistryConnected;

    public IConfigStore? Store => proxy.Registry.IsCompletedSuccessfully ? proxy.Registry.Result as IConfigStore : null;

    public Task<IReadOnlyList<AdminService>> ServicesAsync(CancellationToken cancellationToken)
    {
        var now = OutlierDetector.Now;
        var services = new List<AdminService>();
        foreach (var route in proxy.ServiceRoutes.OrderBy(r => r.Service, StringComparer.Ordinal))
        {
            var config = route.Config;
            var live = new Dictionary<string, BalancerEndpoint>(StringComparer.Ordinal);
            foreach (var endpoint in route.Set.Endpoints)
            {
                live[endpoint.Instance.InstanceId] = endpoint;
            }

            var instances = new List<AdminInstance>();
            var registered = route.Registered;
            foreach (var instance in registered.Count > 0 ? registered : [.. live.Values.Select(e => e.Instance)])
            {
                var address = instance.Endpoint().ToString();
                if (config.Offline.Contains(instance.InstanceId) || !live.TryGetValue(instance.InstanceId, out var endpoint))
                {
                    var weight = config.Weights.TryGetValue(instance.InstanceId, out var w) ? w : instance.Weight;
                    instances.Add(new AdminInstance(instance.InstanceId, address, instance.Zone, weight,
                        config.Offline.Contains(instance.InstanceId) ? "offline" : "pending", null, null, instance.Version));
                    continue;
                }

                var current = endpoint.Instance; // with the config's weight
                var health = current.Draining ? "draining" : endpoint.Health.IsEjected(now) ? "ejected" : "ok";
                instances.Add(new AdminInstance(current.InstanceId, address, current.Zone, current.Weight, health, endpoint.Active,
                    endpoint.LatencyMicros(now), current.Version));
            }

            services.Add(new AdminService(route.Service, instances));
        }

        return Task.FromResult<IReadOnlyList<AdminService>>(services);
    }

    public Task<AdminStats> StatsAsync(CancellationToken cancellationToken)
    {
        var now = ServiceStats.Now;
        var windows = proxy.ServiceRoutes.ToDictionary(r => r.Service, r => r.Stats.Window(now), StringComparer.Ordinal);
        return Task.FromResult(new AdminStats(windows, null));
    }
}
