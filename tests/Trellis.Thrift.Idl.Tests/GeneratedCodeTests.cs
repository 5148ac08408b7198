using Trellis.Tests.Features;
using Trellis.Tests.Modern;
using Trellis.Tests.Shared;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>What the generated C# does: read/write, requiredness, isset, unions, defaults, equality, constants.</summary>
public class GeneratedCodeTests
{
    private static readonly ThriftProtocol[] Protocols = [ThriftProtocol.Binary, ThriftProtocol.Compact];

    private static T RoundTrip<T>(T value, ThriftProtocol protocol) where T : IThriftStruct, new() =>
        ThriftSerializer.Deserialize<T>(ThriftSerializer.Serialize(value, protocol), protocol);

    [Fact]
    public void EverySample_RoundTripsEqual_InBothProtocols()
    {
        foreach (var protocol in Protocols)
        {
            foreach (var sample in FeatureSamples.All())
            {
                var bytes = ThriftSerializer.Serialize(sample, protocol);
                var copy = (IThriftStruct)Activator.CreateInstance(sample.GetType())!;
                ThriftSerializer.DeserializeInto(copy, bytes, protocol);
                Assert.Equal(sample, copy);
                Assert.Equal(sample.GetHashCode(), copy.GetHashCode());
                Assert.Equal(Convert.ToHexString(bytes), Convert.ToHexString(ThriftSerializer.Serialize(copy, protocol)));
            }
        }
    }

    [Fact]
    public void UnknownAndMistypedFields_AreSkipped()
    {
        foreach (var protocol in Protocols)
        {
            // Everything's field 1 is a string like Choice.text; 2, 3 and 4 have other types in Choice: skipped
            var choice = ThriftSerializer.Deserialize<Choice>(ThriftSerializer.Serialize(new Everything { Id = "x", Nickname = "n", Anchor = new Point() }, protocol), protocol);
            Assert.Equal(new Choice { Text = "x" }, choice);

            // a Point read from a NotFound: no field in common, and both required fields missing
            var error = Assert.IsType<TProtocolException>(Record.Exception(() =>
                ThriftSerializer.Deserialize<Point>(ThriftSerializer.Serialize(new NotFound { Message_ = "m" }, protocol), protocol)));
            Assert.Contains("required field 'x' of Point is missing", error.Message);
        }
    }

    [Fact]
    public void RequiredFields_MustBeSetToWrite()
    {
        var missing = new Everything { Id = null!, Anchor = new Point() };
        var error = Assert.IsType<TProtocolException>(Record.Exception(() => ThriftSerializer.Serialize(missing)));
        Assert.Contains("required field 'id' of Everything is null", error.Message);
        Assert.NotNull(new Everything().Anchor); // a required struct starts built, a required string empty
        Assert.Equal("", new Everything().Id);
    }

    [Fact]
    public void Unions_HoldExactlyOneField()
    {
        Assert.Throws<TProtocolException>(() => ThriftSerializer.Serialize(new Choice()));
        Assert.Throws<TProtocolException>(() => ThriftSerializer.Serialize(new Choice { Text = "a", Number = 1 }));
        var two = ThriftSerializer.Serialize(new Everything { Id = "a", Anchor = new Point() }); // fields 1 and 23: only 1 is Choice's
        Assert.Equal("a", ThriftSerializer.Deserialize<Choice>(two).Text);
        var both = ThriftSerializer.Serialize(new Defaults()); // Defaults' 1: list<i32> ≠ Choice's 1: string; 4: string ≠ list<string>
        Assert.Throws<TProtocolException>(() => ThriftSerializer.Deserialize<Choice>(ThriftSerializer.Serialize(new TwoFields())));
    }

    /// <summary>A struct with Choice's field 1 (string) and 2 (i64) both set.</summary>
    private sealed class TwoFields : IThriftWritable
    {
        public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct
        {
            var scope = writer.WriteStructBegin();
            writer.WriteFieldBegin(TType.String, 1);
            writer.WriteString("a");
            writer.WriteFieldBegin(TType.I64, 2);
            writer.WriteI64(2);
            writer.WriteFieldStop();
            writer.WriteStructEnd(scope);
        }
    }

    [Fact]
    public void DefaultRequirednessValueFields_AreWrittenOnlyOnceSet()
    {
        var e = new Everything();
        Assert.False(e.IsSetSmall);
        Assert.True(e.IsSetCount); // IDL default 42
        Assert.Equal(42, e.Count);
        e.Small = 0;
        Assert.True(e.IsSetSmall);
        e.UnsetCount();
        Assert.False(e.IsSetCount);

        var back = RoundTrip(e, ThriftProtocol.Compact);
        Assert.True(back.IsSetSmall);
        Assert.Equal(0, back.Small);
        Assert.True(back.IsSetCount); // not on the wire: the reader's fresh object keeps the IDL default, as in Apache's runtimes
        Assert.Equal(42, back.Count);

        Assert.NotEqual(new Everything { Small = 0 }, new Everything()); // set to 0 differs from unset
    }

