using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Governance;

/// <summary>What <see cref="OfflineList.SetAsync"/> did.</summary>
public enum OfflineOutcome
{
    /// <summary>The config was written: the instance is now offline (or online).</summary>
    Changed,

    /// <summary>The instance was already so; nothing was written.</summary>
    Unchanged,

    /// <summary>A product, service or instance name that is not a registry name; nothing was read or written.</summary>
    BadName,

    /// <summary>The stored config is invalid: it must be fixed (<c>trellis config set</c>) before it is edited.</summary>
    InvalidConfig,

    /// <summary>The config changed between the read and the write (compare-and-set); nothing was changed.</summary>
    Conflict,
}

/// <summary>The result of taking an instance offline or online: the outcome, a sentence for people, the new config version.</summary>
public sealed record OfflineResult(OfflineOutcome Outcome, string Message, int? Version = null)
{
    public bool Succeeded => Outcome is OfflineOutcome.Changed or OfflineOutcome.Unchanged;
}

/// <summary>
/// Takes an instance out of traffic (or back) by editing its service config's <c>offline</c> list: the config is read,
/// changed and written back over the version read (compare-and-set), so a concurrent edit is never overwritten. Used
/// by <c>trellis registry offline|online</c> and by the admin page's actions.
/// </summary>
public static class OfflineList
{
    public static async Task<OfflineResult> SetAsync(IConfigStore store, string product, string service, string instance, bool offline, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!RegistryPaths.IsName(product) || !RegistryPaths.IsName(service))
        {
            return new(OfflineOutcome.BadName, $"'{product}/{service}' is not a product/service name");
        }

        if (!RegistryPaths.IsName(instance))
        {
            return new(OfflineOutcome.BadName, $"'{instance}' is not an instance id");
        }

        var stored = await store.GetConfigAsync(product, service, cancellationToken).ConfigureAwait(false);
        JsonObject? json;
        try
        {
            json = stored is null ? new JsonObject() : JsonNode.Parse(stored.Data) as JsonObject;
        }
        catch (JsonException)
        {
            json = null;
        }

        if (json is null || (stored is not null && ServiceConfig.Parse(stored.Data).Config is null))
        {
            return new(OfflineOutcome.InvalidConfig, $"the stored config of {product}/{service} is invalid; fix it with `trellis config set` first", stored?.Version);
        }

        var list = (json["offline"] as JsonArray)?.Select(n => n?.GetValue<string>()).OfType<string>().ToList() ?? [];
        if (offline == list.Contains(instance))
        {
            return new(OfflineOutcome.Unchanged, $"{instance} is already {(offline ? "offline" : "online")}", stored?.Version);
        }

        if (offline)
        {
            list.Add(instance);
            (json["weights"] as JsonObject)?.Remove(instance); // an offline instance has no weight
        }
        else
        {
            list.Remove(instance);
        }

        if (list.Count == 0)
        {
            json.Remove("offline");
        }
        else
        {
            json["offline"] = new JsonArray([.. list.Select(id => (JsonNode)JsonValue.Create(id))]);
        }

        var data = Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        try
        {
            var version = await store.SetConfigAsync(product, service, data, stored?.Version, cancellationToken).ConfigureAwait(false);
            return new(OfflineOutcome.Changed, $"{instance} of {product}/{service} is now {(offline ? "offline" : "online")} (config version {version})", version);
        }
        catch (InvalidOperationException e)
        {
            return new(OfflineOutcome.Conflict, $"{e.Message}; nothing was changed", stored?.Version);
        }
    }
}
