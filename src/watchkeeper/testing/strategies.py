"""Hypothesis strategies for property tests: PromQL expressions, valid and broken.

`promql_exprs()` draws well-typed ASTs in the shape the parser produces (sub-expressions
that need it are parenthesised), so `parse_expr(format_expr(e)) == e` must hold.
`promql_texts()` draws query texts, valid and mangled, for "never crash" tests.
"""

from __future__ import annotations

from hypothesis import strategies as st

from watchkeeper.model.labels import METRIC_NAME
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.promql import ast

METRIC_NAMES = ("up", "http_requests_total", "node_cpu_seconds_total", "x:rate5m", "errors")
"""Metric names the strategies use (valid, and none of them a keyword)."""

LABEL_NAMES = ("job", "instance", "le", "a", "mode")
"""Label names the strategies use."""

_REGEXES = ("a.*", "b|c", ".+", "api", "[0-9]+")
_ARITH = ("+", "-", "*", "/", "%", "^", "atan2")
_CMP = ("==", "!=", ">", "<", ">=", "<=")
_SET = ("and", "or", "unless")
_SIMPLE_AGGS = ("sum", "avg", "min", "max", "count", "group", "stddev", "stdvar")
_VECTOR_FNS = ("abs", "ceil", "floor", "sqrt", "exp", "sort", "sort_desc", "timestamp", "absent")
_RANGE_FNS = (
    "rate",
    "increase",
    "delta",
    "irate",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "absent_over_time",
    "stddev_over_time",
)

_label_values = st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x2FF), max_size=8)
_durations = st.integers(min_value=1, max_value=10**9)
_offsets = st.integers(min_value=-(10**8), max_value=10**8)


@st.composite
def _at(draw: st.DrawFn) -> ast.At | None:
    kind = draw(st.sampled_from([None, None, None, "time", "start", "end"]))
    if kind is None:
        return None
    if kind == "time":
        return ast.At(ast.AtKind.TIME, draw(st.integers(min_value=-(10**12), max_value=10**12)))
    return ast.At(ast.AtKind.START if kind == "start" else ast.AtKind.END)


@st.composite
def vector_selectors(draw: st.DrawFn) -> ast.VectorSelector:
    """Draws an instant vector selector, with or without a name, offset and @."""
    matchers: list[Matcher] = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        kind = draw(st.sampled_from(list(MatchType)))
        name = draw(st.sampled_from(LABEL_NAMES))
        if kind in (MatchType.REGEX, MatchType.NOT_REGEX):
            value = draw(st.sampled_from(_REGEXES))
        else:
            value = draw(_label_values)
        matchers.append(Matcher(kind, name, value))
    name = draw(st.sampled_from(("", *METRIC_NAMES)))
    if name:
        matchers.insert(0, Matcher(MatchType.EQUAL, METRIC_NAME, name))
    else:
        first = Matcher(MatchType.EQUAL, draw(st.sampled_from(LABEL_NAMES)), "v")
        matchers.insert(0, first)
    offset = draw(st.one_of(st.just(0), _offsets))
    return ast.VectorSelector(name, tuple(matchers), offset, draw(_at()))


def _wrap(expr: ast.Expr) -> ast.Expr:
    """Parenthesises operators so the printed text parses back to the same tree."""
    if isinstance(expr, ast.BinaryExpr | ast.UnaryExpr) or (
        isinstance(expr, ast.NumberLiteral) and (expr.value < 0 or expr.value != expr.value)
    ):
        return ast.ParenExpr(expr)
    return expr


def _numbers() -> st.SearchStrategy[ast.Expr]:
    return st.one_of(
        st.integers(min_value=0, max_value=10**6).map(lambda v: ast.NumberLiteral(float(v))),
        st.floats(min_value=0, max_value=1e6, allow_nan=False).map(ast.NumberLiteral),
    )


def _scalar_exprs(depth: int) -> st.SearchStrategy[ast.Expr]:
    base = st.one_of(
        _numbers(),
        st.just(ast.Call("time", ())),
        st.just(ast.Call("pi", ())),
    )
    if depth <= 0:
        return base
    sub = _scalar_exprs(depth - 1)
    return st.one_of(
        base,
        _vector_exprs(depth - 1).map(lambda v: ast.Call("scalar", (v,))),
        st.builds(
            lambda op, a, b: ast.BinaryExpr(op, _wrap(a), _wrap(b), None, False),
            st.sampled_from(_ARITH),
            sub,
            sub,
        ),
        st.builds(
            lambda op, a, b: ast.BinaryExpr(op, _wrap(a), _wrap(b), None, True),
            st.sampled_from(_CMP),
            sub,
            sub,
        ),
        sub.map(ast.ParenExpr),
    )


@st.composite
def _matching(draw: st.DrawFn, op: str) -> ast.VectorMatching:
    if op in _SET:
        if draw(st.booleans()):
            labels = tuple(draw(st.lists(st.sampled_from(LABEL_NAMES), max_size=2, unique=True)))
            return ast.VectorMatching(
                ast.Cardinality.MANY_TO_MANY, labels, draw(st.booleans()), (), explicit=True
            )
        return ast.VectorMatching(ast.Cardinality.MANY_TO_MANY)
    if not draw(st.booleans()):
        return ast.VectorMatching()
    on = draw(st.booleans())
    labels = tuple(draw(st.lists(st.sampled_from(LABEL_NAMES), max_size=2, unique=True)))
    card = draw(
        st.sampled_from(
            [
                ast.Cardinality.ONE_TO_ONE,
                ast.Cardinality.MANY_TO_ONE,
                ast.Cardinality.ONE_TO_MANY,
            ]
        )
    )
    include: tuple[str, ...] = ()
    if card is not ast.Cardinality.ONE_TO_ONE:
        pool = [n for n in LABEL_NAMES if not (on and n in labels)]
        include = tuple(draw(st.lists(st.sampled_from(pool), max_size=2, unique=True)))
    return ast.VectorMatching(card, labels, on, include, explicit=True)


