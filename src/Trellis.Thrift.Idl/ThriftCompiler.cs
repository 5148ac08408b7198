using Trellis.Thrift.Idl.Semantics;

namespace Trellis.Thrift.Idl;

/// <summary>The compiler's entry point: files in, a checked program (and its diagnostics) out.</summary>
public static class ThriftCompiler
{
    public static ThriftProgram Load(IEnumerable<string> entryPaths, IThriftFileSource source, IReadOnlyList<string>? includeDirectories = null)
    {
        var diagnostics = new DiagnosticBag();
        return new Binder(source, includeDirectories ?? [], diagnostics).Bind(entryPaths);
    }

    /// <summary>A full path with <c>.</c> and <c>..</c> resolved and one kind of separator.</summary>
    public static string NormalizePath(string path) => Path.GetFullPath(path).Replace('\\', '/');
}
