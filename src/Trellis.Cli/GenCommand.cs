using System.CommandLine;
using Trellis.Thrift.Idl;
using Trellis.Thrift.Idl.Emit;
using Trellis.Thrift.Idl.Semantics;

namespace Trellis.Cli;

/// <summary>
/// <c>trellis gen FILE... -o DIR</c>: the same compiler and emitter as the source generator, writing
/// one <c>.thrift.g.cs</c> per IDL file (included files too) for projects that check generated code in.
/// </summary>
internal static class GenCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "The .thrift files to compile (files they include are compiled too)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out", "-o") { Description = "Directory to write the .cs files to", DefaultValueFactory = _ => "." };
        var includes = new Option<string[]>("--include", "-I") { Description = "More directories to look for included files in", AllowMultipleArgumentsPerToken = false };
        var command = new Command("gen", "Generate C# from Thrift IDL") { files, output, includes };
        command.SetAction(result => Run(result.GetValue(files)!, result.GetValue(output)!, result.GetValue(includes) ?? [], Console.Out, Console.Error));
        return command;
    }

    /// <summary>Returns the process exit code: 0 written, 1 IDL errors (nothing written), 2 an output problem.</summary>
    public static int Run(IReadOnlyList<string> files, string outputDirectory, IReadOnlyList<string> includeDirectories, TextWriter stdout, TextWriter stderr)
    {
        var program = ThriftCompiler.Load(files, new DiskFileSource(), includeDirectories);
        foreach (var diagnostic in program.Diagnostics)
        {
            stderr.WriteLine(diagnostic.ToString());
        }

        if (program.HasErrors)
        {
            stderr.WriteLine($"{program.Diagnostics.Count(d => d.IsError)} error(s); nothing was written.");
            return 1;
        }

        try
        {
            Directory.CreateDirectory(outputDirectory);
            var taken = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in program.Files)
            {
                var name = CSharpEmitter.OutputFileName(file);
                if (!taken.Add(name))
                {
                    name = $"{file.Stem}.{taken.Count}.thrift.g.cs";
                    taken.Add(name);
                }

                var path = Path.Combine(outputDirectory, name);
                File.WriteAllText(path, CSharpEmitter.Emit(file));
                stdout.WriteLine($"wrote {path}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"cannot write to {outputDirectory}: {e.Message}");
            return 2;
        }

        return 0;
    }
}