    [Fact]
    public void UnsetFields_AreAbsentFromTheWire()
    {
        var e = new Everything { Id = "x", Anchor = new Point() };
        e.UnsetCount();
        var fields = ThriftSerializer.Deserialize<FieldIds>(ThriftSerializer.Serialize(e, ThriftProtocol.Compact), ThriftProtocol.Compact);
        Assert.DoesNotContain((short)4, fields.Ids);   // count: unset
        Assert.DoesNotContain((short)8, fields.Ids);   // small: never set
        Assert.DoesNotContain((short)2, fields.Ids);   // nickname: null
        Assert.Contains((short)6, fields.Ids);         // flag: IDL default
    }

    /// <summary>Collects the field ids present in a struct.</summary>
    private sealed class FieldIds : IThriftStruct
    {
        public List<short> Ids { get; } = [];

        public void Read<TReader>(ref TReader reader) where TReader : IThriftReader, allows ref struct
        {
            var scope = reader.ReadStructBegin();
            for (var f = reader.ReadFieldBegin(); !f.IsStop; f = reader.ReadFieldBegin())
            {
                Ids.Add(f.Id);
                reader.Skip(f.Type);
            }

            reader.ReadStructEnd(scope);
        }

        public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct => throw new NotSupportedException();
    }

    [Fact]
    public void IdlDefaultsAndConstants_HaveTheirValues()
    {
        var d = new Defaults();
        Assert.Equal([2, 3, 5, 7], d.Primes!);
        Assert.Equal(1000, d.Limits!["large"]);
        Assert.Equal(new Point { X = 0, Y = 0 }, d.Origin);
        Assert.Equal("hello \"thrift\"", d.Greeting);
        Assert.Equal(7, d.Maybe);
        Assert.True(d.Colors!.SetEquals(["red", "green"]));
        Assert.Equal(Status.ACTIVE, d.Status);

        Assert.Equal(3.14159, FeaturesConstants.PI);
        Assert.Equal(100, FeaturesConstants.LIMIT);
        Assert.Equal(100, SharedConstants.MAX_POINTS);
        Assert.Equal(0L, FeaturesConstants.EPOCH);
        Assert.Equal(Status.ACTIVE, FeaturesConstants.DEFAULT_STATUS);
        Assert.Equal(2, FeaturesConstants.COLORS.Count);
        Assert.Equal(new Point { X = 0, Y = 0 }, FeaturesConstants.ORIGIN);

        var e = new Everything();
        Assert.Equal("none", e.Note);
        Assert.True(e.Flag);
        Assert.Equal(-5, e.Tiny);
        Assert.Equal(0.5, e.Ratio);
        Assert.Equal(Status.SUSPENDED, e.Status);
    }

