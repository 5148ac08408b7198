using System.Globalization;
using Trellis.Rpc;
using Trellis.Rpc.Governance;
using Trellis.Thrift;

namespace Trellis.Proxy;

/// <summary>What the rules let through, for the call to carry: limits held, breakers to report to, and the route.</summary>
internal struct Admission
{
    public ServiceRoute? Route;
    public ServiceConfig? Config;
    public string? CallerProduct;
    public ConcurrencyGate? MethodGate;
    public ConcurrencyGate? ServiceGate;
    public BreakerTicket Breakers;
    public int Subset;
    public bool Force;
}

internal sealed partial class FrontendConnection
{
    /// <summary>Who is on the other end, as proven by the connection (Unix peer credentials now; a certificate with mTLS).</summary>
    public CallerIdentity? ProvenIdentity { get; private set; }

    private string? _provenKey;

    private void ReadPeerCredentials()
    {
        ProvenIdentity ??= PeerCredentials.Of(_socket);
    }

    /// <summary>
    /// The governance of one call, in the documented order: product isolation → access control → degradation →
    /// rate limits → concurrency limits → circuit breakers → route. False when the call was answered here (refused,
    /// or degraded); true with what the call carries on.
    /// </summary>
    private bool Govern(in TMessageHeader request, ThriftProtocol protocol, THeaderInfo? info, string service, string method, out Admission admission)
    {
        var options = _proxy.Options;
        var flags = info?.Flags ?? 0;
        admission = default;
        admission.Subset = -1;
        string? callerProduct = null;
        if (info is not null && info.TryGet(RpcHeaders.CallerProduct, out var declared))
        {
            callerProduct = declared;
            if (ProductIsolation.Refusal(declared, options.Product) is { } refusal)
            {
                Fail(request, protocol, flags, new TApplicationException(TApplicationExceptionType.InternalError, refusal));
                return false;
            }
        }

        admission.CallerProduct = callerProduct;
        var route = _proxy.RouteOf(service); // one route lookup per call for its config and limits
        if (route is null)
        {
            return true;
        }

        var config = route.Config;
        admission.Route = route;
        admission.Config = config;
        if (config.AllowFor(method) is { } allowed && Caller(info, callerProduct) is var caller && !allowed.Allows(caller, config.TrustClaimedCallers))
        {
            _proxy.Stats.Deny();
            Fail(request, protocol, flags, new TApplicationException(TApplicationExceptionType.InternalError,
                $"access denied: {service}:{method} does not allow {caller}"));
            return false;
        }

        if (config.DegradeFor(method) is { } degraded)
        {
            // degraded by the operators: answered here, at once, without reaching an instance
            _proxy.Stats.Degrade();
            if (degraded.Reply is { } reply)
            {
                ReplyWith(request, protocol, flags, reply);
            }
            else
            {
                Fail(request, protocol, flags, GovernanceErrors.Degraded(service, method, degraded.Error!));
            }

            return false;
        }

        var limits = route.Limits;
        if (limits.Throttle(method, limits.PerCaller ? CallerKey(info, callerProduct) : "") is { } limit)
        {
            // over its rate limit at this proxy: refused unrun
            _proxy.Stats.Throttle();
            Fail(request, protocol, flags, GovernanceErrors.RateLimited(service, method, limit, "at this proxy"));
            return false;
        }

        if (limits.Enter(method, out admission.MethodGate, out admission.ServiceGate) is { } cap)
        {
            // at its concurrency limit at this proxy: refused unrun (a caller may try another proxy or instance)
            _proxy.Stats.Throttle();
            Fail(request, protocol, flags, GovernanceErrors.Overloaded(service, method, cap, "at this proxy"));
            return false;
        }

        if (limits.Break(method, out admission.Breakers) is { } open)
        {
            admission.MethodGate?.Exit();
            admission.ServiceGate?.Exit();
            _proxy.Stats.BreakerOpened();
            Fail(request, protocol, flags, GovernanceErrors.CircuitOpen(service, method, open));
            return false;
        }

        if (!config.Routes.IsEmpty)
        {
            var facts = new CallFacts(method,
                Header(info, RpcHeaders.Tag),
                callerProduct ?? options.Product,
                Header(info, RpcHeaders.CallerService),
                Header(info, RpcHeaders.CallerZone) ?? options.Zone,
                Header(info, RpcHeaders.CallerHost) ?? options.Host ?? Environment.MachineName,
                info?.Headers);
            if (config.Routes.Select(facts) is var (rule, target))
            {
                admission.Subset = target.Subset;
                admission.Force = rule.Force;
            }
        }

        return true;
    }

    private static string? Header(THeaderInfo? info, string key) => info is not null && info.TryGet(key, out var value) ? value : null;

    /// <summary>Who the caller is for access rules: proven by the connection, with the product and service it says.</summary>
    private CallerIdentity Caller(THeaderInfo? info, string? callerProduct)
    {
        var proven = ProvenIdentity;
        if (proven is { Source: IdentitySource.Certificate })
        {
            return proven;
        }

        var product = callerProduct ?? _proxy.Options.Product; // a caller of this proxy that did not say: of its product
        var service = Header(info, RpcHeaders.CallerService);
        return proven is null
            ? new CallerIdentity { Source = IdentitySource.Claimed, Product = product, Service = service }
            : proven with { Product = product, Service = service };
    }

    /// <summary>The key of per-caller rate limits: the proven identity, else the product and service the caller says.</summary>
    private string CallerKey(THeaderInfo? info, string? callerProduct)
    {
        if (ProvenIdentity is { } proven)
        {
            return _provenKey ??= proven.Source == IdentitySource.UnixPeer
                ? "uid:" + proven.Uid!.Value.ToString(CultureInfo.InvariantCulture)
                : proven.Product + "/" + proven.Service;
        }

        var product = callerProduct ?? _proxy.Options.Product;
        return Header(info, RpcHeaders.CallerService) is { } service ? product + "/" + service : product;
    }

    /// <summary>Answers a call with a configured reply (a degraded method's static answer), in the caller's encoding.</summary>
    private void ReplyWith(in TMessageHeader request, ThriftProtocol protocol, ushort flags, StaticReply reply)
    {
        if (request.Type == TMessageType.Oneway)
        {
            return;
        }

        var state = (new TMessageHeader(request.Name, TMessageType.Reply, request.SeqId), _encoding.Framing, protocol, flags, reply.BinaryBody, _proxy.Options.Limits);
        _send.Write(state, static (output, s) => Envelope.WriteFrame(output, s.Framing, s.protocol, s.Item1, s.BinaryBody, ThriftProtocol.Binary,
            s.Framing == ThriftFraming.Header ? new THeaderInfo { Flags = s.flags } : null, s.Limits));
    }
}
