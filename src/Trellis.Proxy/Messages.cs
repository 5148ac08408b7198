using System.Buffers;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Proxy;

/// <summary>The envelope of a message and where its body starts; the body itself is never decoded.</summary>
internal static class Envelope
{
    /// <summary>Reads the envelope without decoding the name (<paramref name="nameUtf8"/> points into <paramref name="payload"/>).</summary>
    public static TMessageType Read(ReadOnlySpan<byte> payload, ThriftProtocol protocol, ThriftLimits limits,
        out ReadOnlySpan<byte> nameUtf8, out int seqId, out int bodyOffset)
    {
        if (protocol == ThriftProtocol.Binary)
        {
            var binary = new ThriftBinaryReader(payload, limits);
            var type = binary.ReadMessageBegin(out nameUtf8, out seqId);
            bodyOffset = binary.Position;
            return type;
        }

        var compact = new ThriftCompactReader(payload, limits);
        var t = compact.ReadMessageBegin(out nameUtf8, out seqId);
        bodyOffset = compact.Position;
        return t;
    }

    /// <summary>Whether a reply's name (<c>method</c> or <c>service:method</c>) is for <paramref name="method"/>, without allocating.</summary>
    public static bool NamesMethod(ReadOnlySpan<byte> nameUtf8, string method)
    {
        var colon = nameUtf8.LastIndexOf((byte)':');
        var bare = colon >= 0 ? nameUtf8[(colon + 1)..] : nameUtf8;
        if (bare.Length > 1024)
        {
            return false; // no method name is that long
        }

        Span<char> chars = stackalloc char[bare.Length];
        var count = System.Text.Encoding.UTF8.GetChars(bare, chars);
        return chars[..count].SequenceEqual(method);
    }

    /// <summary>
    /// Appends a whole frame: <paramref name="framing"/>, a new envelope, and <paramref name="body"/> copied as it is
    /// when it is already in <paramref name="protocol"/>, re-encoded otherwise.
    /// </summary>
    public static void WriteFrame(PooledBufferWriter output, ThriftFraming framing, ThriftProtocol protocol, in TMessageHeader message,
        ReadOnlySpan<byte> body, ThriftProtocol bodyProtocol, THeaderInfo? header, ThriftLimits limits)
    {
        if (framing == ThriftFraming.Header)
        {
            header ??= new THeaderInfo();
            header.Protocol = protocol;
            header.SeqId = message.SeqId;
        }

        var mark = ThriftFrameWriter.Begin(output, framing, header);
        try
        {
            if (protocol == ThriftProtocol.Binary)
            {
                var writer = new ThriftBinaryWriter(output);
                writer.WriteMessageBegin(message);
                writer.Flush();
            }
            else
            {
                var writer = new ThriftCompactWriter(output);
                writer.WriteMessageBegin(message);
                writer.Flush();
            }

            if (bodyProtocol == protocol)
            {
                output.Write(body);
            }
            else
            {
                ThriftTranscoder.CopyStruct(body, bodyProtocol, output, protocol, limits);
            }
        }
        catch
        {
            ThriftFrameWriter.Abandon(output, mark);
            throw;
        }

        ThriftFrameWriter.End(output, mark, limits);
    }
}

/// <summary>
/// The names callers use, parsed once: <c>service:method</c> split and checked, kept (up to a bound) so a call's name
/// costs a lookup, not three strings.
/// </summary>
internal sealed class NameCache
{
    private const int MaxEntries = 4096;
    private const int MaxCachedBytes = 256;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ParsedName> _names = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ParsedName>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public NameCache() => _lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();

    public ParsedName Get(ReadOnlySpan<byte> nameUtf8)
    {
        if (nameUtf8.Length <= MaxCachedBytes)
        {
            Span<char> chars = stackalloc char[MaxCachedBytes];
            var count = System.Text.Encoding.UTF8.GetChars(nameUtf8, chars);
            if (_lookup.TryGetValue(chars[..count], out var known))
            {
                return known;
            }
        }

        var parsed = ParsedName.Parse(nameUtf8.IsEmpty ? string.Empty : System.Text.Encoding.UTF8.GetString(nameUtf8));
        if (nameUtf8.Length <= MaxCachedBytes && _names.Count < MaxEntries)
        {
            _names.TryAdd(parsed.Name, parsed);
        }

        return parsed;
    }
}

