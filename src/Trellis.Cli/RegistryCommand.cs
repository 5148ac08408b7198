using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Hosting;
using Trellis.Rpc.Governance;
using Trellis.Rpc.Registry;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis registry ls | describe | watch | offline | online</c>: what the registry holds, and taking an instance
/// out of (or back into) traffic through the service's config; <c>acl</c> and <c>digest</c> for ZooKeeper's ACLs. Exit
/// codes: 0 ok, 1 not found or changed meanwhile, 2 a usage or connection problem, 3 not allowed (ZooKeeper ACLs).
/// </summary>
internal static class RegistryCommand
{
    public static Command Create()
    {
        var zk = new Option<string?>("--zk") { Description = "ZooKeeper connect string; without it the local registry" };
        var local = new Option<string?>("--local-registry") { Description = "Directory of the local file registry" };
        var product = new Option<string>("--product", "-p") { Description = "The product", Required = true };
        var productOptional = new Option<string?>("--product", "-p") { Description = "A product (default: list the products)" };
        var service = new Argument<string>("service") { Description = "The service" };
        var instance = new Argument<string>("instance") { Description = "The instance id (see `describe`)" };

        var ls = new Command("ls", "List the products, or a product's services with their instance counts") { productOptional, zk, local };
        ls.SetAction(async (r, ct) => await WithRegistryAsync(r, r.GetValue(zk), r.GetValue(local), async registry =>
        {
            var browser = (IRegistryBrowser)registry;
            if (r.GetValue(productOptional) is not { } p)
            {
                foreach (var name in await browser.ListProductsAsync(ct).ConfigureAwait(false))
                {
                    Console.WriteLine(name);
                }

                return 0;
            }

            foreach (var name in await browser.ListServicesAsync(p, ct).ConfigureAwait(false))
            {
                await using var watch = await registry.WatchAsync(p, name, ct).ConfigureAwait(false);
                Console.WriteLine($"{name}\t{watch.Instances.Count} instances");
            }

            return 0;
        }).ConfigureAwait(false));

        var describe = new Command("describe", "A service's instances (offline ones marked) and its config") { product, zk, local, service };
        describe.SetAction(async (r, ct) => await WithRegistryAsync(r, r.GetValue(zk), r.GetValue(local), async registry =>
        {
            var (p, s) = (r.GetValue(product)!, r.GetValue(service)!);
            await using var watch = await registry.WatchAsync(p, s, ct).ConfigureAwait(false);
            var stored = await ((IConfigStore)registry).GetConfigAsync(p, s, ct).ConfigureAwait(false);
            var config = stored is null ? ServiceConfig.Empty : ServiceConfig.Parse(stored.Data).Config;
            Console.WriteLine($"{p}/{s}: {watch.Instances.Count} instances");
            foreach (var i in watch.Instances)
            {
                var state = config?.Offline.Contains(i.InstanceId) == true ? "OFFLINE" : i.Draining ? "draining" : "online";
                Console.WriteLine($"  {i.InstanceId}\t{i.Endpoint()}\tzone={(i.Zone.Length == 0 ? "-" : i.Zone)}\tweight={i.Weight}\t{i.Framing}/{i.Protocol}\t{state}");
            }

            Console.WriteLine(stored is null ? "config: none (defaults)" : config is null ? $"config (version {stored.Version}) is INVALID; proxies keep their last good one" : $"config (version {stored.Version}):\n{ServiceConfig.Pretty(stored.Data)}");
            if (registry is ZooKeeperRegistry zooKeeper && await zooKeeper.GetAclAsync(RegistryPaths.Service(p, s), ct).ConfigureAwait(false) is { } acl)
            {
                Console.WriteLine($"acl: {RegistryAclPolicy.Describe(acl)}");
            }
            return watch.Instances.Count > 0 || stored is not null ? 0 : 1;
        }).ConfigureAwait(false));

        var watchCommand = new Command("watch", "Print a service's instances, then every change, until Ctrl-C") { product, zk, local, service };
        watchCommand.SetAction(async (r, ct) => await WithRegistryAsync(r, r.GetValue(zk), r.GetValue(local), async registry =>
        {
            await using var watch = await registry.WatchAsync(r.GetValue(product)!, r.GetValue(service)!, ct).ConfigureAwait(false);
            void Print(IReadOnlyList<ServiceInstance> instances) =>
                Console.WriteLine($"{DateTime.Now:HH:mm:ss.fff} {instances.Count} instances: {string.Join(", ", instances.Select(i => $"{i.InstanceId}@{i.Endpoint()}{(i.Draining ? " (draining)" : "")}"))}");
            watch.Changed += Print;
            Print(watch.Instances);
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C
            }

            return 0;
        }).ConfigureAwait(false));

