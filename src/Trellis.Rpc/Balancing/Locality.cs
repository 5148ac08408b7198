using System.Collections.Immutable;
using System.Net;

namespace Trellis.Rpc.Balancing;

/// <summary>
/// Locality first: endpoints on the caller's host, then in its zone, then the rest. A tier is used while enough
/// of it is usable (<paramref name="minUsableShare"/>) and it is not saturated (average in-flight below
/// <paramref name="maxActivePerEndpoint"/>); otherwise picks spill to the next tier. Within a tier the inner
/// strategy chooses.
/// </summary>
public sealed class LocalityStrategy(BalancerStrategy inner, string? localHost, string? localZone,
    double minUsableShare = 0.5, int maxActivePerEndpoint = 64) : BalancerStrategy
{
    public override string Name => $"locality({inner.Name})";

    /// <summary>The zone of an instance: its record's, else the first two octets of its IPv4 address.</summary>
    public static string? ZoneOf(Registry.ServiceInstance instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        if (!string.IsNullOrEmpty(instance.Zone))
        {
            return instance.Zone;
        }

        return instance.Host is { } host && IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? string.Join('.', host.Split('.').Take(2))
            : null;
    }

    public override Picker Build(ImmutableArray<BalancerEndpoint> endpoints)
    {
        var host = endpoints.Where(e => localHost is not null && e.Instance.Host == localHost).ToImmutableArray();
        var zone = endpoints.Where(e => !host.Contains(e) && localZone is not null && ZoneOf(e.Instance) == localZone).ToImmutableArray();
        var rest = endpoints.Where(e => !host.Contains(e) && !zone.Contains(e)).ToImmutableArray();
        var tiers = new[] { host, zone, rest }.Where(t => t.Length > 0).Select(t => (Endpoints: t, Picker: inner.Build(t))).ToArray();
        return new P(endpoints, tiers, minUsableShare, maxActivePerEndpoint);
    }

    private sealed class P((ImmutableArray<BalancerEndpoint> Endpoints, Picker Picker)[] tiers, double share, int maxActive, ImmutableArray<BalancerEndpoint> all)
        : Picker(all)
    {
        public P(ImmutableArray<BalancerEndpoint> all, (ImmutableArray<BalancerEndpoint>, Picker)[] tiers, double share, int maxActive)
            : this(tiers, share, maxActive, all)
        {
        }

        public override BalancerEndpoint? Pick(in PickContext context, Func<BalancerEndpoint, bool> usable)
        {
            for (var t = 0; t < tiers.Length; t++)
            {
                var (endpoints, picker) = tiers[t];
                var last = t == tiers.Length - 1;
                if (!last)
                {
                    var usableCount = 0;
                    var active = 0;
                    foreach (var endpoint in endpoints)
                    {
                        if (usable(endpoint))
                        {
                            usableCount++;
                            active += endpoint.Active;
                        }
                    }

                    if (usableCount == 0 || usableCount < share * endpoints.Length || active >= maxActive * usableCount)
                    {
                        continue; // unhealthy or saturated: spill over
                    }
                }

                if (picker.Pick(context, usable) is { } chosen)
                {
                    return chosen;
                }
            }

            return null;
        }
    }
}
