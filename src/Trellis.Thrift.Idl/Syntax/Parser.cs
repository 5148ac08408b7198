namespace Trellis.Thrift.Idl.Syntax;

/// <summary>
/// Recursive-descent parser for Apache Thrift IDL (the grammar of thrift 0.17's thrifty.yy, including
/// annotations, doc comments, <c>cpp_type</c>/<c>xsd</c> remnants and <c>senum</c>). A syntax error is
/// reported and parsing resumes at the next top-level keyword, so one run reports several errors.
/// </summary>
public sealed class Parser
{
    private static readonly HashSet<string> TopLevel = ["include", "cpp_include", "namespace", "const", "typedef", "enum", "senum", "struct", "union", "exception", "service"];
    private static readonly HashSet<string> BaseTypes = ["bool", "byte", "i8", "i16", "i32", "i64", "double", "string", "binary", "uuid", "slist"];

    private readonly List<Token> _tokens;
    private readonly DiagnosticBag _diagnostics;
    private int _pos;

    private Parser(List<Token> tokens, DiagnosticBag diagnostics)
    {
        _tokens = tokens;
        _diagnostics = diagnostics;
    }

    public static ThriftDocument Parse(string path, string text, DiagnosticBag diagnostics)
    {
        var tokens = new Lexer(path, text, diagnostics).Tokenize();
        return new Parser(tokens, diagnostics).ParseDocument(path);
    }

    private sealed class SyntaxError : Exception
    {
    }

    private Token Current => _tokens[_pos];

    private Token Next()
    {
        var token = _tokens[_pos];
        if (_pos < _tokens.Count - 1)
        {
            _pos++; // the end-of-file token is never passed
        }

        return token;
    }

    private ThriftDocument ParseDocument(string path)
    {
        var document = new ThriftDocument(path);
        while (Current.Kind != TokenKind.EndOfFile)
        {
            try
            {
                ParseTopLevel(document);
            }
            catch (SyntaxError)
            {
                Recover();
            }
        }

        return document;
    }

    private void Recover()
    {
        // skip at least one token, then up to the next top-level keyword
        if (Current.Kind == TokenKind.EndOfFile)
        {
            return;
        }

        Next();
        while (Current.Kind != TokenKind.EndOfFile && !(Current.Kind == TokenKind.Identifier && TopLevel.Contains(Current.Text)))
        {
            Next();
        }
    }

    private void ParseTopLevel(ThriftDocument document)
    {
        var token = Current;
        if (token.Kind != TokenKind.Identifier || !TopLevel.Contains(token.Text))
        {
            Fail(token, $"expected a definition (struct, union, exception, enum, const, typedef, service) or a header, found {token}");
        }

        Next();
        switch (token.Text)
        {
            case "include":
                document.Includes.Add(new IncludeDirective(ExpectString("the included file's path"), token.Location));
                break;
            case "cpp_include":
                ExpectString("a C++ include path");
                break;
            case "namespace":
                var scopeToken = Current;
                string scope;
                if (scopeToken.Is("*"))
                {
                    Next();
                    scope = "*";
                }
                else
                {
                    scope = ExpectIdentifier("a namespace scope (netstd, csharp, py, * …)");
                }

                var name = ExpectIdentifier("a namespace name");
                ParseAnnotations();
                document.Namespaces.Add(new NamespaceDirective(scope, name, token.Location));
                break;
            case "typedef":
                var type = ParseFieldType();
                var alias = ExpectIdentifier("the typedef's name");
                var typedefAnnotations = ParseAnnotations();
                SkipListSeparator();
                document.Definitions.Add(new TypedefDefinition(alias, token.Location, type) { Doc = token.Doc, Annotations = typedefAnnotations });
                break;
            case "const":
                var constType = ParseFieldType();
                var constName = ExpectIdentifier("the constant's name");
                Expect("=");
                var value = ParseConstValue();
                SkipListSeparator();
                document.Definitions.Add(new ConstDefinition(constName, token.Location, constType, value) { Doc = token.Doc });
                break;
            case "enum":
                document.Definitions.Add(ParseEnum(token));
                break;
            case "senum":
                _diagnostics.Warning(Codes.Deprecated, token.Location, "senum is deprecated and ignored");
                ExpectIdentifier("the senum's name");
                Expect("{");
                while (!Current.Is("}") && Current.Kind != TokenKind.EndOfFile)
                {
                    Next();
                }

                Expect("}");
                ParseAnnotations();
                break;
            case "struct":
            case "union":
            case "exception":
                document.Definitions.Add(ParseStruct(token));
                break;
            case "service":
                document.Definitions.Add(ParseService(token));
                break;
        }
    }

