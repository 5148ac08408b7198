using System.ComponentModel.DataAnnotations;
using Trellis.Rpc;

namespace Trellis.Hosting;

/// <summary>
/// The <c>Trellis</c> configuration section (appsettings.json, environment variables such as
/// <c>Trellis__ZooKeeper__ConnectString</c>, command-line <c>--Trellis:Product=…</c>, or rpc_proxy's config.ini keys).
/// </summary>
public sealed class TrellisOptions
{
    public const string Section = "Trellis";

    /// <summary>The product namespace services register under and callers look in.</summary>
    public string Product { get; set; } = "";

    /// <summary><c>zookeeper</c>, <c>local</c>, or <c>auto</c> (ZooKeeper when a connect string is set).</summary>
    public string Registry { get; set; } = "auto";

    public ZooKeeperSection ZooKeeper { get; set; } = new();

    /// <summary>The local registry's directory (default: <c>$XDG_RUNTIME_DIR/trellis</c>).</summary>
    public string? LocalRegistryPath { get; set; }

    public ServerSection Server { get; set; } = new();

    /// <summary>rpc_proxy's <c>proxy_address</c>: the local proxy (a Unix socket path or host:port) clients call through.</summary>
    public string? ProxyAddress { get; set; }

    /// <summary>Named clients: <c>Trellis:Clients:{name}:Endpoint</c> and so on.</summary>
    public Dictionary<string, ClientSection> Clients { get; set; } = new(StringComparer.Ordinal);

    /// <summary>rpc_proxy's <c>service</c>, <c>back_address</c> and <c>worker_pool_size</c> (for the balancer).</summary>
    public string? Service { get; set; }

    /// <summary>
    /// The route tag of every call this application makes (THeader <c>trellis-tag</c>): a canary deployment of a caller
    /// sets it so the services' routes can send its calls to their canaries. A client's own <c>Tag</c> wins.
    /// </summary>
    public string? Tag { get; set; }

    public string? BackAddress { get; set; }

    public int WorkerPoolSize { get; set; } = 1;

    public bool Verbose { get; set; }

    /// <summary>The product's TLS settings, for servers, proxies and clients alike (rpc_proxy config.ini: <c>tls_*</c>).</summary>
    public TlsSection Tls { get; set; } = new();

    /// <summary>
    /// <c>Trellis:Tls</c>. <see cref="Mode"/> <c>off</c> (default): plaintext, and TLS instances are refused. <c>tls</c>: a
    /// server's TCP listeners take TLS only, asking for (not requiring) client certificates; clients reach instances whose
    /// record says <c>tls</c> with TLS. <c>mtls</c>: as tls, and every caller must present a certificate.
    /// </summary>
    public sealed class TlsSection
    {
        /// <summary><c>off</c>, <c>tls</c> or <c>mtls</c>.</summary>
        public string Mode { get; set; } = "off";

        /// <summary>This side's certificate (PEM), naming it <c>trellis://{product}/{service}</c>; intermediates may follow it.</summary>
        public string? CertificateFile { get; set; }

        /// <summary>The certificate's private key (PEM, unencrypted); default: in <see cref="CertificateFile"/>.</summary>
        public string? KeyFile { get; set; }

        /// <summary>The product's CA bundle (PEM): peers are validated against these roots only.</summary>
        public string? CaFile { get; set; }

        public bool CheckRevocation { get; set; }

        /// <summary>Refuse instances that do not take TLS (their record has no <c>tls</c>): no downgrade to plaintext.</summary>
        public bool RequirePeerTls { get; set; }

        /// <summary>The settings as <see cref="TlsOptions"/>; null when <see cref="Mode"/> is off.</summary>
        /// <exception cref="FormatException"><see cref="Mode"/> is not off, tls or mtls.</exception>
        public TlsOptions? ToOptions()
        {
            var mode = TlsOptions.ParseMode(Mode);
            return mode == TlsMode.Off ? null : new TlsOptions
            {
                Mode = mode,
                CertificateFile = string.IsNullOrWhiteSpace(CertificateFile) ? null : CertificateFile,
                KeyFile = string.IsNullOrWhiteSpace(KeyFile) ? null : KeyFile,
                CaFile = string.IsNullOrWhiteSpace(CaFile) ? null : CaFile,
                CheckRevocation = CheckRevocation,
                RequirePeerTls = RequirePeerTls,
            };
        }
    }

    public sealed class ZooKeeperSection
    {
        public string? ConnectString { get; set; }

        [Range(1, 600)]
        public int SessionTimeoutSeconds { get; set; } = 10;

