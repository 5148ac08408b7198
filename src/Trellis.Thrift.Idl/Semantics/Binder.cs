using System.Globalization;
using Trellis.Thrift.Idl.Syntax;

namespace Trellis.Thrift.Idl.Semantics;

/// <summary>Where IDL text comes from: the disk for <c>trellis gen</c>, the compilation's additional files for the source generator.</summary>
public interface IThriftFileSource
{
    /// <summary>Full, normalised path → text, or false when there is no such file.</summary>
    bool TryRead(string path, out string text);
}

/// <summary>Serves IDL files from memory (tests, the source generator's additional files).</summary>
public sealed class MemoryFileSource(IEnumerable<KeyValuePair<string, string>> files) : IThriftFileSource
{
    private readonly Dictionary<string, string> _files = files.ToDictionary(f => ThriftCompiler.NormalizePath(f.Key), f => f.Value, StringComparer.Ordinal);

    public bool TryRead(string path, out string text) => _files.TryGetValue(path, out text!);
}

/// <summary>
/// Loads files and their includes, declares and resolves every name, and checks what the IDL means:
/// field ids, requiredness, constant values against their types, services, throws and oneway rules.
/// Errors are collected; binding goes on past them so one run reports all it can.
/// </summary>
internal sealed class Binder(IThriftFileSource source, IReadOnlyList<string> includeDirectories, DiagnosticBag diagnostics)
{
    private readonly Dictionary<string, ThriftFile> _loaded = new(StringComparer.Ordinal);
    private readonly List<ThriftFile> _order = [];
    private readonly List<string> _loading = [];
    private readonly HashSet<ConstSymbol> _resolvingConsts = [];
    private readonly HashSet<ConstSymbol> _resolvedConsts = [];

    public ThriftProgram Bind(IEnumerable<string> entryPaths)
    {
        foreach (var path in entryPaths)
        {
            var full = ThriftCompiler.NormalizePath(path);
            Load(full, new SourceLocation(full, 1, 1), isEntry: true);
        }

        foreach (var file in _order)
        {
            Declare(file);
        }

        foreach (var file in _order)
        {
            foreach (var s in file.Structs)
            {
                s.Fields.AddRange(Fields(file, s.Definition.Fields, $"{s.Kind.ToString().ToLowerInvariant()} {s.Name}", s.Kind == StructKind.Union));
            }
        }

        foreach (var file in _order)
        {
            foreach (var c in file.Constants)
            {
                ResolveConst(c);
            }

            foreach (var s in file.Structs)
            {
                foreach (var f in s.Fields)
                {
                    if (f.Definition.DefaultValue is { } value)
                    {
                        f.Default = Convert(value, f.Type, file);
                    }
                }
            }

            foreach (var service in file.Services)
            {
                BindService(service);
            }
        }

        return new ThriftProgram(_order, diagnostics.Items);
    }

    private ThriftFile? Load(string path, SourceLocation from, bool isEntry)
    {
        if (_loaded.TryGetValue(path, out var done))
        {
            return done;
        }

        var cycleStart = _loading.IndexOf(path);
        if (cycleStart >= 0)
        {
            var cycle = string.Join(" -> ", _loading.Skip(cycleStart).Append(path).Select(Path.GetFileName));
            diagnostics.Error(Codes.IncludeCycle, from, $"include cycle: {cycle}");
            return null;
        }

        if (!source.TryRead(path, out var text))
        {
            diagnostics.Error(Codes.IncludeNotFound, from, isEntry ? $"file not found: {path}" : $"included file not found: {path}");
            return null;
        }

        var file = new ThriftFile(path, Parser.Parse(path, text, diagnostics));
        _loading.Add(path);
        foreach (var include in file.Document.Includes)
        {
            var target = ResolveInclude(path, include.Path);
            var included = Load(target, include.Location, isEntry: false);
            if (included is null)
            {
                continue;
            }

            if (file.Includes.TryGetValue(included.Stem, out var other) && other != included)
            {
                diagnostics.Error(Codes.DuplicateDefinition, include.Location,
                    $"two included files are both named '{included.Stem}' ({other.Path} and {included.Path}); rename one");
                continue;
            }

            file.Includes[included.Stem] = included;
        }

        _loading.RemoveAt(_loading.Count - 1);
        _loaded[path] = file;
        _order.Add(file);
        return file;
    }

