using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Trellis.Proxy.Admin;
using Trellis.Rpc.Registry;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis admin</c>: the admin page and its API for a registry, without a proxy: services, instances, configs and
/// the offline/online actions from the registry; statistics added up from the proxies named with <c>--proxy-admin</c>.
/// Exit codes: 0 stopped (Ctrl-C), 2 a usage, registry or listen problem.
/// </summary>
internal static class AdminCommand
{
    public static Command Create()
    {
        var zk = new Option<string?>("--zk") { Description = "ZooKeeper connect string; without it the local registry" };
        var local = new Option<string?>("--local-registry") { Description = "Directory of the local file registry" };
        var product = new Option<string>("--product", "-p") { Description = "The product", Required = true };
        var listen = new Option<string>("--listen") { Description = "Where the page is served (http://127.0.0.1:9290)", DefaultValueFactory = _ => "http://127.0.0.1:9290" };
        var proxies = new Option<string[]>("--proxy-admin") { Description = "A proxy's admin address (http://host:port) whose statistics are shown; repeatable" };

        var command = new Command("admin", "Serve the admin page for a registry: services, instances, configs, offline/online; statistics from the proxies given")
        {
            zk, local, product, listen, proxies, RegistryAuth.AuthFile, RegistryAuth.Auth,
        };
        command.SetAction(async (r, ct) =>
        {
            if (!Uri.TryCreate(r.GetValue(listen), UriKind.Absolute, out var address) || address.Scheme != Uri.UriSchemeHttp || !System.Net.IPAddress.TryParse(address.Host == "localhost" ? "127.0.0.1" : address.Host, out var ip))
            {
                await Console.Error.WriteLineAsync($"trellis admin: --listen must be http://IP:PORT, not '{r.GetValue(listen)}'").ConfigureAwait(false);
                return 2;
            }

            var proxyUris = new List<Uri>();
            foreach (var text in r.GetValue(proxies) ?? [])
            {
                if (!Uri.TryCreate(text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                {
                    await Console.Error.WriteLineAsync($"trellis admin: --proxy-admin must be http://host:port, not '{text}'").ConfigureAwait(false);
                    return 2;
                }

                proxyUris.Add(uri);
            }

            var p = r.GetValue(product)!;
            if (!RegistryPaths.IsName(p))
            {
                await Console.Error.WriteLineAsync($"trellis admin: '{p}' is not a product name").ConfigureAwait(false);
                return 2;
            }

            return await RegistryCommand.WithRegistryAsync(r, r.GetValue(zk), r.GetValue(local), async registry =>
            {
                await using var source = new RegistryAdminSource(registry, p, proxyUris);
                var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
                {
                    Args = ["--hostBuilder:reloadConfigOnChange=false"],
                    ContentRootPath = AppContext.BaseDirectory,
                });
                builder.Logging.ClearProviders();
                builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
                builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
                builder.WebHost.UseKestrel(k => k.Listen(ip, address.Port));
                await using var web = builder.Build();
                web.MapTrellisAdminPage(source);
                try
                {
                    await web.StartAsync(ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
                {
                    await Console.Error.WriteLineAsync($"trellis admin: cannot listen on {address}: {e.Message}").ConfigureAwait(false);
                    return 2;
                }

                Console.WriteLine($"trellis admin: product {p} on {address} ({(proxyUris.Count == 0 ? "no proxy given: no statistics" : $"statistics from {proxyUris.Count} proxies")})");
                try
                {
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl-C or SIGTERM
                }

                await web.StopAsync(CancellationToken.None).ConfigureAwait(false);
                return 0;
            }).ConfigureAwait(false);
        });
        return command;
    }
}
