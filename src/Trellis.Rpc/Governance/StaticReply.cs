using System.Globalization;
using System.Text.Json;
using Trellis.Thrift;
using Trellis.Thrift.Buffers;

namespace Trellis.Rpc.Governance;

/// <summary>
/// A degraded method's configured answer: a method result struct, encoded once (binary protocol) when the config is
/// read, so that a proxy that never sees the IDL can answer with it (re-encoded to compact for compact callers).
/// </summary>
/// <remarks>
/// The value is written in Apache Thrift's JSON protocol notation (TJSONProtocol), which names each value's type:
/// <c>{"str": "cached"}</c>, <c>{"i32": 0}</c>, <c>{"tf": true}</c>, <c>{"dbl": 1.5}</c>, <c>{"i64": 7}</c>,
/// <c>{"rec": {"1": {"str": "x"}, "2": {"i32": 3}}}</c> (a struct by field id), <c>{"lst": ["i32", 2, 1, 2]}</c>,
/// <c>{"set": ["str", 1, "a"]}</c>, <c>{"map": ["str", "i32", 1, {"a": 1}]}</c>; plus <c>{"bin": "base64"}</c> for
/// binary. Inside containers, elements are bare values (<c>1</c>, <c>"a"</c>, <c>{"1": {...}}</c> for a struct).
/// <c>{}</c> is the reply of a void method.
/// </remarks>
public sealed class StaticReply
{
    private StaticReply(byte[] body, string json)
    {
        BinaryBody = body;
        Json = json;
    }

    /// <summary>The result struct (field 0 = the value), binary protocol.</summary>
    public byte[] BinaryBody { get; }

    /// <summary>The configured value, as written.</summary>
    public string Json { get; }

    public override bool Equals(object? obj) => obj is StaticReply other && other.BinaryBody.AsSpan().SequenceEqual(BinaryBody);

    public override int GetHashCode() => BinaryBody.Length;

    /// <summary>Reads a configured reply; null with a problem added (at <paramref name="path"/>) when it is not valid.</summary>
    public static StaticReply? Parse(JsonElement value, string path, List<string> problems)
    {
        var before = problems.Count;
        using var output = new PooledBufferWriter(256);
        var writer = new ThriftBinaryWriter(output);
        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: must be a typed value such as {{\"str\": \"cached\"}}, or {{}} for a void method");
            return null;
        }

        var fields = value.EnumerateObject().ToList();
        if (fields.Count > 1)
        {
            problems.Add($"{path}: one typed value, such as {{\"i32\": 0}} (found {fields.Count} keys)");
            return null;
        }

        if (fields.Count == 1)
        {
            if (TypeOf(fields[0].Name) is not { } type)
            {
                problems.Add($"{path}.{fields[0].Name}: unknown type (known: {string.Join(", ", TypeNames.Keys)})");
                return null;
            }

            writer.WriteFieldBegin(type, 0);
            WriteValue(ref writer, type, fields[0].Value, $"{path}.{fields[0].Name}", problems, 0, fields[0].Name == "bin");
        }

        writer.WriteFieldStop();
        writer.Flush();
        return problems.Count > before ? null : new StaticReply(output.WrittenSpan.ToArray(), value.GetRawText());
    }

    private static readonly Dictionary<string, TType> TypeNames = new(StringComparer.Ordinal)
    {
        ["tf"] = TType.Bool, ["i8"] = TType.Byte, ["i16"] = TType.I16, ["i32"] = TType.I32, ["i64"] = TType.I64,
        ["dbl"] = TType.Double, ["str"] = TType.String, ["bin"] = TType.String, ["rec"] = TType.Struct,
        ["map"] = TType.Map, ["set"] = TType.Set, ["lst"] = TType.List, ["uuid"] = TType.Uuid,
    };

    private static TType? TypeOf(string name) => TypeNames.TryGetValue(name, out var type) ? type : null;

    private const int MaxDepth = 16;