    private string ResolveInclude(string includingFile, string includePath)
    {
        var relative = ThriftCompiler.NormalizePath(Path.Combine(Path.GetDirectoryName(includingFile) ?? "", includePath));
        if (source.TryRead(relative, out _))
        {
            return relative;
        }

        foreach (var dir in includeDirectories)
        {
            var candidate = ThriftCompiler.NormalizePath(Path.Combine(dir, includePath));
            if (source.TryRead(candidate, out _))
            {
                return candidate;
            }
        }

        return relative;
    }

    private void Declare(ThriftFile file)
    {
        string? ns = null;
        foreach (var scope in new[] { "netstd", "csharp", "*" })
        {
            ns ??= file.Document.Namespaces.LastOrDefault(n => n.Scope == scope)?.Name;
        }

        file.Namespace = ns;
        foreach (var definition in file.Document.Definitions)
        {
            if (file.Symbols.ContainsKey(definition.Name))
            {
                diagnostics.Error(Codes.DuplicateDefinition, definition.Location, $"'{definition.Name}' is already defined in {Path.GetFileName(file.Path)}");
                continue;
            }

            switch (definition)
            {
                case TypedefDefinition t:
                    file.Typedefs[t.Name] = t;
                    file.Symbols[t.Name] = t;
                    break;
                case EnumDefinition e:
                    var symbol = new EnumSymbol(file, e);
                    DeclareEnumMembers(symbol);
                    file.Enums.Add(symbol);
                    file.Symbols[e.Name] = symbol;
                    break;
                case StructDefinition s:
                    var st = new StructSymbol(file, s);
                    file.Structs.Add(st);
                    file.Symbols[s.Name] = st;
                    break;
                case ConstDefinition c:
                    var cs = new ConstSymbol(file, c);
                    file.Constants.Add(cs);
                    file.Symbols[c.Name] = cs;
                    break;
                case ServiceDefinition sv:
                    var ss = new ServiceSymbol(file, sv);
                    file.Services.Add(ss);
                    file.Symbols[sv.Name] = ss;
                    break;
            }
        }
    }

    private void DeclareEnumMembers(EnumSymbol symbol)
    {
        long next = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        var values = new Dictionary<long, string>();
        foreach (var member in symbol.Definition.Members)
        {
            var value = member.Value ?? next;
            if (value is < int.MinValue or > int.MaxValue)
            {
                diagnostics.Error(Codes.BadEnumValue, member.Location, $"enum value {value} of {symbol.Name}.{member.Name} does not fit 32 bits");
                value = 0;
            }

            if (!names.Add(member.Name))
            {
                diagnostics.Error(Codes.DuplicateEnumValue, member.Location, $"{symbol.Name}.{member.Name} is defined twice");
                continue;
            }

            if (values.TryGetValue(value, out var previous))
            {
                diagnostics.Error(Codes.DuplicateEnumValue, member.Location, $"{symbol.Name}.{member.Name} has the value {value} of {symbol.Name}.{previous}");
            }
            else
            {
                values[value] = member.Name;
            }

            symbol.Members.Add(new EnumMemberSymbol(member.Name, (int)value, member.Doc));
            next = value + 1;
        }
    }

    private static object? Lookup(string name, ThriftFile file)
    {
        if (file.Symbols.TryGetValue(name, out var local))
        {
            return local;
        }

