using System.Globalization;
using System.Text;

namespace Trellis.Thrift.Idl.Emit;

/// <summary>Turns IDL names into C# identifiers and values into C# literals.</summary>
internal static class CSharpNames
{
    private static readonly HashSet<string> Keywords =
    [
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const", "continue",
        "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern", "false", "finally",
        "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface", "internal", "is", "lock",
        "long", "namespace", "new", "null", "object", "operator", "out", "override", "params", "private", "protected",
        "public", "readonly", "ref", "return", "sbyte", "sealed", "short", "sizeof", "stackalloc", "static", "string",
        "struct", "switch", "this", "throw", "true", "try", "typeof", "uint", "ulong", "unchecked", "unsafe", "ushort",
        "using", "virtual", "void", "volatile", "while",
    ];

    /// <summary>An identifier as written, with <c>@</c> in front of a C# keyword.</summary>
    public static string Escape(string name) => Keywords.Contains(name) ? "@" + name : name;

    /// <summary><c>snake_case</c> or <c>camelCase</c> to <c>PascalCase</c>: underscores go, the letter after one is raised.</summary>
    public static string Pascal(string name)
    {
        var sb = new StringBuilder(name.Length);
        var upper = true;
        foreach (var c in name)
        {
            if (c == '_')
            {
                upper = true;
                continue;
            }

            sb.Append(upper ? char.ToUpperInvariant(c) : c);
            upper = false;
        }

        var result = sb.Length == 0 ? "_" : sb.ToString();
        return char.IsDigit(result[0]) ? "_" + result : result;
    }

    /// <summary><c>PascalCase</c> with a lower first letter, escaped: parameter names.</summary>
    public static string Camel(string name)
    {
        var pascal = Pascal(name);
        return Escape(pascal.Length == 1 ? pascal.ToLowerInvariant() : char.ToLowerInvariant(pascal[0]) + pascal.Substring(1));
    }

    public static string String(string value)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in value)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\0' => "\\0",
                _ when char.IsControl(c) => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        }

        return sb.Append('"').ToString();
    }

    public static string XmlDoc(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
