using Trellis.Thrift.Idl.Syntax;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>Bad IDL gets errors that say where (file:line:column) and what, several in one run.</summary>
public class DiagnosticsTests
{
    private static string Single(string idl)
    {
        var errors = Idl.Compile(idl).Errors().ToList();
        Assert.True(errors.Count == 1, "expected one error, got:\n" + string.Join("\n", errors));
        return errors[0];
    }

    [Theory]
    [InlineData("struct S {\n  1: Missing m\n}", "main.thrift:2:6 TRL0021 undefined type 'Missing'")]
    [InlineData("struct S {\n  1: i32 a\n  1: i32 b\n}", "main.thrift:3:10 TRL0023 field id 1 of struct S.b is already used by a")]
    [InlineData("struct S {\n  1: i32 a\n  2: i64 a\n}", "main.thrift:3:10 TRL0024 struct S has two fields named 'a'")]
    [InlineData("const i8 X = 300", "main.thrift:1:14 TRL0027 300 is out of range for byte")]
    [InlineData("const i32 X = \"text\"", "main.thrift:1:15 TRL0027 \"text\" is not a valid i32")]
    [InlineData("const list<i32> X = [1, 2.5]", "main.thrift:1:25 TRL0027 2.5 is not a valid i32")]
    [InlineData("struct P { 1: i32 x }\nconst P X = {\"y\": 1}", "main.thrift:2:14 TRL0027 P has no field 'y'")]
    [InlineData("enum E { A = 1, B = 1 }", "main.thrift:1:17 TRL0028 E.B has the value 1 of E.A")]
    [InlineData("struct S { 0: i32 a }", "main.thrift:1:19 TRL0025 field id 0 of struct S.a must be between 1 and 32767")]
    [InlineData("struct S { 1: i32 a }\nservice X { void f() throws (1: S s) }", "main.thrift:2:35 TRL0030 X.f throws S, which is not an exception")]
    [InlineData("service X { oneway i32 f() }", "main.thrift:1:24 TRL0031 oneway function X.f must return void and throw nothing: nobody receives a reply")]
    [InlineData("service X extends Nope { }", "main.thrift:1:19 TRL0032 service X extends 'Nope', which is not a service")]
    [InlineData("service A { void f() }\nservice B extends A { void f() }", "main.thrift:2:28 TRL0033 B.f has the name of an inherited function")]
    [InlineData("union U { 1: required i32 a }", "main.thrift:1:27 TRL0034 union field union U.a cannot be required: a union holds one field at a time")]
    [InlineData("typedef A B\ntypedef B A\nstruct S { 1: A a }", "main.thrift:2:1 TRL0036 typedef A refers to itself")]
    [InlineData("struct S { 1: i32 a }\nstruct S { 1: i32 b }", "main.thrift:2:1 TRL0020 'S' is already defined in main.thrift")]
    [InlineData("const i32 X = Y", "main.thrift:1:15 TRL0022 undefined constant 'Y'")]
    [InlineData("struct S { 1: i32 a = \"x\" }", "main.thrift:1:23 TRL0027 \"x\" is not a valid i32")]
    [InlineData("struct s { 1: string name }\nstruct T { 1: S s }", "main.thrift:2:15 TRL0021 undefined type 'S' (did you mean 's'?)")]
    public void SemanticErrors_SayWhereAndWhat(string idl, string expected)
    {
        Assert.Equal(expected, Single(idl));
    }

    [Theory]
    [InlineData("struct S {\n  1: i32\n}", "main.thrift:3:1 TRL0001 expected the field's name, found '}'")]
    [InlineData("struct S { 1: i32 a ", "main.thrift:1:21 TRL0001 expected a field or '}', found end of file")]
    [InlineData("strukt S {}", "main.thrift:1:1 TRL0001 expected a definition (struct, union, exception, enum, const, typedef, service) or a header, found 'strukt'")]
    [InlineData("const string S = \"open", "main.thrift:1:18 TRL0002 string literal is not closed on its line")]
    [InlineData("/* never closed", "main.thrift:1:1 TRL0003 comment is not closed with */")]
    [InlineData("struct S { 1: i32 a = 99999999999999999999 }", "main.thrift:1:23 TRL0004 '99999999999999999999' is not a 64-bit integer")]
    [InlineData("struct S { 1: i32 a } $", "main.thrift:1:23 TRL0005 unexpected character '$'")]
    public void SyntaxErrors_SayWhereAndWhat(string idl, string expected)
    {
        Assert.Equal(expected, Idl.Compile(idl).Errors().First());
    }

