using Trellis.Rpc.Registry;

namespace Trellis.Rpc.Tests;

/// <summary>Parsed records share their repeated texts and tag sets (a proxy holds thousands), and say the same as before.</summary>
public sealed class ServiceInstanceParseTests
{
    private static ServiceInstance Record(string id, Dictionary<string, string> tags) => new()
    {
        Product = "shop",
        Service = "cart",
        InstanceId = id,
        Host = "10.0.0.7",
        Port = 9090,
        Version = "2.1.0",
        Tags = tags,
    };

    [Fact]
    public void Equal_texts_and_tag_sets_of_two_records_are_one_object()
    {
        var a = ServiceInstance.TryParse(Record("a", new() { ["build"] = "b1", ["zone"] = "eu" }).ToJson())!;
        var b = ServiceInstance.TryParse(Record("b", new() { ["zone"] = "eu", ["build"] = "b1" }).ToJson())!; // other order, same set

        Assert.Same(a.Host, b.Host);
        Assert.Same(a.Product, b.Product);
        Assert.Same(a.Version, b.Version);
        Assert.Same(a.Protocol, b.Protocol);
        Assert.Same(a.Tags, b.Tags);
        Assert.Equal("b1", b.Tags["build"]);
        Assert.Equal("eu", b.Tags["zone"]);
    }

    [Fact]
    public void Different_tag_sets_stay_apart_and_a_record_reads_back_as_written()
    {
        // length-prefixed keys: ("a:1", "2") and ("a", "1:2")-like sets never share
        var one = ServiceInstance.TryParse(Record("a", new() { ["k"] = "v1:x", ["l"] = "" }).ToJson())!;
        var two = ServiceInstance.TryParse(Record("b", new() { ["k"] = "v1", ["l"] = "x" }).ToJson())!;
        Assert.NotSame(one.Tags, two.Tags);
        Assert.Equal("v1:x", one.Tags["k"]);
        Assert.Equal("x", two.Tags["l"]);

        var original = Record("c", new() { ["build"] = "b1" });
        var parsed = ServiceInstance.TryParse(original.ToJson())!;
        Assert.Equal(original.ToJson(), parsed.ToJson());
        Assert.Empty(ServiceInstance.TryParse(Record("d", new()).ToJson())!.Tags);
    }
}