    [Fact]
    public void Equality_IsByContent_SetsAndMapsInAnyOrder()
    {
        var a = FeatureSamples.Full();
        var b = FeatureSamples.Full();
        b.Ids = [3, 1, 2];
        b.Labels = new() { ["team"] = "core", ["env"] = "prod" };
        b.Blob = [0x00, 0x01, 0xFE, 0xFF];
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        b.Matrix![2][0] = "changed";
        Assert.NotEqual(a, b);
        b = FeatureSamples.Full();
        b.Digests = new HashSet<byte[]>(ThriftEquality.BinaryComparer) { new byte[] { 0x01, 0x03 } };
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void ToString_ShowsFieldsWithTheirIdlNames()
    {
        var text = FeatureSamples.Full().ToString();
        Assert.StartsWith("Everything(id: \"e-1\", nickname: \"nick\"", text);
        Assert.Contains("blob: 0x0001FEFF", text);
        Assert.Contains("choice: Choice(words: [\"x\", \"y\"])", text);
        Assert.Equal("Everything(id: \"min\", note: \"none\", count: 42, flag: true, tiny: -5, ratio: 0.5, status: SUSPENDED, anchor: Point(x: 0, y: 0))", FeatureSamples.Minimal().ToString());
    }

    [Fact]
    public void Exceptions_AreTExceptions_WithAUsefulMessage()
    {
        var notFound = new NotFound { Message_ = "gone" };
        Assert.IsAssignableFrom<TException>(notFound);
        Assert.Equal("gone", notFound.Message);
        Assert.Equal(404, notFound.Code);
        Assert.Equal("Invalid(reason: \"bad\", fields: [\"a\", \"b\"])", new Invalid { Reason = "bad", Fields = ["a", "b"] }.Message);
    }

    [Fact]
    public void Keywords_AndClashingNames_AreEscaped()
    {
        var k = new Keywords { Class = "c", Event = 1, Keywords_ = "k", ToString_ = "t", Id = Guid.NewGuid(), Many = [Guid.Empty], Write_ = "w" };
        Assert.Equal(@event.@struct, k.Kind);
        foreach (var protocol in Protocols)
        {
            Assert.Equal(k, RoundTrip(k, protocol));
        }

        var failure = new Failure { Message_ = "m", Source_ = "s", Data_ = 3 };
        Assert.Equal("m", failure.Message);
        Assert.Equal(["namespace", "all"], @operator.Methods.All.Select(m => m.Name));
    }

    [Fact]
    public void MethodDescriptors_DescribeEveryMethod_InheritedIncluded()
    {
        Assert.Equal(["ping", "get", "put", "touch", "trace", "choose", "count"], Features.Methods.All.Select(m => m.Name));
        Assert.All(Features.Methods.All, m => Assert.Equal("Features", m.ServiceName));
        Assert.True(Features.Methods.Get.IsIdempotent);
        Assert.True(Features.Methods.Ping.IsIdempotent);
        Assert.False(Features.Methods.Put.IsIdempotent);
        Assert.True(Features.Methods.Touch.IsOneway);
        Assert.Null(Features.Methods.Touch.ResultType);
        Assert.Equal(typeof(Features.GetArgs), Features.Methods.Get.ArgumentsType);
        Assert.Equal(typeof(Features.GetResult), Features.Methods.Get.ResultType);
        Assert.Equal(typeof(BaseService.PingArgs), Features.Methods.Ping.ArgumentsType);
        Assert.Equal("Features:get", Features.Methods.Get.MultiplexedName);
        Assert.Equal("1", Features.Methods.Get.Annotations["idempotent"]);
    }

    public static TheoryData<ThriftFraming, ThriftProtocol, bool> Channels()
    {
        var data = new TheoryData<ThriftFraming, ThriftProtocol, bool>();
        foreach (var framing in Enum.GetValues<ThriftFraming>())
        {
            foreach (var protocol in Protocols)
            {
                data.Add(framing, protocol, framing == ThriftFraming.Framed);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Channels))]
    public async Task ClientAndDispatcher_CallEveryMethod_ThroughRealFrames(ThriftFraming framing, ThriftProtocol protocol, bool multiplexed)
    {
        var handler = new FeaturesHandler();
        var channel = new LoopbackChannel(new Features.Dispatcher(handler), new ThriftEncoding(framing, protocol), multiplexed);
        var client = new Features.Client(channel);

        Assert.Equal("pong", await client.PingAsync());
        var got = await client.GetAsync("e-1", true);
        Assert.Equal("deep", got.Nickname);
        Assert.Equal(FeatureSamples.Full().Path, got.Path);

        var notFound = await Assert.ThrowsAsync<NotFound>(() => client.GetAsync("missing", null));
        Assert.Equal("no missing", notFound.Message);
        var invalid = await Assert.ThrowsAsync<Invalid>(() => client.GetAsync("bad", false));
        Assert.Equal(["id"], invalid.Fields!);

        await client.PutAsync(FeatureSamples.Full());
        Assert.Equal("e-1", handler.Put!.Id);
        await Assert.ThrowsAsync<Invalid>(() => client.PutAsync(new Everything { Id = "", Anchor = new Point() }));

        await client.TouchAsync("e-1", 1700000000000);
        Assert.Equal(("e-1", 1700000000000L), handler.Touched);

        var trace = await client.TraceAsync([new Point { X = 1, Y = 2 }, new Point { X = 3, Y = 4 }], new() { ["k"] = "v" });
        Assert.Equal([new Point { X = 3, Y = 4 }, new Point { X = 1, Y = 2 }, new Point { X = 1, Y = 0 }], trace);
        Assert.Equal(new Choice { Point = new Point { X = 1, Y = 2 } }, await client.ChooseAsync(new Choice { Point = new Point { X = 1, Y = 2 } }));
        Assert.Equal(7, await client.CountAsync());

        handler.FailWith = new InvalidOperationException("handler bug");
        var crash = await Assert.ThrowsAsync<TApplicationException>(() => client.CountAsync());
        Assert.Equal(TApplicationExceptionType.InternalError, crash.Type);
        Assert.Equal(multiplexed ? "Features:count" : "count", channel.Wire[^1]);
    }

    [Fact]
    public async Task UnknownMethod_IsAnUnknownMethodApplicationException()
    {
        var channel = new LoopbackChannel(new Features.Dispatcher(new FeaturesHandler()), ThriftEncoding.FramedBinary, multiplexed: false);
        var stranger = new Trellis.Tests.Modern.@operator.Client(channel);
        var error = await Assert.ThrowsAsync<TApplicationException>(() => stranger.AllAsync());
        Assert.Equal(TApplicationExceptionType.UnknownMethod, error.Type);
    }

    internal sealed class FeaturesHandler : Features.IAsync
    {
        public Everything? Put { get; private set; }
        public (string?, long)? Touched { get; private set; }
        public Exception? FailWith { get; set; }

        public Task<string> PingAsync(CancellationToken cancellationToken = default) => Task.FromResult("pong");

        public Task<Everything> GetAsync(string? id, bool? deep, CancellationToken cancellationToken = default)
        {
            if (id == "missing") throw new NotFound { Message_ = "no missing" };
            if (id == "bad") throw new Invalid { Reason = "bad id", Fields = ["id"] };
            var e = FeatureSamples.Full();
            e.Id = id!;
            e.Nickname = deep == true ? "deep" : null;
            return Task.FromResult(e);
        }

        public Task PutAsync(Everything? value, CancellationToken cancellationToken = default)
        {
            if (value!.Id == "") throw new Invalid { Reason = "empty id" };
            Put = value;
            return Task.CompletedTask;
        }

        public Task TouchAsync(string? id, long at, CancellationToken cancellationToken = default)
        {
            Touched = (id, at);
            return Task.CompletedTask;
        }

        public Task<List<Point>> TraceAsync(List<Point>? path, Dictionary<string, string>? labels, CancellationToken cancellationToken = default)
        {
            var result = Enumerable.Reverse(path!).ToList();
            if (labels is { Count: > 0 }) result.Add(new Point { X = labels.Count, Y = 0 });
            return Task.FromResult(result);
        }

        public Task<Choice> ChooseAsync(Choice? choice, CancellationToken cancellationToken = default) => Task.FromResult(choice!);

        public Task<long> CountAsync(CancellationToken cancellationToken = default) =>
            FailWith is { } e ? Task.FromException<long>(e) : Task.FromResult(7L);
    }
}

/// <summary>The shapes of tricky.thrift: recursion, container keys, constant-named defaults.</summary>
public class TrickyShapesTests
{
    [Fact]
    public void RecursiveStructs_RoundTrip()
    {
        var tree = new Trellis.Tests.Tricky.Node
        {
            Value = 1,
            Next = new() { Value = 2, Next = new() { Value = 3 } },
            Children = [new() { Value = 4, Children = [] }],
        };
        foreach (var protocol in new[] { ThriftProtocol.Binary, ThriftProtocol.Compact })
        {
            Assert.Equal(tree, ThriftSerializer.Deserialize<Trellis.Tests.Tricky.Node>(ThriftSerializer.Serialize(tree, protocol), protocol));
        }
    }

