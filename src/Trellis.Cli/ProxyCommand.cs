using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Trellis.Hosting;
using Trellis.Proxy;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis proxy</c>: the per-machine proxy (or, with <c>--central</c>, a central one). Settings come from
/// <c>--config</c> (JSON, or the original rpc_proxy <c>config.ini</c>), then <c>TRELLIS__…</c> environment variables,
/// then the options given here. SIGTERM stops it gracefully; SIGHUP reloads the configuration.
/// </summary>
internal static class ProxyCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c") { Description = "Configuration file: .json (Trellis section) or the original rpc_proxy config.ini" };
        var listen = new Option<string[]>("--listen", "-l") { Description = "Address to take calls on: /path/to.sock, unix:///path, host:port or tcp://host:port (repeatable)" };
        var product = new Option<string?>("--product", "-p") { Description = "The product whose services are routed" };
        var zk = new Option<string?>("--zk") { Description = "ZooKeeper connect string (host:port,host:port[/chroot]); without it the local registry is used" };
        var localRegistry = new Option<string?>("--local-registry") { Description = "Directory of the local file registry (when there is no ZooKeeper)" };
        var zone = new Option<string?>("--zone") { Description = "This machine's zone (IDC)" };
        var host = new Option<string?>("--host") { Description = "This machine's address as instances advertise it (for same-host preference)" };
        var central = new Option<bool>("--central") { Description = "Run as a central proxy: register under /trellis/{product}/proxies/{zone}" };
        var admin = new Option<string?>("--admin") { Description = "host:port of the health and metrics endpoint (/health, /metrics, /routes)" };
        var snapshot = new Option<string?>("--snapshot-dir") { Description = "Where instance lists are saved for a restart while ZooKeeper is down" };
        var strategy = new Option<string?>("--strategy") { Description = "Default balancing: p2c, least_active, round_robin, random, weighted_random, consistent_hash" };
        var command = new Command("proxy", "Run the Trellis proxy: route each Thrift call (service:method) to an instance of its service")
        {
            config, listen, product, zk, RegistryAuth.AuthFile, localRegistry, zone, host, central, admin, snapshot, strategy,
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

            Set("Trellis:Product", result.GetValue(product));
            ProxyCommand.SetRegistry(result.GetValue(zk), result.GetValue(localRegistry), Set);
            Set("Trellis:ZooKeeper:AuthFile", result.GetValue(RegistryAuth.AuthFile));

            var addresses = result.GetValue(listen) ?? [];
            for (var i = 0; i < addresses.Length; i++)
            {
                Set($"Trellis:Proxy:ListenOnly:{i}", addresses[i]); // replaces the file's addresses
            }

            Set("Trellis:Proxy:Zone", result.GetValue(zone));
            Set("Trellis:Proxy:Host", result.GetValue(host));
            Set("Trellis:Proxy:Admin", result.GetValue(admin));
            Set("Trellis:Proxy:SnapshotDirectory", result.GetValue(snapshot));
            Set("Trellis:Proxy:Strategy", result.GetValue(strategy));
            if (result.GetValue(central))
            {
                Set("Trellis:Proxy:Central", "true");
            }

            return await RunAsync(result.GetValue(config), overrides, Console.Error, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>--zk chooses ZooKeeper, --local-registry the local file registry.</summary>
    public static void SetRegistry(string? zk, string? localRegistry, Action<string, string?> set)
    {
        if (zk is { Length: > 0 })
        {
            set("Trellis:ZooKeeper:ConnectString", zk);
            set("Trellis:Registry", "zookeeper");
        }

        if (localRegistry is { Length: > 0 })
        {
            set("Trellis:LocalRegistryPath", localRegistry);
            set("Trellis:Registry", "local");
        }
    }

    /// <summary>Exit codes: 0 stopped cleanly, 2 a configuration problem (said on stderr).</summary>
    public static Task<int> RunAsync(string? configFile, IReadOnlyDictionary<string, string?> overrides, TextWriter stderr, CancellationToken cancellationToken) =>
        RunHostAsync("proxy", configFile, overrides, stderr, ProxyConfiguration.Admin, ProxyConfiguration.Drain,
            (services, configuration) => services.AddTrellisProxy(configuration),
            web => web.MapTrellisProxyAdmin(web.Services.GetRequiredService<ProxyServer>()), cancellationToken);

    /// <summary>
    /// Runs a long-lived command's host: configuration from the file, the environment and the options; console or
    /// journal logging; Kestrel for the admin endpoint only when an admin address is set. Exit codes: 0 stopped
    /// cleanly, 2 a configuration problem (said on stderr).
    /// </summary>
    public static async Task<int> RunHostAsync(string name, string? configFile, IReadOnlyDictionary<string, string?> overrides, TextWriter stderr,
        Func<IConfiguration, string?> admin, Func<IConfiguration, TimeSpan> drain, Action<IServiceCollection, IConfiguration> addServices,
        Action<WebApplication> mapAdmin, CancellationToken cancellationToken)
    {
        IHost app;
        try
        {
            var configuration = new ConfigurationManager();
            if (configFile is not null)
            {
                if (!File.Exists(configFile))
                {
                    throw new FileNotFoundException($"config file {configFile} not found");
                }

                if (configFile.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                {
                    configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
                }
                else
                {
                    ((IConfigurationBuilder)configuration).Add(new IniSource(configFile));
                }
            }

            configuration.AddEnvironmentVariables();
            configuration.AddInMemoryCollection(overrides);
            var adminAddress = admin(configuration);
            if (adminAddress is null)
            {
                var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Configuration = configuration });
                Configure(builder.Services, builder.Logging, configuration, drain, addServices);
                app = builder.Build();
            }
            else
            {
                // the health and metrics endpoint is served by Kestrel, on the admin address only
                // no file watching: under systemd the content root is /, and watching it costs tens of thousands of inotify watches
                var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
                {
                    Args = ["--hostBuilder:reloadConfigOnChange=false"],
                    ContentRootPath = AppContext.BaseDirectory,
                });
                builder.Configuration.Sources.Clear();
                builder.Configuration.AddConfiguration(configuration);
                Configure(builder.Services, builder.Logging, configuration, drain, addServices);
                var uri = new Uri("http://" + adminAddress);
                builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Parse(uri.Host == "localhost" ? "127.0.0.1" : uri.Host), uri.Port));
                var web = builder.Build();
                mapAdmin(web);
                app = web;
            }
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or FileNotFoundException or ArgumentException or UriFormatException or InvalidDataException)
        {
            await stderr.WriteLineAsync($"trellis {name}: {e.Message}").ConfigureAwait(false);
            return 2;
        }

        using (app)
        {
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                // an address in use, a socket directory others can write, …: a configuration problem, said plainly
                await stderr.WriteLineAsync($"trellis {name}: cannot start: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }

        return 0;
    }

    private static void Configure(IServiceCollection services, ILoggingBuilder logging, ConfigurationManager configuration,
        Func<IConfiguration, TimeSpan> drain, Action<IServiceCollection, IConfiguration> addServices)
    {
        var verbose = configuration["Trellis:Verbose"] is "true" or "True" or "1";
        logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 })
        {
            logging.AddSystemdConsole(); // under systemd: syslog priorities, no timestamps of our own (the journal has them)
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
        }

        logging.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        services.Configure<HostOptions>(o => o.ShutdownTimeout = drain(configuration) + TimeSpan.FromSeconds(10));
        services.AddSingleton<IConfiguration>(configuration); // the hosted service reloads this one on SIGHUP
        addServices(services, configuration);
    }

    /// <summary>The original rpc_proxy config.ini as a configuration source (mapped to the Trellis keys).</summary>
    private sealed class IniSource(string path) : IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(path);

        private sealed class Provider(string path) : ConfigurationProvider
        {
            public override void Load() => Data = RpcProxyIni.Load(path).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.OrdinalIgnoreCase);
        }
    }
}
