using System.Globalization;
using System.Text;

namespace Trellis.Thrift.Idl.Syntax;

public enum TokenKind
{
    EndOfFile,
    Identifier,
    Integer,
    Double,
    String,
    Punct,
}

public readonly record struct Token(TokenKind Kind, string Text, SourceLocation Location, string? Doc = null)
{
    public long IntegerValue { get; init; }
    public double DoubleValue { get; init; }

    public bool Is(string punctOrWord) => (Kind == TokenKind.Punct || Kind == TokenKind.Identifier) && Text == punctOrWord;

    public override string ToString() => Kind switch
    {
        TokenKind.EndOfFile => "end of file",
        TokenKind.String => $"string \"{Text}\"",
        _ => $"'{Text}'",
    };
}

/// <summary>
/// Splits an IDL file into tokens. Comments are <c>//</c>, <c>#</c> and <c>/* */</c>; a <c>/** */</c>
/// block or a run of <c>///</c> lines is a doc comment, carried on the next token.
/// </summary>
public sealed class Lexer
{
    private const string Punctuation = "{}[]()<>,;:=*";

    private readonly string _text;
    private readonly string _file;
    private readonly DiagnosticBag _diagnostics;
    private int _pos;
    private int _line = 1;
    private int _lineStart;

    public Lexer(string file, string text, DiagnosticBag diagnostics)
    {
        _file = file;
        _text = text;
        _diagnostics = diagnostics;
    }

    public List<Token> Tokenize()
    {
        var tokens = new List<Token>();
        while (true)
        {
            var doc = SkipTrivia();
            var at = Here();
            if (_pos >= _text.Length)
            {
                tokens.Add(new Token(TokenKind.EndOfFile, "", at, doc));
                return tokens;
            }

            var c = _text[_pos];
            if (char.IsLetter(c) || c == '_')
            {
                tokens.Add(new Token(TokenKind.Identifier, ReadIdentifier(), at, doc));
            }
            else if (char.IsDigit(c) || ((c == '-' || c == '+' || c == '.') && _pos + 1 < _text.Length && (char.IsDigit(_text[_pos + 1]) || _text[_pos + 1] == '.')))
            {
                tokens.Add(ReadNumber(at, doc));
            }
            else if (c == '"' || c == '\'')
            {
                tokens.Add(new Token(TokenKind.String, ReadString(at), at, doc));
            }
            else if (Punctuation.IndexOf(c) >= 0)
            {
                _pos++;
                tokens.Add(new Token(TokenKind.Punct, c.ToString(), at, doc));
            }
            else
            {
                _diagnostics.Error(Codes.UnexpectedCharacter, at, $"unexpected character '{c}'");
                _pos++;
            }
        }
    }

    private SourceLocation Here() => new(_file, _line, _pos - _lineStart + 1);

    private void Advance()
    {
        if (_text[_pos] == '\n')
        {
            _line++;
            _lineStart = _pos + 1;
        }

        _pos++;
    }

    private string? SkipTrivia()
    {
        string? doc = null;
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (char.IsWhiteSpace(c))
            {
                Advance();
            }
            else if (c == '#' || (c == '/' && Peek(1) == '/'))
            {
                var isDoc = c == '/' && Peek(2) == '/' && Peek(3) != '/';
                var start = _pos + (isDoc ? 3 : 0);
                while (_pos < _text.Length && _text[_pos] != '\n')
                {
                    _pos++;
                }

                if (isDoc)
                {
                    var line = _text.Substring(start, _pos - start).Trim();
                    doc = doc is null ? line : doc + "\n" + line;
                }
            }
            else if (c == '/' && Peek(1) == '*')
            {
                var at = Here();
                var isDoc = Peek(2) == '*' && Peek(3) != '/';
                Advance();
                Advance();
                var start = _pos;
                while (_pos < _text.Length && !(_text[_pos] == '*' && Peek(1) == '/'))
                {
                    Advance();
                }

                if (_pos >= _text.Length)
                {
                    _diagnostics.Error(Codes.UnterminatedComment, at, "comment is not closed with */");
                    return doc;
                }

                var body = _text.Substring(start, _pos - start);
                Advance();
                Advance();
                doc = isDoc ? CleanDoc(body) : doc;
            }
            else
            {
                break;
            }
        }

