using Hello;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Trellis.Hosting;

// A Trellis client: a typed Greeter client over a channel to the local proxy (Trellis:ProxyAddress), or, with
// Trellis:Clients:greeter:Mode=direct, straight to the instances found in the registry.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddTrellisClient(builder.Configuration, "greeter", channel => new Greeter.Client(channel));
using var host = builder.Build();
await host.StartAsync();
var greeter = host.Services.GetRequiredService<Greeter.Client>();
foreach (var name in args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).DefaultIfEmpty("world"))
{
    try
    {
        Console.WriteLine(await greeter.GreetAsync(name));
    }
    catch (NotFriendly e)
    {
        Console.WriteLine($"not friendly: {e.Reason}");
    }
}

await host.StopAsync();
