using System.Runtime.CompilerServices;

namespace Trellis.Thrift;

/// <summary>Unsigned LEB128, as the compact protocol and THeader's header section write it.</summary>
internal static class Varint
{
    public const int MaxBytes32 = 5;
    public const int MaxBytes64 = 10;

    /// <summary>Writes <paramref name="value"/> at the start of <paramref name="destination"/> and returns the byte count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Write(Span<byte> destination, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }
}
