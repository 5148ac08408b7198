using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Rpc;
using Trellis.Thrift;
using Trellis.Thrift.Idl;
using Trellis.Thrift.Idl.Semantics;
using Trellis.Thrift.Idl.Syntax;
using Trellis.Thrift.Services;

namespace Trellis.Cli.Call;

/// <summary>A usage problem found before anything is sent: one line on stderr, exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>How <c>trellis call</c> and <c>trellis bench</c> report a problem found before anything was sent.</summary>
internal static class InputErrors
{
    /// <summary>Runs <paramref name="run"/>; a usage or argument problem is one line on stderr and exit code 2.</summary>
    public static async Task<int> ReportAsync(string command, Func<Task<int>> run)
    {
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            await Console.Error.WriteLineAsync($"trellis {command}: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (CallInputException e)
        {
            await Console.Error.WriteLineAsync($"trellis {command}: bad arguments at {e.Message}; nothing was sent").ConfigureAwait(false);
            return 2;
        }
    }
}

/// <summary>The arguments and options <c>trellis call</c> and <c>trellis bench</c> share: what to call, where, how.</summary>
internal sealed class CallOptions
{
    /// <summary>Where calls go when no <c>--endpoint</c> is given and no environment variable names the proxy.</summary>
    public const string DefaultProxy = "/run/trellis/proxy.sock";

    public Argument<string> File { get; } = new("file") { Description = "The .thrift file" };
    public Argument<string?> Service { get; } = new("service") { Description = "The service (without it: the file's services)", Arity = ArgumentArity.ZeroOrOne };
    public Argument<string?> Method { get; } = new("method") { Description = "The method (without it: the service's methods)", Arity = ArgumentArity.ZeroOrOne };
    public Argument<string?> Json { get; } = new("json") { Description = "The arguments as a JSON object by argument name; @FILE reads a file, - standard input", Arity = ArgumentArity.ZeroOrOne };

    public Option<string?> Endpoint { get; } = new("--endpoint", "-e")
    {
        Description = $"A server or a proxy: tcp://host:port, host:port, unix:///path or /path (default: $TRELLIS_PROXY_ADDRESS, else the local proxy {DefaultProxy})",
    };

    public Option<string> Framing { get; } = new("--framing") { Description = "framed, unframed or header", DefaultValueFactory = _ => "header" };
    public Option<string> Protocol { get; } = new("--protocol") { Description = "binary or compact", DefaultValueFactory = _ => "binary" };
    public Option<bool> Multiplexed { get; } = new("--multiplexed") { Description = "Name calls service:method (false: the bare method name, for a single-service server)", DefaultValueFactory = _ => true };
    public Option<string> Timeout { get; } = new("--timeout") { Description = "A call's deadline: 500ms, 5s, 1m", DefaultValueFactory = _ => "10s" };
    public Option<string[]> Includes { get; } = new("--include", "-I") { Description = "More directories to look for included .thrift files in", AllowMultipleArgumentsPerToken = false };
    public Option<string[]> Headers { get; } = new("--header", "-H") { Description = "A THeader info header k=v sent with the call (e.g. trellis-tag=canary); repeatable; needs --framing header", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command command)
    {
        command.Arguments.Add(File);
        command.Arguments.Add(Service);
        command.Arguments.Add(Method);
        command.Arguments.Add(Json);
        foreach (var option in new Option[] { Endpoint, Framing, Protocol, Multiplexed, Timeout, Includes, Headers })
        {
            command.Options.Add(option);
        }
    }
}

/// <summary>A method resolved from the IDL with its arguments built: everything a call needs except the channel.</summary>
internal sealed class CallTarget
{
    private CallTarget(ServiceSymbol service, FunctionSymbol function, DynamicArguments arguments)
    {
        Service = service;
        Function = function;
        Arguments = arguments;
        Method = new ThriftMethod(service.Name, function.Name, function.Oneway, function.Idempotent, typeof(DynamicArguments),
            function.Oneway ? null : typeof(DynamicResult));
    }

    public ServiceSymbol Service { get; }
    public FunctionSymbol Function { get; }
    public DynamicArguments Arguments { get; }
    public ThriftMethod Method { get; }