    [Fact]
    public void ContainersAndBinariesAsKeys_CompareByContent()
    {
        var keys = new Trellis.Tests.Tricky.Keys
        {
            Weird = new(ThriftEquality.DeepComparer<List<int>>()) { [[1, 2]] = new HashSet<byte[]>(ThriftEquality.BinaryComparer) { new byte[] { 1 } } },
            Nested = new(ThriftEquality.DeepComparer<HashSet<string>>()) { new HashSet<string> { "a" } },
            Digests = { new byte[] { 9 } },
        };
        Assert.False(keys.Digests.Add([9])); // the generated default set compares binaries by content
        var back = ThriftSerializer.Deserialize<Trellis.Tests.Tricky.Keys>(ThriftSerializer.Serialize(keys, ThriftProtocol.Compact), ThriftProtocol.Compact);
        Assert.Equal(keys, back);
        Assert.True(back.Weird!.ContainsKey([1, 2]));
        Assert.Contains([1], back.Weird[[1, 2]]);
    }

    [Fact]
    public void DefaultsThatNameConstants_TakeTheConstantsValues()
    {
        var d = new Trellis.Tests.Tricky.FromConstants();
        Assert.Equal([2, 3], d.Primes!);
        Assert.Equal(0, d.Root!.Value);
        Assert.Equal(Trellis.Tests.Tricky.Level.HIGH, d.Level);
        Assert.Equal("x", d.Deep!["a"][0][1]);
        Assert.Equal(2, Trellis.Tests.Tricky.TrickyConstants.NODES[0].Children![0].Value);
    }

    [Fact]
    public void RequiredCycles_StartNull_AndEmptyTypesWork()
    {
        Assert.Null(new Trellis.Tests.Tricky.A().B); // A requires B requires A: cannot be built eagerly
        Assert.Equal("NoFields()", ThriftSerializer.Deserialize<Trellis.Tests.Tricky.NoFields>(ThriftSerializer.Serialize(new Trellis.Tests.Tricky.NoFields())).ToString());
        Assert.Throws<TProtocolException>(() => ThriftSerializer.Serialize(new Trellis.Tests.Tricky.Nothing()));
        Assert.Equal(["nothing"], Trellis.Tests.Tricky.Child.Methods.All.Select(m => m.Name));
    }
}
