using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using Trellis.Thrift.Idl;
using Trellis.Thrift.Idl.Emit;
using Trellis.Thrift.Idl.Semantics;

namespace Trellis.Thrift.Generator;

/// <summary>
/// Generates C# for the project's <c>&lt;ThriftFile&gt;</c> items. Any edit to one of them reruns the
/// compiler over all of them (includes cross files); unchanged text is cached by Roslyn. IDL errors are
/// build errors at the IDL's file, line and column.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ThriftSourceGenerator : IIncrementalGenerator
{
    private const string MetadataKey = "build_metadata.AdditionalFiles.TrellisThrift";

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var files = context.AdditionalTextsProvider
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Where(pair => pair.Right.GetOptions(pair.Left).TryGetValue(MetadataKey, out var flag) &&
                           string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase))
            .Select((pair, cancellationToken) => new IdlFile(pair.Left.Path, pair.Left.GetText(cancellationToken)?.ToString() ?? ""))
            .Collect();

        context.RegisterSourceOutput(files, Generate);
    }

    private static void Generate(SourceProductionContext context, ImmutableArray<IdlFile> files)
    {
        if (files.IsEmpty)
        {
            return;
        }

        var source = new MemoryFileSource(files.Select(f => new KeyValuePair<string, string>(f.Path, f.Text)));
        var program = ThriftCompiler.Load(files.Select(f => f.Path), source);
        foreach (var d in program.Diagnostics)
        {
            context.ReportDiagnostic(ToRoslyn(d));
        }

        if (program.HasErrors)
        {
            return;
        }

        var stems = program.Files.GroupBy(f => f.Stem).Where(g => g.Count() > 1).Select(g => g.Key).ToImmutableHashSet();
        foreach (var file in program.Files)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            var hint = stems.Contains(file.Stem) ? $"{file.Stem}.{ShortHash(file.Path)}.thrift.g.cs" : CSharpEmitter.OutputFileName(file);
            context.AddSource(hint, SourceText.From(CSharpEmitter.Emit(file), Encoding.UTF8));
        }
    }

    private static Microsoft.CodeAnalysis.Diagnostic ToRoslyn(Idl.Diagnostic d)
    {
        var descriptor = new DiagnosticDescriptor(d.Code, "Thrift IDL", "{0}", "Trellis.Thrift",
            d.IsError ? Microsoft.CodeAnalysis.DiagnosticSeverity.Error : Microsoft.CodeAnalysis.DiagnosticSeverity.Warning, isEnabledByDefault: true);
        var position = new LinePosition(Math.Max(0, d.Location.Line - 1), Math.Max(0, d.Location.Column - 1));
        var location = Location.Create(d.Location.File, new TextSpan(0, 0), new LinePositionSpan(position, position));
        return Microsoft.CodeAnalysis.Diagnostic.Create(descriptor, location, d.Message);
    }

    private static string ShortHash(string text)
    {
        using var sha = SHA256.Create();
        var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(text));
        return string.Concat(hash.Take(4).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    private sealed record IdlFile(string Path, string Text);
}
