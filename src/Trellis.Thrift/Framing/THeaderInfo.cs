namespace Trellis.Thrift;

/// <summary>THeader payload transforms, numbered as on the wire.</summary>
public enum THeaderTransform
{
    /// <summary>zlib (RFC 1950) over the payload.</summary>
    Zlib = 1,
}

/// <summary>
/// What a THeader frame carries besides its payload: flags, sequence id, protocol, transforms and
/// info key/value headers (deadline, trace context, caller identity, routing tags ride here).
/// </summary>
/// <remarks>
/// A decoder reuses one instance per connection: read what you need before decoding the next frame.
/// Keys and values are UTF-8 on the wire. Header order is kept; a key sent twice keeps both entries,
/// and <see cref="TryGet"/> returns the last.
/// </remarks>
public sealed class THeaderInfo
{
    /// <summary>Header words are 16-bit counts of 4-byte units: the header section is at most this long.</summary>
    public const int MaxHeaderSectionSize = ushort.MaxValue * 4;

    private readonly List<KeyValuePair<string, string>> _headers = [];
    private readonly List<THeaderTransform> _transforms = [];

    public ushort Flags { get; set; }

    /// <summary>The frame's sequence id (writers set it to the message's seqid).</summary>
    public int SeqId { get; set; }

    public ThriftProtocol Protocol { get; set; }

    /// <summary>Transforms applied to the payload, in the order the sender applied them.</summary>
    public IList<THeaderTransform> Transforms => _transforms;

    public IReadOnlyList<KeyValuePair<string, string>> Headers => _headers;

    public void Add(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _headers.Add(new(key, value));
    }

    /// <summary>Replaces every entry of <paramref name="key"/> with one.</summary>
    public void Set(string key, string value)
    {
        _headers.RemoveAll(h => h.Key == key);
        Add(key, value);
    }

    public bool TryGet(string key, out string value)
    {
        for (var i = _headers.Count - 1; i >= 0; i--)
        {
            if (_headers[i].Key == key)
            {
                value = _headers[i].Value;
                return true;
            }
        }

        value = "";
        return false;
    }

    public void Clear()
    {
        Flags = 0;
        SeqId = 0;
        Protocol = ThriftProtocol.Binary;
        _headers.Clear();
        _transforms.Clear();
    }
}
