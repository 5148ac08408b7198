using Trellis.Tests.Features;
using Trellis.Tests.Shared;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>The samples of tests/peers/python/idl_peer.py, built with the generated C# types.</summary>
internal static class FeatureSamples
{
    public static Everything Full() => new()
    {
        Id = "e-1",
        Nickname = "nick",
        Note = "a note",
        Count = 7,
        Big = 1L << 40,
        Flag = false,
        Tiny = -128,
        Small = 32767,
        Ratio = -1.25,
        Blob = [0x00, 0x01, 0xFE, 0xFF],
        Origin = new Point { X = 1, Y = -1 },
        Path = [new Point { X = 0, Y = 0 }, new Point { X = 3, Y = 4 }],
        Labels = new() { ["env"] = "prod", ["team"] = "core" },
        Ids = [1, 2, 3],
        Matrix = [["a", "b"], [], ["c"]],
        ByStatus = new() { [Status.ACTIVE] = [new Point { X = 1, Y = 1 }], [Status.DELETED] = [] },
        Status = Status.DELETED,
        Created = 1700000000000,
        Digests = new HashSet<byte[]>(ThriftEquality.BinaryComparer) { new byte[] { 0x01, 0x02 } },
        ByDigest = new Dictionary<byte[], string>(ThriftEquality.BinaryComparer) { [[0xAA]] = "aa" },
        Choice = new Choice { Words = ["x", "y"] },
        Flags = [true, false],
        Anchor = new Point { X = 5, Y = 6 },
        Score = 99.5,
    };

    public static Everything Minimal() => new() { Id = "min", Anchor = new Point { X = 0, Y = 0 } };

    public static Everything Optionals() => new()
    {
        Id = "opt",
        Big = 0,
        Created = -1,
        Score = 0.0,
        Flags = [],
        Digests = new HashSet<byte[]>(ThriftEquality.BinaryComparer),
        ByDigest = new Dictionary<byte[], string>(ThriftEquality.BinaryComparer),
        Choice = new Choice { Number = -9 },
        Anchor = new Point { X = -1, Y = 2 },
        Small = 0,
        Blob = [],
    };

    public static Everything Unicode() => new()
    {
        Id = "ünïcødé ✓",
        Anchor = new Point { X = int.MaxValue, Y = int.MinValue },
        Labels = [],
        Matrix = [[]],
        Ids = [],
    };

    /// <summary>In the order of the Python peer's samples.</summary>
    public static IThriftStruct[] All() =>
    [
        Full(),
        Minimal(),
        Optionals(),
        new Choice { Text = "t" },
        new Choice { Number = 1L << 62 },
        new Choice { Point = new Point { X = 1, Y = 2 } },
        new Choice { Words = [] },
        new Defaults(),
        new NotFound { Message_ = "gone" },
        new Invalid { Reason = "bad", Fields = ["a", "b"] },
        Unicode(),
    ];
}