        var dot = name.IndexOf('.');
        if (dot > 0 && file.Includes.TryGetValue(name.Substring(0, dot), out var included) &&
            included.Symbols.TryGetValue(name.Substring(dot + 1), out var remote))
        {
            return remote;
        }

        return null;
    }

    private ThriftType Resolve(TypeReference reference, ThriftFile file) => Resolve(reference, file, []);

    private ThriftType Resolve(TypeReference reference, ThriftFile file, List<TypedefDefinition> typedefs)
    {
        switch (reference)
        {
            case BaseTypeReference b:
                return BaseType.Of(b.Name switch
                {
                    "bool" => BaseKind.Bool,
                    "byte" or "i8" => BaseKind.Byte,
                    "i16" => BaseKind.I16,
                    "i32" => BaseKind.I32,
                    "i64" => BaseKind.I64,
                    "double" => BaseKind.Double,
                    "binary" => BaseKind.Binary,
                    "uuid" => BaseKind.Uuid,
                    _ => BaseKind.String,
                });
            case ListTypeReference l:
                return new ListType(Resolve(l.Element, file, typedefs));
            case SetTypeReference s:
                return new SetType(Resolve(s.Element, file, typedefs));
            case MapTypeReference m:
                return new MapType(Resolve(m.Key, file, typedefs), Resolve(m.Value, file, typedefs));
            case NamedTypeReference n:
                switch (Lookup(n.Name, file))
                {
                    case EnumSymbol e:
                        return new EnumType(e);
                    case StructSymbol st:
                        return new StructType(st);
                    case TypedefDefinition t:
                        if (typedefs.Contains(t))
                        {
                            diagnostics.Error(Codes.TypedefCycle, t.Location, $"typedef {t.Name} refers to itself");
                            return ErrorType.Instance;
                        }

                        typedefs.Add(t);
                        var owner = _order.First(f => f.Typedefs.TryGetValue(t.Name, out var d) && d == t);
                        var resolved = Resolve(t.Type, owner, typedefs);
                        typedefs.RemoveAt(typedefs.Count - 1);
                        return resolved;
                    case ServiceSymbol:
                        diagnostics.Error(Codes.UndefinedType, n.Location, $"'{n.Name}' is a service, not a type");
                        return ErrorType.Instance;
                    case ConstSymbol:
                        diagnostics.Error(Codes.UndefinedType, n.Location, $"'{n.Name}' is a constant, not a type");
                        return ErrorType.Instance;
                    default:
                        diagnostics.Error(Codes.UndefinedType, n.Location, $"undefined type '{n.Name}'{Suggest(n.Name, file)}");
                        return ErrorType.Instance;
                }

            default:
                return ErrorType.Instance;
        }
    }

    private static string Suggest(string name, ThriftFile file)
    {
        var dot = name.IndexOf('.');
        if (dot > 0 && !file.Includes.ContainsKey(name.Substring(0, dot)))
        {
            return $" (no included file is named '{name.Substring(0, dot)}')";
        }

        var close = file.Symbols.Keys.FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
        return close is null ? "" : $" (did you mean '{close}'?)";
    }

