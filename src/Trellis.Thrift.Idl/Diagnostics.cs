namespace Trellis.Thrift.Idl;

/// <summary>A position in an IDL file: 1-based line and column.</summary>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

public enum DiagnosticSeverity
{
    Warning,
    Error,
}

/// <summary>An error or warning about an IDL file, with where it is and what is wrong.</summary>
public sealed record Diagnostic(DiagnosticSeverity Severity, string Code, SourceLocation Location, string Message)
{
    public bool IsError => Severity == DiagnosticSeverity.Error;

    /// <summary>The MSBuild/compiler format: <c>file(line,col): error TRL0001: message</c>.</summary>
    public override string ToString() =>
        $"{Location.File}({Location.Line},{Location.Column}): {(IsError ? "error" : "warning")} {Code}: {Message}";
}

/// <summary>Collects diagnostics; compilation goes on after an error so several are reported at once.</summary>
public sealed class DiagnosticBag
{
    private readonly List<Diagnostic> _items = [];

    public IReadOnlyList<Diagnostic> Items => _items;

    public bool HasErrors => _items.Exists(d => d.IsError);

    public void Error(string code, SourceLocation at, string message) => _items.Add(new Diagnostic(DiagnosticSeverity.Error, code, at, message));

    public void Warning(string code, SourceLocation at, string message) => _items.Add(new Diagnostic(DiagnosticSeverity.Warning, code, at, message));
}

/// <summary>The diagnostic codes: stable, so builds can suppress or grep them.</summary>
public static class Codes
{
    public const string Syntax = "TRL0001";
    public const string UnterminatedString = "TRL0002";
    public const string UnterminatedComment = "TRL0003";
    public const string BadNumber = "TRL0004";
    public const string UnexpectedCharacter = "TRL0005";
    public const string IncludeNotFound = "TRL0010";
    public const string IncludeCycle = "TRL0011";
    public const string DuplicateDefinition = "TRL0020";
    public const string UndefinedType = "TRL0021";
    public const string UndefinedConstant = "TRL0022";
    public const string DuplicateFieldId = "TRL0023";
    public const string DuplicateFieldName = "TRL0024";
    public const string BadFieldId = "TRL0025";
    public const string ImplicitFieldId = "TRL0026";
    public const string BadConstValue = "TRL0027";
    public const string DuplicateEnumValue = "TRL0028";
    public const string BadEnumValue = "TRL0029";
    public const string NotAnException = "TRL0030";
    public const string BadOneway = "TRL0031";
    public const string BadExtends = "TRL0032";
    public const string DuplicateMethod = "TRL0033";
    public const string BadUnion = "TRL0034";
    public const string TypedefCycle = "TRL0036";
    public const string Deprecated = "TRL0039";
}