        var offline = new Command("offline", "Take an instance out of traffic (it stays registered): adds it to the service config's offline list") { product, zk, local, service, instance };
        offline.SetAction(async (r, ct) => await WithRegistryAsync(r, r.GetValue(zk), r.GetValue(local), registry =>
            SetOfflineAsync((IConfigStore)registry, r.GetValue(product)!, r.GetValue(service)!, r.GetValue(instance)!, true, ct)).ConfigureAwait(false));
        var online = new Command("online", "Bring an instance taken offline back into traffic") { product, zk, local, service, instance };
        online.SetAction(async (r, ct) => await WithRegistryAsync(r, r.GetValue(zk), r.GetValue(local), registry =>
            SetOfflineAsync((IConfigStore)registry, r.GetValue(product)!, r.GetValue(service)!, r.GetValue(instance)!, false, ct)).ConfigureAwait(false));

        var aclProduct = new Argument<string>("product") { Description = "The product whose tree is secured" };
        var deployer = new Option<string?>("--deployer") { Description = "Digest id (user:base64hash, from `trellis registry digest`) allowed to write the product; default: your own identity (--zk-auth-file)" };
        var readers = new Option<string[]>("--reader") { Description = "Digest id allowed to read an online* product (repeatable)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would change, change nothing" };
        var acl = new Command("acl", "Apply the ZooKeeper ACL policy to a product: create /trellis and the product when missing, set the policy's ACL on every node of its tree, print what changed")
        {
            aclProduct, zk, deployer, readers, dryRun,
        };
        acl.SetAction(async (r, ct) => await SecureAsync(r, r.GetValue(zk), r.GetValue(aclProduct)!, r.GetValue(deployer), r.GetValue(readers) ?? [], r.GetValue(dryRun), ct).ConfigureAwait(false));

        var digest = new Command("digest", "Print the ZooKeeper digest id (user:base64hash) of each user:password line read from standard input");
        digest.SetAction(async (r, ct) =>
        {
            while (await Console.In.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                if (line.Trim() is { Length: > 0 } credentials)
                {
                    try
                    {
                        var (user, password) = RegistryAclPolicy.SplitCredentials(credentials, "digest input");
                        Console.WriteLine(Trellis.ZooKeeper.Acl.DigestId(user, password));
                    }
                    catch (ArgumentException e)
                    {
                        await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
                        return 2;
                    }
                }
            }

            return 0;
        });