    private List<FieldSymbol> Fields(ThriftFile file, IReadOnlyList<FieldDefinition> definitions, string owner, bool isUnion)
    {
        var fields = new List<FieldSymbol>();
        var ids = new Dictionary<int, string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var nextImplicit = -1;
        var defaults = 0;
        foreach (var definition in definitions)
        {
            int id;
            if (definition.Id is { } explicitId)
            {
                if (explicitId <= 0 || explicitId > short.MaxValue)
                {
                    diagnostics.Error(Codes.BadFieldId, definition.Location, $"field id {explicitId} of {owner}.{definition.Name} must be between 1 and 32767");
                }

                id = explicitId;
            }
            else
            {
                id = nextImplicit--;
                diagnostics.Warning(Codes.ImplicitFieldId, definition.Location,
                    $"{owner}.{definition.Name} has no field id; it gets {id}, which changes if fields are reordered: give it one");
            }

            if (ids.TryGetValue(id, out var previous))
            {
                diagnostics.Error(Codes.DuplicateFieldId, definition.Location, $"field id {id} of {owner}.{definition.Name} is already used by {previous}");
            }
            else
            {
                ids[id] = definition.Name;
            }

            if (!names.Add(definition.Name))
            {
                diagnostics.Error(Codes.DuplicateFieldName, definition.Location, $"{owner} has two fields named '{definition.Name}'");
            }

            var requiredness = definition.Requiredness;
            if (isUnion && requiredness == Requiredness.Required)
            {
                diagnostics.Error(Codes.BadUnion, definition.Location, $"union field {owner}.{definition.Name} cannot be required: a union holds one field at a time");
            }

            if (isUnion && definition.DefaultValue is not null && ++defaults > 1)
            {
                diagnostics.Error(Codes.BadUnion, definition.Location, $"{owner} gives defaults to more than one field; a union holds one field at a time");
            }

            fields.Add(new FieldSymbol(definition, (short)Math.Max(short.MinValue, Math.Min(short.MaxValue, id)), Resolve(definition.Type, file), requiredness));
        }

        return fields;
    }

    private void ResolveConst(ConstSymbol symbol)
    {
        if (_resolvedConsts.Contains(symbol))
        {
            return;
        }

        if (!_resolvingConsts.Add(symbol))
        {
            diagnostics.Error(Codes.BadConstValue, symbol.Definition.Location, $"constant {symbol.Name} is defined in terms of itself");
            return;
        }

        symbol.Type = Resolve(symbol.Definition.Type, symbol.File);
        symbol.Value = Convert(symbol.Definition.Value, symbol.Type, symbol.File);
        _resolvingConsts.Remove(symbol);
        _resolvedConsts.Add(symbol);
    }