    /// <summary>Loads the IDL; errors (with the compiler's diagnostics) are a <see cref="UsageException"/>.</summary>
    public static (ThriftProgram Program, IReadOnlyList<ServiceSymbol> EntryServices) Load(string file, IReadOnlyList<string> includes)
    {
        if (!System.IO.File.Exists(file))
        {
            throw new UsageException($"{file}: no such file");
        }

        var program = ThriftCompiler.Load([file], new DiskFileSource(), includes);
        if (program.HasErrors)
        {
            var errors = program.Diagnostics.Where(d => d.IsError).ToList();
            throw new UsageException($"{file} does not compile ({errors.Count} error(s)): " + string.Join("; ", errors.Take(5).Select(d => d.ToString())));
        }

        var entry = ThriftCompiler.NormalizePath(file);
        var entryServices = program.Files.Where(f => ThriftCompiler.NormalizePath(f.Path) == entry).SelectMany(f => f.Services).ToList();
        return (program, entryServices);
    }

    /// <summary>A service by name: the entry file's first, then included files' (also as <c>stem.Service</c>).</summary>
    public static ServiceSymbol FindService(ThriftProgram program, IReadOnlyList<ServiceSymbol> entryServices, string name)
    {
        var found = entryServices.FirstOrDefault(s => s.Name == name)
            ?? program.Files.SelectMany(f => f.Services).FirstOrDefault(s => s.Name == name || $"{s.File.Stem}.{s.Name}" == name);
        return found ?? throw new UsageException($"no service '{name}' in the IDL (services: {string.Join(", ", entryServices.Select(s => s.Name))})");
    }

    public static FunctionSymbol FindFunction(ServiceSymbol service, string name) =>
        service.AllFunctions().LastOrDefault(f => f.Name == name)
        ?? throw new UsageException($"service {service.Name} has no method '{name}' (methods: {string.Join(", ", service.AllFunctions().Select(f => f.Name))})");

    /// <summary>Resolves <c>FILE SERVICE METHOD [JSON]</c> and builds the arguments (nothing is sent).</summary>
    public static CallTarget Resolve(string file, string service, string method, string? json, IReadOnlyList<string> includes)
    {
        var (program, entryServices) = Load(file, includes);
        var serviceSymbol = FindService(program, entryServices, service);
        var function = FindFunction(serviceSymbol, method);
        var arguments = DynamicCodec.Arguments(function, ParseJson(json));
        return new CallTarget(serviceSymbol, function, new DynamicArguments(arguments));
    }

    private static JsonElement? ParseJson(string? json)
    {
        if (json is null)
        {
            return null;
        }

        string text;
        try
        {
            text = json == "-" ? Console.In.ReadToEnd() : json.StartsWith('@') ? System.IO.File.ReadAllText(json[1..]) : json;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read the arguments from {json[1..]}: {e.Message}");
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new UsageException($"the arguments are not JSON: {e.Message}");
        }
    }

    public static string Signature(FunctionSymbol function)
    {
        static string Fields(IEnumerable<FieldSymbol> fields) => string.Join(", ", fields.Select(f =>
            $"{f.Id}: {(f.Requiredness switch { Requiredness.Required => "required ", Requiredness.Optional => "optional ", _ => "" })}{f.Type.Describe()} {f.Name}"));

        var text = new StringBuilder();
        text.Append(function.Oneway ? "oneway " : "").Append(function.ReturnType?.Describe() ?? "void").Append(' ').Append(function.Name)
            .Append('(').Append(Fields(function.Arguments)).Append(')');
        if (function.Throws.Count > 0)
        {
            text.Append(" throws (").Append(Fields(function.Throws)).Append(')');
        }

        return text.ToString();
    }

