using System.CommandLine;
using Trellis.Cli;

if (args.Length > 0 && args[0] is "proxy" or "balancer")
{
    Trellis.Proxy.ProxyServer.UseInlineSocketCompletions(); // before any socket exists
}

var root = new RootCommand("Trellis: Thrift RPC for .NET")
{
    DemoCommand.Create(),
    GenCommand.Create(),
    ProxyCommand.Create(),
    BalancerCommand.Create(),
    ConfigCommand.Create(),
    RegistryCommand.Create(),
    AdminCommand.Create(),
    CallCommand.Create(),
    BenchCommand.Create(),
};

if (args.Length == 0)
{
    await root.Parse(["--help"]).InvokeAsync(); // a bare `trellis`: what it can do
    return 2;
}

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && !args.Any(a => a is "-h" or "--help" or "-?"))
{
    // a usage mistake: one clear line (the first problem) and where the help is, not the whole help text
    var command = string.Join(' ', parsed.CommandResult.Command == root ? ["trellis"] : ["trellis", .. CommandPath(parsed.CommandResult)]);
    var more = parsed.Errors.Count > 1 ? $" (and {parsed.Errors.Count - 1} more)" : "";
    await Console.Error.WriteLineAsync($"{command}: {parsed.Errors[0].Message.TrimEnd('.')}{more}; see '{command} --help'");
    return 2;
}

// the proxy drains calls in flight on SIGTERM (DrainSeconds): the parser must not end the process 2 s after the signal
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

static IEnumerable<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
{
    var names = new Stack<string>();
    for (var r = result; r is not null && r.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
    {
        names.Push(r.Command.Name);
    }

    return names;
}
