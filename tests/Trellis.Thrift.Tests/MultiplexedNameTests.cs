using System.Text;

namespace Trellis.Thrift.Tests;

public class MultiplexedNameTests
{
    [Theory]
    [InlineData("echo", null, "echo")]
    [InlineData("Calculator:add", "Calculator", "add")]
    public void TryParse_SplitsServiceAndMethod(string name, string? service, string method)
    {
        Assert.True(MultiplexedName.TryParse(name, out var s, out var m, out var error));
        Assert.Equal(service, s);
        Assert.Equal(method, m);
        Assert.Null(error);
    }

    [Theory]
    [InlineData("svc:")]
    [InlineData(":method")]
    [InlineData("a:b:c")]
    [InlineData(":")]
    [InlineData("")]
    public void TryParse_RejectsMalformedNames_WithAClearError(string name)
    {
        Assert.False(MultiplexedName.TryParse(name, out _, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void ErrorsEchoAtMost256BytesOfTheName_NeverSplittingACharacter()
    {
        var huge = "svc:" + string.Concat(Enumerable.Repeat("é😀", 10_000)) + ":x";
        Assert.False(MultiplexedName.TryParse(huge, out _, out _, out var error));
        Assert.True(error!.Length < 400);
        var echoed = MultiplexedName.ForEcho(huge);
        Assert.True(Encoding.UTF8.GetByteCount(echoed) <= MultiplexedName.MaxEchoBytes);
        Assert.DoesNotContain('\uFFFD', Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(echoed)));
        Assert.EndsWith("...", echoed);
        Assert.Equal("short", MultiplexedName.ForEcho("short"));
    }

    [Fact]
    public void Combine_JoinsAndRefusesSeparatorsInParts()
    {
        Assert.Equal("Svc:m", MultiplexedName.Combine("Svc", "m"));
        Assert.Throws<ArgumentException>(() => MultiplexedName.Combine("a:b", "m"));
        Assert.Throws<ArgumentException>(() => MultiplexedName.Combine("a", ""));
    }
}
