using System.CommandLine;
using Trellis.Cli;

if (args.Length > 0 && args[0] is "proxy" or "balancer")
{
    Trellis.Proxy.ProxyServer.UseInlineSocketCompletions(); // before any socket exists
}

var root = new RootCommand("Trellis: Thrift RPC for .NET")
{
    GenCommand.Create(),
    ProxyCommand.Create(),
    BalancerCommand.Create(),
    ConfigCommand.Create(),
    RegistryCommand.Create(),
};

// the proxy drains calls in flight on SIGTERM (DrainSeconds): the parser must not end the process 2 s after the signal
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
