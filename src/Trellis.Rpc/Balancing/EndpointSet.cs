using System.Collections.Immutable;
using System.Diagnostics;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Rpc.Balancing;

/// <summary>
/// The engine the direct-mode channel, the proxy and the balancer share: the instances of one service, each with
/// its live state (<see cref="BalancerEndpoint"/>) and a connection of the caller's kind, an immutable picker
/// rebuilt on every change, the outlier detector, and the pick itself (usable filter, avoid-the-tried, half-open
/// fallback). What a connection is — a typed <see cref="ThriftChannel"/> or a byte forwarder — is the caller's.
/// </summary>
public sealed class EndpointSet<TConnection> where TConnection : class
{
    private readonly Func<ServiceInstance, TConnection> _connect;
    private readonly Action<TConnection> _retire;
    private OutlierDetector _detector;
    private readonly TimeSpan _warmUp;
    private readonly object _lock = new();
    private readonly Dictionary<string, (BalancerEndpoint Endpoint, TConnection Connection)> _members = new(StringComparer.Ordinal);
    private BalancerStrategy _strategy;
    private Picker _picker;
    private ImmutableArray<BalancerEndpoint> _endpoints = [];

    /// <summary>What a pick reads, swapped whole on every change: a pick takes no lock.</summary>
    private sealed record View(Picker Picker, ImmutableArray<BalancerEndpoint> All, Dictionary<BalancerEndpoint, TConnection> Connections, Subset[] Subsets);

    /// <summary>The instances one route selects, with a picker of their own.</summary>
    private sealed record Subset(Picker Picker, ImmutableArray<BalancerEndpoint> Members);

    private volatile View _view;
    private IReadOnlyList<Func<ServiceInstance, bool>> _selectors = [];

    /// <param name="strategy">How an instance is picked.</param>
    /// <param name="outliers">When an instance is ejected.</param>
    /// <param name="warmUp">A new instance's weight ramps up over this long.</param>
    /// <param name="connect">Makes the connection of a new instance (or of one whose address or encoding changed).</param>
    /// <param name="retire">Takes a connection out of service; calls in flight on it should be let finish.</param>
    public EndpointSet(BalancerStrategy strategy, OutlierPolicy outliers, TimeSpan warmUp,
        Func<ServiceInstance, TConnection> connect, Action<TConnection> retire)
    {
        _strategy = strategy ?? throw new ArgumentNullException(nameof(strategy));
        _detector = new OutlierDetector(outliers ?? throw new ArgumentNullException(nameof(outliers)));
        _warmUp = warmUp;
        _connect = connect ?? throw new ArgumentNullException(nameof(connect));
        _retire = retire ?? throw new ArgumentNullException(nameof(retire));
        _picker = strategy.Build([]);
        _view = new View(_picker, [], [], []);
    }

    private void Publish()
    {
        var subsets = new Subset[_selectors.Count];
        for (var i = 0; i < subsets.Length; i++)
        {
            var selector = _selectors[i];
            ImmutableArray<BalancerEndpoint> members = [.. _endpoints.Where(e => selector(e.Instance))];
            subsets[i] = new Subset(_strategy.Build(members), members);
        }

        _view = new View(_picker, _endpoints, _members.Values.ToDictionary(m => m.Endpoint, m => m.Connection), subsets); // BalancerEndpoint: equal by reference
    }

    /// <summary>
    /// Sets the instance subsets routes select (a pick may name one by its index): each gets its own picker over
    /// the instances it matches, rebuilt with every change of the instances or the strategy.
    /// </summary>
    public void SetSubsets(IReadOnlyList<Func<ServiceInstance, bool>> selectors)
    {
        ArgumentNullException.ThrowIfNull(selectors);
        lock (_lock)
        {
            _selectors = selectors;
            Publish();
        }
    }

    /// <summary>How many instances subset <paramref name="index"/> holds now.</summary>
    public int SubsetSize(int index) => _view.Subsets is { } s && index >= 0 && index < s.Length ? s[index].Members.Length : 0;

