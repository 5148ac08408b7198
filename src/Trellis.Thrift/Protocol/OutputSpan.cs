using System.Buffers;
using System.Runtime.CompilerServices;

namespace Trellis.Thrift;

/// <summary>
/// The write cursor the protocol writers share: a span borrowed from an <see cref="IBufferWriter{T}"/>,
/// committed with <see cref="Flush"/> or when a larger span is needed. Writes go straight into the
/// borrowed memory; the output is asked for memory only when the span runs out.
/// </summary>
internal ref struct OutputSpan
{
    private const int MinimumRequest = 256;

    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _written;

    public OutputSpan(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _span = default;
        _written = 0;
    }

    /// <summary>Returns a span of at least <paramref name="size"/> bytes at the cursor; <see cref="Advance"/> moves past what was used.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Reserve(int size)
    {
        if ((uint)(_written + size) > (uint)_span.Length)
        {
            Grow(size);
        }

        return _span.Slice(_written);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance(int count) => _written += count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteByte(byte value)
    {
        if ((uint)_written >= (uint)_span.Length)
        {
            Grow(1);
        }

        _span[_written++] = value;
    }

    public void WriteBytes(scoped ReadOnlySpan<byte> bytes)
    {
        while (true)
        {
            var free = _span.Length - _written;
            if (bytes.Length <= free)
            {
                bytes.CopyTo(_span.Slice(_written));
                _written += bytes.Length;
                return;
            }

            // A large value goes through in pieces: the output need not hand out one huge span.
            if (free > 0)
            {
                bytes.Slice(0, free).CopyTo(_span.Slice(_written));
                _written += free;
                bytes = bytes.Slice(free);
            }

            Grow(Math.Min(bytes.Length, 64 * 1024));
        }
    }

    public void Flush()
    {
        if (_written > 0)
        {
            _output.Advance(_written);
        }

        _written = 0;
        _span = default;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int size)
    {
        Flush();
        _span = _output.GetSpan(Math.Max(size, MinimumRequest));
        if (_span.Length < size)
        {
            throw new InvalidOperationException($"The output buffer returned {_span.Length} bytes where {size} were requested.");
        }
    }
}
