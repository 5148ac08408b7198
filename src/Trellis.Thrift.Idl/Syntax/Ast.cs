namespace Trellis.Thrift.Idl.Syntax;

/// <summary>Key/value annotations in parentheses after a type, field, function or definition. A bare key has the value "1".</summary>
public sealed record Annotation(string Key, string Value, SourceLocation Location);

/// <summary>One parsed .thrift file, before names are resolved.</summary>
public sealed class ThriftDocument(string path)
{
    public string Path { get; } = path;
    public List<IncludeDirective> Includes { get; } = [];
    public List<NamespaceDirective> Namespaces { get; } = [];
    public List<Definition> Definitions { get; } = [];
}

public sealed record IncludeDirective(string Path, SourceLocation Location);

public sealed record NamespaceDirective(string Scope, string Name, SourceLocation Location);

public abstract class Definition(string name, SourceLocation location)
{
    public string Name { get; } = name;
    public SourceLocation Location { get; } = location;
    public string? Doc { get; init; }
    public IReadOnlyList<Annotation> Annotations { get; init; } = [];
}

public sealed class TypedefDefinition(string name, SourceLocation location, TypeReference type) : Definition(name, location)
{
    public TypeReference Type { get; } = type;
}

public sealed class ConstDefinition(string name, SourceLocation location, TypeReference type, ConstValue value) : Definition(name, location)
{
    public TypeReference Type { get; } = type;
    public ConstValue Value { get; } = value;
}

public sealed record EnumMember(string Name, long? Value, SourceLocation Location, string? Doc, IReadOnlyList<Annotation> Annotations);

public sealed class EnumDefinition(string name, SourceLocation location, IReadOnlyList<EnumMember> members) : Definition(name, location)
{
    public IReadOnlyList<EnumMember> Members { get; } = members;
}

public enum StructKind
{
    Struct,
    Union,
    Exception,
}

public enum Requiredness
{
    Default,
    Required,
    Optional,
}

public sealed record FieldDefinition(
    int? Id,
    Requiredness Requiredness,
    TypeReference Type,
    string Name,
    ConstValue? DefaultValue,
    SourceLocation Location,
    string? Doc,
    IReadOnlyList<Annotation> Annotations);

public sealed class StructDefinition(string name, SourceLocation location, StructKind kind, IReadOnlyList<FieldDefinition> fields) : Definition(name, location)
{
    public StructKind Kind { get; } = kind;
    public IReadOnlyList<FieldDefinition> Fields { get; } = fields;
}

public sealed record FunctionDefinition(
    string Name,
    bool Oneway,
    TypeReference? ReturnType,
    IReadOnlyList<FieldDefinition> Arguments,
    IReadOnlyList<FieldDefinition> Throws,
    SourceLocation Location,
    string? Doc,
    IReadOnlyList<Annotation> Annotations);

public sealed class ServiceDefinition(string name, SourceLocation location, string? extends, SourceLocation? extendsLocation, IReadOnlyList<FunctionDefinition> functions)
    : Definition(name, location)
{
    public string? Extends { get; } = extends;
    public SourceLocation? ExtendsLocation { get; } = extendsLocation;
    public IReadOnlyList<FunctionDefinition> Functions { get; } = functions;
}

/// <summary>A type as written: a base type, a container, or a name to resolve.</summary>
public abstract record TypeReference(SourceLocation Location)
{
    public IReadOnlyList<Annotation> Annotations { get; init; } = [];
}

public sealed record BaseTypeReference(string Name, SourceLocation Location) : TypeReference(Location);

public sealed record ListTypeReference(TypeReference Element, SourceLocation Location) : TypeReference(Location);

public sealed record SetTypeReference(TypeReference Element, SourceLocation Location) : TypeReference(Location);

public sealed record MapTypeReference(TypeReference Key, TypeReference Value, SourceLocation Location) : TypeReference(Location);

public sealed record NamedTypeReference(string Name, SourceLocation Location) : TypeReference(Location);

/// <summary>A constant as written.</summary>
public abstract record ConstValue(SourceLocation Location);

public sealed record IntConstValue(long Value, SourceLocation Location) : ConstValue(Location);

public sealed record DoubleConstValue(double Value, SourceLocation Location) : ConstValue(Location);

public sealed record StringConstValue(string Value, SourceLocation Location) : ConstValue(Location);

/// <summary>A reference to a constant or an enum member (<c>Color.RED</c>, <c>other.MAX</c>), or a bool literal.</summary>
public sealed record IdentifierConstValue(string Name, SourceLocation Location) : ConstValue(Location);

public sealed record ListConstValue(IReadOnlyList<ConstValue> Items, SourceLocation Location) : ConstValue(Location);

public sealed record MapConstValue(IReadOnlyList<KeyValuePair<ConstValue, ConstValue>> Entries, SourceLocation Location) : ConstValue(Location);
