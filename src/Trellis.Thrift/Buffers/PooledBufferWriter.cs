using System.Buffers;

namespace Trellis.Thrift.Buffers;

/// <summary>
/// A growable, contiguous <see cref="IBufferWriter{T}"/> over arrays rented from
/// <see cref="ArrayPool{T}.Shared"/>. Meant to be kept per connection and reused with
/// <see cref="Clear"/>: steady-state writing allocates nothing.
/// </summary>
/// <remarks>Not thread-safe. Spans handed out are invalid after the next call that may grow the buffer.</remarks>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    /// <summary>A buffer grown past this is returned to the pool on <see cref="Clear"/>, so one big message does not pin memory forever.</summary>
    private const int RetainLimit = 1024 * 1024;

    private readonly int _initialCapacity;
    private byte[] _buffer;
    private int _written;

    /// <param name="initialCapacity">The size rented at first, and again after <see cref="Release"/>.</param>
    /// <param name="rentNow">False: rent on the first write (a writer that may never be written to holds nothing).</param>
    public PooledBufferWriter(int initialCapacity = 512, bool rentNow = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(initialCapacity);
        _initialCapacity = initialCapacity;
        _buffer = rentNow ? ArrayPool<byte>.Shared.Rent(initialCapacity) : [];
    }

    public int WrittenCount => _written;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    /// <summary>Written bytes that may still be changed in place (a length prefix filled in afterwards).</summary>
    public Span<byte> GetWrittenSpan(int start, int length)
    {
        if ((uint)start > (uint)_written || (uint)length > (uint)(_written - start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {start + length}) is outside the {_written} written bytes");
        }

        return _buffer.AsSpan(start, length);
    }

    public void Advance(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "advanced past the end of the span that was handed out");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Drops everything written after <paramref name="length"/> bytes.</summary>
    public void Truncate(int length)
    {
        if ((uint)length > (uint)_written)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        _written = length;
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        _written += bytes.Length;
    }

    public void Clear()
    {
        _written = 0;
        if (_buffer.Length > RetainLimit)
        {
            var big = _buffer;
            _buffer = ArrayPool<byte>.Shared.Rent(512);
            ArrayPool<byte>.Shared.Return(big);
        }
    }

    /// <summary>
    /// Drops what is written and gives the buffer back to the pool; the writer stays usable and rents again on the
    /// next write. For writers kept by connections that are idle most of the time.
    /// </summary>
    public void Release() => Dispose();

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _written = 0;
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1)
        {
            sizeHint = 1;
        }

        if (sizeHint <= _buffer.Length - _written)
        {
            return;
        }

        var needed = (long)_written + sizeHint;
        if (needed > Array.MaxLength)
        {
            throw new InvalidOperationException($"a buffer of {needed} bytes was requested, more than an array can hold");
        }

        var size = _buffer.Length == 0
            ? Math.Max(needed, _initialCapacity) // released (or never rented): start at the usual size again
            : Math.Max(needed, Math.Min((long)_buffer.Length * 2, Array.MaxLength));

        var grown = ArrayPool<byte>.Shared.Rent((int)size);
        _buffer.AsSpan(0, _written).CopyTo(grown);
        var old = _buffer;
        _buffer = grown;
        if (old.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(old);
        }
    }
}