    /// <summary>What <c>--describe</c> prints: the signature, and JSON skeletons of the arguments, the result and the exceptions.</summary>
    public static JsonObject Describe(ServiceSymbol service, FunctionSymbol function)
    {
        var arguments = new JsonObject();
        foreach (var argument in function.Arguments)
        {
            arguments[argument.Name] = DynamicCodec.Skeleton(argument.Type);
        }

        var throws = new JsonObject();
        foreach (var thrown in function.Throws)
        {
            throws[thrown.Type.Describe()] = DynamicCodec.Skeleton(thrown.Type);
        }

        return new JsonObject
        {
            ["service"] = service.Name,
            ["method"] = function.Name,
            ["signature"] = Signature(function),
            ["oneway"] = function.Oneway,
            ["required"] = new JsonArray(function.Arguments.Where(a => a.Requiredness == Requiredness.Required).Select(a => (JsonNode?)JsonValue.Create(a.Name)).ToArray()),
            ["arguments"] = arguments,
            ["returns"] = function.ReturnType is null ? null : DynamicCodec.Skeleton(function.ReturnType),
            ["throws"] = throws,
        };
    }
}

/// <summary>The channel options from the command line.</summary>
internal static class CallChannel
{
    public static ThriftChannelOptions Options(ParseResult result, CallOptions options, bool pipelined, int connections, int callsPerConnection)
    {
        var endpointText = result.GetValue(options.Endpoint)
            ?? NonEmpty(Environment.GetEnvironmentVariable("TRELLIS_PROXY_ADDRESS"))
            ?? NonEmpty(Environment.GetEnvironmentVariable("Trellis__ProxyAddress"))
            ?? CallOptions.DefaultProxy;
        RpcEndpoint endpoint;
        try
        {
            endpoint = RpcEndpoint.Parse(endpointText);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new UsageException($"--endpoint: {e.Message}");
        }

        var framing = result.GetValue(options.Framing) switch
        {
            "framed" => ThriftFraming.Framed,
            "unframed" => ThriftFraming.Unframed,
            "header" => ThriftFraming.Header,
            var other => throw new UsageException($"--framing must be framed, unframed or header, not '{other}'"),
        };
        var protocol = result.GetValue(options.Protocol) switch
        {
            "binary" => ThriftProtocol.Binary,
            "compact" => ThriftProtocol.Compact,
            var other => throw new UsageException($"--protocol must be binary or compact, not '{other}'"),
        };
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var header in result.GetValue(options.Headers) ?? [])
        {
            var equals = header.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--header must be key=value, not '{header}'");
            }

            headers[header[..equals]] = header[(equals + 1)..];
        }

        if (headers.Count > 0 && framing != ThriftFraming.Header)
        {
            throw new UsageException("--header needs --framing header (info headers travel in THeader only)");
        }

        return new ThriftChannelOptions
        {
            Endpoint = endpoint,
            Encoding = new ThriftEncoding(framing, protocol),
            Multiplexed = result.GetValue(options.Multiplexed),
            PeerMultiplexesCalls = pipelined,
            MaxConnections = connections,
            MaxCallsPerConnection = callsPerConnection,
            DefaultTimeout = Duration(result.GetValue(options.Timeout)!, "--timeout"),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Headers = headers.Count > 0 ? headers : null,
        };
    }

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;

    /// <summary><c>250ms</c>, <c>10s</c>, <c>2m</c>, <c>1h</c>, or a number of seconds.</summary>
    public static TimeSpan Duration(string text, string option)
    {
        text = text.Trim();
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : text.EndsWith('h') ? (text[..^1], 3600.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value * unit is <= 0 or > 86400 * 7)
        {
            throw new UsageException($"{option} must be a duration such as 500ms, 10s or 2m, not '{text}'");
        }

        return TimeSpan.FromSeconds(value * unit);
    }

    /// <summary>What went wrong with a call, in one line, and whether it was the connection (exit 2) or the call (exit 1).</summary>
    public static (string Kind, string Message, bool Connection) Classify(Exception error) => error switch
    {
        TApplicationException app => (AppKind(app), $"{app.Type}: {app.Message}", false),
        TTransportException { InnerException: TApplicationException app } => (AppKind(app), $"{app.Type}: {app.Message}", false),
        TTransportException { Kind: TTransportErrorKind.TimedOut } t => ("timeout", t.Message, false),
        TTransportException { Kind: TTransportErrorKind.NotOpen } t => ("connect", WithInner(t), true),
        TTransportException t => ("transport", WithInner(t), t.InnerException is System.Net.Sockets.SocketException),
        TProtocolException p => ("protocol", $"a bad reply: {p.Message}", false),
        System.Net.Sockets.SocketException s => ("connect", s.Message, true),
        IOException io => ("transport", io.Message, true),
        OperationCanceledException => ("cancelled", "cancelled", false),
        _ => ("other", $"{error.GetType().Name}: {error.Message}", false),
    };

    private static string WithInner(Exception e) =>
        e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal) ? $"{e.Message} ({inner.Message})" : e.Message;

    private static string AppKind(TApplicationException app) =>
        RpcErrors.IsDeadlineExceeded(app) ? "deadline" : RpcErrors.IsOverloaded(app) ? "overloaded" : "application:" + app.Type.ToString();
}
