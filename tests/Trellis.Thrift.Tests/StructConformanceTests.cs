using Trellis.Testing;
using Trellis.Thrift.Tests.Support;

namespace Trellis.Thrift.Tests;

/// <summary>
/// Struct bytes exchanged with Apache Thrift's Python runtime (pure Python and the C-accelerated
/// codec), in both directions, for every type and both protocols.
/// </summary>
public class StructConformanceTests
{
    public static TheoryData<string, bool> Codecs() => new()
    {
        { "binary", false }, { "binary", true }, { "compact", false }, { "compact", true },
    };

    private static ThriftProtocol Protocol(string name) => name == "binary" ? ThriftProtocol.Binary : ThriftProtocol.Compact;

    private static string[] Args(string mode, string protocol, bool accelerated, params string[] more) =>
        [mode, "--protocol", protocol, .. accelerated ? new[] { "--accelerated" } : [], .. more];

    [Theory]
    [MemberData(nameof(Codecs))]
    public void PythonSamples_DecodeToOurSamples_AndReencodeToTheSameBytes(string protocol, bool accelerated)
    {
        var records = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], Args("samples", protocol, accelerated)));
        var expected = Samples.All();
        Assert.Equal(expected.Length, records.Count);
        for (var i = 0; i < records.Count; i++)
        {
            var (status, python) = records[i];
            Assert.Equal(0, status);
            var decoded = Bytes.ReadStruct(python, Protocol(protocol));
            Assert.True(expected[i].Equals(decoded), $"sample {i}: expected {expected[i]}\nbut decoded {decoded}");
            Assert.Equal(Bytes.ToHex(python), Bytes.ToHex(Bytes.Write(decoded, Protocol(protocol))));
        }
    }

    [Theory]
    [InlineData("binary")]
    [InlineData("compact")]
    public void OurSamples_AreByteForByteWhatPythonWrites(string protocol)
    {
        var records = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples", "--protocol", protocol));
        // sample 2 holds multi-element sets, whose order is the writer's choice; the others are exact
        foreach (var i in new[] { 0, 1, 3 })
        {
            Assert.Equal(Bytes.ToHex(records[i].Payload), Bytes.ToHex(Bytes.Write(Samples.All()[i], Protocol(protocol))));
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void PythonDecodesOurSamples_AndRandomValues(string protocol, bool accelerated)
    {
        var p = Protocol(protocol);
        var values = Samples.All().Concat(Enumerable.Range(0, 150).Select(seed => new RandomValues(seed).Struct(ConformanceSchema.Everything))).ToList();
        var echoed = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok(PythonPeer.Records(values.Select(v => Bytes.Write(v, p))),
            Args("echo", protocol, accelerated, "--type", "Everything")));
        Assert.Equal(values.Count, echoed.Count);
        for (var i = 0; i < values.Count; i++)
        {
            Assert.True(echoed[i].Status == 0, $"value {i}: python failed: {System.Text.Encoding.UTF8.GetString(echoed[i].Payload)}");
            var back = Bytes.ReadStruct(echoed[i].Payload, p);
            Assert.True(values[i].Equals(back), $"value {i}: sent {values[i]}\nreturned {back}");
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void PythonSkipsEveryUnknownFieldWeWrite(string protocol, bool accelerated)
    {
        var p = Protocol(protocol);
        // pure Python skips unknown binaries as UTF-8 text (a python3-thrift 0.17 bug), so it gets text-valued ones
        var values = Enumerable.Range(1000, 60).Select(seed => new RandomValues(seed, utf8Binaries: !accelerated).Struct(ConformanceSchema.Extended)).ToList();
        var echoed = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok(PythonPeer.Records(values.Select(v => Bytes.Write(v, p))),
            Args("echo", protocol, accelerated, "--type", "Inner")));
        for (var i = 0; i < values.Count; i++)
        {
            Assert.Equal(0, echoed[i].Status);
            var known = new DynStruct();
            known.Fields.AddRange(values[i].Fields.Where(f => f.Id is 1 or 2));
            Assert.Equal(Bytes.ToHex(Bytes.Write(known, p)), Bytes.ToHex(echoed[i].Payload));
        }
    }

    [Theory]
    [InlineData("binary")]
    [InlineData("compact")]
    public void WeSkipEveryFieldPythonWrites_ThatWeDoNotKnow(string protocol)
    {
        var records = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok([], "samples", "--protocol", protocol));
        int?[] expected = [40, null, null, -1];
        for (var i = 0; i < records.Count; i++)
        {
            var far = ThriftSerializer.Deserialize<FarOnly>(records[i].Payload, Protocol(protocol));
            Assert.Equal(expected[i], far.Far);
        }
    }

    [Theory]
    [InlineData("binary")]
    [InlineData("compact")]
    public void PythonRejectsWhatItCannotRead_AndSoDoWe(string protocol)
    {
        // a struct cut short: both runtimes must refuse it
        var p = Protocol(protocol);
        var whole = Bytes.Write(Samples.Sample0(), p);
        var cut = whole[..(whole.Length / 2)];
        var echoed = PythonPeer.ParseRecords(PythonPeer.Conformance.Ok(PythonPeer.Records([cut]), "echo", "--protocol", protocol, "--type", "Everything"));
        Assert.Equal(1, echoed[0].Status);
        Assert.IsType<TProtocolException>(Record.Exception(() => Bytes.ReadStruct(cut, p)));
    }

    /// <summary>A reader that knows only Everything.far (id 40) and must skip all else.</summary>
    private sealed class FarOnly : IThriftStruct
    {
        public int? Far { get; private set; }

        public void Read<TReader>(ref TReader reader) where TReader : IThriftReader, allows ref struct
        {
            var scope = reader.ReadStructBegin();
            while (true)
            {
                var field = reader.ReadFieldBegin();
                if (field.IsStop)
                {
                    break;
                }

                if (field is { Id: 40, Type: TType.I32 })
                {
                    Far = reader.ReadI32();
                }
                else
                {
                    reader.Skip(field.Type);
                }
            }

            reader.ReadStructEnd(scope);
        }

        public void Write<TWriter>(ref TWriter writer) where TWriter : IThriftWriter, allows ref struct => throw new NotSupportedException();
    }
}