/// <summary>A call's name: the whole (restored on the reply), its service and method, or why it cannot be routed.</summary>
internal sealed class ParsedName
{
    private ParsedName(string name, string? service, string method, string? error, bool isBare = false)
    {
        Name = name;
        Service = service;
        Method = method;
        Error = error;
        IsBare = isBare;
    }

    /// <summary>A well-formed method name without <c>service:</c> (what a stock client of one service sends).</summary>
    public bool IsBare { get; }

    public string Name { get; }

    public string? Service { get; }

    public string Method { get; }

    public string? Error { get; }

    public static ParsedName Parse(string name)
    {
        if (!MultiplexedName.TryParse(name, out var service, out var method, out var error) || service is null)
        {
            return new ParsedName(name, null, method, error ?? $"'{MultiplexedName.ForEcho(name)}' names no service: call the proxy as service:method", isBare: error is null);
        }

        return new ParsedName(name, service, method, null);
    }
}

/// <summary>A message body taken off a connection, in a pooled array (the connection's buffer moves on).</summary>
internal readonly struct PooledBody : IDisposable
{
    private readonly byte[]? _array;

    public PooledBody(ReadOnlySpan<byte> bytes)
    {
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(bytes.Length, 16));
        bytes.CopyTo(_array);
        Length = bytes.Length;
    }

    public int Length { get; }

    public ReadOnlySpan<byte> Span => _array is null ? default : _array.AsSpan(0, Length);

    public void Dispose()
    {
        if (_array is not null)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }
    }
}

/// <summary>One application call in flight through the proxy.</summary>
internal sealed class ForwardCall
{
    public required FrontendConnection Client { get; init; }

    /// <summary>The name as the caller sent it (<c>service:method</c>), restored on the reply.</summary>
    public required string Name { get; init; }

    public required string Service { get; init; }

    /// <summary>The service's own settings at the proxy (looked up once per call), or null.</summary>
    public ProxyServiceOptions? ServiceOptions { get; init; }

    public required string Method { get; init; }

    public required TMessageType Type { get; init; }

    /// <summary>The caller's seqid, restored on the reply.</summary>
    public required int SeqId { get; init; }

    /// <summary>The caller's protocol (the body's).</summary>
    public required ThriftProtocol Protocol { get; init; }

    public required PooledBody Body { get; init; }

    /// <summary>The caller's THeader info headers (forwarded to THeader backends), or null.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Headers { get; init; }

    public ushort HeaderFlags { get; init; }

    /// <summary>The caller's THeader frame was zlib-compressed: so is the reply.</summary>
    public bool HeaderZlib { get; init; }

    /// <summary>When the call must be answered (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    public long Deadline { get; set; }

    public bool IsOneway => Type == TMessageType.Oneway;

    /// <summary>Concurrency limits this call holds (exited when the proxy is done with it).</summary>
    public Trellis.Rpc.Governance.ConcurrencyGate? MethodGate { get; init; }

    public Trellis.Rpc.Governance.ConcurrencyGate? ServiceGate { get; init; }

    /// <summary>The circuit breakers the call passed: told its outcome.</summary>
    public Trellis.Rpc.Governance.BreakerTicket Breakers { get; init; }

    /// <summary>The instance subset the call's route selects, or -1 (any instance).</summary>
    public int Subset { get; init; } = -1;

    /// <summary>The route insists on its subset (no fallback to other instances).</summary>
    public bool ForceSubset { get; init; }

    /// <summary>Answered by an instance with a REPLY (or sent, for a oneway call): a success for the breakers.</summary>
    public bool Succeeded { get; set; }

    /// <summary>The proxy's span for the call (only while someone listens): its context goes to the backend as traceparent.</summary>
    public System.Diagnostics.Activity? Trace { get; set; }

    private int _released;

    /// <summary>
    /// Gives back the concurrency slots the call holds and tells the breakers its outcome: once, before the caller is
    /// answered (a caller that sends its next call on the answer must find the slot free and the breaker up to date).
    /// </summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            MethodGate?.Exit();
            ServiceGate?.Exit();
            Breakers.Record(Succeeded);
        }
    }
}

/// <summary>What a backend answered: REPLY or EXCEPTION, with the body in the backend's protocol.</summary>
internal readonly record struct BackendReply(TMessageType Type, PooledBody Body, ThriftProtocol Protocol, IReadOnlyList<KeyValuePair<string, string>>? Headers);
