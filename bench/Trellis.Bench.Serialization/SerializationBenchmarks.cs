using System.Buffers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Google.Protobuf;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;
using ThriftOrder = Trellis.Bench.Serialization.ThriftModel.Order;
using ProtoOrder = Trellis.Bench.Serialization.ProtoModel.Order;

namespace Trellis.Bench.Serialization;

/// <summary>
/// One order (100 items, 10 attributes, 16-byte token) encoded and decoded with Google.Protobuf
/// and with Trellis's Thrift binary and compact protocols. Rows are grouped by category and each
/// row's Ratio is against the protobuf row of its category.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class SerializationBenchmarks : IDisposable
{
    public const string Encode = "Encode";
    public const string Decode = "Decode";

    private readonly ArrayBufferWriter<byte> _protoBuffer = new(16 * 1024);
    private readonly PooledBufferWriter _thriftBuffer = new(16 * 1024);

    private Fixture? _fixture;
    private ThriftOrder _thriftOrder = null!;
    private ProtoOrder _protoOrder = null!;
    private byte[] _protoBytes = [];
    private byte[] _thriftBinaryBytes = [];
    private byte[] _thriftCompactBytes = [];

    /// <summary>The verified inputs; available after <see cref="Setup"/>.</summary>
    public Fixture Fixture => _fixture ?? throw new InvalidOperationException("Setup has not run");

    [GlobalSetup]
    public void Setup()
    {
        var fixture = Fixture.CreateVerified();
        _fixture = fixture;
        _thriftOrder = fixture.Thrift;
        _protoOrder = fixture.Proto;
        _protoBytes = fixture.ProtoBytes;
        _thriftBinaryBytes = fixture.ThriftBinaryBytes;
        _thriftCompactBytes = fixture.ThriftCompactBytes;
        Console.WriteLine(fixture.Sizes);
    }

    [BenchmarkCategory(Encode)]
    [Benchmark(Baseline = true)]
    public int Protobuf_Encode()
    {
        var buffer = _protoBuffer;
        buffer.ResetWrittenCount();
        _protoOrder.WriteTo(buffer);
        return buffer.WrittenCount;
    }

    [BenchmarkCategory(Encode)]
    [Benchmark]
    public int Thrift_Binary_Encode()
    {
        var buffer = _thriftBuffer;
        buffer.Clear();
        var writer = new ThriftBinaryWriter(buffer);
        _thriftOrder.Write(ref writer);
        writer.Flush();
        return buffer.WrittenCount;
    }

    [BenchmarkCategory(Encode)]
    [Benchmark]
    public int Thrift_Compact_Encode()
    {
        var buffer = _thriftBuffer;
        buffer.Clear();
        var writer = new ThriftCompactWriter(buffer);
        _thriftOrder.Write(ref writer);
        writer.Flush();
        return buffer.WrittenCount;
    }

    [BenchmarkCategory(Decode)]
    [Benchmark(Baseline = true)]
    public ProtoOrder Protobuf_Decode() => ProtoOrder.Parser.ParseFrom(new ReadOnlySpan<byte>(_protoBytes));

    [BenchmarkCategory(Decode)]
    [Benchmark]
    public ThriftOrder Thrift_Binary_Decode()
    {
        var order = new ThriftOrder();
        var reader = new ThriftBinaryReader(_thriftBinaryBytes);
        order.Read(ref reader);
        return order;
    }

    [BenchmarkCategory(Decode)]
    [Benchmark]
    public ThriftOrder Thrift_Compact_Decode()
    {
        var order = new ThriftOrder();
        var reader = new ThriftCompactReader(_thriftCompactBytes);
        order.Read(ref reader);
        return order;
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _thriftBuffer.Dispose();
        }
    }
}
