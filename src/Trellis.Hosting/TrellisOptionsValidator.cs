using Microsoft.Extensions.Options;
using Trellis.Rpc;
using Trellis.Rpc.Registry;

namespace Trellis.Hosting;

/// <summary>Checks the configuration at start, and says exactly what is wrong.</summary>
internal sealed class TrellisOptionsValidator : IValidateOptions<TrellisOptions>
{
    public ValidateOptionsResult Validate(string? name, TrellisOptions options)
    {
        var errors = new List<string>();
        if (!RegistryPaths.IsName(options.Product))
        {
            errors.Add($"Trellis:Product (rpc_proxy 'product') must be a name without '/', got '{options.Product}'");
        }

        if (options.Registry is not ("auto" or "zookeeper" or "local"))
        {
            errors.Add($"Trellis:Registry must be auto, zookeeper or local, got '{options.Registry}'");
        }

        if (options.Registry == "zookeeper" && string.IsNullOrWhiteSpace(options.ZooKeeper.ConnectString))
        {
            errors.Add("Trellis:Registry is zookeeper but Trellis:ZooKeeper:ConnectString (rpc_proxy 'zk') is empty");
        }

        if (!string.IsNullOrWhiteSpace(options.ZooKeeper.ConnectString))
        {
            try
            {
                ZooKeeper.ConnectString.Parse(options.ZooKeeper.ConnectString);
            }
            catch (ArgumentException e)
            {
                errors.Add($"Trellis:ZooKeeper:ConnectString: {e.Message}");
            }
        }

        try
        {
            // the credentials file is read when the registry connects; its value and the ACL settings are checked here
            // (an AuthFile's identity is only known once it is read: a stand-in identity lets Readers be checked without it)
            TrellisRegistry.AclPolicy(options.ZooKeeper, string.IsNullOrEmpty(options.ZooKeeper.AuthFile) ? options.ZooKeeper.Auth : "auth-file:stand-in");
            if (!string.IsNullOrEmpty(options.ZooKeeper.Auth) && !string.IsNullOrEmpty(options.ZooKeeper.AuthFile))
            {
                errors.Add("Trellis:ZooKeeper: set Auth or AuthFile, not both");
            }
            else if (!string.IsNullOrEmpty(options.ZooKeeper.AuthFile) && !File.Exists(options.ZooKeeper.AuthFile))
            {
                errors.Add($"Trellis:ZooKeeper:AuthFile {options.ZooKeeper.AuthFile} does not exist");
            }
        }
        catch (ArgumentException e)
        {
            errors.Add($"Trellis:{e.Message}");
        }

        if (options.ZooKeeper.SessionTimeoutSeconds is < 1 or > 600)
        {
            errors.Add($"Trellis:ZooKeeper:SessionTimeoutSeconds must be 1..600, got {options.ZooKeeper.SessionTimeoutSeconds}");
        }

        foreach (var endpoint in options.Server.Listen)
        {
            try
            {
                RpcEndpoint.Parse(endpoint);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                errors.Add($"Trellis:Server:Listen: {e.Message}");
            }
        }

        if (options.Server.Port is < 0 or > 65535)
        {
            errors.Add($"Trellis:Server:Port (rpc_proxy 'front_port') must be 0..65535, got {options.Server.Port}");
        }

        if (options.Server.MaxConcurrentCalls < 1 || options.Server.DrainTimeoutSeconds < 0 || options.Server.DeregisterDelaySeconds < 0)
        {
            errors.Add("Trellis:Server: MaxConcurrentCalls must be positive, DrainTimeoutSeconds and DeregisterDelaySeconds not negative");
        }

        TlsOptions? tls = null;
        try
        {
            tls = options.Tls.ToOptions();
            if (tls?.Validate() is { } problem)
            {
                errors.Add(problem);
            }
        }
        catch (FormatException e)
        {
            errors.Add($"Trellis:Tls:Mode (rpc_proxy 'tls_mode'): {e.Message}");
        }

        foreach (var (client, section) in options.Clients)
        {
            if (section.Tls && tls is null)
            {
                errors.Add($"Trellis:Clients:{client}:Tls is set but Trellis:Tls:Mode is off: set it to tls or mtls with the product's CA (CaFile)");
            }

            if (section.Mode == "direct")
            {
                if (string.IsNullOrWhiteSpace(options.Product))
                {
                    errors.Add($"Trellis:Clients:{client}: direct mode looks the service up under Trellis:Product, which is not set");
                }

                try
                {
                    Trellis.Rpc.Balancing.BalancerStrategy.Parse(section.Strategy);
                }
                catch (ArgumentException e)
                {
                    errors.Add($"Trellis:Clients:{client}:Strategy: {e.Message}");
                }

                continue;
            }

            if (section.Mode != "proxy")
            {
                errors.Add($"Trellis:Clients:{client}:Mode: '{section.Mode}' is neither proxy nor direct");
                continue;
            }

            var endpoint = section.Endpoint ?? options.ProxyAddress;
            if (string.IsNullOrWhiteSpace(endpoint))
            {
                errors.Add($"Trellis:Clients:{client}: no Endpoint, and no Trellis:ProxyAddress (rpc_proxy 'proxy_address') to fall back on");
                continue;
            }

            try
            {
                RpcEndpoint.Parse(endpoint);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                errors.Add($"Trellis:Clients:{client}:Endpoint: {e.Message}");
            }

            if (section.Framing is not (null or "framed" or "unframed" or "header") || section.Protocol is not ("binary" or "compact"))
            {
                errors.Add($"Trellis:Clients:{client}: Framing must be framed/unframed/header and Protocol binary/compact");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
