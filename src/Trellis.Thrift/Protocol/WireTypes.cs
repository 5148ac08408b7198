using System.Runtime.CompilerServices;

namespace Trellis.Thrift;

/// <summary>Facts about type ids both protocols need.</summary>
internal static class WireTypes
{
    // Smallest encoding of one value of each TType (index = type id; 0 = not a value type).
    private static ReadOnlySpan<byte> BinaryMinSize => [0, 0, 1, 1, 8, 0, 2, 0, 4, 0, 8, 4, 1, 6, 5, 5, 16];
    private static ReadOnlySpan<byte> CompactMinSize => [0, 0, 1, 1, 8, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 16];

    /// <summary>True for the type ids a value can have (every id but stop, void and the gaps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsValueType(TType type) => (uint)type < (uint)BinaryMinSize.Length && BinaryMinSize[(int)type] != 0;

    public static int MinBinarySize(TType type) => BinaryMinSize[(int)type];

    public static int MinCompactSize(TType type) => CompactMinSize[(int)type];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TType CheckValueType(byte raw, string where)
    {
        var type = (TType)raw;
        if (!IsValueType(type))
        {
            ThrowHelper.UnknownType(raw, where);
        }

        return type;
    }
}
