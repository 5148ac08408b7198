using System.Text;

namespace Trellis.Thrift.Idl.Emit;

/// <summary>Indented text, four spaces a level, <c>\n</c> line ends.</summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _text = new();
    private int _indent;

    public void Line(string line = "")
    {
        if (line.Length > 0)
        {
            _text.Append(' ', _indent * 4);
        }

        _text.Append(line).Append('\n');
    }

    public void Open(string header)
    {
        Line(header);
        Line("{");
        _indent++;
    }

    public void Close(string suffix = "")
    {
        _indent--;
        Line("}" + suffix);
    }

    public void Doc(string? doc, string tag = "summary")
    {
        if (string.IsNullOrWhiteSpace(doc))
        {
            return;
        }

        Line($"/// <{tag}>");
        foreach (var line in doc!.Split('\n'))
        {
            Line("/// " + CSharpNames.XmlDoc(line.TrimEnd()));
        }

        Line($"/// </{tag.Split(' ')[0]}>");
    }

    public override string ToString() => _text.ToString();
}
