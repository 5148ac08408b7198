using System.CommandLine;
using Trellis.Cli;

if (args.Length > 0 && args[0] == "proxy")
{
    Trellis.Proxy.ProxyServer.UseInlineSocketCompletions(); // before any socket exists
}

var root = new RootCommand("Trellis: Thrift RPC for .NET")
{
    GenCommand.Create(),
    ProxyCommand.Create(),
};

return root.Parse(args).Invoke();
