namespace Trellis.Thrift;

/// <summary>
/// Bounds on what a peer can make us read. Every check happens before memory is allocated,
/// so a declared size in a short message never turns into a large allocation.
/// </summary>
/// <remarks>Immutable; share one instance per listener or channel.</remarks>
public sealed record ThriftLimits
{
    /// <summary>The frame-size default of Apache Thrift (16,384,000 bytes).</summary>
    public const int DefaultMaxFrameSize = 16_384_000;

    /// <summary>The deepest nesting a stack-based decoder is allowed to reach: well within a 1 MiB thread stack.</summary>
    public const int HardMaxDepth = 1000;

    public static ThriftLimits Default { get; } = new();

    private readonly int _maxFrameSize = DefaultMaxFrameSize;
    private readonly int _maxStringLength = DefaultMaxFrameSize;
    private readonly int _maxContainerCount = 1_000_000;
    private readonly int _maxDepth = 64;
    private readonly int _maxDecompressedSize = DefaultMaxFrameSize;

    /// <summary>Largest frame (length prefix excluded), and largest unframed message, accepted or sent.</summary>
    public int MaxFrameSize { get => _maxFrameSize; init => _maxFrameSize = Positive(value, nameof(MaxFrameSize)); }

    /// <summary>Largest string or binary value, in bytes.</summary>
    public int MaxStringLength { get => _maxStringLength; init => _maxStringLength = Positive(value, nameof(MaxStringLength)); }

    /// <summary>Largest element count of one list, set or map.</summary>
    public int MaxContainerCount { get => _maxContainerCount; init => _maxContainerCount = Positive(value, nameof(MaxContainerCount)); }

    /// <summary>Deepest nesting of structs and containers (a message's top-level struct is depth 1).</summary>
    public int MaxDepth
    {
        get => _maxDepth;
        init => _maxDepth = value is > 0 and <= HardMaxDepth
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxDepth), value, $"must be between 1 and {HardMaxDepth}");
    }

    /// <summary>Largest THeader payload after its transforms (zlib) are undone.</summary>
    public int MaxDecompressedSize { get => _maxDecompressedSize; init => _maxDecompressedSize = Positive(value, nameof(MaxDecompressedSize)); }

    private static int Positive(int value, string name) =>
        value > 0 ? value : throw new ArgumentOutOfRangeException(name, value, "must be positive");
}