        /// <summary>
        /// <c>user:password</c>: the ZooKeeper digest identity this process authenticates as (sent again on every
        /// reconnection; never logged). Prefer <see cref="AuthFile"/> or the environment (<c>Trellis__ZooKeeper__Auth</c>)
        /// to a command line.
        /// </summary>
        public string? Auth { get; set; }

        /// <summary>A file whose first line is <c>user:password</c> (instead of <see cref="Auth"/>).</summary>
        public string? AuthFile { get; set; }

        /// <summary>
        /// The digest id allowed to write the product nodes this process creates (<c>user:base64(sha1(user:password))</c>,
        /// or <c>user:password</c> to compute it from). Default: this process's own identity (<see cref="Auth"/>). With
        /// neither, nodes are created open, as before ACLs (docs/governance.md, "ZooKeeper ACLs").
        /// </summary>
        public string? Deployer { get; set; }

        /// <summary>Digest ids (the same forms as <see cref="Deployer"/>) allowed to read an <c>online*</c> product's nodes.</summary>
        public List<string> Readers { get; set; } = [];
    }

    public sealed class ServerSection
    {
        /// <summary>Endpoints to listen on: <c>tcp://0.0.0.0:5555</c>, <c>unix:///run/trellis/echo.sock</c>.</summary>
        public List<string> Listen { get; set; } = [];

        /// <summary>rpc_proxy's <c>front_port</c>: listen on all interfaces at this port (added to <see cref="Listen"/>).</summary>
        public int? Port { get; set; }

        /// <summary>rpc_proxy's <c>front_host</c>: the address to publish.</summary>
        public string? AdvertisedHost { get; set; }

        /// <summary>rpc_proxy's <c>ip_prefix</c>: publish the local IPv4 address starting with this.</summary>
        public string? IpPrefix { get; set; }

        public string? InstanceId { get; set; }
        public string Zone { get; set; } = "";

        [Range(0, 100_000)]
        public int Weight { get; set; } = 100;

        [Range(1, 1_000_000)]
        public int MaxConcurrentCalls { get; set; } = 4096;

        public double DeregisterDelaySeconds { get; set; } = 2;
        public double DrainTimeoutSeconds { get; set; } = 10;
    }

    public sealed class ClientSection
    {
        /// <summary>
        /// <c>proxy</c> (default): one channel to <see cref="Endpoint"/> or the local proxy. <c>direct</c>: discover the
        /// instances of <see cref="Service"/> in the registry and balance every call across them in-process.
        /// </summary>
        public string Mode { get; set; } = "proxy";

        /// <summary>Direct mode: the service's name in the registry (default: the client's name).</summary>
        public string? Service { get; set; }

        /// <summary>Direct mode: random, weighted_random, round_robin, least_active, p2c (default) or consistent_hash.</summary>
        public string Strategy { get; set; } = "p2c";

        /// <summary>
        /// Direct mode: prefer instances on this host, then in this zone (the first two octets of the address chosen
        /// like the server's: <c>Server:AdvertisedHost</c>, else <c>Server:IpPrefix</c>), spilling over when they are
        /// unhealthy or saturated. Default on.
        /// </summary>
        public bool Locality { get; set; } = true;

        /// <summary>Where to call: a service instance or a proxy (<c>tcp://…</c>, <c>unix://…</c>). Default: <see cref="ProxyAddress"/>.</summary>
        public string? Endpoint { get; set; }

        /// <summary><c>framed</c>, <c>unframed</c> or <c>header</c>. Default: <c>header</c> to the local proxy (it carries deadlines, the caller's identity and route tag), <c>framed</c> to an <see cref="Endpoint"/>.</summary>
        public string? Framing { get; set; }

        /// <summary><c>binary</c> (default) or <c>compact</c>.</summary>
        public string Protocol { get; set; } = "binary";

        public bool Multiplexed { get; set; } = true;

        /// <summary>True when the peer is a Trellis server or proxy (many calls per connection).</summary>
        public bool PeerMultiplexesCalls { get; set; } = true;

        public double TimeoutSeconds { get; set; } = 30;

        /// <summary>Proxy mode: when the local proxy is down, use the central proxies of <c>Trellis:Server:Zone</c> (found in ZooKeeper).</summary>
        public bool CentralFallback { get; set; } = true;

        /// <summary>Proxy mode with an <see cref="Endpoint"/>: connect to it with TLS (<c>Trellis:Tls</c> must be on).</summary>
        public bool Tls { get; set; }

        /// <summary>With <see cref="Tls"/>: the name the peer's certificate must carry; default <c>trellis://{Product}/{Service or the client's name}</c>.</summary>
        public string? TlsPeerName { get; set; }

        /// <summary>The route tag of this client's calls (instead of <see cref="TrellisOptions.Tag"/>).</summary>
        public string? Tag { get; set; }
    }
}
