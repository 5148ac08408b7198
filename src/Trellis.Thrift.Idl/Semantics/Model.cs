using Trellis.Thrift.Idl.Syntax;

namespace Trellis.Thrift.Idl.Semantics;

/// <summary>A resolved type: typedefs are gone, names point at their definitions.</summary>
public abstract class ThriftType
{
    public abstract string Describe();

    public override string ToString() => Describe();
}

public enum BaseKind
{
    Bool,
    Byte,
    I16,
    I32,
    I64,
    Double,
    String,
    Binary,
    Uuid,
}

public sealed class BaseType : ThriftType
{
    private BaseType(BaseKind kind) => Kind = kind;

    public BaseKind Kind { get; }

    public static BaseType Of(BaseKind kind) => All[(int)kind];

    private static readonly BaseType[] All = Enum.GetValues(typeof(BaseKind)).Cast<BaseKind>().Select(k => new BaseType(k)).ToArray();

    public override string Describe() => Kind.ToString().ToLowerInvariant();
}

public sealed class ListType(ThriftType element) : ThriftType
{
    public ThriftType Element { get; } = element;
    public override string Describe() => $"list<{Element.Describe()}>";
}

public sealed class SetType(ThriftType element) : ThriftType
{
    public ThriftType Element { get; } = element;
    public override string Describe() => $"set<{Element.Describe()}>";
}

public sealed class MapType(ThriftType key, ThriftType value) : ThriftType
{
    public ThriftType Key { get; } = key;
    public ThriftType Value { get; } = value;
    public override string Describe() => $"map<{Key.Describe()},{Value.Describe()}>";
}

public sealed class EnumType(EnumSymbol symbol) : ThriftType
{
    public EnumSymbol Symbol { get; } = symbol;
    public override string Describe() => Symbol.Name;
}

public sealed class StructType(StructSymbol symbol) : ThriftType
{
    public StructSymbol Symbol { get; } = symbol;
    public override string Describe() => Symbol.Name;
}

/// <summary>A type whose name could not be resolved: an error was reported; it keeps checking going.</summary>
public sealed class ErrorType : ThriftType
{
    public static ErrorType Instance { get; } = new();
    public override string Describe() => "?";
}

/// <summary>One .thrift file, resolved.</summary>
public sealed class ThriftFile(string path, ThriftDocument document)
{
    public string Path { get; } = path;
    public ThriftDocument Document { get; } = document;

    /// <summary>The file name without extension: how other files refer to this one (<c>shared.Type</c>).</summary>
    public string Stem { get; } = System.IO.Path.GetFileNameWithoutExtension(path);

    /// <summary>The C# namespace: <c>netstd</c>, else <c>csharp</c>, else <c>*</c>; null for the global namespace.</summary>
    public string? Namespace { get; internal set; }

    public Dictionary<string, ThriftFile> Includes { get; } = new(StringComparer.Ordinal);
    public List<EnumSymbol> Enums { get; } = [];
    public List<StructSymbol> Structs { get; } = [];
    public List<ConstSymbol> Constants { get; } = [];
    public List<ServiceSymbol> Services { get; } = [];
    internal Dictionary<string, object> Symbols { get; } = new(StringComparer.Ordinal);
    internal Dictionary<string, TypedefDefinition> Typedefs { get; } = new(StringComparer.Ordinal);
}

public sealed record EnumMemberSymbol(string Name, int Value, string? Doc);

public sealed class EnumSymbol(ThriftFile file, EnumDefinition definition)
{
    public ThriftFile File { get; } = file;
    public EnumDefinition Definition { get; } = definition;
    public string Name => Definition.Name;
    public List<EnumMemberSymbol> Members { get; } = [];
}

public sealed class FieldSymbol(FieldDefinition definition, short id, ThriftType type, Requiredness requiredness)
{
    public FieldDefinition Definition { get; } = definition;
    public short Id { get; } = id;
    public string Name => Definition.Name;
    public ThriftType Type { get; } = type;
    public Requiredness Requiredness { get; } = requiredness;
    public ConstantValue? Default { get; internal set; }
}

public sealed class StructSymbol(ThriftFile file, StructDefinition definition)
{
    public ThriftFile File { get; } = file;
    public StructDefinition Definition { get; } = definition;
    public string Name => Definition.Name;
    public StructKind Kind => Definition.Kind;
    public List<FieldSymbol> Fields { get; } = [];
}

public sealed class ConstSymbol(ThriftFile file, ConstDefinition definition)
{
    public ThriftFile File { get; } = file;
    public ConstDefinition Definition { get; } = definition;
    public string Name => Definition.Name;
    public ThriftType Type { get; internal set; } = ErrorType.Instance;
    public ConstantValue? Value { get; internal set; }
}

public sealed class FunctionSymbol(FunctionDefinition definition)
{
    public FunctionDefinition Definition { get; } = definition;
    public string Name => Definition.Name;
    public bool Oneway => Definition.Oneway;

    /// <summary>Null for void.</summary>
    public ThriftType? ReturnType { get; internal set; }
    public List<FieldSymbol> Arguments { get; } = [];
    public List<FieldSymbol> Throws { get; } = [];

    /// <summary>Safe to retry after a send whose reply was lost: the <c>idempotent</c> annotation.</summary>
    public bool Idempotent => Definition.Annotations.Any(a => a.Key == "idempotent" && a.Value is not ("false" or "0"));
}

public sealed class ServiceSymbol(ThriftFile file, ServiceDefinition definition)
{
    public ThriftFile File { get; } = file;
    public ServiceDefinition Definition { get; } = definition;
    public string Name => Definition.Name;
    public ServiceSymbol? Extends { get; internal set; }
    public List<FunctionSymbol> Functions { get; } = [];

    /// <summary>Own functions after every inherited one, base service first.</summary>
    public IEnumerable<FunctionSymbol> AllFunctions()
    {
        var chain = new List<ServiceSymbol>();
        for (var s = this; s is not null && !chain.Contains(s); s = s.Extends)
        {
            chain.Insert(0, s);
        }

        return chain.SelectMany(s => s.Functions);
    }
}

/// <summary>A constant checked against its type.</summary>
public abstract record ConstantValue;
public sealed record BoolConstant(bool Value) : ConstantValue;
public sealed record IntConstant(long Value) : ConstantValue;
public sealed record DoubleConstant(double Value) : ConstantValue;
public sealed record StringConstant(string Value) : ConstantValue;
public sealed record EnumConstant(EnumSymbol Enum, EnumMemberSymbol? Member, int Value) : ConstantValue;
public sealed record ListConstant(IReadOnlyList<ConstantValue> Items) : ConstantValue;
public sealed record MapConstant(IReadOnlyList<KeyValuePair<ConstantValue, ConstantValue>> Entries) : ConstantValue;
public sealed record StructConstant(StructSymbol Struct, IReadOnlyList<KeyValuePair<FieldSymbol, ConstantValue>> Fields) : ConstantValue;

/// <summary>Every file reached from the entry files, in dependency order (included files first).</summary>
public sealed class ThriftProgram(IReadOnlyList<ThriftFile> files, IReadOnlyList<Diagnostic> diagnostics)
{
    public IReadOnlyList<ThriftFile> Files { get; } = files;
    public IReadOnlyList<Diagnostic> Diagnostics { get; } = diagnostics;
    public bool HasErrors => Diagnostics.Any(d => d.IsError);
}