    private EnumDefinition ParseEnum(Token keyword)
    {
        var name = ExpectIdentifier("the enum's name");
        Expect("{");
        var members = new List<EnumMember>();
        while (!Current.Is("}"))
        {
            var memberToken = Current;
            var memberName = ExpectIdentifier("an enum member name or '}'");
            long? value = null;
            if (Current.Is("="))
            {
                Next();
                var number = Next();
                if (number.Kind != TokenKind.Integer)
                {
                    Fail(number, $"expected an integer enum value, found {number}");
                }

                value = number.IntegerValue;
            }

            var annotations = ParseAnnotations();
            SkipListSeparator();
            members.Add(new EnumMember(memberName, value, memberToken.Location, memberToken.Doc, annotations));
        }

        Expect("}");
        return new EnumDefinition(name, keyword.Location, members) { Doc = keyword.Doc, Annotations = ParseAnnotations() };
    }

    private StructDefinition ParseStruct(Token keyword)
    {
        var kind = keyword.Text switch { "union" => StructKind.Union, "exception" => StructKind.Exception, _ => StructKind.Struct };
        var name = ExpectIdentifier($"the {keyword.Text}'s name");
        if (Current.Is("xsd_all"))
        {
            Next();
        }

        Expect("{");
        var fields = ParseFields("}");
        Expect("}");
        return new StructDefinition(name, keyword.Location, kind, fields) { Doc = keyword.Doc, Annotations = ParseAnnotations() };
    }

    private List<FieldDefinition> ParseFields(string end)
    {
        var fields = new List<FieldDefinition>();
        while (!Current.Is(end))
        {
            if (Current.Kind == TokenKind.EndOfFile)
            {
                Fail(Current, $"expected a field or '{end}', found end of file");
            }

            fields.Add(ParseField());
        }

        return fields;
    }

    private FieldDefinition ParseField()
    {
        var first = Current;
        int? id = null;
        if (Current.Kind == TokenKind.Integer)
        {
            var number = Next();
            Expect(":");
            if (number.IntegerValue is < short.MinValue or > short.MaxValue)
            {
                _diagnostics.Error(Codes.BadFieldId, number.Location, $"field id {number.Text} does not fit 16 bits");
            }

            id = (int)Math.Max(Math.Min(number.IntegerValue, int.MaxValue), int.MinValue);
        }

        var requiredness = Requiredness.Default;
        if (Current.Is("required") || Current.Is("optional"))
        {
            requiredness = Next().Text == "required" ? Requiredness.Required : Requiredness.Optional;
        }

        var type = ParseFieldType();
        var nameToken = Current;
        var name = ExpectIdentifier("the field's name");
        ConstValue? defaultValue = null;
        if (Current.Is("="))
        {
            Next();
            defaultValue = ParseConstValue();
        }

        // xsd_optional, xsd_nillable, xsd_attrs { ... }: accepted and ignored, as Apache does
        while (Current.Is("xsd_optional") || Current.Is("xsd_nillable"))
        {
            Next();
        }

        if (Current.Is("xsd_attrs"))
        {
            Next();
            Expect("{");
            ParseFields("}");
            Expect("}");
        }

        var annotations = ParseAnnotations();
        SkipListSeparator();
        return new FieldDefinition(id, requiredness, type, name, defaultValue, nameToken.Location, first.Doc, annotations);
    }

    private ServiceDefinition ParseService(Token keyword)
    {
        var name = ExpectIdentifier("the service's name");
        string? extends = null;
        SourceLocation? extendsAt = null;
        if (Current.Is("extends"))
        {
            Next();
            extendsAt = Current.Location;
            extends = ExpectIdentifier("the extended service's name");
        }

        Expect("{");
        var functions = new List<FunctionDefinition>();
        while (!Current.Is("}"))
        {
            if (Current.Kind == TokenKind.EndOfFile)
            {
                Fail(Current, "expected a function or '}', found end of file");
            }

            functions.Add(ParseFunction());
        }

        Expect("}");
        return new ServiceDefinition(name, keyword.Location, extends, extendsAt, functions) { Doc = keyword.Doc, Annotations = ParseAnnotations() };
    }

    private FunctionDefinition ParseFunction()
    {
        var first = Current;
        var oneway = false;
        if (Current.Is("oneway") || Current.Is("async"))
        {
            oneway = true;
            Next();
        }

        TypeReference? returnType = null;
        if (Current.Is("void"))
        {
            Next();
        }
        else
        {
            returnType = ParseFieldType();
        }

        var nameToken = Current;
        var name = ExpectIdentifier("the function's name");
        Expect("(");
        var arguments = ParseFields(")");
        Expect(")");
        var throws = new List<FieldDefinition>();
        if (Current.Is("throws"))
        {
            Next();
            Expect("(");
            throws = ParseFields(")");
            Expect(")");
        }

        var annotations = ParseAnnotations();
        SkipListSeparator();
        return new FunctionDefinition(name, oneway, returnType, arguments, throws, nameToken.Location, first.Doc, annotations);
    }

