using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Thrift;
using Trellis.Thrift.Idl.Semantics;
using Trellis.Thrift.Idl.Syntax;

namespace Trellis.Cli.Call;

/// <summary>JSON that does not fit the IDL: names the JSON path (<c>$.value.inner.id</c>) and what was expected.</summary>
internal sealed class CallInputException(string path, string message) : Exception($"{path}: {message}")
{
    public string Path { get; } = path;
}

/// <summary>
/// A value checked against its IDL type and ready to be written in any protocol: built once from JSON
/// (<see cref="DynamicCodec.FromJson"/>), written any number of times (<see cref="DynamicCodec.Write{TWriter}"/>).
/// </summary>
internal abstract class WireValue
{
    public abstract TType Type { get; }
}

internal sealed class ScalarValue(TType type, long integer = 0, double real = 0, string? text = null, byte[]? bytes = null, Guid uuid = default) : WireValue
{
    public override TType Type { get; } = type;
    public long Integer { get; } = integer;
    public double Real { get; } = real;
    public string? Text { get; } = text;
    public byte[]? Bytes { get; } = bytes;
    public Guid Uuid { get; } = uuid;
}

internal sealed class StructValue(IReadOnlyList<(short Id, WireValue Value)> fields) : WireValue
{
    public override TType Type => TType.Struct;
    public IReadOnlyList<(short Id, WireValue Value)> Fields { get; } = fields;
}

internal sealed class ListValue(TType element, IReadOnlyList<WireValue> items, bool isSet) : WireValue
{
    public override TType Type => IsSet ? TType.Set : TType.List;
    public TType Element { get; } = element;
    public IReadOnlyList<WireValue> Items { get; } = items;
    public bool IsSet { get; } = isSet;
}

internal sealed class MapValue(TType key, TType value, IReadOnlyList<(WireValue Key, WireValue Value)> entries) : WireValue
{
    public override TType Type => TType.Map;
    public TType KeyType { get; } = key;
    public TType ValueType { get; } = value;
    public IReadOnlyList<(WireValue Key, WireValue Value)> Entries { get; } = entries;
}

/// <summary>
/// JSON ⇄ Thrift by the IDL, with no generated code: the natural JSON mapping (strings, numbers, bools, arrays for
/// lists and sets, objects for maps with their keys converted to the key type — or arrays of <c>[key, value]</c>
/// pairs for any key type —, structs as objects by field name, enums by name or number, binary as base64, i64 as a
/// number or a string, uuid as a string).
/// </summary>
internal static class DynamicCodec
{
    public static TType WireType(ThriftType type) => type switch
    {
        BaseType b => b.Kind switch
        {
            BaseKind.Bool => TType.Bool,
            BaseKind.Byte => TType.Byte,
            BaseKind.I16 => TType.I16,
            BaseKind.I32 => TType.I32,
            BaseKind.I64 => TType.I64,
            BaseKind.Double => TType.Double,
            BaseKind.String or BaseKind.Binary => TType.String,
            BaseKind.Uuid => TType.Uuid,
            _ => throw new InvalidOperationException($"unknown base type {b.Kind}"),
        },
        EnumType => TType.I32,
        StructType => TType.Struct,
        ListType => TType.List,
        SetType => TType.Set,
        MapType => TType.Map,
        _ => throw new InvalidOperationException($"type {type.Describe()} cannot be sent"),
    };

    /// <summary>The arguments struct of <paramref name="function"/> from a JSON object by argument name.</summary>
    public static StructValue Arguments(FunctionSymbol function, JsonElement? json) =>
        json is { } element
            ? FromFields(function.Arguments, element, "$", $"the arguments of {function.Name}", isUnion: false)
            : FromFields(function.Arguments, JsonDocument.Parse("{}").RootElement, "$", $"the arguments of {function.Name}", isUnion: false);