    /// <summary>Checks a constant as written against the type it must have.</summary>
    private ConstantValue? Convert(ConstValue value, ThriftType type, ThriftFile file)
    {
        if (type is ErrorType)
        {
            return null;
        }

        if (value is IdentifierConstValue id && id.Name is not ("true" or "false"))
        {
            return ConvertIdentifier(id, type, file);
        }

        switch (type)
        {
            case BaseType { Kind: BaseKind.Bool }:
                return value switch
                {
                    IdentifierConstValue b => new BoolConstant(b.Name == "true"),
                    IntConstValue { Value: 0 or 1 } i => new BoolConstant(i.Value == 1),
                    _ => Bad(value, type),
                };
            case BaseType { Kind: BaseKind.Byte or BaseKind.I16 or BaseKind.I32 or BaseKind.I64 } integer:
                if (value is IdentifierConstValue flag)
                {
                    return new IntConstant(flag.Name == "true" ? 1 : 0);
                }

                if (value is not IntConstValue number)
                {
                    return Bad(value, type);
                }

                var (min, max) = integer.Kind switch
                {
                    BaseKind.Byte => (sbyte.MinValue, sbyte.MaxValue),
                    BaseKind.I16 => (short.MinValue, short.MaxValue),
                    BaseKind.I32 => (int.MinValue, int.MaxValue),
                    _ => (long.MinValue, long.MaxValue),
                };
                return number.Value < min || number.Value > max
                    ? Bad(value, type, $"{number.Value} is out of range for {type.Describe()}")
                    : new IntConstant(number.Value);
            case BaseType { Kind: BaseKind.Double }:
                return value switch
                {
                    IntConstValue i => new DoubleConstant(i.Value),
                    DoubleConstValue d => new DoubleConstant(d.Value),
                    _ => Bad(value, type),
                };
            case BaseType { Kind: BaseKind.String or BaseKind.Binary }:
                return value is StringConstValue text ? new StringConstant(text.Value) : Bad(value, type);
            case BaseType { Kind: BaseKind.Uuid }:
                return value is StringConstValue u && Guid.TryParse(u.Value, out _)
                    ? new StringConstant(u.Value)
                    : Bad(value, type, "a uuid constant is a string like \"00112233-4455-6677-8899-aabbccddeeff\"");
            case EnumType e:
                if (value is IntConstValue raw)
                {
                    var member = e.Symbol.Members.FirstOrDefault(m => m.Value == raw.Value);
                    return member is null
                        ? Bad(value, type, $"{raw.Value} is not a value of enum {e.Symbol.Name}")
                        : new EnumConstant(e.Symbol, member, member.Value);
                }

                return Bad(value, type);
            case ListType l:
                return value is ListConstValue list
                    ? new ListConstant(list.Items.Select(i => Convert(i, l.Element, file)).Where(i => i is not null).ToList()!)
                    : Bad(value, type);
            case SetType setType:
                return value is ListConstValue set
                    ? new ListConstant(set.Items.Select(i => Convert(i, setType.Element, file)).Where(i => i is not null).ToList()!)
                    : Bad(value, type);
            case MapType m:
                if (value is not MapConstValue map)
                {
                    return Bad(value, type);
                }

                var entries = new List<KeyValuePair<ConstantValue, ConstantValue>>();
                foreach (var entry in map.Entries)
                {
                    var k = Convert(entry.Key, m.Key, file);
                    var v = Convert(entry.Value, m.Value, file);
                    if (k is not null && v is not null)
                    {
                        entries.Add(new(k, v));
                    }
                }

                return new MapConstant(entries);
            case StructType st:
                if (value is not MapConstValue fields)
                {
                    return Bad(value, type, $"a {st.Symbol.Name} constant is written as {{\"field\": value, …}}");
                }

                var assigned = new List<KeyValuePair<FieldSymbol, ConstantValue>>();
                foreach (var entry in fields.Entries)
                {
                    if (entry.Key is not StringConstValue fieldName)
                    {
                        Bad(entry.Key, type, "struct constant keys are field names in quotes");
                        continue;
                    }

                    var field = st.Symbol.Fields.FirstOrDefault(f => f.Name == fieldName.Value);
                    if (field is null)
                    {
                        diagnostics.Error(Codes.BadConstValue, entry.Key.Location, $"{st.Symbol.Name} has no field '{fieldName.Value}'");
                        continue;
                    }

                    if (Convert(entry.Value, field.Type, file) is { } converted)
                    {
                        assigned.Add(new(field, converted));
                    }
                }

                return new StructConstant(st.Symbol, assigned);
            default:
                return Bad(value, type);
        }
    }

    private ConstantValue? ConvertIdentifier(IdentifierConstValue id, ThriftType type, ThriftFile file)
    {
        // a constant, possibly from an included file
        if (Lookup(id.Name, file) is ConstSymbol constant)
        {
            ResolveConst(constant);
            if (constant.Value is null)
            {
                return null;
            }

            if (SameShape(constant.Type, type) || (constant.Value is IntConstant && type is BaseType { Kind: BaseKind.Double or BaseKind.I64 or BaseKind.I32 or BaseKind.I16 or BaseKind.Byte }))
            {
                return constant.Value is IntConstant i && type is BaseType { Kind: BaseKind.Double } ? new DoubleConstant(i.Value) : constant.Value;
            }

            return Bad(id, type, $"constant {id.Name} is a {constant.Type.Describe()}, not a {type.Describe()}");
        }

        // an enum member: Enum.MEMBER, include.Enum.MEMBER, or MEMBER alone when the target is that enum
        var dot = id.Name.LastIndexOf('.');
        EnumSymbol? owner = null;
        var memberName = id.Name;
        if (dot > 0)
        {
            owner = Lookup(id.Name.Substring(0, dot), file) as EnumSymbol;
            memberName = id.Name.Substring(dot + 1);
        }
        else if (type is EnumType target)
        {
            owner = target.Symbol;
        }

        var member = owner?.Members.FirstOrDefault(m => m.Name == memberName);
        if (owner is null || member is null)
        {
            diagnostics.Error(Codes.UndefinedConstant, id.Location, $"undefined constant '{id.Name}'");
            return null;
        }

        return type switch
        {
            EnumType e when e.Symbol == owner => new EnumConstant(owner, member, member.Value),
            BaseType { Kind: BaseKind.I32 or BaseKind.I64 } => new IntConstant(member.Value),
            _ => Bad(id, type, $"{id.Name} is a member of enum {owner.Name}, not a {type.Describe()}"),
        };
    }

