using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Trellis.Thrift.Idl.Emit;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>
/// The emitted C# is pinned by snapshots (review a change with TRELLIS_UPDATE_SNAPSHOTS=1 and git diff),
/// and compiled with Roslyn, warnings included, outside the source generator.
/// </summary>
public class SnapshotTests
{
    public static TheoryData<string> IdlFiles() => new() { "features.thrift", "shared.thrift", "modern.thrift", "tricky.thrift" };

    private static string Emitted(string name)
    {
        var program = Idl.CompileTestIdl(name);
        Assert.Empty(program.Errors());
        return CSharpEmitter.Emit(program.Files.Single(f => Path.GetFileName(f.Path) == name));
    }

    private static string SnapshotDirectory([CallerFilePath] string here = "") => Path.Combine(Path.GetDirectoryName(here)!, "snapshots");

    [Theory]
    [MemberData(nameof(IdlFiles))]
    public void EmittedCode_MatchesItsSnapshot(string name)
    {
        var code = Emitted(name);
        var path = Path.Combine(SnapshotDirectory(), name + ".cs.snapshot");
        if (Environment.GetEnvironmentVariable("TRELLIS_UPDATE_SNAPSHOTS") == "1")
        {
            Directory.CreateDirectory(SnapshotDirectory());
            File.WriteAllText(path, code);
        }

        Assert.True(File.Exists(path), $"no snapshot at {path}: run the tests with TRELLIS_UPDATE_SNAPSHOTS=1 and review it");
        var expected = File.ReadAllText(path).Split('\n');
        var actual = code.Split('\n');
        for (var i = 0; i < Math.Min(expected.Length, actual.Length); i++)
        {
            if (expected[i] != actual[i])
            {
                File.WriteAllText(path + ".received", code);
                Assert.Fail($"{name} differs from its snapshot at line {i + 1}:\n  snapshot: {expected[i]}\n  emitted:  {actual[i]}\n(the emitted file is at {path}.received)");
            }
        }

        Assert.Equal(expected.Length, actual.Length);
    }

    [Fact]
    public void EmittedCode_CompilesWithoutWarnings()
    {
        var trees = new[] { "features.thrift", "shared.thrift", "modern.thrift", "tricky.thrift" }.Select(name =>
            CSharpSyntaxTree.ParseText(Emitted(name), new CSharpParseOptions(LanguageVersion.Latest), path: name + ".cs"));
        // the framework and the runtime only: this test assembly holds the same types, generated
        var framework = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetDirectoryName(p) == framework);
        var references = platform.Append(typeof(IThriftStruct).Assembly.Location).Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("Emitted", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, warningLevel: 9999));
        var problems = compilation.GetDiagnostics().Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning).Select(d => d.ToString()).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
    }
}
