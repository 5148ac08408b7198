extern alias generator;

using System.Collections.Immutable;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>The incremental source generator, driven the way the compiler drives it.</summary>
public class GeneratorTests
{
    private sealed class IdlText(string path, string text) : AdditionalText
    {
        public override string Path => path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text, Encoding.UTF8);
    }

    private sealed class Options(ImmutableHashSet<string> thriftPaths) : AnalyzerConfigOptionsProvider
    {
        public override AnalyzerConfigOptions GlobalOptions => Empty.Instance;
        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => Empty.Instance;
        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) =>
            thriftPaths.Contains(textFile.Path) ? Flagged.Instance : Empty.Instance;

        private sealed class Empty : AnalyzerConfigOptions
        {
            public static readonly Empty Instance = new();
            public override bool TryGetValue(string key, out string value) { value = ""; return false; }
        }

        private sealed class Flagged : AnalyzerConfigOptions
        {
            public static readonly Flagged Instance = new();
            public override bool TryGetValue(string key, out string value)
            {
                value = "true";
                return key == "build_metadata.AdditionalFiles.TrellisThrift";
            }
        }
    }

    private static (GeneratorDriverRunResult Result, GeneratorDriver Driver) Run((string Path, string Text)[] files, string[]? thrift = null, GeneratorDriver? previous = null)
    {
        var texts = files.Select(f => (AdditionalText)new IdlText(f.Path, f.Text)).ToImmutableArray();
        var flagged = (thrift ?? files.Select(f => f.Path).ToArray()).ToImmutableHashSet();
        var driver = previous?.ReplaceAdditionalTexts(texts) ?? CSharpGeneratorDriver.Create(
            [new generator::Trellis.Thrift.Generator.ThriftSourceGenerator().AsSourceGenerator()], texts, optionsProvider: new Options(flagged),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));
        var compilation = CSharpCompilation.Create("Consumer", [], [], new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        driver = driver.RunGenerators(compilation);
        return (driver.GetRunResult(), driver);
    }

    [Fact]
    public void IdlErrors_AreBuildErrors_AtTheIdlLocation()
    {
        var (result, _) = Run([("/p/bad.thrift", "struct S {\n  1: Nope n\n  1: i32 again\n}")]);
        var errors = result.Diagnostics.Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error).ToList();
        Assert.Equal(["TRL0021", "TRL0023"], errors.Select(d => d.Id).Order());
        var undefined = errors.Single(d => d.Id == "TRL0021");
        Assert.Equal("/p/bad.thrift", undefined.Location.GetLineSpan().Path);
        Assert.Equal(1, undefined.Location.GetLineSpan().StartLinePosition.Line);      // line 2, zero-based
        Assert.Equal(5, undefined.Location.GetLineSpan().StartLinePosition.Character); // column 6, zero-based
        Assert.Contains("undefined type 'Nope'", undefined.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Empty(result.GeneratedTrees);
    }

    [Fact]
    public void OnlyThriftFileItems_AreCompiled_AndIncludesComeFromThem()
    {
        var files = new[]
        {
            ("/p/main.thrift", "include \"types.thrift\"\nnamespace netstd P\nstruct M { 1: types.T t }"),
            ("/p/types.thrift", "namespace netstd P.Types\nstruct T { 1: i32 x }"),
            ("/p/notes.txt", "not idl"),
        };
        var (result, _) = Run(files, ["/p/main.thrift", "/p/types.thrift"]);
        Assert.Empty(result.Diagnostics);
        Assert.Equal(["main.thrift.g.cs", "types.thrift.g.cs"], result.Results.Single().GeneratedSources.Select(s => s.HintName).Order());

        // an include that is not an item is not read from disk: it is reported
        var (missing, _) = Run(files, ["/p/main.thrift"]);
        Assert.Contains(missing.Diagnostics, d => d.Id == "TRL0010");
    }

    [Fact]
    public void EditingAnIdlFile_RegeneratesItsCode()
    {
        var (first, driver) = Run([("/p/a.thrift", "struct A { 1: i32 x }")]);
        Assert.Contains("public int X", first.GeneratedTrees.Single().ToString());
        var (second, _) = Run([("/p/a.thrift", "struct A { 1: i64 renamed }")], previous: driver);
        var code = second.GeneratedTrees.Single().ToString();
        Assert.Contains("public long Renamed", code);
        Assert.DoesNotContain("public int X", code);
    }
}
