using System.Collections;
using System.Globalization;
using System.Text;

namespace Trellis.Thrift;

/// <summary>The <c>ToString</c> of generated structs: <c>Name(field: value, …)</c>, containers and binaries readable.</summary>
public static class ThriftFormatting
{
    private const int MaxBinaryBytes = 32;

    public static void Append(StringBuilder builder, object? value)
    {
        ArgumentNullException.ThrowIfNull(builder);
        switch (value)
        {
            case null:
                builder.Append("null");
                break;
            case string s:
                builder.Append('"').Append(s).Append('"');
                break;
            case bool b:
                builder.Append(b ? "true" : "false");
                break;
            case byte[] bytes:
                builder.Append("0x").Append(Convert.ToHexString(bytes, 0, Math.Min(bytes.Length, MaxBinaryBytes)));
                if (bytes.Length > MaxBinaryBytes)
                {
                    builder.Append("…(").Append(bytes.Length).Append(" bytes)");
                }

                break;
            case IFormattable f:
                builder.Append(f.ToString(null, CultureInfo.InvariantCulture));
                break;
            case IDictionary map:
                builder.Append('{');
                var first = true;
                foreach (DictionaryEntry entry in map)
                {
                    builder.Append(first ? "" : ", ");
                    first = false;
                    Append(builder, entry.Key);
                    builder.Append(": ");
                    Append(builder, entry.Value);
                }

                builder.Append('}');
                break;
            case IEnumerable items:
                var isList = value is IList;
                builder.Append(isList ? '[' : '{');
                var firstItem = true;
                foreach (var item in items)
                {
                    builder.Append(firstItem ? "" : ", ");
                    firstItem = false;
                    Append(builder, item);
                }

                builder.Append(isList ? ']' : '}');
                break;
            default:
                builder.Append(value);
                break;
        }
    }
}
