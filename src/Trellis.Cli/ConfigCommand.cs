using System.CommandLine;
using System.Text;
using Trellis.Rpc.Governance;
using Trellis.Rpc.Registry;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis config get | set | validate | diff</c>: a service's configuration in the registry
/// (<c>/trellis/{product}/services/{service}/config</c>). <c>set</c> validates first and writes nothing on a problem;
/// with <c>--if-version</c> it writes only over the version read before. Exit codes: 0 ok, 1 the config has problems
/// (listed on stderr) or was changed meanwhile, 2 a usage or connection problem, 3 not allowed (ZooKeeper ACLs).
/// </summary>
internal static class ConfigCommand
{
    public static Command Create()
    {
        var product = new Option<string>("--product", "-p") { Description = "The product", Required = true };
        var zk = new Option<string?>("--zk") { Description = "ZooKeeper connect string; without it the local registry" };
        var local = new Option<string?>("--local-registry") { Description = "Directory of the local file registry" };
        var service = new Argument<string>("service") { Description = "The service" };
        var file = new Argument<string>("file") { Description = "The config as JSON (a path, or - for standard input)" };
        var ifVersion = new Option<int?>("--if-version") { Description = "Write only if the stored config is still at this version (from `get`)" };

        var get = new Command("get", "Print a service's config and its version") { product, zk, local, service };
        get.SetAction(async (r, ct) => await WithStoreAsync(r, r.GetValue(zk), r.GetValue(local), async store =>
        {
            if (await store.GetConfigAsync(r.GetValue(product)!, r.GetValue(service)!, ct).ConfigureAwait(false) is not { } stored)
            {
                await Console.Error.WriteLineAsync($"{r.GetValue(product)}/{r.GetValue(service)} has no config (defaults apply)").ConfigureAwait(false);
                return 0;
            }

            Console.WriteLine(Pretty(stored.Data));
            await Console.Error.WriteLineAsync($"version {stored.Version}").ConfigureAwait(false);
            return 0;
        }).ConfigureAwait(false));

        var validate = new Command("validate", "Check a config file without writing it") { file };
        validate.SetAction(async (r, ct) =>
        {
            var data = await ReadAsync(r.GetValue(file)!, ct).ConfigureAwait(false);
            return data is null ? 2 : await ReportAsync(data).ConfigureAwait(false) ? 0 : 1;
        });

        var set = new Command("set", "Validate a config file and store it: pushed to every proxy and client of the service") { product, zk, local, service, file, ifVersion };
        set.SetAction(async (r, ct) =>
        {
            var data = await ReadAsync(r.GetValue(file)!, ct).ConfigureAwait(false);
            if (data is null)
            {
                return 2;
            }

            if (!await ReportAsync(data).ConfigureAwait(false))
            {
                await Console.Error.WriteLineAsync("nothing was written").ConfigureAwait(false);
                return 1;
            }

            return await WithStoreAsync(r, r.GetValue(zk), r.GetValue(local), async store =>
            {
                try
                {
                    var version = await store.SetConfigAsync(r.GetValue(product)!, r.GetValue(service)!, data, r.GetValue(ifVersion), ct).ConfigureAwait(false);
                    Console.WriteLine($"stored {r.GetValue(product)}/{r.GetValue(service)} config, version {version}");
                    return 0;
                }
                catch (InvalidOperationException e)
                {
                    await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
                    return 1;
                }
            }).ConfigureAwait(false);
        });

        var diff = new Command("diff", "Show how a config file differs from the stored one") { product, zk, local, service, file };
        diff.SetAction(async (r, ct) =>
        {
            var data = await ReadAsync(r.GetValue(file)!, ct).ConfigureAwait(false);
            if (data is null)
            {
                return 2;
            }

            return await WithStoreAsync(r, r.GetValue(zk), r.GetValue(local), async store =>
            {
                var stored = await store.GetConfigAsync(r.GetValue(product)!, r.GetValue(service)!, ct).ConfigureAwait(false);
                var before = stored is null ? [] : Pretty(stored.Data).Split('\n');
                var after = Pretty(data).Split('\n');
                var changed = false;
                foreach (var line in LineDiff(before, after))
                {
                    changed |= line[0] != ' ';
                    Console.WriteLine(line);
                }

                return changed ? 1 : 0;
            }).ConfigureAwait(false);
        });

        var limit = new Option<int>("--last", "-n") { Description = "How many versions to show (newest first)", DefaultValueFactory = _ => 10 };
        var history = new Command("history", "The configs written so far, newest first, each with the change from the one before") { product, zk, local, service, limit };
        history.SetAction(async (r, ct) => await WithStoreAsync(r, r.GetValue(zk), r.GetValue(local), async store =>
        {
            var entries = await store.GetConfigHistoryAsync(r.GetValue(product)!, r.GetValue(service)!, ct).ConfigureAwait(false);
            if (entries.Count == 0)
            {
                await Console.Error.WriteLineAsync($"{r.GetValue(product)}/{r.GetValue(service)}: no config was ever written").ConfigureAwait(false);
                return 1;
            }

            var shown = entries.Take(Math.Max(1, r.GetValue(limit))).ToList();
            for (var i = 0; i < shown.Count; i++)
            {
                Console.WriteLine($"== {shown[i].Id}  {shown[i].WrittenAt.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z{(i == 0 ? "  (in force)" : "")}");
                var before = i + 1 < entries.Count ? Pretty(entries[i + 1].Data).Split('\n') : [];
                foreach (var line in LineDiff(before, Pretty(shown[i].Data).Split('\n')).Where(l => l[0] != ' '))
                {
                    Console.WriteLine(line);
                }
            }

            return 0;
        }).ConfigureAwait(false));

        return new Command("config", "Service configuration in the registry: get, set, validate, diff, history")
        {
            get, set, validate, diff, history, RegistryAuth.AuthFile, RegistryAuth.Auth,
        };
    }

