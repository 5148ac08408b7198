using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Trellis.Rpc;
using Trellis.Rpc.Balancing;

namespace Trellis.Proxy;

/// <summary>
/// The proxy's admin endpoint (Kestrel): <c>/health</c> (200 while serving, 503 while stopping), <c>/metrics</c>
/// (Prometheus text) and <c>/routes</c> (JSON: each service's instances and their live state).
/// </summary>
public static class ProxyAdmin
{
    public static IEndpointRouteBuilder MapTrellisProxyAdmin(this IEndpointRouteBuilder endpoints, ProxyServer proxy)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(proxy);
        endpoints.MapGet("/health", () => proxy.IsStopping
            ? Results.Text("stopping\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text(proxy.RegistryConnected ? "ok\n" : "ok (registry unreachable: serving cached lists)\n"));
        var prometheus = proxy.Prometheus; // collecting from now on: the histograms count every call after the start
        endpoints.MapGet("/metrics", () => Results.Text(prometheus.Render(), PrometheusExporter.ContentType));
        endpoints.MapGet("/routes", () => Results.Text(RoutesJson(proxy), "application/json"));
        Admin.AdminPage.MapTrellisAdminPage(endpoints, new Admin.ProxyAdminSource(proxy)); // the admin page at / and its API under /api/
        return endpoints;
    }

    private static string RoutesJson(ProxyServer proxy)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            var now = OutlierDetector.Now;
            json.WriteStartObject();
            json.WriteBoolean("registryConnected", proxy.RegistryConnected);
            json.WriteStartObject("services");
            foreach (var (service, endpoints) in proxy.Routes.OrderBy(r => r.Key, StringComparer.Ordinal))
            {
                json.WriteStartArray(service);
                foreach (var endpoint in endpoints)
                {
                    var instance = endpoint.Instance;
                    json.WriteStartObject();
                    json.WriteString("id", instance.InstanceId);
                    json.WriteString("address", instance.Endpoint().ToString());
                    json.WriteString("zone", instance.Zone);
                    json.WriteNumber("weight", instance.Weight);
                    json.WriteNumber("active", endpoint.Active);
                    json.WriteString("latencyMicros", endpoint.LatencyMicros(now).ToString("F0", CultureInfo.InvariantCulture));
                    json.WriteBoolean("draining", instance.Draining);
                    json.WriteBoolean("ejected", endpoint.Health.IsEjected(now));
                    json.WriteNumber("ejections", endpoint.Health.Ejections);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}

/// <summary>
/// The balancer's admin endpoint: <c>/health</c> (200 while serving, 503 while stopping or with no worker ready),
/// <c>/metrics</c> (the front end's counters plus the workers') and <c>/workers</c> (JSON: each worker's state).
/// </summary>
public static class BalancerAdmin
{
    public static IEndpointRouteBuilder MapTrellisBalancerAdmin(this IEndpointRouteBuilder endpoints, Balancer.WorkerBalancer balancer)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(balancer);
        endpoints.MapGet("/health", () =>
        {
            var ready = balancer.Workers.Count(w => w.State == Balancer.WorkerState.Ready);
            return balancer.Front.IsStopping ? Results.Text("stopping\n", statusCode: StatusCodes.Status503ServiceUnavailable)
                : ready == 0 ? Results.Text("no worker ready\n", statusCode: StatusCodes.Status503ServiceUnavailable)
                : Results.Text($"ok ({ready} workers ready{(balancer.Registration is null ? ", not registered yet" : "")})\n");
        });
        var prometheus = balancer.Front.Prometheus; // the front end's counters, the workers' gauges (same meter) and Trellis.Rpc
        endpoints.MapGet("/metrics", () => Results.Text(prometheus.Render(), PrometheusExporter.ContentType));
        endpoints.MapGet("/workers", () => Results.Text(WorkersJson(balancer), "application/json"));
        return endpoints;
    }

    private static string WorkersJson(Balancer.WorkerBalancer balancer)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("service", balancer.Service);
            json.WriteBoolean("registered", balancer.Registration is not null);
            json.WriteNumber("queued", balancer.Queued);
            json.WriteStartArray("workers");
            foreach (var worker in balancer.Workers)
            {
                json.WriteStartObject();
                json.WriteString("id", worker.Id);
                json.WriteNumber("pid", worker.Pid);
                json.WriteString("state", worker.State.ToString().ToLowerInvariant());
                json.WriteNumber("inFlight", worker.InFlight);
                json.WriteNumber("calls", worker.Calls);
                json.WriteBoolean("external", worker.External);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