    private static void WriteValue(ref ThriftBinaryWriter w, TType type, JsonElement v, string path, List<string> problems, int depth, bool binary = false)
    {
        if (depth > MaxDepth)
        {
            problems.Add($"{path}: nested deeper than {MaxDepth}");
            return;
        }

        switch (type)
        {
            case TType.Bool:
                if (v.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    w.WriteBool(v.GetBoolean());
                }
                else if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var b) && b is 0 or 1)
                {
                    w.WriteBool(b == 1); // TJSONProtocol writes booleans as 0/1
                }
                else
                {
                    problems.Add($"{path}: must be true or false");
                }

                break;
            case TType.Byte or TType.I16 or TType.I32 or TType.I64:
                if (Integer(v, Min(type), Max(type), path, problems) is { } n)
                {
                    WriteInteger(ref w, type, n);
                }

                break;
            case TType.Double:
                if (v.ValueKind == JsonValueKind.Number)
                {
                    w.WriteDouble(v.GetDouble());
                }
                else if (v.ValueKind == JsonValueKind.String && v.GetString() is "NaN" or "Infinity" or "-Infinity")
                {
                    w.WriteDouble(double.Parse(v.GetString()!, CultureInfo.InvariantCulture));
                }
                else
                {
                    problems.Add($"{path}: must be a number");
                }

                break;
            case TType.String:
                if (v.ValueKind != JsonValueKind.String)
                {
                    problems.Add($"{path}: must be a string");
                }
                else if (binary)
                {
                    if (v.TryGetBytesFromBase64(out var bytes))
                    {
                        w.WriteBinary(bytes);
                    }
                    else
                    {
                        problems.Add($"{path}: must be base64");
                    }
                }
                else
                {
                    w.WriteString(v.GetString()!);
                }

                break;
            case TType.Uuid:
                if (v.ValueKind == JsonValueKind.String && Guid.TryParse(v.GetString(), out var uuid))
                {
                    w.WriteUuid(uuid);
                }
                else
                {
                    problems.Add($"{path}: must be a UUID string");
                }

