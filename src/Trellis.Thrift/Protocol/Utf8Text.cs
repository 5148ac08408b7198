using System.Text;

namespace Trellis.Thrift;

internal static class Utf8Text
{
    /// <summary>Up to this many chars, the writers reserve the worst case and encode in one pass.</summary>
    public const int OnePassMaxChars = 2048;

    public static int MaxBytes(int chars) => (chars + 1) * 3;

    /// <summary>Encodes a string whose byte length is already known and written.</summary>
    public static void Encode(ref OutputSpan output, ReadOnlySpan<char> value, int byteCount)
    {
        if (byteCount <= 64 * 1024)
        {
            var span = output.Reserve(byteCount);
            Encoding.UTF8.GetBytes(value, span);
            output.Advance(byteCount);
            return;
        }

        // Long strings in chunks, so the output never has to hand out one huge span. A chunk never
        // ends between the two halves of a surrogate pair, so each chunk encodes on its own.
        const int ChunkChars = 8 * 1024;
        while (!value.IsEmpty)
        {
            var take = Math.Min(ChunkChars, value.Length);
            if (take < value.Length && char.IsHighSurrogate(value[take - 1]))
            {
                take--;
            }

            var chunk = value.Slice(0, take);
            var span = output.Reserve(MaxBytes(take));
            output.Advance(Encoding.UTF8.GetBytes(chunk, span));
            value = value.Slice(take);
        }
    }
}
