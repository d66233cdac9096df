"""Parser tests: the AST it builds, Prometheus's error texts, and printing round trips."""

from __future__ import annotations

import pytest
from hypothesis import given

from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.promql import ast
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.parser import expr_type, format_expr, parse_expr
from watchkeeper.testing.strategies import promql_exprs


def test_a_selector_with_offset_and_at_parses_into_one_node() -> None:
    e = parse_expr('foo{job="a"} offset 5m @ 100')
    assert e == ast.VectorSelector(
        "foo",
        (Matcher(MatchType.EQUAL, "__name__", "foo"), Matcher(MatchType.EQUAL, "job", "a")),
        300_000,
        ast.At(ast.AtKind.TIME, 100_000),
    )


def test_unary_minus_binds_looser_than_power() -> None:
    e = parse_expr("-2 ^ 2")
    assert isinstance(e, ast.UnaryExpr)
    assert e.expr == ast.BinaryExpr("^", ast.NumberLiteral(2), ast.NumberLiteral(2))


def test_power_is_right_associative() -> None:
    e = parse_expr("2 ^ 3 ^ 2")
    assert isinstance(e, ast.BinaryExpr)
    assert isinstance(e.rhs, ast.BinaryExpr)


def test_grouping_may_follow_the_aggregation_arguments() -> None:
    assert parse_expr("sum(x) by (job)") == parse_expr("sum by (job) (x)")


def test_durations_are_seconds_when_used_as_numbers() -> None:
    assert parse_expr("1m") == ast.NumberLiteral(60.0)


@pytest.mark.parametrize(
    ("text", "range_ms"),
    [("x[5m * 2]", 600_000), ("x[1h30m % 1h]", 1_800_000), ("x[(9m30s + 30s) * 3]", 1_800_000)],
)
def test_duration_expressions_fold_to_constants(text: str, range_ms: int) -> None:
    e = parse_expr(text)
    assert isinstance(e, ast.MatrixSelector)
    assert e.range_ms == range_ms


def test_duration_expressions_can_be_disabled() -> None:
    with pytest.raises(ParseError, match="experimental duration expression is not enabled"):
        parse_expr("x[5m * 2]", enable_duration_expressions=False)


def test_subquery_steps_and_offsets_parse() -> None:
    e = parse_expr("rate(x[5m])[1h:1m] offset 10m")
    assert isinstance(e, ast.SubqueryExpr)
    assert (e.range_ms, e.step_ms, e.offset_ms) == (3_600_000, 60_000, 600_000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate(foo)", 'expected type range vector in call to function "rate", got instant vector'),
        ("foo{", "unexpected end of input"),
        ("1 < 2", "comparisons between scalars must use BOOL modifier"),
        ("1 and 2", 'set operator "and" not allowed in binary scalar expression'),
        ('{a=""}', "vector selector must contain at least one non-empty matcher"),
        ('foo{__name__="bar"}', 'metric name must not be set twice: "foo" or "bar"'),
        ("nope(x)", 'unknown function with name "nope"'),
        ("foo + bool bar", "bool modifier can only be used on comparison operators"),
        ("sum(x[5m])", "expected type instant vector in aggregation expression, got range vector"),
        ("(foo)[5m]", "ranges only allowed for vector selectors"),
        ("x offset 1m offset 2m", "offset may not be set multiple times"),
        ("label_join(x)", 'expected at least 3 argument(s) in call to "label_join", got 1'),
        ("foo[5m][1m:]", "subquery is only allowed on instant vector, got matrix instead"),
        ("-foo[5m]", "unary expression only allowed on expressions of type scalar or instant"),
        ('1 + "a"', "binary expression must contain only scalar and instant vector types"),
        ("", "no expression found in input"),
    ],
)
def test_errors_use_prometheus_texts_with_positions(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expr(text)
    assert message in str(info.value)
    assert ": parse error: " in str(info.value)


def test_error_positions_are_line_and_column() -> None:
    with pytest.raises(ParseError, match=r"^1:6: parse error"):
        parse_expr("rate(foo)")


def test_experimental_functions_need_the_flag() -> None:
    with pytest.raises(ParseError, match='function "mad_over_time" is not enabled'):
        parse_expr("mad_over_time(x[5m])", enable_experimental_functions=False)
    with pytest.raises(ParseError, match="limitk\\(\\) is experimental"):
        parse_expr("limitk(1, x)", enable_experimental_functions=False)


def test_strings_decode_go_escapes() -> None:
    e = parse_expr(r'label_replace(x, "d", "\u00e9\x41\n", "s", `\d`)')
    assert isinstance(e, ast.Call)
    assert e.args[2] == ast.StringLiteral("éA\n")
    assert e.args[4] == ast.StringLiteral("\\d")


def test_inline_regex_flags_inside_groups_are_accepted() -> None:
    parse_expr('x{a=~"((?i)PRO).*"}')


def test_expression_types_follow_prometheus() -> None:
    assert expr_type(parse_expr("time()")) is ast.ExprType.SCALAR
    assert expr_type(parse_expr("x[5m]")) is ast.ExprType.MATRIX
    assert expr_type(parse_expr("1 + x")) is ast.ExprType.VECTOR
    assert expr_type(parse_expr('"s"')) is ast.ExprType.STRING


@pytest.mark.parametrize(
    "text",
    [
        "sum by (job) (rate(http_requests_total[5m]))",
        'a / on(job) group_left(instance) b{x=~"y.*"}',
        "topk(3, x) and ignoring(a) y",
        "x @ start() offset -5m",
        "max_over_time(rate(x[1m])[10m:30s] @ 1000.000)",
        "-(1 + 2) ^ 3",
    ],
)
def test_format_is_parse_stable(text: str) -> None:
    e = parse_expr(text)
    assert parse_expr(format_expr(e)) == e


@given(promql_exprs())
def test_parse_of_format_gives_back_the_same_tree(expr: ast.Expr) -> None:
    assert parse_expr(format_expr(expr)) == expr