    /// <summary>Changes when instances are ejected (the per-instance circuit breaker); ejections in force stay.</summary>
    public void SetOutlierPolicy(OutlierPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy != _detector.Policy)
        {
            _detector = new OutlierDetector(policy);
        }
    }

    public OutlierPolicy OutlierPolicy => _detector.Policy;

    public ImmutableArray<BalancerEndpoint> Endpoints => _view.All;

    public BalancerStrategy Strategy => _strategy;

    /// <summary>Switches strategy at run time: the next pick uses it.</summary>
    public void SetStrategy(BalancerStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        lock (_lock)
        {
            _strategy = strategy;
            _picker = strategy.Build(_endpoints);
            Publish();
        }
    }

    /// <summary>Takes a new instance list: known instances keep their live state, new ones connect, gone ones retire.</summary>
    public void Update(IReadOnlyList<ServiceInstance> instances)
    {
        ArgumentNullException.ThrowIfNull(instances);
        List<TConnection> retired = [];
        lock (_lock)
        {
            UpdateLocked(instances, retired);
        }

        foreach (var connection in retired)
        {
            _retire(connection);
        }
    }

    /// <summary>
    /// A config push in one step: strategy, ejection policy, route subsets and instance list (the config may have
    /// changed weights or taken instances offline). The pickers are built and published once, not once per setting.
    /// </summary>
    public void Reconfigure(BalancerStrategy strategy, OutlierPolicy outliers, IReadOnlyList<Func<ServiceInstance, bool>> selectors, IReadOnlyList<ServiceInstance> instances)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        ArgumentNullException.ThrowIfNull(selectors);
        ArgumentNullException.ThrowIfNull(instances);
        SetOutlierPolicy(outliers);
        List<TConnection> retired = [];
        lock (_lock)
        {
            _strategy = strategy;
            _selectors = selectors;
            UpdateLocked(instances, retired);
        }

        foreach (var connection in retired)
        {
            _retire(connection);
        }
    }

    private void UpdateLocked(IReadOnlyList<ServiceInstance> instances, List<TConnection> retired)
    {
        var keep = instances.Select(i => i.InstanceId).ToHashSet(StringComparer.Ordinal);
        foreach (var key in _members.Keys.Where(k => !keep.Contains(k)).ToList())
        {
            retired.Add(_members[key].Connection);
            _members.Remove(key);
        }

        foreach (var instance in instances)
        {
            if (_members.TryGetValue(instance.InstanceId, out var member))
            {
                if (SameWire(member.Endpoint.Instance, instance))
                {
                    // same address and encoding: keep the endpoint and its live state, take the new record (weight, draining…)
                    member.Endpoint.Update(instance);
                    continue;
                }

                retired.Add(member.Connection);
            }

            _members[instance.InstanceId] = (new BalancerEndpoint(instance, _warmUp), _connect(instance));
        }

        _endpoints = [.. _members.Values.Select(m => m.Endpoint).OrderBy(e => e.Key, StringComparer.Ordinal)];
        _picker = _strategy.Build(_endpoints);
        Publish();
    }

    private static bool SameWire(ServiceInstance a, ServiceInstance b) =>
        a.Endpoint() == b.Endpoint() && a.Protocol == b.Protocol && a.Framing == b.Framing && a.Multiplexed == b.Multiplexed;

    /// <summary>The connection of an instance still in the set, or null.</summary>
    public TConnection? ConnectionOf(BalancerEndpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (_lock)
        {
            return _members.TryGetValue(endpoint.Key, out var member) && member.Endpoint == endpoint ? member.Connection : null;
        }
    }

    /// <summary>
    /// Picks an instance for one attempt, avoiding <paramref name="tried"/> while another is usable; when every usable
    /// one is a half-open instance already holding its probe call, one more call beats none.
    /// </summary>
    /// <exception cref="TApplicationException">No instance at all, or all draining or ejected.</exception>
    /// <param name="tried">Instances this call already tried.</param>
    /// <param name="hashKey">The key of consistent-hash strategies.</param>
    /// <param name="subset">A route's subset (see <see cref="SetSubsets"/>), or -1 for every instance.</param>
    /// <param name="force">With a subset: fail when none of its instances is usable, rather than pick from all of them.</param>
    public Pick<TConnection> Pick(IReadOnlyCollection<BalancerEndpoint>? tried = null, ulong? hashKey = null, int subset = -1, bool force = false)
    {
        var now = OutlierDetector.Now;
        var view = _view;
        var all = view.All;
        var detector = _detector;
        var context = new PickContext(hashKey);
        BalancerEndpoint? endpoint;
        if (subset >= 0 && subset < view.Subsets.Length)
        {
            var (picker, members) = view.Subsets[subset];
            endpoint = members.Length == 0 ? null : PickFrom(picker, members, detector, context, tried, now);
            if (endpoint is null && force)
            {
                throw new TApplicationException(TApplicationExceptionType.InternalError,
                    members.Length == 0 ? "no instance available: none matches the call's route" : $"no instance available: all {members.Length} the call's route selects are draining or ejected");
            }
        }
        else
        {
            endpoint = null;
        }

        endpoint ??= PickFrom(view.Picker, all, detector, context, tried, now);
        if (endpoint is null)
        {
            throw new TApplicationException(TApplicationExceptionType.InternalError,
                all.Length == 0 ? "no instance available: the service has no registered instances" : $"no instance available: all {all.Length} are draining or ejected");
        }

        return new Pick<TConnection>(endpoint, view.Connections[endpoint], all);
    }

    private static BalancerEndpoint? PickFrom(Picker picker, ImmutableArray<BalancerEndpoint> members, OutlierDetector detector, PickContext context,
        IReadOnlyCollection<BalancerEndpoint>? tried, long now)
    {
        var usable = detector.Usable(members, now);
        var filter = tried is null || tried.Count == 0 ? usable : e => usable(e) && !tried.Contains(e);
        return picker.Pick(context, filter) ?? (tried is null ? null : picker.Pick(context, usable))
            ?? picker.Pick(context, e => !e.Instance.Draining && !e.Health.IsEjected(now));
    }

    /// <summary>Records an attempt's outcome (latency, success) and lets the outlier detector judge the instance.</summary>
    public void Finish(in Pick<TConnection> pick, long startedTimestamp, bool success)
    {
        var now = Stopwatch.GetTimestamp();
        pick.Endpoint.End(Stopwatch.GetElapsedTime(startedTimestamp, now), success, now);
        _detector.AfterCall(pick.Endpoint, pick.All, now);
    }

    /// <summary>Empties the set and hands back every connection (to close).</summary>
    public IReadOnlyList<TConnection> Clear()
    {
        lock (_lock)
        {
            var connections = _members.Values.Select(m => m.Connection).ToList();
            _members.Clear();
            _endpoints = [];
            _picker = _strategy.Build([]);
            Publish();
            return connections;
        }
    }
}

/// <summary>One pick: the instance, its connection, and the set it was picked from (for the outlier detector).</summary>
public readonly record struct Pick<TConnection>(BalancerEndpoint Endpoint, TConnection Connection, ImmutableArray<BalancerEndpoint> All);
