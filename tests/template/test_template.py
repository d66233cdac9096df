# ruff: noqa: E501 - tables of Go template text read best one case per line.
"""Go text/template semantics: parsing, execution and Go's error messages."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.template import (
    GoFuncError,
    Template,
    TemplateError,
    TemplateExecError,
    TemplateParseError,
)


class Obj:
    """A Go struct stand-in with fields and a method."""

    def __init__(self) -> None:
        self.X = 1
        self.S = "str"
        self.Inner = {"k": "v"}
        self.Empty: list[int] = []
        self.Nil = None
        self.Fn = lambda a: a * 2

    def Method(self, a: int) -> int:
        return a * 2


DATA: dict[str, Any] = {
    "a": 1,
    "f": 1.5,
    "s": "hello",
    "t": True,
    "l": ["x", "y", "z"],
    "m": {"b": 2, "a": 1},
    "empty": [],
    "zero": 0,
    "obj": Obj(),
    "labels": {"instance": "host:9100", "job": "node"},
    "nested": [[1, 2], [3]],
}

CASES: list[tuple[str, str, str]] = [
    ("text only", "hello", "hello"),
    ("field", "{{.a}}", "1"),
    (
        "float prints shortest",
        "{{.f}} {{1e6}} {{0.000001}} {{1234567.0}}",
        "1.5 1e+06 1e-06 1.234567e+06",
    ),
    ("nested field", "{{.labels.instance}}", "host:9100"),
    ("missing key prints no value", "{{.labels.nope}}", "<no value>"),
    (
        "struct field and method",
        "{{.obj.X}} {{.obj.S}} {{.obj.Method 21}} {{.obj.Inner.k}}",
        "1 str 42 v",
    ),
    ("dot", "{{.s}}-{{with .s}}{{.}}{{end}}", "hello-hello"),
    ("dollar is the top data", "{{range .l}}{{$.a}}{{end}}", "111"),
    ("variables", "{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}", "12"),
    ("variable field", "{{$o := .obj}}{{$o.X}}", "1"),
    ("if else", "{{if .t}}yes{{else}}no{{end}}", "yes"),
    ("if zero", "{{if .zero}}yes{{else}}no{{end}}", "no"),
    ("else if", "{{if eq .a 2}}two{{else if eq .a 1}}one{{else}}many{{end}}", "one"),
    ("with else", "{{with .empty}}x{{else}}empty{{end}}", "empty"),
    ("else with", "{{with .zero}}z{{else with .s}}{{.}}{{end}}", "hello"),
    ("range slice", "{{range .l}}[{{.}}]{{end}}", "[x][y][z]"),
    ("range index", "{{range $i, $e := .l}}{{$i}}={{$e}} {{end}}", "0=x 1=y 2=z "),
    ("range one var", "{{range $e := .l}}{{$e}}{{end}}", "xyz"),
    ("range map sorted", "{{range $k, $v := .m}}{{$k}}{{$v}}{{end}}", "a1b2"),
    ("range else", "{{range .empty}}x{{else}}none{{end}}", "none"),
    ("range int", "{{range 3}}{{.}}{{end}}", "012"),
    ("range nested", "{{range .nested}}({{range .}}{{.}}{{end}}){{end}}", "(12)(3)"),
    ("break", '{{range .l}}{{if eq . "y"}}{{break}}{{end}}{{.}}{{end}}', "x"),
    ("continue", '{{range .l}}{{if eq . "y"}}{{continue}}{{end}}{{.}}{{end}}', "xz"),
    ("range var scope ends", "{{range $i, $e := .l}}{{end}}{{$x := 5}}{{$x}}", "5"),
    ("trim markers", 'a  {{- .a -}}  b\n{{- " c" }}', "a1b c"),
    ("trim newlines", "x\n\n{{- 1 }}\n", "x1\n"),
    ("comment", "a{{/* hidden */}}b{{- /* trimmed */ -}} c", "abc"),
    ("pipeline", '{{.s | printf "%s!"}}', "hello!"),
    ("pipeline chain", '{{"x" | printf "%s%s" "y" | len}}', "2"),
    ("parenthesized", '{{printf "%d" (len .l)}}', "3"),
    ("paren field", "{{(index .nested 0) | len}}", "2"),
    ("chain on paren", "{{(.obj).X}}", "1"),
    ("strings escapes", '{{"a\\tb\\n\\"q\\"\\u00e9"}}', 'a\tb\n"q"é'),
    ("raw string", "{{`a\\n`}}", "a\\n"),
    ("char constant", "{{'a'}} {{'\\n'}}", "97 10"),
    (
        "numbers",
        "{{0x1F}} {{0o17}} {{0b101}} {{1_000}} {{-5}} {{+3}} {{2.5e3}}",
        "31 15 5 1000 -5 3 2500",
    ),
    ("bools and nil compare", "{{true}} {{false}} {{eq nil nil}}", "true false true"),
    ("and or", '{{and 1 0 2}} {{and 1 2}} {{or 0 "" "x"}} {{or 0 0}}', "0 2 x 0"),
    ("and short-circuits", "{{and false (index .l 10)}}", "false"),
    ("not", "{{not 0}} {{not .s}}", "true false"),
    ("len", '{{len .l}} {{len .m}} {{len "héllo"}}', "3 2 6"),
    (
        "index",
        '{{index .l 1}} {{index .m "b"}} {{index .nested 0 1}} {{index .labels "none"}}',
        "y 2 2 ",
    ),
    ("slice", '{{slice .l 1}} {{slice .l 1 2}} {{slice "hello" 1 3}}', "[y z] [y] el"),
    ("print", '{{print 1 2 "a" 3 "b"}}', "1 2a3b"),
    ("println", '{{println 1 "a"}}', "1 a\n"),
    (
        "printf verbs",
        '{{printf "%s|%d|%5.2f|%v|%q|%x|%X|%t|%%|%-4s|%04d|%+d|%e|%g" "s" 42 3.14159 .l "q" 255 255 true "ab" 7 5 1234.5 0.00001}}',
        's|42| 3.14|[x y z]|"q"|ff|FF|true|%|ab  |0007|+5|1.234500e+03|1e-05',
    ),
    (
        "printf errors",
        '{{printf "%d %s" "x"}} {{printf "%d" 1 2}}',
        "%!d(string=x) %!s(MISSING) 1%!(EXTRA int=2)",
    ),
    ("printf map and nil", '{{printf "%v %v" .m nil}}', "map[a:1 b:2] <nil>"),
    (
        "comparisons",
        '{{eq 1 1}} {{eq 1 2 3 1}} {{ne "a" "b"}} {{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge "b" "a"}}',
        "true true true true true false true",
    ),
    (
        "html js urlquery",
        '{{html "<a href=\'x\'>&\\""}} {{js "it\'s <b>"}} {{urlquery "a b&c=d/é"}}',
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34; it\\'s \\u003Cb\\u003E a+b%26c%3Dd%2F%C3%A9",
    ),
    (
        "define and template",
        '{{define "T"}}<{{.}}>{{end}}{{template "T" .a}}{{template "T" "x"}}',
        "<1><x>",
    ),
    ("template without data gets nil", '{{define "T"}}{{.}}{{end}}{{template "T"}}', "<no value>"),
    ("block", '{{block "B" .s}}[{{.}}]{{end}}', "[hello]"),
    (
        "template has fresh variables",
        '{{define "T"}}{{$}}{{end}}{{$x := 1}}{{template "T" 7}}',
        "7",
    ),
    ("call", "{{call .obj.Fn 4}}", "8"),
    ("nil field prints no value", "{{.obj.Nil}}", "<nil>"),
    ("multiline action", "{{ if\n .t }}ok{{ end }}", "ok"),
    ("decl in if scoped", "{{if .t}}{{$v := 1}}{{$v}}{{end}}", "1"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_execute_table(name: str, text: str, expected: str) -> None:
    assert Template.parse("t", text).execute(DATA) == expected


def test_missingkey_options() -> None:
    assert Template.parse("t", "{{.labels.x}}", missingkey="zero").execute(DATA) == ""
    assert Template.parse("t", "{{.m.x}}", missingkey="zero").execute(DATA) == "<nil>"
    with pytest.raises(TemplateExecError, match='map has no entry for key "x"'):
        Template.parse("t", "{{.labels.x}}", missingkey="error").execute(DATA)


def test_user_functions_are_called_and_their_errors_reported() -> None:
    def fail(x: str) -> str:
        raise GoFuncError(f"bad {x}")

    tmpl = Template.parse(
        "t", '{{ double 21 }} {{ fail "x" }}', {"double": lambda x: x * 2, "fail": fail}
    )
    with pytest.raises(TemplateExecError) as info:
        tmpl.execute(None)
    assert (
        str(info.value)
        == 'template: t:1:19: executing "t" at <fail "x">: error calling fail: bad x'
    )


def test_named_template_can_be_executed() -> None:
    tmpl = Template.parse("t", '{{define "sub"}}S{{.}}{{end}}main')
    assert tmpl.execute(1) == "main"
    assert tmpl.execute(1, name="sub") == "S1"


PARSE_ERRORS = [
    ("{{foo}}", 'template: t:1: function "foo" not defined'),
    ("{{$x}}", 'template: t:1: undefined variable "$x"'),
    ("{{if}}", "template: t:1: missing value for if"),
    ("{{end}}", "template: t:1: unexpected {{end}}"),
    ("{{else}}", "template: t:1: unexpected {{else}}"),
    ("{{range .}}", "template: t:1: unexpected EOF"),
    ("a\n{{break}}", "template: t:2: {{break}} outside {{range}}"),
    ("{{.X | 1}}", "template: t:1: non executable command in pipeline stage 2"),
    ("{{(1}}", "template: t:1: unclosed left paren"),
    ("{{1)}}", "template: t:1: unexpected right paren"),
    ("{{.X", "template: t:1: unclosed action"),
    ("{{@}}", "template: t:1: bad character U+0040 '@'"),
    ('{{"abc}}', "template: t:1: unterminated quoted string"),
    ("{{/* x }}", "template: t:1: unclosed comment"),
    ("{{/* x */ y}}", "template: t:1: comment ends before closing delimiter"),
    ("{{3k}}", 'template: t:1: bad number syntax: "3k"'),
    ("{{if .X}}a{{else}}b{{else}}c{{end}}", "template: t:1: expected end; found {{else}}"),
    ("{{template .X}}", 'template: t:1: unexpected ".X" in template clause'),
    (
        '{{define "a"}}x{{end}}{{define "a"}}y{{end}}',
        'template: t:1: template: multiple definition of template "a"',
    ),
    ("{{|}}", 'template: t:1: unexpected "|" in command'),
    ("{{$x := 1}}{{$x.}}", 'template: t:1: unexpected "." in operand'),
    ('{{"x".Y}}', 'template: t:1: unexpected . after term "\\"x\\""'),
    ("{{range $a, $b, $c := .}}{{end}}", "template: t:1: too many declarations in range"),
    ("{{with $x, $y := 1}}{{end}}", "template: t:1: too many declarations in with"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_errors_have_gos_text(text: str, message: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template.parse("t", text)
    assert str(info.value) == message


EXEC_ERRORS = [
    ("{{.a.b}}", 'template: t:1:4: executing "t" at <.a.b>: can\'t evaluate field b in type int'),
    (
        "{{index .l 5}}",
        'template: t:1:2: executing "t" at <index .l 5>: error calling index: index out of range: 5',
    ),
    (
        "{{eq 1 1.0}}",
        'template: t:1:2: executing "t" at <eq 1 1.0>: error calling eq: incompatible types for comparison: int and float64',
    ),
    (
        "{{lt true false}}",
        'template: t:1:2: executing "t" at <lt true false>: error calling lt: invalid type for comparison',
    ),
    ("{{nil}}", 'template: t:1:2: executing "t" at <nil>: nil is not a command'),
    (
        "x\n  {{.obj.Nope}}",
        'template: t:2:8: executing "t" at <.obj.Nope>: can\'t evaluate field Nope in type *Obj',
    ),
    ("{{len 3}}", 'template: t:1:2: executing "t" at <len 3>: error calling len: len of type int'),
    (
        '{{template "nope"}}',
        'template: t:1:11: executing "t" at <{{template "nope"}}>: template: no template "nope" associated with template',
    ),
    (
        "{{printf}}",
        'template: t:1:2: executing "t" at <printf>: wrong number of args for printf: want at least 1 got 0',
    ),
    ("{{.s 1}}", 'template: t:1:2: executing "t" at <.s>: s is not a method but has arguments'),
    (
        "{{range .s}}{{end}}",
        'template: t:1:8: executing "t" at <{{range .s}}{{end}}>: range can\'t iterate over hello',
    ),
    ('{{define "r"}}{{template "r"}}{{end}}{{template "r"}}', "exceeded maximum template depth"),
]


@pytest.mark.parametrize(("text", "message"), EXEC_ERRORS)
def test_exec_errors_have_gos_text(text: str, message: str) -> None:
    with pytest.raises(TemplateExecError) as info:
        Template.parse("t", text).execute(DATA)
    assert message in str(info.value)


_fragments = st.sampled_from(
    [
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        ".a",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        '"s"',
        "`r`",
        "'c'",
        "1",
        "1.5",
        "nil",
        "true",
        "printf",
        "len",
        "index",
        "eq",
        "and",
        ",",
        "/*",
        "*/",
        "\n",
        "x",
        "@",
        "0x",
        "\\",
        '"',
    ]
)


@given(st.lists(_fragments, max_size=20).map("".join))
def test_arbitrary_template_text_raises_only_template_errors(text: str) -> None:
    with contextlib.suppress(TemplateError):
        Template.parse("t", text).execute(DATA)


@given(st.text(max_size=40))
def test_arbitrary_unicode_raises_only_template_errors(text: str) -> None:
    with contextlib.suppress(TemplateError):
        Template.parse("t", text).execute(DATA)
