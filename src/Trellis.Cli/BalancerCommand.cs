using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Trellis.Proxy;
using Trellis.Proxy.Balancer;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis balancer</c>: one service served by N single-threaded worker processes (e.g. Python Thrift servers),
/// each call to an idle worker. Settings come from <c>--config</c> (JSON, or the original rpc_proxy <c>config.ini</c>
/// with <c>service</c>, <c>front_port</c>, <c>back_address</c>, <c>worker_pool_size</c>, …), then <c>TRELLIS__…</c>
/// environment variables, then the options given here. SIGTERM stops it gracefully: deregister → wait → drain → stop the workers.
/// </summary>
internal static class BalancerCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c") { Description = "Configuration file: .json (Trellis section) or the original rpc_proxy config.ini" };
        var service = new Option<string?>("--service", "-s") { Description = "The service the workers implement (config.ini 'service')" };
        var worker = new Option<string?>("--worker-command", "-w") { Description = "Command that starts one worker; {socket} is the Unix socket it must serve on, e.g. \"/usr/bin/python3 worker.py --socket {socket}\"" };
        var workers = new Option<int?>("--workers", "-n") { Description = "Workers to run (default: the number of cores)" };
        var poolSize = new Option<int?>("--worker-pool-size") { Description = "Calls in flight per worker (config.ini 'worker_pool_size'; 1 for a single-threaded server)" };
        var listen = new Option<string[]>("--listen", "-l") { Description = "Address callers connect to: host:port, tcp://host:port, /path/to.sock or unix:///path (repeatable)" };
        var port = new Option<int?>("--port") { Description = "Listen on every interface at this port (config.ini 'front_port')" };
        var back = new Option<string?>("--back-address") { Description = "Where workers that start themselves connect (config.ini 'back_address')" };
        var product = new Option<string?>("--product", "-p") { Description = "The product the service is registered under" };
        var zk = new Option<string?>("--zk") { Description = "ZooKeeper connect string; without it the local registry is used" };
        var localRegistry = new Option<string?>("--local-registry") { Description = "Directory of the local file registry (when there is no ZooKeeper)" };
        var host = new Option<string?>("--front-host") { Description = "The address to register (config.ini 'front_host'; default: by --ip-prefix, else the first non-loopback IPv4)" };
        var ipPrefix = new Option<string?>("--ip-prefix") { Description = "Register the local IPv4 address starting with this (config.ini 'ip_prefix')" };
        var maxRequests = new Option<int?>("--max-requests") { Description = "Replace a worker after this many calls" };
        var maxMemory = new Option<int?>("--max-memory-mb") { Description = "Replace a worker once it holds this many MiB" };
        var socketDir = new Option<string?>("--socket-dir") { Description = "Where the workers' Unix sockets go (default: a private temp directory)" };
        var admin = new Option<string?>("--admin") { Description = "host:port of the admin endpoint (/health, /metrics, /workers)" };
        var command = new Command("balancer", "Run a pool of single-threaded worker processes behind one registered service")
        {
            config, service, worker, workers, poolSize, listen, port, back, product, zk, RegistryAuth.AuthFile, localRegistry, host, ipPrefix, maxRequests, maxMemory, socketDir, admin,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>();
            void Set(string key, string? value)
            {
                if (!string.IsNullOrEmpty(value))
                {
                    overrides[key] = value;
                }
            }

            string? Text(int? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture);

            Set("Trellis:Service", result.GetValue(service));
            Set("Trellis:Balancer:Command", result.GetValue(worker));
            Set("Trellis:Balancer:Workers", Text(result.GetValue(workers)));
            Set("Trellis:WorkerPoolSize", Text(result.GetValue(poolSize)));
            Set("Trellis:Server:Port", Text(result.GetValue(port)));
            Set("Trellis:BackAddress", result.GetValue(back));
            Set("Trellis:Product", result.GetValue(product));
            Set("Trellis:Server:AdvertisedHost", result.GetValue(host));
            Set("Trellis:Server:IpPrefix", result.GetValue(ipPrefix));
            Set("Trellis:Balancer:MaxRequestsPerWorker", Text(result.GetValue(maxRequests)));
            Set("Trellis:Balancer:MaxWorkerMemoryMb", Text(result.GetValue(maxMemory)));
            Set("Trellis:Balancer:Admin", result.GetValue(admin));
            Set("Trellis:Balancer:SocketDirectory", result.GetValue(socketDir));
            ProxyCommand.SetRegistry(result.GetValue(zk), result.GetValue(localRegistry), Set);
            Set("Trellis:ZooKeeper:AuthFile", result.GetValue(RegistryAuth.AuthFile));

            var addresses = result.GetValue(listen) ?? [];
            for (var i = 0; i < addresses.Length; i++)
            {
                Set($"Trellis:Balancer:Listen:{i}", addresses[i]);
            }

            return await ProxyCommand.RunHostAsync("balancer", result.GetValue(config), overrides, Console.Error, BalancerConfiguration.Admin,
                c =>
                {
                    // the host waits for the whole stop: deregister delay, drain, then the workers' SIGTERM grace
                    var (w, _, r) = BalancerConfiguration.Bind(c);
                    return r.DeregisterDelay + r.DrainTimeout + w.StopTimeout;
                },
                (services, configuration) => services.AddTrellisBalancer(configuration),
                web => web.MapTrellisBalancerAdmin(web.Services.GetRequiredService<WorkerBalancer>()), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }
}
