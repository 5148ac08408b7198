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

        // Long strings in chunks, so the output never has to hand out one huge span.
        var encoder = Encoding.UTF8.GetEncoder();
        while (true)
        {
            var span = output.Reserve(16 * 1024);
            encoder.Convert(value, span.Slice(0, 16 * 1024), flush: true, out var charsUsed, out var bytesUsed, out var completed);
            output.Advance(bytesUsed);
            value = value.Slice(charsUsed);
            if (completed && value.IsEmpty)
            {
                return;
            }
        }
    }
}