    [Fact]
    public void SeveralErrors_AreReportedInOneRun()
    {
        var program = Idl.Compile("""
            struct A {
              1: Undefined x
              1: i32 y
            }
            strukt B { }
            struct C {
              1: AlsoUndefined z
            }
            const i16 BIG = 100000
            """);
        var errors = program.Errors().ToList();
        Assert.Contains(errors, e => e.StartsWith("main.thrift:2:6 TRL0021", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("main.thrift:3:10 TRL0023", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("main.thrift:5:1 TRL0001", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("main.thrift:7:6 TRL0021", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("main.thrift:9:17 TRL0027", StringComparison.Ordinal));
    }

    [Fact]
    public void Includes_ResolveRelativePaths_AndReportCycles()
    {
        var ok = Idl.Compile(("main.thrift", "include \"sub/types.thrift\"\nstruct S { 1: types.T t }"),
            ("sub/types.thrift", "include \"../common.thrift\"\nstruct T { 1: common.C c }"),
            ("common.thrift", "struct C { 1: i32 x }"));
        Assert.Empty(ok.Errors());
        Assert.Equal(["common.thrift", "types.thrift", "main.thrift"], ok.Files.Select(f => Path.GetFileName(f.Path)));

        var cycle = Idl.Compile(("a.thrift", "include \"b.thrift\""), ("b.thrift", "include \"a.thrift\""));
        Assert.Equal(["b.thrift:1:1 TRL0011 include cycle: a.thrift -> b.thrift -> a.thrift"], cycle.Errors());

        var missing = Idl.Compile(("a.thrift", "include \"gone.thrift\""));
        Assert.Equal(["a.thrift:1:1 TRL0010 included file not found: /idl/gone.thrift"], missing.Errors());

        var wrongPrefix = Idl.Compile(("main.thrift", "include \"common.thrift\"\nstruct S { 1: other.C c }"), ("common.thrift", "struct C { 1: i32 x }"));
        Assert.Equal(["main.thrift:2:15 TRL0021 undefined type 'other.C' (no included file is named 'other')"], wrongPrefix.Errors());
    }

    [Fact]
    public void ImplicitFieldIds_AreAssignedNegative_WithAWarning()
    {
        var program = Idl.Compile("struct S { i32 a, i32 b }");
        Assert.Empty(program.Errors());
        Assert.Equal(2, program.Diagnostics.Count(d => d.Code == Codes.ImplicitFieldId));
        Assert.Equal(new short[] { -1, -2 }, program.Files[0].Structs[0].Fields.Select(f => f.Id));
    }

    [Fact]
    public void Parser_ReadsTheWholeGrammar()
    {
        var program = Idl.Compile("""
            namespace netstd My.Space
            namespace * Everyone
            namespace py my.space
            cpp_include "<vector>"
            /** Doc for E. */
            enum E { A, B = 5, C (deprecated = "yes"); D }
            senum Old { "a", "b" }
            typedef map<string, list<set<i32>>> Deep (python.type = "dict")
            const Deep EMPTY = {}
            const E FAVOURITE = E.B
            const double SCI = -1.5e-3
            const i64 HEX = 0x7FFFFFFFFFFFFFFF
            const string Q = 'single "quoted"'
            struct S xsd_all {
              /// Field doc.
              1: required i32 a = 1 (key = "v"),
              2: optional list<i32> cpp_type "std::vector<int>" b;
              3: map cpp_type "std::map" <i32, i32> c
            } (final)
            exception X { 1: string why }
            service Svc {
              async void legacy(1: i32 x)
              i32 f(1: i32 a, 2: S s) throws (1: X x) (idempotent)
            }
            """);
        Assert.Empty(program.Errors());
        var file = program.Files[0];
        Assert.Equal("My.Space", file.Namespace);
        Assert.Equal([0, 5, 6, 7], file.Enums[0].Members.Select(m => m.Value));
        Assert.Equal("Doc for E.", file.Enums[0].Definition.Doc);
        Assert.Equal("Field doc.", file.Structs[0].Fields[0].Definition.Doc);
        Assert.Equal(Requiredness.Required, file.Structs[0].Fields[0].Requiredness);
        Assert.True(file.Services[0].Functions[1].Idempotent);
        Assert.True(file.Services[0].Functions[0].Oneway);
        Assert.Equal(long.MaxValue, ((Semantics.IntConstant)file.Constants.Single(c => c.Name == "HEX").Value!).Value);
        Assert.Equal("single \"quoted\"", ((Semantics.StringConstant)file.Constants.Single(c => c.Name == "Q").Value!).Value);
    }

    [Fact]
    public void Namespaces_PreferNetstd_ThenCsharp_ThenStar()
    {
        Assert.Equal("A", Idl.Compile("namespace * C\nnamespace csharp B\nnamespace netstd A").Files[0].Namespace);
        Assert.Equal("B", Idl.Compile("namespace * C\nnamespace csharp B").Files[0].Namespace);
        Assert.Equal("C", Idl.Compile("namespace * C\nnamespace java J").Files[0].Namespace);
        Assert.Null(Idl.Compile("namespace java J").Files[0].Namespace);
    }

    [Fact]
    public void TestIdlFiles_CompileWithoutErrors()
    {
        foreach (var name in new[] { "features.thrift", "modern.thrift" })
        {
            Assert.Empty(Idl.CompileTestIdl(name).Errors());
        }
    }
}