        return doc;
    }

    /// <summary>Strips the leading <c>*</c> of each line of a <c>/** */</c> block.</summary>
    private static string CleanDoc(string body)
    {
        var lines = body.Split('\n')
            .Select(l => l.Trim())
            .Select(l => l.StartsWith("*", StringComparison.Ordinal) ? l.Substring(1).TrimStart() : l)
            .ToList();
        while (lines.Count > 0 && lines[0].Length == 0) lines.RemoveAt(0);
        while (lines.Count > 0 && lines[lines.Count - 1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return string.Join("\n", lines);
    }

    private char Peek(int offset) => _pos + offset < _text.Length ? _text[_pos + offset] : '\0';

    private string ReadIdentifier()
    {
        var start = _pos;
        while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] == '_' ||
               (_text[_pos] == '.' && (char.IsLetterOrDigit(Peek(1)) || Peek(1) == '_'))))
        {
            _pos++;
        }

        return _text.Substring(start, _pos - start);
    }

    private Token ReadNumber(SourceLocation at, string? doc)
    {
        var start = _pos;
        if (_text[_pos] is '+' or '-')
        {
            _pos++;
        }

        if (_text[_pos] == '0' && (Peek(1) == 'x' || Peek(1) == 'X'))
        {
            _pos += 2;
            var digits = _pos;
            while (_pos < _text.Length && Uri.IsHexDigit(_text[_pos])) _pos++;
            var text = _text.Substring(start, _pos - start);
            var negative = text[0] == '-';
            if (_pos == digits || !ulong.TryParse(_text.Substring(digits, _pos - digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hex) ||
                hex > (negative ? 1UL << 63 : long.MaxValue))
            {
                _diagnostics.Error(Codes.BadNumber, at, $"'{text}' is not a 64-bit integer");
                return new Token(TokenKind.Integer, text, at, doc);
            }

            return new Token(TokenKind.Integer, text, at, doc) { IntegerValue = negative ? unchecked(-(long)hex) : (long)hex };
        }

        var isDouble = false;
        while (_pos < _text.Length && char.IsDigit(_text[_pos])) _pos++;
        if (_pos < _text.Length && _text[_pos] == '.' && char.IsDigit(Peek(1)))
        {
            isDouble = true;
            _pos++;
            while (_pos < _text.Length && char.IsDigit(_text[_pos])) _pos++;
        }

        if (_pos < _text.Length && (_text[_pos] == 'e' || _text[_pos] == 'E') &&
            (char.IsDigit(Peek(1)) || ((Peek(1) == '-' || Peek(1) == '+') && char.IsDigit(Peek(2)))))
        {
            isDouble = true;
            _pos += 2;
            while (_pos < _text.Length && char.IsDigit(_text[_pos])) _pos++;
        }

        var number = _text.Substring(start, _pos - start);
        if (isDouble)
        {
            double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var d);
            return new Token(TokenKind.Double, number, at, doc) { DoubleValue = d };
        }

        if (!long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            _diagnostics.Error(Codes.BadNumber, at, $"'{number}' is not a 64-bit integer");
        }

        return new Token(TokenKind.Integer, number, at, doc) { IntegerValue = value };
    }

    private string ReadString(SourceLocation at)
    {
        var quote = _text[_pos];
        _pos++;
        var sb = new StringBuilder();
        while (_pos < _text.Length && _text[_pos] != quote)
        {
            if (_text[_pos] == '\n')
            {
                break;
            }

            if (_text[_pos] == '\\' && _pos + 1 < _text.Length)
            {
                _pos++;
                sb.Append(_text[_pos] switch
                {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    var other => other,
                });
                _pos++;
                continue;
            }

            sb.Append(_text[_pos]);
            _pos++;
        }

        if (_pos >= _text.Length || _text[_pos] != quote)
        {
            _diagnostics.Error(Codes.UnterminatedString, at, "string literal is not closed on its line");
            return sb.ToString();
        }

        _pos++;
        return sb.ToString();
    }
}