        return new Command("registry", "What the registry holds: ls, describe, watch; offline and online; acl and digest (ZooKeeper ACLs)")
        {
            ls, describe, watchCommand, offline, online, acl, digest, RegistryAuth.AuthFile, RegistryAuth.Auth,
        };
    }

    /// <summary><c>trellis registry acl</c>: exit 0 when the whole tree has the policy's ACL, 3 when something was not allowed.</summary>
    private static async Task<int> SecureAsync(ParseResult r, string? zk, string product, string? deployer, string[] readers, bool dryRun, CancellationToken ct)
    {
        if (zk is not { Length: > 0 })
        {
            await Console.Error.WriteLineAsync("trellis: ACLs are ZooKeeper's: give --zk HOSTS").ConfigureAwait(false);
            return 2;
        }

        return await WithRegistryAsync(r, zk, null, async registry =>
        {
            var zooKeeper = (ZooKeeperRegistry)registry;
            if (zooKeeper.Acls is not { } policy)
            {
                await Console.Error.WriteLineAsync("trellis: a policy needs a deployer: --deployer USER:HASH, or your own identity with --zk-auth-file").ConfigureAwait(false);
                return 2;
            }

            var repair = await zooKeeper.SecureProductAsync(product, policy, dryRun, ct).ConfigureAwait(false);
            foreach (var change in repair.Changes)
            {
                Console.WriteLine(change.Before.Count == 0
                    ? $"{(dryRun ? "would create" : "created")}  {change.Path}  {RegistryAclPolicy.Describe(change.After)}"
                    : $"{(dryRun ? "would change" : "changed")}  {change.Path}  {RegistryAclPolicy.Describe(change.Before)} -> {RegistryAclPolicy.Describe(change.After)}");
            }

            foreach (var refusal in repair.Refused)
            {
                await Console.Error.WriteLineAsync($"trellis: {refusal.Message}").ConfigureAwait(false);
            }

            Console.WriteLine($"{product}: {repair.Visited} nodes looked at, {repair.Changes.Count} {(dryRun ? "to change" : "changed")}, {repair.Refused.Count} not allowed; " +
                $"policy: {RegistryAclPolicy.Describe(policy.ForProduct(product))}");
            return repair.Refused.Count == 0 ? 0 : 3;
        }, options =>
        {
            options.ZooKeeper.Deployer = deployer;
            options.ZooKeeper.Readers = [.. readers];
        }).ConfigureAwait(false);
    }

    /// <summary>Read the config, change its offline list, write it back over the version read (<see cref="OfflineList"/>).</summary>
    private static async Task<int> SetOfflineAsync(IConfigStore store, string product, string service, string instance, bool off, CancellationToken ct)
    {
        var result = await OfflineList.SetAsync(store, product, service, instance, off, ct).ConfigureAwait(false);
        if (result.Succeeded)
        {
            Console.WriteLine(result.Message);
            return 0;
        }

        await Console.Error.WriteLineAsync(result.Message).ConfigureAwait(false);
        return result.Outcome == OfflineOutcome.BadName ? 2 : 1;
    }

    internal static Task<int> WithRegistryAsync(string? zk, string? local, Func<IServiceRegistry, Task<int>> action) =>
        WithRegistryAsync(null, zk, local, action);

    /// <summary>
    /// Runs <paramref name="action"/> on the registry the options name, as the ZooKeeper identity of <see cref="RegistryAuth"/>.
    /// Exit codes: the action's; 2 when the registry cannot be reached or a setting is wrong; 3 when ZooKeeper's ACLs do
    /// not allow what was asked (<c>not allowed: USER may not write /trellis/…</c>).
    /// </summary>
    internal static async Task<int> WithRegistryAsync(ParseResult? result, string? zk, string? local, Func<IServiceRegistry, Task<int>> action, Action<TrellisOptions>? configure = null)
    {
        IServiceRegistry registry;
        try
        {
            var options = new TrellisOptions { LocalRegistryPath = local };
            options.ZooKeeper.ConnectString = zk;
            RegistryAuth.Apply(result, options.ZooKeeper);
            configure?.Invoke(options);
            registry = await TrellisRegistry.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
        }
        catch (ArgumentException e) when (e.Message.StartsWith("Trellis:ZooKeeper", StringComparison.Ordinal) || e.Message.StartsWith("ZooKeeper:", StringComparison.Ordinal))
        {
            await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (Exception e) when (e is TimeoutException or Trellis.ZooKeeper.KeeperException or IOException or ArgumentException)
        {
            await Console.Error.WriteLineAsync($"trellis: cannot reach the registry: {e.Message}").ConfigureAwait(false);
            return 2;
        }

        await using (registry.ConfigureAwait(false))
        {
            try
            {
                return await action(registry).ConfigureAwait(false);
            }
            catch (ArgumentException e)
            {
                await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
                return 2;
            }
            catch (RegistryAccessDeniedException e)
            {
                await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
                return 3;
            }
        }
    }
}