                break;
            case TType.Struct:
                WriteStruct(ref w, v, path, problems, depth);
                break;
            case TType.List or TType.Set:
                WriteList(ref w, type, v, path, problems, depth);
                break;
            case TType.Map:
                WriteMap(ref w, v, path, problems, depth);
                break;
        }
    }

    private static void WriteStruct(ref ThriftBinaryWriter w, JsonElement v, string path, List<string> problems, int depth)
    {
        if (v.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{path}: a struct is an object of field id → typed value, such as {{\"1\": {{\"str\": \"x\"}}}}");
            return;
        }

        var seen = new HashSet<short>();
        foreach (var field in v.EnumerateObject())
        {
            var fieldPath = $"{path}.{field.Name}";
            if (!short.TryParse(field.Name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id) || !seen.Add(id))
            {
                problems.Add($"{fieldPath}: not a field id (a number from -32768 to 32767, once each)");
                continue;
            }

            var typed = field.Value.ValueKind == JsonValueKind.Object ? field.Value.EnumerateObject().ToList() : [];
            if (typed.Count != 1 || TypeOf(typed[0].Name) is not { } type)
            {
                problems.Add($"{fieldPath}: must be one typed value such as {{\"i32\": 1}}");
                continue;
            }

            w.WriteFieldBegin(type, id);
            WriteValue(ref w, type, typed[0].Value, $"{fieldPath}.{typed[0].Name}", problems, depth + 1, typed[0].Name == "bin");
        }

        w.WriteFieldStop();
    }

    private static void WriteList(ref ThriftBinaryWriter w, TType kind, JsonElement v, string path, List<string> problems, int depth)
    {
        // TJSONProtocol: [elementType, count, elements...]
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() < 2 || v[0].ValueKind != JsonValueKind.String || TypeOf(v[0].GetString()!) is not { } element
            || v[1].ValueKind != JsonValueKind.Number || !v[1].TryGetInt32(out var count) || count != v.GetArrayLength() - 2)
        {
            problems.Add($"{path}: must be [elementType, count, elements…] with count elements, such as [\"i32\", 2, 1, 2]");
            return;
        }

        if (kind == TType.Set)
        {
            w.WriteSetBegin(element, count);
        }
        else
        {
            w.WriteListBegin(element, count);
        }

        for (var i = 0; i < count; i++)
        {
            WriteValue(ref w, element, v[i + 2], $"{path}[{i + 2}]", problems, depth + 1, v[0].GetString() == "bin");
        }
    }

    private static void WriteMap(ref ThriftBinaryWriter w, JsonElement v, string path, List<string> problems, int depth)
    {
        // TJSONProtocol: [keyType, valueType, count, {key: value, ...}] (keys are JSON strings)
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 4 || v[0].ValueKind != JsonValueKind.String || TypeOf(v[0].GetString()!) is not { } keyType
            || v[1].ValueKind != JsonValueKind.String || TypeOf(v[1].GetString()!) is not { } valueType
            || v[2].ValueKind != JsonValueKind.Number || !v[2].TryGetInt32(out var count) || v[3].ValueKind != JsonValueKind.Object
            || v[3].EnumerateObject().Count() != count)
        {
            problems.Add($"{path}: must be [keyType, valueType, count, {{key: value…}}] with count entries, such as [\"str\", \"i32\", 1, {{\"a\": 1}}]");
            return;
        }

        if (keyType is TType.Struct or TType.Map or TType.Set or TType.List)
        {
            problems.Add($"{path}: map keys must be of a scalar type");
            return;
        }

        w.WriteMapBegin(keyType, valueType, count);
        foreach (var pair in v[3].EnumerateObject())
        {
            WriteKey(ref w, keyType, pair.Name, $"{path}[3].{pair.Name}", problems);
            WriteValue(ref w, valueType, pair.Value, $"{path}[3].{pair.Name}", problems, depth + 1, v[1].GetString() == "bin");
        }
    }

    private static void WriteKey(ref ThriftBinaryWriter w, TType type, string key, string path, List<string> problems)
    {
        var ok = true;
        switch (type)
        {
            case TType.String:
                w.WriteString(key);
                break;
            case TType.Bool:
                ok = key is "true" or "false" or "0" or "1";
                w.WriteBool(key is "true" or "1");
                break;
            case TType.Byte or TType.I16 or TType.I32 or TType.I64:
                ok = long.TryParse(key, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= Min(type) && n <= Max(type);
                WriteInteger(ref w, type, n);
                break;
            case TType.Double:
                ok = double.TryParse(key, NumberStyles.Float, CultureInfo.InvariantCulture, out var d);
                w.WriteDouble(d);
                break;
            case TType.Uuid:
                ok = Guid.TryParse(key, out var g);
                w.WriteUuid(g);
                break;
        }

        if (!ok)
        {
            problems.Add($"{path}: the key is not a {type}");
        }
    }

    private static void WriteInteger(ref ThriftBinaryWriter w, TType type, long n)
    {
        switch (type)
        {
            case TType.Byte: w.WriteByte((sbyte)n); break;
            case TType.I16: w.WriteI16((short)n); break;
            case TType.I32: w.WriteI32((int)n); break;
            default: w.WriteI64(n); break;
        }
    }

    private static long Min(TType type) => type switch { TType.Byte => sbyte.MinValue, TType.I16 => short.MinValue, TType.I32 => int.MinValue, _ => long.MinValue };

    private static long Max(TType type) => type switch { TType.Byte => sbyte.MaxValue, TType.I16 => short.MaxValue, TType.I32 => int.MaxValue, _ => long.MaxValue };

    private static long? Integer(JsonElement v, long min, long max, string path, List<string> problems)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= min && n <= max)
        {
            return n;
        }

        problems.Add($"{path}: must be a whole number from {min} to {max}");
        return null;
    }
}
