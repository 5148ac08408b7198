using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Cli.Call;
using Trellis.Rpc;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis call FILE.thrift SERVICE METHOD [JSON]</c>: dynamic invocation, like grpcurl for Thrift. The IDL is read at
/// run time; the JSON arguments are checked against it and encoded (nothing is sent when they do not fit); the call
/// goes to a server or a proxy; the reply is printed as JSON. <c>trellis call FILE</c> lists the services,
/// <c>trellis call FILE SERVICE</c> the methods, <c>--describe</c> a method's JSON skeleton.
/// Exit codes: 0 a result, 1 a declared exception (printed) or a failed call (stderr), 2 a usage, IDL, JSON or
/// connection problem.
/// </summary>
internal static class CallCommand
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var options = new CallOptions();
        var describe = new Option<bool>("--describe") { Description = "Print the method's signature and a JSON skeleton of its arguments; send nothing" };
        var command = new Command("call", "Call a method given a .thrift file and JSON arguments; print the reply as JSON (like grpcurl)");
        options.AddTo(command);
        command.Options.Add(describe);
        command.SetAction((r, ct) => InputErrors.ReportAsync("call", () => RunAsync(r, options, r.GetValue(describe), ct)));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult r, CallOptions options, bool describe, CancellationToken cancellationToken)
    {
        var file = r.GetValue(options.File)!;
        var includes = r.GetValue(options.Includes) ?? [];
        var serviceName = r.GetValue(options.Service);
        var methodName = r.GetValue(options.Method);
        if (serviceName is null || methodName is null)
        {
            // discovery: the services, or one service's methods
            var (program, entryServices) = CallTarget.Load(file, includes);
            if (serviceName is null)
            {
                foreach (var s in entryServices)
                {
                    Console.WriteLine(s.Extends is { } b ? $"{s.Name} extends {b.Name}" : s.Name);
                }

                return 0;
            }

            var service = CallTarget.FindService(program, entryServices, serviceName);
            foreach (var function in service.AllFunctions().GroupBy(f => f.Name).Select(g => g.Last()))
            {
                Console.WriteLine(CallTarget.Signature(function));
            }

            return 0;
        }

        if (describe)
        {
            var (program, entryServices) = CallTarget.Load(file, includes);
            var service = CallTarget.FindService(program, entryServices, serviceName);
            Console.WriteLine(CallTarget.Describe(service, CallTarget.FindFunction(service, methodName)).ToJsonString(Indented));
            return 0;
        }

        var target = CallTarget.Resolve(file, serviceName, methodName, r.GetValue(options.Json), includes);
        var channelOptions = CallChannel.Options(r, options, pipelined: false, connections: 1, callsPerConnection: 1);
        await using var channel = new ThriftChannel(channelOptions);
        var name = target.Method.MultiplexedName;
        try
        {
            if (target.Function.Oneway)
            {
                await channel.SendOnewayAsync(target.Method, target.Arguments, cancellationToken).ConfigureAwait(false);
                await Console.Error.WriteLineAsync($"{name}: oneway call sent to {channelOptions.Endpoint} (no reply comes)").ConfigureAwait(false);
                return 0;
            }

            var result = new DynamicResult(target.Function);
            await channel.CallAsync(target.Method, target.Arguments, result, cancellationToken).ConfigureAwait(false);
            if (result.Exception is { } thrown)
            {
                Console.WriteLine(new JsonObject { ["exception"] = thrown.Type.Describe(), ["field"] = thrown.Name, ["value"] = result.Value }.ToJsonString(Indented));
                return 1;
            }

            if (result.FieldId is null && target.Function.ReturnType is not null)
            {
                await Console.Error.WriteLineAsync($"trellis call: {name}: the reply holds neither a result nor a declared exception").ConfigureAwait(false);
                return 1;
            }

            Console.WriteLine(new JsonObject { ["result"] = result.Value }.ToJsonString(Indented));
            return 0;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var (_, message, connection) = CallChannel.Classify(e);
            await Console.Error.WriteLineAsync($"trellis call: {name} at {channelOptions.Endpoint}: {message}").ConfigureAwait(false);
            return connection ? 2 : 1;
        }
    }
}
