using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
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
        endpoints.MapGet("/metrics", () => Results.Text(proxy.Stats.ToPrometheus(), "text/plain; version=0.0.4"));
        endpoints.MapGet("/routes", () => Results.Text(RoutesJson(proxy), "application/json"));
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