    private static Task<int> WithStoreAsync(ParseResult result, string? zk, string? local, Func<IConfigStore, Task<int>> action) =>
        RegistryCommand.WithRegistryAsync(result, zk, local, registry => action((IConfigStore)registry));

    private static async Task<byte[]?> ReadAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            if (path == "-")
            {
                using var stdin = Console.OpenStandardInput();
                using var buffer = new MemoryStream();
                await stdin.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                return buffer.ToArray();
            }

            return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"trellis config: cannot read {path}: {e.Message}").ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>Lists the config's problems on stderr; true when it has none.</summary>
    private static async Task<bool> ReportAsync(byte[] data)
    {
        var (config, problems) = ServiceConfig.Parse(data);
        foreach (var problem in problems)
        {
            await Console.Error.WriteLineAsync(problem).ConfigureAwait(false);
        }

        if (config is not null)
        {
            await Console.Error.WriteLineAsync("valid").ConfigureAwait(false);
        }

        return config is not null;
    }

    private static string Pretty(byte[] data)
    {
        try
        {
            return ServiceConfig.Pretty(data);
        }
        catch (System.Text.Json.JsonException)
        {
            return Encoding.UTF8.GetString(data); // not JSON: shown as stored
        }
    }

    /// <summary>A line diff (longest common subsequence): "  same", "- removed", "+ added".</summary>
    internal static IEnumerable<string> LineDiff(IReadOnlyList<string> before, IReadOnlyList<string> after)
    {
        var lcs = new int[before.Count + 1, after.Count + 1];
        for (var i = before.Count - 1; i >= 0; i--)
        {
            for (var j = after.Count - 1; j >= 0; j--)
            {
                lcs[i, j] = before[i] == after[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        int a = 0, b = 0;
        while (a < before.Count || b < after.Count)
        {
            if (a < before.Count && b < after.Count && before[a] == after[b])
            {
                yield return "  " + before[a];
                a++;
                b++;
            }
            else if (b < after.Count && (a == before.Count || lcs[a, b + 1] > lcs[a + 1, b]))
            {
                yield return "+ " + after[b++];
            }
            else
            {
                yield return "- " + before[a++];
            }
        }
    }
}
