using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using Trellis.Cli.Call;
using Trellis.Rpc;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis bench FILE.thrift SERVICE METHOD [JSON]</c>: a load generator. The call is resolved and its arguments
/// built once (as <c>trellis call</c> does), then sent by <c>--concurrency</c> callers over <c>--connections</c>
/// connections for <c>--duration</c> or <c>--calls</c>, closed-loop or at a <c>--rate</c>; a live display (a terminal) or
/// a progress line a second (otherwise, on stderr); then a summary of calls/s, errors by kind and latency percentiles
/// (<c>--json</c>: as JSON). Exit codes: 0 no errors (or at most <c>--max-error-rate</c>), 1 errors, 2 a usage problem.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var options = new CallOptions();
        var connections = new Option<int>("--connections", "-c") { Description = "Connections to open", DefaultValueFactory = _ => 1 };
        var concurrency = new Option<int>("--concurrency", "-n") { Description = "Calls in flight at once", DefaultValueFactory = _ => 16 };
        var duration = new Option<string>("--duration", "-d") { Description = "How long to send calls (10s, 1m)", DefaultValueFactory = _ => "10s" };
        var calls = new Option<long?>("--calls") { Description = "Send this many calls, then stop (instead of --duration)" };
        var rate = new Option<double?>("--rate") { Description = "Target calls/s (open loop: calls start on schedule, latency counted from the scheduled start); default as fast as the callers go" };
        var warmup = new Option<string>("--warmup") { Description = "Send calls for this long first, not counted (0 for none)", DefaultValueFactory = _ => "1s" };
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON" };
        var maxErrorRate = new Option<double>("--max-error-rate") { Description = "Exit 0 when at most this fraction of calls failed (0.01 = 1 %)", DefaultValueFactory = _ => 0 };
        var pipelined = new Option<bool>("--pipelined") { Description = "The peer answers many calls per connection (a Trellis server or the proxy); false for a stock Thrift server: one call per connection at a time", DefaultValueFactory = _ => true };
        var command = new Command("bench", "Load-test a method: calls/s, errors and latency percentiles, live and in a summary");
        options.AddTo(command);
        foreach (var option in new Option[] { connections, concurrency, duration, calls, rate, warmup, json, maxErrorRate, pipelined })
        {
            command.Options.Add(option);
        }

        command.SetAction((r, ct) => InputErrors.ReportAsync("bench", async () =>
        {
            var service = r.GetValue(options.Service);
            var method = r.GetValue(options.Method);
            if (service is null || method is null)
            {
                throw new UsageException("give the service and the method to call (trellis call FILE SERVICE lists them)");
            }

            var settings = new BenchSettings(
                Connections: r.GetValue(connections),
                Concurrency: r.GetValue(concurrency),
                Duration: CallChannel.Duration(r.GetValue(duration)!, "--duration"),
                Calls: r.GetValue(calls),
                Rate: r.GetValue(rate),
                Warmup: r.GetValue(warmup) is "0" or "0s" ? TimeSpan.Zero : CallChannel.Duration(r.GetValue(warmup)!, "--warmup"),
                Json: r.GetValue(json),
                MaxErrorRate: r.GetValue(maxErrorRate));
            if (settings.Connections is < 1 or > 1024 || settings.Concurrency is < 1 or > 100_000)
            {
                throw new UsageException("--connections must be 1 to 1024 and --concurrency 1 to 100000");
            }

            if (settings.Calls is <= 0 || settings.Rate is <= 0 || settings.MaxErrorRate is < 0 or > 1)
            {
                throw new UsageException("--calls and --rate must be positive, --max-error-rate 0 to 1");
            }

            var target = CallTarget.Resolve(r.GetValue(options.File)!, service, method, r.GetValue(options.Json), r.GetValue(options.Includes) ?? []);
            if (target.Function.Oneway)
            {
                throw new UsageException($"{target.Method.MultiplexedName} is oneway: no reply to time");
            }

            var pipe = r.GetValue(pipelined);
            var channelOptions = CallChannel.Options(r, options, pipe, settings.Connections,
                pipe ? (settings.Concurrency + settings.Connections - 1) / settings.Connections : 1);
            return await new BenchRun(target, channelOptions, settings).RunAsync(ct).ConfigureAwait(false);
        }));
        return command;
    }
}

internal sealed record BenchSettings(int Connections, int Concurrency, TimeSpan Duration, long? Calls, double? Rate, TimeSpan Warmup, bool Json, double MaxErrorRate);

/// <summary>One load run: callers, counters, display, summary.</summary>
internal sealed class BenchRun(CallTarget target, ThriftChannelOptions channelOptions, BenchSettings settings)
{
    private readonly LatencyHistogram _latency = new();
    private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _firstMessage = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = new();
    private long _ok;
    private long _failed;
    private long _issued;
    private bool _recording;

