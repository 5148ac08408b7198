using Trellis.Thrift;
using Xunit;

namespace Trellis.Testing;

/// <summary>The wire combinations cross-language tests run over: every framing × protocol, with a third axis of the test's choosing.</summary>
internal static class EncodingMatrix
{
    /// <summary>(framing, protocol, flag): framed/unframed/header × binary/compact × false/true.</summary>
    public static TheoryData<string, string, bool> WithFlag()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var framing in new[] { "framed", "unframed", "header" })
        {
            foreach (var protocol in new[] { "binary", "compact" })
            {
                data.Add(framing, protocol, false);
                data.Add(framing, protocol, true);
            }
        }

        return data;
    }

    public static ThriftEncoding Encoding(string framing, string protocol) => new(
        framing switch { "framed" => ThriftFraming.Framed, "unframed" => ThriftFraming.Unframed, _ => ThriftFraming.Header },
        protocol == "binary" ? ThriftProtocol.Binary : ThriftProtocol.Compact);
}
