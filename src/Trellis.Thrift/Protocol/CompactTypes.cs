using System.Runtime.CompilerServices;

namespace Trellis.Thrift;

/// <summary>The compact protocol's 4-bit type ids and their mapping to <see cref="TType"/>.</summary>
internal static class CompactTypes
{
    public const byte ProtocolId = 0x82;
    public const byte Version = 1;
    public const byte VersionMask = 0x1F;
    public const int TypeShift = 5;

    public const byte BooleanTrue = 1;
    public const byte BooleanFalse = 2;

    // Index = TType. Bool maps to BOOLEAN_TRUE as in the Java and Python runtimes (the element
    // type of a bool container); 0xFF marks ids that have no compact form.
    private static ReadOnlySpan<byte> FromTType => [0, 0xFF, 1, 3, 7, 0xFF, 4, 0xFF, 5, 0xFF, 6, 8, 12, 11, 10, 9, 13];

    // Index = compact id.
    private static ReadOnlySpan<byte> ToTType => [0, 2, 2, 3, 6, 8, 10, 4, 11, 15, 14, 13, 12, 16];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Of(TType type)
    {
        if ((uint)type >= (uint)FromTType.Length || FromTType[(int)type] == 0xFF)
        {
            ThrowHelper.NotWritable(type);
        }

        return FromTType[(int)type];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TType ToType(int compact, string where)
    {
        if ((uint)compact >= (uint)ToTType.Length || compact == 0)
        {
            ThrowHelper.UnknownCompactType(compact, where);
        }

        return (TType)ToTType[compact];
    }
}
