using System.CommandLine;
using Trellis.Cli;

var root = new RootCommand("Trellis: Thrift RPC for .NET")
{
    GenCommand.Create(),
    ProxyCommand.Create(),
};

return root.Parse(args).Invoke();
