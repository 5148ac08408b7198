using System.Diagnostics.Metrics;
using Trellis.Rpc;
using Trellis.Rpc.Balancing;

namespace Trellis.Proxy;

/// <summary>The proxy's and the balancer's gauges on the <c>Trellis.Proxy</c> meter, and the Prometheus exporter of <c>/metrics</c>.</summary>
public sealed partial class ProxyServer
{
    private PrometheusExporter? _prometheus;

    /// <summary>
    /// The exporter behind the admin endpoint's <c>/metrics</c>: this proxy's meter (<see cref="ProxyStats"/>) and the
    /// process's <c>Trellis.Rpc</c> meter. Created on first use (the admin endpoint asks for it when it is mapped).
    /// </summary>
    public PrometheusExporter Prometheus
    {
        get
        {
            if (Volatile.Read(ref _prometheus) is { } made)
            {
                return made;
            }

            var exporter = new PrometheusExporter(meter => ReferenceEquals(meter, Stats.Meter) || meter.Name == RpcTelemetry.Name);
            if (Interlocked.CompareExchange(ref _prometheus, exporter, null) is { } other)
            {
                exporter.Dispose();
                return other;
            }

            return exporter;
        }
    }

    /// <summary>Observable instruments that read the proxy's state when collected: nothing on the call path.</summary>
    private void CreateInstruments()
    {
        var meter = Stats.Meter;
        meter.CreateObservableGauge("trellis.proxy.instances", InstanceCounts, unit: "{instance}",
            description: "instances per service, by state (ready, ejected, draining)");
        meter.CreateObservableCounter("trellis.proxy.ejections", Ejections, unit: "{ejection}",
            description: "outlier ejections per service, of the instances listed now");
        meter.CreateObservableUpDownCounter("trellis.proxy.backend_connections", () => BackendConnectionCount, unit: "{connection}",
            description: "open connections to instances");
        meter.CreateObservableGauge("trellis.balancer.workers", WorkerCounts, unit: "{worker}", description: "the balancer's workers, by state");
        meter.CreateObservableGauge("trellis.balancer.queued", () => Pool is { } pool ? [new Measurement<long>(pool.Queued)] : Array.Empty<Measurement<long>>(),
            unit: "{call}", description: "calls waiting for a free worker");
        meter.CreateObservableCounter("trellis.balancer.restarts", () => PoolValue(p => p.Restarts), description: "workers started again after they exited on their own");
        meter.CreateObservableCounter("trellis.balancer.recycled", () => PoolValue(p => p.Replaced), description: "workers replaced for their call count or memory");
        meter.CreateObservableCounter("trellis.balancer.killed", () => PoolValue(p => p.Killed), description: "workers killed for sitting on a call past its deadline");
        meter.CreateObservableCounter("trellis.balancer.overloaded", () => PoolValue(p => p.Overloaded), description: "calls refused because the queue was full");
    }

    private Measurement<long>[] PoolValue(Func<Balancer.WorkerPool, long> read) =>
        Pool is { } pool ? [new Measurement<long>(read(pool))] : [];

    private IEnumerable<Measurement<long>> InstanceCounts()
    {
        var now = OutlierDetector.Now;
        foreach (var (service, route) in _routes)
        {
            long ready = 0, ejected = 0, draining = 0;
            foreach (var endpoint in route.Set.Endpoints)
            {
                if (endpoint.Instance.Draining)
                {
                    draining++;
                }
                else if (endpoint.Health.IsEjected(now))
                {
                    ejected++;
                }
                else
                {
                    ready++;
                }
            }

            var tag = new KeyValuePair<string, object?>("service", service);
            yield return new Measurement<long>(ready, tag, new KeyValuePair<string, object?>("state", "ready"));
            yield return new Measurement<long>(ejected, tag, new KeyValuePair<string, object?>("state", "ejected"));
            yield return new Measurement<long>(draining, tag, new KeyValuePair<string, object?>("state", "draining"));
        }
    }

    private IEnumerable<Measurement<long>> Ejections()
    {
        foreach (var (service, route) in _routes)
        {
            long ejections = 0;
            foreach (var endpoint in route.Set.Endpoints)
            {
                ejections += endpoint.Health.Ejections;
            }

            yield return new Measurement<long>(ejections, new KeyValuePair<string, object?>("service", service));
        }
    }

    private IEnumerable<Measurement<long>> WorkerCounts()
    {
        if (Pool is not { } pool)
        {
            yield break;
        }

        var workers = pool.Workers;
        foreach (var state in Enum.GetValues<Balancer.WorkerState>())
        {
            yield return new Measurement<long>(workers.Count(w => w.State == state),
                new KeyValuePair<string, object?>("state", state.ToString().ToLowerInvariant()));
        }
    }
}
