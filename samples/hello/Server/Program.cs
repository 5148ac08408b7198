using Hello;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Trellis.Hosting;

// A Trellis service: listens, registers in the registry (ZooKeeper, or the local one), stops gracefully on Ctrl-C.
// Settings come from appsettings.json, the environment (Trellis__Product=…) or the command line (--Trellis:Product=…).
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddSingleton<GreeterService>();
builder.Services.AddTrellisServer(builder.Configuration, sp => new Greeter.Dispatcher(sp.GetRequiredService<GreeterService>()));
await builder.Build().RunAsync();

/// <summary>The implementation of the generated <c>Greeter.IAsync</c>.</summary>
internal sealed class GreeterService : Greeter.IAsync
{
    public Task<string> GreetAsync(string? name, CancellationToken cancellationToken = default) =>
        string.IsNullOrWhiteSpace(name)
            ? throw new NotFriendly { Reason = "who are you?" }
            : Task.FromResult($"hello {name}, from process {Environment.ProcessId}");
}