    private long Done => Interlocked.Read(ref _ok) + Interlocked.Read(ref _failed);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var name = target.Method.MultiplexedName;
        await using var channel = new ThriftChannel(channelOptions);
        var interactive = !settings.Json && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        }

        var what = $"{name} at {channelOptions.Endpoint} ({channelOptions.Encoding}), {settings.Concurrency} in flight over {settings.Connections} connection(s), " +
            (settings.Calls is { } n ? $"{n:N0} calls" : $"{settings.Duration.TotalSeconds:0.###} s") +
            (settings.Rate is { } rt ? $" at {rt:N0} calls/s" : "");
        await Console.Error.WriteLineAsync($"trellis bench: {what}").ConfigureAwait(false);

        // one call first, not counted: it opens the connection and compiles the call path, which would otherwise show
        // as a stall at the start (and, open-loop, as a backlog of late calls)
        await OneCallAsync(channel, Stopwatch.GetTimestamp(), cancellationToken).ConfigureAwait(false);
        if (settings.Warmup > TimeSpan.Zero)
        {
            await Console.Error.WriteLineAsync($"warming up for {settings.Warmup.TotalSeconds:0.###} s").ConfigureAwait(false);
            using var warm = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            warm.CancelAfter(settings.Warmup);
            await LoadAsync(channel, null, warm.Token).ConfigureAwait(false);
        }

        _recording = true;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (settings.Calls is null)
        {
            stop.CancelAfter(settings.Duration);
        }

        _clock.Start();
        var load = LoadAsync(channel, settings.Calls, stop.Token);
        if (interactive)
        {
            await AnsiConsole.Live(Render()).AutoClear(false).StartAsync(async live =>
            {
                while (!load.IsCompleted)
                {
                    await Task.WhenAny(load, Task.Delay(250, CancellationToken.None)).ConfigureAwait(false);
                    live.UpdateTarget(Render());
                }
            }).ConfigureAwait(false);
        }
        else
        {
            while (!load.IsCompleted)
            {
                await Task.WhenAny(load, Task.Delay(1000, CancellationToken.None)).ConfigureAwait(false);
                if (!load.IsCompleted)
                {
                    await Console.Error.WriteLineAsync(ProgressLine()).ConfigureAwait(false);
                }
            }
        }

        await load.ConfigureAwait(false);
        _clock.Stop();
        return Summarize();
    }

    /// <summary>Runs the callers until <paramref name="stop"/> or <paramref name="calls"/> calls; records only once <see cref="_recording"/>.</summary>
    private async Task LoadAsync(ThriftChannel channel, long? calls, CancellationToken stop)
    {
        Interlocked.Exchange(ref _issued, 0);
        var started = Stopwatch.GetTimestamp();
        var workers = Enumerable.Range(0, settings.Concurrency).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var index = Interlocked.Increment(ref _issued) - 1;
                if (calls is { } limit && index >= limit)
                {
                    return;
                }

                var begin = Stopwatch.GetTimestamp();
                if (settings.Rate is { } rate)
                {
                    // open loop: call i starts at i/rate; its latency counts from then, so a slow server is not hidden by fewer calls
                    var scheduled = started + (long)(index / rate * Stopwatch.Frequency);
                    var wait = Stopwatch.GetElapsedTime(begin, scheduled);
                    if (wait > TimeSpan.Zero)
                    {
                        try
                        {
                            await Task.Delay(wait, stop).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            return;
                        }
                    }

                    begin = scheduled;
                }

                await OneCallAsync(channel, begin, stop).ConfigureAwait(false);
            }
        }, CancellationToken.None)).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
    }

    private async Task OneCallAsync(ThriftChannel channel, long begin, CancellationToken stop)
    {
        string? kind = null;
        string? message = null;
        try
        {
            var result = new DynamicResult(target.Function, decode: false);
            // a call in flight when the run ends is let finish (its own deadline bounds it), so every started call is counted
            await channel.CallAsync(target.Method, target.Arguments, result, CancellationToken.None).ConfigureAwait(false);
            if (result.Exception is { } thrown)
            {
                kind = "declared:" + thrown.Type.Describe();
                message = $"the declared exception {thrown.Type.Describe()}";
            }
            else if (result.FieldId is null && target.Function.ReturnType is not null)
            {
                kind = "missing-result";
                message = "the reply holds neither a result nor a declared exception";
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            (kind, message, _) = CallChannel.Classify(e);
        }

        if (_recording)
        {
            _latency.Record((long)Stopwatch.GetElapsedTime(begin).TotalMicroseconds);
            if (kind is null)
            {
                Interlocked.Increment(ref _ok);
            }
            else
            {
                Interlocked.Increment(ref _failed);
                _errors.AddOrUpdate(kind, 1, (_, n) => n + 1);
                _firstMessage.TryAdd(kind, message!);
            }
        }

        if (kind == "connect" && !stop.IsCancellationRequested)
        {
            // the peer is not there: do not spin
            try
            {
                await Task.Delay(10, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // the run ended
            }
        }
    }

    private double Seconds => Math.Max(_clock.Elapsed.TotalSeconds, 1e-3);

    private static string Ms(long microseconds) => (microseconds / 1000.0).ToString("0.###", CultureInfo.InvariantCulture);

    private string ProgressLine() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{_clock.Elapsed.TotalSeconds,5:0}s  calls {Done,10:N0}  {Done / Seconds,10:N0}/s  errors {Interlocked.Read(ref _failed):N0}  p50 {Ms(_latency.Percentile(0.5))} ms  p99 {Ms(_latency.Percentile(0.99))} ms");

    private Table Render()
    {
        var failed = Interlocked.Read(ref _failed);
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(target.Method.MultiplexedName)}[/] — {_clock.Elapsed.TotalSeconds:0}s" +
                (settings.Calls is { } n ? $", {Done:N0} of {n:N0} calls" : $" of {settings.Duration.TotalSeconds:0}s"))
            .AddColumns("calls", "calls/s", "errors", "p50 ms", "p99 ms", "max ms");
        table.AddRow(
            Done.ToString("N0", CultureInfo.InvariantCulture),
            (Done / Seconds).ToString("N0", CultureInfo.InvariantCulture),
            failed == 0 ? "[green]0[/]" : $"[red]{failed:N0}[/]",
            Ms(_latency.Percentile(0.5)),
            Ms(_latency.Percentile(0.99)),
            Ms(_latency.MaxMicroseconds));
        return table;
    }

    private int Summarize()
    {
        var done = Done;
        var failed = Interlocked.Read(ref _failed);
        var percentiles = new (string Name, double Q)[] { ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999) };
        var errorRate = done == 0 ? 1 : (double)failed / done;
        var passed = done > 0 && (failed == 0 || errorRate <= settings.MaxErrorRate);
        if (settings.Json)
        {
            var latency = new JsonObject();
            foreach (var (name, q) in percentiles)
            {
                latency[name] = _latency.Percentile(q) / 1000.0;
            }

            latency["max"] = _latency.MaxMicroseconds / 1000.0;
            latency["mean"] = Math.Round(_latency.MeanMicroseconds / 1000.0, 3);
            var errors = new JsonObject();
            foreach (var (kind, count) in _errors.OrderByDescending(e => e.Value))
            {
                errors[kind] = new JsonObject { ["count"] = count, ["first"] = _firstMessage.GetValueOrDefault(kind) };
            }

            Console.WriteLine(new JsonObject
            {
                ["method"] = target.Method.MultiplexedName,
                ["endpoint"] = channelOptions.Endpoint.ToString(),
                ["encoding"] = channelOptions.Encoding.ToString(),
                ["connections"] = settings.Connections,
                ["concurrency"] = settings.Concurrency,
                ["rate"] = settings.Rate,
                ["seconds"] = Math.Round(_clock.Elapsed.TotalSeconds, 3),
                ["calls"] = done,
                ["ok"] = Interlocked.Read(ref _ok),
                ["errors"] = failed,
                ["callsPerSecond"] = Math.Round(done / Seconds, 1),
                ["errorRate"] = Math.Round(errorRate, 6),
                ["latencyMs"] = latency,
                ["errorsByKind"] = errors,
                ["passed"] = passed,
            }.ToJsonString(CallCommand.Indented));
            return passed ? 0 : 1;
        }

        var table = new Table().Border(TableBorder.Rounded).Title("[bold]summary[/]").AddColumns("", "");
        table.AddRow("method", Markup.Escape($"{target.Method.MultiplexedName} at {channelOptions.Endpoint} ({channelOptions.Encoding})"));
        table.AddRow("load", $"{settings.Concurrency} in flight, {settings.Connections} connection(s)" + (settings.Rate is { } r ? $", target {r:N0} calls/s" : ""));
        table.AddRow("duration", $"{_clock.Elapsed.TotalSeconds:0.00} s");
        table.AddRow("calls", done.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("calls/s", (done / Seconds).ToString("N1", CultureInfo.InvariantCulture));
        table.AddRow("errors", failed == 0 ? "[green]0[/]" : $"[red]{failed:N0}[/] ({errorRate:P2})");
        foreach (var (kind, count) in _errors.OrderByDescending(e => e.Value))
        {
            table.AddRow(Markup.Escape($"  {kind}"), Markup.Escape($"{count:N0}: {_firstMessage.GetValueOrDefault(kind)}"));
        }

        foreach (var (name, q) in percentiles)
        {
            table.AddRow($"latency {name}", $"{Ms(_latency.Percentile(q))} ms");
        }

        table.AddRow("latency max", $"{Ms(_latency.MaxMicroseconds)} ms");
        AnsiConsole.Write(table);
        return passed ? 0 : 1;
    }
}
