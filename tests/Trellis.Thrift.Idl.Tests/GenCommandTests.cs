using System.Diagnostics;
using Trellis.Cli;
using Trellis.Thrift.Idl.Emit;

namespace Trellis.Thrift.Idl.Tests;

/// <summary><c>trellis gen</c>: the command-line front end over the same emitter.</summary>
public sealed class GenCommandTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "trellis-gen-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_out))
        {
            Directory.Delete(_out, recursive: true);
        }
    }

    [Fact]
    public void Gen_WritesOneFilePerIdlFile_WhatTheSourceGeneratorEmits()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = GenCommand.Run([Path.Combine(Idl.IdlDirectory, "features.thrift")], _out, [], stdout, stderr);
        Assert.Equal(0, code);
        Assert.Equal(["features.thrift.g.cs", "shared.thrift.g.cs"], Directory.GetFiles(_out).Select(Path.GetFileName).Order());
        var program = Idl.CompileTestIdl("features.thrift");
        foreach (var file in program.Files)
        {
            Assert.Equal(CSharpEmitter.Emit(file), File.ReadAllText(Path.Combine(_out, CSharpEmitter.OutputFileName(file))));
        }
        Assert.Equal("", stderr.ToString());
    }

    [Fact]
    public void Gen_ReportsErrorsInCompilerFormat_AndWritesNothing()
    {
        var idl = Path.Combine(_out, "in", "bad.thrift");
        Directory.CreateDirectory(Path.GetDirectoryName(idl)!);
        File.WriteAllText(idl, "struct S {\n  1: Nope n\n  2: i32 x = \"no\"\n}\n");
        var stderr = new StringWriter();
        var code = GenCommand.Run([idl], Path.Combine(_out, "gen"), [], TextWriter.Null, stderr);
        Assert.Equal(1, code);
        var lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l == $"{idl}(2,6): error TRL0021: undefined type 'Nope'");
        Assert.Contains(lines, l => l.StartsWith($"{idl}(3,14): error TRL0027", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(_out, "gen")));
    }

    [Fact]
    public void Gen_FindsIncludesInIncludeDirectories()
    {
        var main = Path.Combine(_out, "a", "main.thrift");
        var lib = Path.Combine(_out, "lib", "common.thrift");
        Directory.CreateDirectory(Path.GetDirectoryName(main)!);
        Directory.CreateDirectory(Path.GetDirectoryName(lib)!);
        File.WriteAllText(main, "include \"common.thrift\"\nstruct M { 1: common.C c }");
        File.WriteAllText(lib, "struct C { 1: i32 x }");
        Assert.Equal(1, GenCommand.Run([main], Path.Combine(_out, "gen"), [], TextWriter.Null, TextWriter.Null));
        Assert.Equal(0, GenCommand.Run([main], Path.Combine(_out, "gen"), [Path.GetDirectoryName(lib)!], TextWriter.Null, TextWriter.Null));
    }

    [Fact]
    public void TheTrellisExecutable_RunsGen()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "trellis.dll"), "gen", Path.Combine(Idl.IdlDirectory, "modern.thrift"), "-o", _out })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.True(process.ExitCode == 0, output);
        Assert.True(File.Exists(Path.Combine(_out, "modern.thrift.g.cs")));
    }
}