    public static WireValue FromJson(JsonElement json, ThriftType type, string path)
    {
        switch (type)
        {
            case BaseType b:
                return FromJsonBase(json, b.Kind, path);
            case EnumType e:
                return new ScalarValue(TType.I32, EnumValue(json, e.Symbol, path));
            case StructType s:
                return FromFields(s.Symbol.Fields, json, path, $"{KindName(s.Symbol.Kind)} {s.Symbol.Name}", s.Symbol.Kind == StructKind.Union);
            case ListType l:
                return new ListValue(WireType(l.Element), Items(json, l.Element, path, "a list"), isSet: false);
            case SetType s:
                return new ListValue(WireType(s.Element), Items(json, s.Element, path, "a set"), isSet: true);
            case MapType m:
                return Map(json, m, path);
            default:
                throw new CallInputException(path, $"the IDL type {type.Describe()} cannot be sent");
        }
    }

    private static string KindName(StructKind kind) => kind switch
    {
        StructKind.Union => "union",
        StructKind.Exception => "exception",
        _ => "struct",
    };

    private static StructValue FromFields(List<FieldSymbol> fields, JsonElement json, string path, string what, bool isUnion)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            throw new CallInputException(path, $"expected an object for {what}, got {Describe(json)}");
        }

        var byName = fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var present = new Dictionary<FieldSymbol, WireValue>();
        foreach (var property in json.EnumerateObject())
        {
            var childPath = Child(path, property.Name);
            if (!byName.TryGetValue(property.Name, out var field))
            {
                throw new CallInputException(childPath, fields.Count == 0
                    ? $"{what} has no fields"
                    : $"{what} has no field '{property.Name}' (it has: {string.Join(", ", fields.Select(f => f.Name))})");
            }

            if (property.Value.ValueKind == JsonValueKind.Null)
            {
                continue; // null: not set
            }

            if (!present.TryAdd(field, FromJson(property.Value, field.Type, childPath)))
            {
                throw new CallInputException(childPath, "given twice");
            }
        }

        foreach (var field in fields)
        {
            if (field.Requiredness == Requiredness.Required && !present.ContainsKey(field))
            {
                throw new CallInputException(Child(path, field.Name), $"required field of {what} is missing ({field.Type.Describe()})");
            }
        }

        if (isUnion && present.Count != 1)
        {
            throw new CallInputException(path, $"{what} needs exactly one field set, not {present.Count}");
        }

        return new StructValue(fields.Where(present.ContainsKey).Select(f => (f.Id, present[f])).ToList());
    }

    private static List<WireValue> Items(JsonElement json, ThriftType element, string path, string what)
    {
        if (json.ValueKind != JsonValueKind.Array)
        {
            throw new CallInputException(path, $"expected an array for {what}, got {Describe(json)}");
        }

        var items = new List<WireValue>(json.GetArrayLength());
        var i = 0;
        foreach (var item in json.EnumerateArray())
        {
            items.Add(FromJson(item, element, $"{path}[{i++}]"));
        }

        return items;
    }

    private static MapValue Map(JsonElement json, MapType map, string path)
    {
        var entries = new List<(WireValue, WireValue)>();
        if (json.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in json.EnumerateObject())
            {
                var childPath = $"{path}[{JsonSerializer.Serialize(property.Name)}]";
                entries.Add((FromKey(property.Name, map.Key, childPath), FromJson(property.Value, map.Value, childPath)));
            }
        }
        else if (json.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var pair in json.EnumerateArray())
            {
                var childPath = $"{path}[{i++}]";
                if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2)
                {
                    throw new CallInputException(childPath, $"expected a [key, value] pair for an entry of {map.Describe()}, got {Describe(pair)}");
                }

                entries.Add((FromJson(pair[0], map.Key, childPath + "[0]"), FromJson(pair[1], map.Value, childPath + "[1]")));
            }
        }
        else
        {
            throw new CallInputException(path, $"expected an object (or an array of [key, value] pairs) for {map.Describe()}, got {Describe(json)}");
        }

        return new MapValue(WireType(map.Key), WireType(map.Value), entries);
    }

    /// <summary>A map key given as a JSON object's property name, converted to the key type.</summary>
    private static WireValue FromKey(string key, ThriftType type, string path)
    {
        switch (type)
        {
            case BaseType { Kind: BaseKind.String or BaseKind.Binary or BaseKind.Uuid }:
            case EnumType:
                return FromJson(JsonSerializer.SerializeToElement(key), type, path);
            case BaseType { Kind: BaseKind.Bool }:
                return key switch
                {
                    "true" => new ScalarValue(TType.Bool, 1),
                    "false" => new ScalarValue(TType.Bool, 0),
                    _ => throw new CallInputException(path, $"the key '{key}' is not a bool (true or false)"),
                };
            case BaseType b:
                using (var document = ParseNumber(key, path, b))
                {
                    return FromJsonBase(document.RootElement, b.Kind, path);
                }

            default:
                throw new CallInputException(path, $"keys of type {type.Describe()} cannot be object property names: give the map as an array of [key, value] pairs");
        }
    }

    private static JsonDocument ParseNumber(string key, string path, BaseType type)
    {
        try
        {
            return JsonDocument.Parse(key.Trim());
        }
        catch (JsonException)
        {
            throw new CallInputException(path, $"the key '{key}' is not a number ({type.Describe()})");
        }
    }

    private static ScalarValue FromJsonBase(JsonElement json, BaseKind kind, string path)
    {
        switch (kind)
        {
            case BaseKind.Bool:
                return json.ValueKind switch
                {
                    JsonValueKind.True => new ScalarValue(TType.Bool, 1),
                    JsonValueKind.False => new ScalarValue(TType.Bool, 0),
                    _ => throw Mismatch(json, "a bool (true or false)", path),
                };
            case BaseKind.Byte:
                return new ScalarValue(TType.Byte, Integer(json, sbyte.MinValue, sbyte.MaxValue, "an i8", path, allowString: false));
            case BaseKind.I16:
                return new ScalarValue(TType.I16, Integer(json, short.MinValue, short.MaxValue, "an i16", path, allowString: false));
            case BaseKind.I32:
                return new ScalarValue(TType.I32, Integer(json, int.MinValue, int.MaxValue, "an i32", path, allowString: false));
            case BaseKind.I64:
                return new ScalarValue(TType.I64, Integer(json, long.MinValue, long.MaxValue, "an i64 (a number or a string of digits)", path, allowString: true));
            case BaseKind.Double:
                if (json.ValueKind == JsonValueKind.Number && json.TryGetDouble(out var d))
                {
                    return new ScalarValue(TType.Double, real: d);
                }

                if (json.ValueKind == JsonValueKind.String && json.GetString() is "NaN" or "Infinity" or "-Infinity")
                {
                    return new ScalarValue(TType.Double, real: double.Parse(json.GetString()!, CultureInfo.InvariantCulture));
                }

                throw Mismatch(json, "a double", path);
            case BaseKind.String:
                return json.ValueKind == JsonValueKind.String ? new ScalarValue(TType.String, text: json.GetString()) : throw Mismatch(json, "a string", path);
            case BaseKind.Binary:
                if (json.ValueKind == JsonValueKind.String)
                {
                    var text = json.GetString()!;
                    var buffer = new byte[text.Length];
                    if (Convert.TryFromBase64String(text, buffer, out var written))
                    {
                        return new ScalarValue(TType.String, bytes: buffer[..written]);
                    }

                    throw new CallInputException(path, "binary is given as base64, and this string is not base64");
                }

                throw Mismatch(json, "binary (a base64 string)", path);
            case BaseKind.Uuid:
                return json.ValueKind == JsonValueKind.String && Guid.TryParse(json.GetString(), out var uuid)
                    ? new ScalarValue(TType.Uuid, uuid: uuid)
                    : throw Mismatch(json, "a uuid (a string like 0f8fad5b-d9cb-469f-a165-70867728950e)", path);
            default:
                throw new CallInputException(path, $"unknown base type {kind}");
        }
    }

    private static long Integer(JsonElement json, long min, long max, string what, string path, bool allowString)
    {
        long value;
        if (json.ValueKind == JsonValueKind.Number)
        {
            if (!json.TryGetInt64(out value))
            {
                throw Mismatch(json, what, path);
            }
        }
        else if (allowString && json.ValueKind == JsonValueKind.String)
        {
            if (!long.TryParse(json.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value))
            {
                throw Mismatch(json, what, path);
            }
        }
        else
        {
            throw Mismatch(json, what, path);
        }

        if (value < min || value > max)
        {
            throw new CallInputException(path, $"{value} is out of range for {what} ({min} to {max})");
        }

        return value;
    }

    private static int EnumValue(JsonElement json, EnumSymbol symbol, string path)
    {
        if (json.ValueKind == JsonValueKind.String)
        {
            var name = json.GetString()!;
            var member = symbol.Members.FirstOrDefault(m => m.Name == name)
                ?? symbol.Members.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
            return member?.Value ?? throw new CallInputException(path, $"'{name}' is not a member of enum {symbol.Name} ({string.Join(", ", symbol.Members.Select(m => m.Name))})");
        }

        if (json.ValueKind == JsonValueKind.Number && json.TryGetInt32(out var number))
        {
            return number;
        }

        throw Mismatch(json, $"enum {symbol.Name} (a member's name or a number)", path);
    }

    private static CallInputException Mismatch(JsonElement json, string expected, string path) => new(path, $"expected {expected}, got {Describe(json)}");

    private static string Describe(JsonElement json)
    {
        var text = json.GetRawText();
        if (text.Length > 40)
        {
            text = text[..37] + "...";
        }

        return json.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => $"the string {text}",
            JsonValueKind.Number => $"the number {text}",
            JsonValueKind.True or JsonValueKind.False => $"the bool {text}",
            JsonValueKind.Null => "null",
            _ => text,
        };
    }

    private static string Child(string path, string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(name[0])
            ? $"{path}.{name}"
            : $"{path}[{JsonSerializer.Serialize(name)}]";

    // ---- writing ----

    public static void Write<TWriter>(ref TWriter writer, WireValue value) where TWriter : IThriftWriter, allows ref struct
    {
        switch (value)
        {
            case ScalarValue s:
                switch (s.Type)
                {
                    case TType.Bool: writer.WriteBool(s.Integer != 0); break;
                    case TType.Byte: writer.WriteByte((sbyte)s.Integer); break;
                    case TType.I16: writer.WriteI16((short)s.Integer); break;
                    case TType.I32: writer.WriteI32((int)s.Integer); break;
                    case TType.I64: writer.WriteI64(s.Integer); break;
                    case TType.Double: writer.WriteDouble(s.Real); break;
                    case TType.Uuid: writer.WriteUuid(s.Uuid); break;
                    case TType.String when s.Bytes is { } bytes: writer.WriteBinary(bytes); break;
                    case TType.String: writer.WriteString(s.Text ?? ""); break;
                    default: throw new InvalidOperationException($"not a scalar: {s.Type}");
                }

                break;
            case StructValue st:
                var scope = writer.WriteStructBegin();
                foreach (var (id, field) in st.Fields)
                {
                    writer.WriteFieldBegin(field.Type, id);
                    Write(ref writer, field);
                    writer.WriteFieldEnd();
                }

                writer.WriteFieldStop();
                writer.WriteStructEnd(scope);
                break;
            case ListValue { IsSet: true } set:
                writer.WriteSetBegin(set.Element, set.Items.Count);
                foreach (var item in set.Items)
                {
                    Write(ref writer, item);
                }

                writer.WriteSetEnd();
                break;
            case ListValue list:
                writer.WriteListBegin(list.Element, list.Items.Count);
                foreach (var item in list.Items)
                {
                    Write(ref writer, item);
                }

                writer.WriteListEnd();
                break;
            case MapValue map:
                writer.WriteMapBegin(map.KeyType, map.ValueType, map.Entries.Count);
                foreach (var (k, v) in map.Entries)
                {
                    Write(ref writer, k);
                    Write(ref writer, v);
                }

                writer.WriteMapEnd();
                break;
            default:
                throw new InvalidOperationException($"unknown value {value.GetType().Name}");
        }
    }

    // ---- reading ----

    /// <summary>
    /// Reads a value sent as <paramref name="wire"/> that the IDL says is <paramref name="type"/>; a value whose wire
    /// type differs is read by its wire type alone (<see cref="ReadAny{TReader}"/>).
    /// </summary>
    public static JsonNode? Read<TReader>(ref TReader reader, TType wire, ThriftType? type) where TReader : IThriftReader, allows ref struct
    {
        if (type is null or ErrorType || WireType(type) != wire)
        {
            return ReadAny(ref reader, wire);
        }

        switch (type)
        {
            case BaseType b:
                return b.Kind switch
                {
                    BaseKind.Binary => JsonValue.Create(Convert.ToBase64String(reader.ReadBinarySpan())),
                    _ => ReadAny(ref reader, wire),
                };
            case EnumType e:
                var number = reader.ReadI32();
                return e.Symbol.Members.FirstOrDefault(m => m.Value == number) is { } member ? JsonValue.Create(member.Name) : JsonValue.Create(number);
            case StructType s:
                return ReadStruct(ref reader, s.Symbol.Fields);
            case ListType l:
            {
                var header = reader.ReadListBegin();
                var array = new JsonArray();
                for (var i = 0; i < header.Count; i++)
                {
                    array.Add(Read(ref reader, header.ElementType, l.Element));
                }

                reader.ReadListEnd();
                return array;
            }

            case SetType set:
            {
                var header = reader.ReadSetBegin();
                var array = new JsonArray();
                for (var i = 0; i < header.Count; i++)
                {
                    array.Add(Read(ref reader, header.ElementType, set.Element));
                }

                reader.ReadSetEnd();
                return array;
            }

            case MapType m:
            {
                var header = reader.ReadMapBegin();
                var asObject = m.Key is EnumType or BaseType && header.KeyType == WireType(m.Key);
                var obj = new JsonObject();
                var pairs = new JsonArray();
                for (var i = 0; i < header.Count; i++)
                {
                    var key = Read(ref reader, header.KeyType, m.Key);
                    var value = Read(ref reader, header.ValueType, m.Value);
                    if (asObject)
                    {
                        obj[KeyText(key)] = value;
                    }
                    else
                    {
                        pairs.Add(new JsonArray(key, value));
                    }
                }

                reader.ReadMapEnd();
                return asObject ? obj : pairs;
            }

            default:
                return ReadAny(ref reader, wire);
        }
    }

    private static string KeyText(JsonNode? key) => key switch
    {
        null => "null",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => key.ToJsonString(),
    };

    /// <summary>A struct by the IDL's fields: fields it does not know are skipped.</summary>
    public static JsonObject ReadStruct<TReader>(ref TReader reader, List<FieldSymbol> fields) where TReader : IThriftReader, allows ref struct
    {
        var result = new JsonObject();
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var header = reader.ReadFieldBegin();
            if (header.IsStop)
            {
                break;
            }

            FieldSymbol? field = null;
            foreach (var f in fields)
            {
                if (f.Id == header.Id)
                {
                    field = f;
                    break;
                }
            }

            if (field is null || WireType(field.Type) != header.Type)
            {
                reader.Skip(header.Type);
            }
            else
            {
                result[field.Name] = Read(ref reader, header.Type, field.Type);
            }

            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
        return result;
    }

    /// <summary>A value by its wire type alone (a struct as an object by field id, a string as text).</summary>
    public static JsonNode? ReadAny<TReader>(ref TReader reader, TType wire) where TReader : IThriftReader, allows ref struct
    {
        switch (wire)
        {
            case TType.Bool: return JsonValue.Create(reader.ReadBool());
            case TType.Byte: return JsonValue.Create(reader.ReadByte());
            case TType.I16: return JsonValue.Create(reader.ReadI16());
            case TType.I32: return JsonValue.Create(reader.ReadI32());
            case TType.I64: return JsonValue.Create(reader.ReadI64());
            case TType.Double:
                var d = reader.ReadDouble();
                return double.IsFinite(d) ? JsonValue.Create(d) : JsonValue.Create(d.ToString(CultureInfo.InvariantCulture));
            case TType.String: return JsonValue.Create(reader.ReadString());
            case TType.Uuid: return JsonValue.Create(reader.ReadUuid().ToString());
            case TType.Struct:
            {
                var obj = new JsonObject();
                var scope = reader.ReadStructBegin();
                while (true)
                {
                    var header = reader.ReadFieldBegin();
                    if (header.IsStop)
                    {
                        break;
                    }

                    obj[header.Id.ToString(CultureInfo.InvariantCulture)] = ReadAny(ref reader, header.Type);
                    reader.ReadFieldEnd();
                }

                reader.ReadStructEnd(scope);
                return obj;
            }

            case TType.List or TType.Set:
            {
                var header = wire == TType.List ? reader.ReadListBegin() : reader.ReadSetBegin();
                var array = new JsonArray();
                for (var i = 0; i < header.Count; i++)
                {
                    array.Add(ReadAny(ref reader, header.ElementType));
                }

                if (wire == TType.List)
                {
                    reader.ReadListEnd();
                }
                else
                {
                    reader.ReadSetEnd();
                }

                return array;
            }

            case TType.Map:
            {
                var header = reader.ReadMapBegin();
                var pairs = new JsonArray();
                for (var i = 0; i < header.Count; i++)
                {
                    pairs.Add(new JsonArray(ReadAny(ref reader, header.KeyType), ReadAny(ref reader, header.ValueType)));
                }

                reader.ReadMapEnd();
                return pairs;
            }

            default:
                reader.Skip(wire);
                return null;
        }
    }

    // ---- describing ----

    /// <summary>A JSON skeleton of a value of <paramref name="type"/>: what to fill in.</summary>
    public static JsonNode? Skeleton(ThriftType type, HashSet<StructSymbol>? seen = null)
    {
        seen ??= [];
        switch (type)
        {
            case BaseType b:
                return b.Kind switch
                {
                    BaseKind.Bool => JsonValue.Create(false),
                    BaseKind.Byte or BaseKind.I16 or BaseKind.I32 or BaseKind.I64 => JsonValue.Create(0),
                    BaseKind.Double => JsonValue.Create(0.0),
                    BaseKind.String => JsonValue.Create(""),
                    BaseKind.Binary => JsonValue.Create(""), // base64
                    BaseKind.Uuid => JsonValue.Create(Guid.Empty.ToString()),
                    _ => null,
                };
            case EnumType e:
                return JsonValue.Create(e.Symbol.Members.Count > 0 ? e.Symbol.Members[0].Name : "0");
            case StructType s:
                if (!seen.Add(s.Symbol))
                {
                    return new JsonObject(); // recursive: one level is enough
                }

                var obj = new JsonObject();
                foreach (var field in s.Symbol.Fields)
                {
                    obj[field.Name] = Skeleton(field.Type, seen);
                }

                seen.Remove(s.Symbol);
                return obj;
            case ListType l:
                return new JsonArray(Skeleton(l.Element, seen));
            case SetType st:
                return new JsonArray(Skeleton(st.Element, seen));
            case MapType m:
                return m.Key is EnumType or BaseType
                    ? new JsonObject { [KeyText(Skeleton(m.Key, seen))] = Skeleton(m.Value, seen) }
                    : new JsonArray(new JsonArray(Skeleton(m.Key, seen), Skeleton(m.Value, seen)));
            default:
                return null;
        }
    }
}