    private TypeReference ParseFieldType()
    {
        var token = Current;
        if (token.Kind != TokenKind.Identifier)
        {
            Fail(token, $"expected a type, found {token}");
        }

        Next();
        TypeReference type;
        switch (token.Text)
        {
            case "map":
                SkipCppType();
                Expect("<");
                var key = ParseFieldType();
                Expect(",");
                var value = ParseFieldType();
                Expect(">");
                type = new MapTypeReference(key, value, token.Location);
                break;
            case "set":
                SkipCppType();
                Expect("<");
                var setElement = ParseFieldType();
                Expect(">");
                type = new SetTypeReference(setElement, token.Location);
                break;
            case "list":
                Expect("<");
                var listElement = ParseFieldType();
                Expect(">");
                SkipCppType();
                type = new ListTypeReference(listElement, token.Location);
                break;
            default:
                type = BaseTypes.Contains(token.Text)
                    ? new BaseTypeReference(token.Text == "slist" ? "string" : token.Text, token.Location)
                    : new NamedTypeReference(token.Text, token.Location);
                break;
        }

        var annotations = ParseAnnotations();
        return annotations.Count == 0 ? type : type with { Annotations = annotations };
    }

    private void SkipCppType()
    {
        if (Current.Is("cpp_type"))
        {
            Next();
            ExpectString("a C++ type");
        }
    }

    private ConstValue ParseConstValue()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.Integer:
                return new IntConstValue(token.IntegerValue, token.Location);
            case TokenKind.Double:
                return new DoubleConstValue(token.DoubleValue, token.Location);
            case TokenKind.String:
                return new StringConstValue(token.Text, token.Location);
            case TokenKind.Identifier:
                return new IdentifierConstValue(token.Text, token.Location);
        }

        if (token.Is("["))
        {
            var items = new List<ConstValue>();
            while (!Current.Is("]"))
            {
                if (Current.Kind == TokenKind.EndOfFile)
                {
                    Fail(Current, "expected a list value or ']', found end of file");
                }

                items.Add(ParseConstValue());
                SkipListSeparator();
            }

            Next();
            return new ListConstValue(items, token.Location);
        }

        if (token.Is("{"))
        {
            var entries = new List<KeyValuePair<ConstValue, ConstValue>>();
            while (!Current.Is("}"))
            {
                if (Current.Kind == TokenKind.EndOfFile)
                {
                    Fail(Current, "expected a map entry or '}', found end of file");
                }

                var key = ParseConstValue();
                Expect(":");
                entries.Add(new(key, ParseConstValue()));
                SkipListSeparator();
            }

            Next();
            return new MapConstValue(entries, token.Location);
        }

        return Fail<ConstValue>(token, $"expected a constant value, found {token}");
    }

    private List<Annotation> ParseAnnotations()
    {
        var annotations = new List<Annotation>();
        if (!Current.Is("("))
        {
            return annotations;
        }

        Next();
        while (!Current.Is(")"))
        {
            var keyToken = Current;
            var key = ExpectIdentifier("an annotation name or ')'");
            var value = "1";
            if (Current.Is("="))
            {
                Next();
                value = ExpectString("the annotation's value (a string literal)");
            }

            annotations.Add(new Annotation(key, value, keyToken.Location));
            SkipListSeparator();
        }

        Next();
        return annotations;
    }

    private void SkipListSeparator()
    {
        if (Current.Is(",") || Current.Is(";"))
        {
            Next();
        }
    }

    private void Expect(string punct)
    {
        if (!Current.Is(punct))
        {
            Fail(Current, $"expected '{punct}', found {Current}");
        }

        Next();
    }

    private string ExpectIdentifier(string what)
    {
        if (Current.Kind != TokenKind.Identifier)
        {
            Fail(Current, $"expected {what}, found {Current}");
        }

        return Next().Text;
    }

    private string ExpectString(string what)
    {
        if (Current.Kind != TokenKind.String)
        {
            Fail(Current, $"expected {what}, found {Current}");
        }

        return Next().Text;
    }

    private void Fail(Token at, string message) => Fail<object>(at, message);

    private T Fail<T>(Token at, string message)
    {
        _diagnostics.Error(Codes.Syntax, at.Location, message);
        throw new SyntaxError();
    }
}
