using Trellis.Thrift.Idl.Semantics;

namespace Trellis.Thrift.Idl.Tests;

internal static class Idl
{
    public const string Root = "/idl";

    /// <summary>Compiles in-memory files; the first is the entry point.</summary>
    public static ThriftProgram Compile(params (string Name, string Text)[] files) =>
        ThriftCompiler.Load([$"{Root}/{files[0].Name}"], new MemoryFileSource(files.Select(f => new KeyValuePair<string, string>($"{Root}/{f.Name}", f.Text))));

    public static ThriftProgram Compile(string text) => Compile(("main.thrift", text));

    public static string IdlDirectory => Path.Combine(AppContext.BaseDirectory, "idl");

    public static ThriftProgram CompileTestIdl(string name) =>
        ThriftCompiler.Load([Path.Combine(IdlDirectory, name)], new DiskFileSource());

    public static IEnumerable<string> Errors(this ThriftProgram program) =>
        program.Diagnostics.Where(d => d.IsError).Select(d => $"{Path.GetFileName(d.Location.File)}:{d.Location.Line}:{d.Location.Column} {d.Code} {d.Message}");
}