    private static bool SameShape(ThriftType a, ThriftType b) => a.Describe() == b.Describe();

    private ConstantValue? Bad(ConstValue value, ThriftType type, string? detail = null)
    {
        var shown = value switch
        {
            IntConstValue i => i.Value.ToString(CultureInfo.InvariantCulture),
            DoubleConstValue d => d.Value.ToString(CultureInfo.InvariantCulture),
            StringConstValue s => $"\"{s.Value}\"",
            IdentifierConstValue n => n.Name,
            ListConstValue => "a list",
            MapConstValue => "a map",
            _ => "the value",
        };
        diagnostics.Error(Codes.BadConstValue, value.Location, detail ?? $"{shown} is not a valid {type.Describe()}");
        return null;
    }

    private void BindService(ServiceSymbol service)
    {
        var definition = service.Definition;
        if (definition.Extends is { } baseName)
        {
            if (Lookup(baseName, service.File) is ServiceSymbol parent)
            {
                service.Extends = parent;
                for (var s = parent; s is not null; s = s.Extends)
                {
                    if (s == service)
                    {
                        diagnostics.Error(Codes.BadExtends, definition.ExtendsLocation ?? definition.Location, $"service {service.Name} extends itself");
                        service.Extends = null;
                        break;
                    }
                }
            }
            else
            {
                diagnostics.Error(Codes.BadExtends, definition.ExtendsLocation ?? definition.Location, $"service {service.Name} extends '{baseName}', which is not a service");
            }
        }

        var inherited = new HashSet<string>(StringComparer.Ordinal);
        for (var s = service.Extends; s is not null && s != service; s = s.Extends)
        {
            foreach (var f in s.Definition.Functions)
            {
                inherited.Add(f.Name);
            }
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var function in definition.Functions)
        {
            if (!names.Add(function.Name))
            {
                diagnostics.Error(Codes.DuplicateMethod, function.Location, $"service {service.Name} has two functions named '{function.Name}'");
            }
            else if (inherited.Contains(function.Name))
            {
                diagnostics.Error(Codes.DuplicateMethod, function.Location, $"{service.Name}.{function.Name} has the name of an inherited function");
            }

            var symbol = new FunctionSymbol(function)
            {
                ReturnType = function.ReturnType is null ? null : Resolve(function.ReturnType, service.File),
            };
            symbol.Arguments.AddRange(Fields(service.File, function.Arguments, $"{service.Name}.{function.Name} arguments", false));
            symbol.Throws.AddRange(Fields(service.File, function.Throws, $"{service.Name}.{function.Name} throws", false));
            foreach (var thrown in symbol.Throws)
            {
                if (thrown.Type is not StructType { Symbol.Kind: StructKind.Exception } && thrown.Type is not ErrorType)
                {
                    diagnostics.Error(Codes.NotAnException, thrown.Definition.Location,
                        $"{service.Name}.{function.Name} throws {thrown.Type.Describe()}, which is not an exception");
                }
            }

            if (function.Oneway && (symbol.ReturnType is not null || symbol.Throws.Count > 0))
            {
                diagnostics.Error(Codes.BadOneway, function.Location,
                    $"oneway function {service.Name}.{function.Name} must return void and throw nothing: nobody receives a reply");
            }

            service.Functions.Add(symbol);
        }
    }
}