@st.composite
def _vector_binary(draw: st.DrawFn, depth: int) -> ast.Expr:
    op = draw(st.sampled_from(_ARITH + _CMP + _SET))
    vec = _vector_exprs(depth - 1)
    lhs = draw(vec)
    if op in _SET or draw(st.booleans()):
        rhs = draw(vec)
        matching: ast.VectorMatching | None = draw(_matching(op))
    else:
        rhs = draw(_scalar_exprs(depth - 1))
        matching = None
        if draw(st.booleans()):
            lhs, rhs = rhs, lhs
    return_bool = op in _CMP and draw(st.booleans())
    return ast.BinaryExpr(op, _wrap(lhs), _wrap(rhs), matching, return_bool)


@st.composite
def _aggregation(draw: st.DrawFn, depth: int) -> ast.Expr:
    inner = draw(_vector_exprs(depth - 1))
    op = draw(st.sampled_from((*_SIMPLE_AGGS, "topk", "bottomk", "quantile", "count_values")))
    param: ast.Expr | None = None
    if op == "count_values":
        param = ast.StringLiteral(draw(st.sampled_from(("value", "v"))))
    elif op in ("topk", "bottomk", "quantile"):
        param = draw(_numbers())
    has_grouping = draw(st.booleans())
    grouping: tuple[str, ...] = ()
    without = False
    if has_grouping:
        grouping = tuple(draw(st.lists(st.sampled_from(LABEL_NAMES), max_size=3, unique=True)))
        without = draw(st.booleans())
    return ast.AggregateExpr(op, inner, param, grouping, without, has_grouping)


@st.composite
def _matrix_exprs(draw: st.DrawFn, depth: int) -> ast.Expr:
    if depth <= 0 or draw(st.booleans()):
        sel = draw(vector_selectors())
        return ast.MatrixSelector(sel, draw(_durations))
    inner = draw(_vector_exprs(depth - 1))
    if isinstance(inner, ast.BinaryExpr | ast.UnaryExpr | ast.NumberLiteral):
        inner = ast.ParenExpr(inner)
    step = draw(st.one_of(st.just(0), _durations))
    return ast.SubqueryExpr(inner, draw(_durations), step, draw(st.just(0) | _offsets), draw(_at()))


@st.composite
def _range_call(draw: st.DrawFn, depth: int) -> ast.Expr:
    m = draw(_matrix_exprs(depth - 1))
    fn = draw(st.sampled_from((*_RANGE_FNS, "quantile_over_time", "predict_linear")))
    if fn == "quantile_over_time":
        return ast.Call(fn, (draw(_numbers()), m))
    if fn == "predict_linear":
        return ast.Call(fn, (m, draw(_numbers())))
    return ast.Call(fn, (m,))


def _vector_exprs(depth: int) -> st.SearchStrategy[ast.Expr]:
    base: st.SearchStrategy[ast.Expr] = vector_selectors()
    if depth <= 0:
        return base
    sub = _vector_exprs(depth - 1)
    return st.one_of(
        base,
        st.builds(lambda f, v: ast.Call(f, (v,)), st.sampled_from(_VECTOR_FNS), sub),
        _scalar_exprs(depth - 1).map(lambda s: ast.Call("vector", (s,))),
        st.builds(
            lambda v: ast.Call(
                "label_replace",
                (
                    v,
                    ast.StringLiteral("dst"),
                    ast.StringLiteral("$1"),
                    ast.StringLiteral("job"),
                    ast.StringLiteral("(.*)"),
                ),
            ),
            sub,
        ),
        _range_call(depth),
        _aggregation(depth),
        _vector_binary(depth),
        sub.map(lambda v: ast.UnaryExpr("-", _wrap(v))),
        sub.map(ast.ParenExpr),
    )


def promql_exprs(max_depth: int = 3) -> st.SearchStrategy[ast.Expr]:
    """Draws a well-typed PromQL AST (an instant vector, scalar or range vector)."""
    return st.one_of(
        _vector_exprs(max_depth),
        _scalar_exprs(max_depth),
        _matrix_exprs(max_depth),
    )


_FRAGMENTS = (
    "sum",
    "rate(",
    "by",
    "(",
    ")",
    "[5m]",
    "[1m:10s]",
    "{",
    "}",
    'job="a"',
    "=~",
    ",",
    " + ",
    " / on(job) group_left ",
    " and ",
    "offset 5m",
    "@ 100",
    "topk(",
    "3",
    "1e3",
    "NaN",
    "-",
    '"str"',
    "up",
    "http_requests_total",
    "count_values(",
    "[",
    "]",
    ":",
    "bool",
    "==",
    "^",
    "@ start()",
    "#",
    "\n",
)


def promql_texts() -> st.SearchStrategy[str]:
    """Draws query texts: printed valid expressions, mangled ones and token soup."""
    from watchkeeper.promql.parser import format_expr

    valid = promql_exprs(2).map(format_expr)

    @st.composite
    def mangled(draw: st.DrawFn) -> str:
        text = draw(valid)
        if not text:
            return text
        i = draw(st.integers(min_value=0, max_value=len(text) - 1))
        j = draw(st.integers(min_value=i, max_value=min(len(text), i + 3)))
        fragment: str = draw(st.sampled_from((*_FRAGMENTS, "")))
        return text[:i] + fragment + text[j:]

    soup = st.lists(st.sampled_from(_FRAGMENTS), max_size=8).map("".join)
    return st.one_of(valid, mangled(), soup, st.text(max_size=20))
