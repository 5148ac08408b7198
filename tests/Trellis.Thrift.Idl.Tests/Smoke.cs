namespace Trellis.Thrift.Idl.Tests;

public class Smoke
{
    [Fact]
    public void GeneratedTypesExist()
    {
        var e = new Trellis.Tests.Features.Everything();
        Assert.Equal(42, e.Count);
    }
}
