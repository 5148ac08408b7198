using Trellis.Thrift;

namespace Trellis.Proxy;

/// <summary>How a proxy listens, routes and forwards. Reloadable parts: <see cref="Services"/>, <see cref="Strategy"/>, <see cref="DefaultTimeout"/>.</summary>
public sealed class ProxyOptions
{
    /// <summary>The product whose services this proxy routes to (a proxy never leaves its product).</summary>
    public string Product { get; set; } = "default";

    /// <summary>This machine's zone (IDC): instances of the same zone are preferred, and a central proxy registers under it.</summary>
    public string Zone { get; set; } = "";

    /// <summary>This machine's address as instances advertise it: instances on the same host are preferred first.</summary>
    public string? Host { get; set; }

    /// <summary>Where applications connect: a Unix socket and/or TCP (<c>proxy_address</c>).</summary>
    public IList<Trellis.Rpc.RpcEndpoint> Listen { get; } = [];

    /// <summary>Balancing strategy for services without their own (<c>p2c</c>, <c>least_active</c>, <c>round_robin</c>, <c>random</c>, <c>weighted_random</c>, <c>consistent_hash</c>).</summary>
    public string Strategy { get; set; } = "p2c";

    /// <summary>Prefer the same host, then the same zone (with spill-over when they are busy or few).</summary>
    public bool Locality { get; set; } = true;

    /// <summary>A call's time when neither the caller (THeader <c>trellis-timeout-ms</c>) nor the service's config sets one.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Connections to each multiplexed (Trellis) instance; every call on them is pipelined.</summary>
    public int ConnectionsPerBackend { get; set; } = 2;

    /// <summary>Connections at most to each stock (one call per connection) instance; callers queue beyond that.</summary>
    public int MaxPoolPerBackend { get; set; } = 64;

    /// <summary>Calls in flight per application connection before the proxy stops reading from it (backpressure).</summary>
    public int MaxInFlightPerConnection { get; set; } = 1024;

    /// <summary>Services routed at most (each has a registry watch): names beyond it are refused.</summary>
    public int MaxServices { get; set; } = 10_000;

    /// <summary>Attempts after the first for calls that were not sent (refused connection, overloaded instance).</summary>
    public int MaxRetries { get; set; } = 2;

    public ThriftLimits Limits { get; set; } = ThriftLimits.Default;

    /// <summary>An application connection with nothing in flight is closed after this long.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A frame that has started must arrive whole within this long.</summary>
    public TimeSpan FrameReadTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Where instance lists are saved, to serve from when the proxy restarts while the registry is down (null: not saved).</summary>
    public string? SnapshotDirectory { get; set; }

    /// <summary>A central proxy: registers itself under <c>/trellis/{product}/proxies/{zone}</c> for clients whose local proxy is down.</summary>
    public bool Central { get; set; }

    /// <summary>The id of this proxy's record when central (default: host-port).</summary>
    public string? InstanceId { get; set; }

    public UnixFileMode UnixSocketMode { get; set; } = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    /// <summary>The service a bare method name (no <c>service:</c>) means, or null to refuse such names (the balancer sets its own service).</summary>
    public string? DefaultService { get; set; }

    /// <summary>Per-service settings, by service name.</summary>
    public IDictionary<string, ProxyServiceOptions> Services { get; } = new Dictionary<string, ProxyServiceOptions>(StringComparer.Ordinal);

    /// <summary>
    /// The product's TLS settings (<c>Trellis:Tls</c>): instances whose record says <c>tls</c> are reached with TLS, their
    /// certificate checked against the CA bundle and to name <c>trellis://{product}/{service}</c> of the route; the proxy
    /// presents its own certificate (<c>trellis://{product}/proxy</c>) for mTLS. A handshake that fails counts against
    /// the instance (ejection) and the call is tried on another. Not reloadable: restart to change certificates.
    /// </summary>
    public Trellis.Rpc.TlsOptions? Tls { get; set; }

    /// <summary>
    /// The TCP listeners take TLS only, with <see cref="Tls"/>'s certificate (a central proxy reached over the network);
    /// with <see cref="Trellis.Rpc.TlsMode.Mutual"/> every application must present a certificate. Unix sockets stay
    /// plaintext. A central proxy's record then says <c>tls</c>.
    /// </summary>
    public bool ListenTls { get; set; }

    /// <summary>What is wrong with these options, or null.</summary>
    public string? Validate()
    {
        if (!Trellis.Rpc.Registry.RegistryPaths.IsName(Product))
        {
            return $"product '{Product}' is not a valid name";
        }

        if (Listen.Count == 0)
        {
            return "nothing to listen on: give a Unix socket path and/or a TCP address";
        }

        if (ConnectionsPerBackend < 1 || MaxPoolPerBackend < 1 || MaxInFlightPerConnection < 1 || MaxServices < 1 || MaxRetries < 0)
        {
            return "ConnectionsPerBackend, MaxPoolPerBackend, MaxInFlightPerConnection and MaxServices must be at least 1, MaxRetries at least 0";
        }

        if (DefaultTimeout <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero)
        {
            return "DefaultTimeout and ConnectTimeout must be positive";
        }

        if (Tls is { Enabled: true } tls)
        {
            if (tls.Validate() is { } problem)
            {
                return problem;
            }

            if (ListenTls && tls.Load().Certificate is null)
            {
                return "ListenTls needs the proxy's certificate: set Trellis:Tls:CertificateFile (and KeyFile)";
            }
        }
        else if (ListenTls)
        {
            return "ListenTls needs TLS settings (Trellis:Tls with Mode tls or mtls)";
        }

        try
        {
            _ = Trellis.Rpc.Balancing.BalancerStrategy.Parse(Strategy);
            foreach (var (name, service) in Services)
            {
                if (service.Strategy is { } s)
                {
                    _ = Trellis.Rpc.Balancing.BalancerStrategy.Parse(s);
                }

                if (service.Timeout is { } t && t <= TimeSpan.Zero)
                {
                    return $"service {name}: timeout must be positive";
                }
            }
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }

        return null;
    }
}

/// <summary>One service's settings at the proxy.</summary>
public sealed class ProxyServiceOptions
{
    /// <summary>The most a call may take through the proxy (a caller's shorter deadline still wins).</summary>
    public TimeSpan? Timeout { get; set; }

    public string? Strategy { get; set; }

    /// <summary>Methods safe to resend after a lost reply (the proxy does not read the IDL).</summary>
    public IList<string> IdempotentMethods { get; } = [];
}
