"""The PromQL parser: text to `ast.Expr`, with Prometheus's type checks and error texts.

A hand-written lexer and precedence-climbing parser. It covers what Prometheus 3.5 parses,
including the experimental duration expressions (`foo[5m * 2]`, `offset (1m + 1m)`), which
the `promql_parser` package cannot parse; errors read "1:5: parse error: ..." as in
Prometheus. `format_expr` prints an AST back so that `parse_expr(format_expr(e)) == e`.

Example:
    >>> e = parse_expr('sum by (job) (rate(http_requests_total[5m]))')
    >>> format_expr(e)
    'sum by (job) (rate(http_requests_total[5m]))'
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from watchkeeper.model.labels import METRIC_NAME
from watchkeeper.model.matchers import InvalidMatcherError, Matcher, MatchType
from watchkeeper.promql import ast
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.lexer import (
    KEYWORDS,
    MAX_TIMESTAMP_S,
    PRECEDENCE,
    Token,
    describe,
    duration_ms,
    lex,
    regex_error,
    syntax_error,
)
from watchkeeper.promql.printer import format_expr
from watchkeeper.promql.signatures import (
    AGGREGATIONS,
    EXPERIMENTAL_AGGREGATIONS,
    FUNCTIONS,
    PARAM_AGGREGATIONS,
)

__all__ = ["duration_ms", "expr_type", "format_expr", "parse_expr"]


class _Parser:
    def __init__(
        self, text: str, *, experimental_functions: bool, duration_expressions: bool
    ) -> None:
        self.text = text
        self.toks = lex(text)
        self.i = 0
        self.experimental = experimental_functions
        self.duration_exprs = duration_expressions
        self.label_selector_pos = -1
        """Where info()'s label selector starts: it may match the empty label set."""

    # -- token helpers -------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        tok = self.toks[min(self.i + k, len(self.toks) - 1)]
        if tok.kind == "error":
            raise self.err(tok.pos, tok.text)
        return tok

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != "eof":
            self.i += 1
        return tok

    def is_op(self, text: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == "op" and tok.text == text

    def is_kw(self, word: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == "ident" and tok.text.lower() == word

    def expect_op(self, text: str, context: str) -> Token:
        tok = self.peek()
        if tok.kind == "op" and tok.text == text:
            return self.next()
        raise self.unexpected(tok, context, f'"{text}"')

    def unexpected(self, tok: Token, context: str = "", expected: str = "") -> ParseError:
        msg = f"unexpected {describe(tok)}"
        if tok.text == ":" and tok.kind == "op":
            return syntax_error(self.text, tok.pos, msg)
        if context:
            msg += f" in {context}"
        if expected:
            msg += f", expected {expected}"
        return syntax_error(self.text, tok.pos, msg)

    def err(self, pos: int, msg: str) -> ParseError:
        return syntax_error(self.text, pos, msg)

    def mark(self, node: ast.Expr, pos: int) -> ast.Expr:
        # The node was just built here and is not shared yet: record where it starts.
        object.__setattr__(node, "pos", pos)
        return node

    def pos_of(self, node: ast.Expr) -> int:
        return max(node.pos, 0)

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> ast.Expr:
        if self.peek().kind == "eof":
            raise self.err(0, "no expression found in input")
        expr = self.binary(0)
        tok = self.peek()
        if tok.kind != "eof":
            raise self.unexpected(tok)
        return expr

    def binary_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.text in PRECEDENCE:
            return tok.text
        if tok.kind == "ident" and tok.text.lower() in ("and", "or", "unless", "atan2"):
            return tok.text.lower()
        return None

    def binary(self, min_prec: int) -> ast.Expr:
        left = self.unary()
        while True:
            op = self.binary_op()
            if op is None or PRECEDENCE[op] < min_prec:
                return left
            op_tok = self.next()
            return_bool = False
            if self.is_kw("bool"):
                self.next()
                return_bool = True
            matching = self.matching(op)
            prec = PRECEDENCE[op]
            right = self.binary(prec if op == "^" else prec + 1)
            node = ast.BinaryExpr(op, left, right, matching, return_bool)
            left = self.check_binary(node, op_tok.pos, self.pos_of(left))

    def matching(self, op: str) -> ast.VectorMatching | None:
        if not (self.is_kw("on") or self.is_kw("ignoring")):
            if self.is_kw("group_left") or self.is_kw("group_right"):
                raise self.unexpected(self.peek(), "binary expression")
            card = ast.Cardinality.MANY_TO_MANY if op in ast.SET_OPS else ast.Cardinality.ONE_TO_ONE
            return ast.VectorMatching(card)
        on = self.next().text.lower() == "on"
        labels = self.label_list("grouping opts")
        card = ast.Cardinality.MANY_TO_MANY if op in ast.SET_OPS else ast.Cardinality.ONE_TO_ONE
        include: tuple[str, ...] = ()
        if self.is_kw("group_left") or self.is_kw("group_right"):
            tok = self.next()
            card = (
                ast.Cardinality.MANY_TO_ONE
                if tok.text.lower() == "group_left"
                else ast.Cardinality.ONE_TO_MANY
            )
            if self.is_op("("):
                include = self.label_list("grouping opts")
        return ast.VectorMatching(card, labels, on, include, explicit=True)

    def label_list(self, context: str) -> tuple[str, ...]:
        self.expect_op("(", context)
        names: list[str] = []
        while not self.is_op(")"):
            tok = self.next()
            if tok.kind == "ident":
                names.append(tok.text)
            elif tok.kind == "str":
                names.append(tok.sval)
            else:
                raise self.unexpected(tok, context, "label")
            if self.is_op(","):
                self.next()
            elif not self.is_op(")"):
                raise self.unexpected(self.peek(), context, '"," or ")"')
        self.next()
        return tuple(names)

    def unary(self) -> ast.Expr:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.next()
            operand = self.binary(PRECEDENCE["^"])
            if isinstance(operand, ast.NumberLiteral):
                value = -operand.value if tok.text == "-" else operand.value
                return self.mark(ast.NumberLiteral(value), tok.pos)
            kind = expr_type(operand)
            if kind not in (ast.ExprType.SCALAR, ast.ExprType.VECTOR):
                raise self.err(
                    tok.pos,
                    "unary expression only allowed on expressions of type scalar or instant "
                    f'vector, got "{kind.value}"',
                )
            return self.mark(ast.UnaryExpr(tok.text, operand), tok.pos)
        return self.postfix(self.primary())

    def primary(self) -> ast.Expr:
        tok = self.next()
        if tok.kind in ("num", "dur"):
            return self.mark(ast.NumberLiteral(tok.value), tok.pos)
        if tok.kind == "str":
            return self.mark(ast.StringLiteral(tok.sval), tok.pos)
        if tok.kind == "op" and tok.text == "(":
            inner = self.binary(0)
            if not self.is_op(")"):
                raise self.unexpected(self.peek(), "parenthesized expression", '")"')
            self.next()
            return self.mark(ast.ParenExpr(inner), tok.pos)
        if tok.kind == "op" and tok.text == "{":
            return self.selector("", tok.pos)
        if tok.kind == "ident":
            word = tok.text
            low = word.lower()
            if low in AGGREGATIONS and (
                self.is_op("(") or self.is_kw("by") or self.is_kw("without")
            ):
                return self.aggregation(low, tok.pos)
            if self.is_op("(") and low not in KEYWORDS:
                return self.call(word, tok.pos)
            if low in KEYWORDS or low in AGGREGATIONS:
                raise self.unexpected(tok)
            return self.selector(word, tok.pos)
        raise self.unexpected(tok)

    def selector(self, name: str, pos: int) -> ast.Expr:
        matchers: list[Matcher] = []
        if name:
            if self.is_op("{"):
                self.next()
                matchers = self.matchers()
            matchers.insert(0, Matcher(MatchType.EQUAL, METRIC_NAME, name))
        else:
            matchers = self.matchers()
        sel = ast.VectorSelector(name, tuple(matchers))
        self.check_selector(sel, pos)
        return self.mark(sel, pos)

    def matchers(self) -> list[Matcher]:
        out: list[Matcher] = []
        while not self.is_op("}"):
            tok = self.next()
            if tok.kind == "str" and (self.is_op(",") or self.is_op("}")):
                out.append(Matcher(MatchType.EQUAL, METRIC_NAME, tok.sval))
            elif tok.kind in ("ident", "str"):
                lname = tok.text if tok.kind == "ident" else tok.sval
                op_tok = self.next()
                if op_tok.kind != "op" or op_tok.text not in ("=", "!=", "=~", "!~"):
                    raise self.unexpected(op_tok, "label matching", "label matching operator")
                val = self.next()
                if val.kind != "str":
                    raise self.unexpected(val, "label matching", "string")
                try:
                    out.append(Matcher(MatchType(op_tok.text), lname, val.sval))
                except InvalidMatcherError as exc:
                    raise self.err(tok.pos, regex_error(val.sval, exc)) from exc
            else:
                raise self.unexpected(tok, "label matching", 'identifier or "}"')
            if self.is_op(","):
                self.next()
            elif not self.is_op("}"):
                raise self.unexpected(self.peek(), "label matching", '"," or "}"')
        self.next()
        return out

    def check_selector(self, sel: ast.VectorSelector, pos: int) -> None:
        if sel.name:
            for m in sel.matchers[1:]:
                if m.name == METRIC_NAME:
                    raise self.err(
                        pos, f'metric name must not be set twice: "{sel.name}" or "{m.value}"'
                    )
        if pos != self.label_selector_pos and all(m.matches_empty() for m in sel.matchers):
            raise self.err(pos, "vector selector must contain at least one non-empty matcher")

    def call(self, name: str, pos: int) -> ast.Expr:
        sig = FUNCTIONS.get(name)
        if sig is None:
            raise self.err(pos, f'unknown function with name "{name}"')
        if sig.experimental and not self.experimental:
            raise self.err(pos, f'function "{name}" is not enabled')
        args = self.call_args("function call", label_selector_arg=1 if name == "info" else -1)
        node = ast.Call(name, tuple(args))
        self.check_call(node, pos, args)
        return self.mark(node, pos)

    def call_args(self, context: str, *, label_selector_arg: int = -1) -> list[ast.Expr]:
        if not self.is_op("("):
            raise self.unexpected(self.peek(), context)
        self.next()
        args: list[ast.Expr] = []
        ctx = "aggregation" if context == "aggregation" else ""
        while not self.is_op(")"):
            if self.is_op(","):
                raise self.unexpected(self.peek(), ctx)
            if len(args) == label_selector_arg and self.is_op("{"):
                self.label_selector_pos = self.peek().pos
            args.append(self.binary(0))
            if self.is_op(","):
                comma = self.next()
                if self.is_op(")"):
                    raise self.err(comma.pos, "trailing commas not allowed in function call args")
            elif not self.is_op(")"):
                raise self.unexpected(self.peek(), ctx)
        self.next()
        return args

    def check_call(self, node: ast.Call, pos: int, args: list[ast.Expr]) -> None:
        sig = FUNCTIONS[node.func]
        nargs = len(sig.arg_types)
        if sig.variadic == 0:
            if nargs != len(args):
                raise self.err(
                    pos, f'expected {nargs} argument(s) in call to "{node.func}", got {len(args)}'
                )
        else:
            na = nargs - 1
            if na > len(args):
                raise self.err(
                    pos,
                    f'expected at least {na} argument(s) in call to "{node.func}", got {len(args)}',
                )
            if sig.variadic > 0 and na + sig.variadic < len(args):
                raise self.err(
                    pos,
                    f"expected at most {na + sig.variadic} argument(s) in call to "
                    f'"{node.func}", got {len(args)}',
                )
        if node.func == "info" and len(args) > 1:
            data_selector = args[1]
            if isinstance(data_selector, ast.VectorSelector) and data_selector.name:
                raise self.err(
                    self.pos_of(data_selector),
                    "expected label selectors only, got vector selector instead",
                )
        for i, arg in enumerate(args):
            want = sig.arg_types[min(i, nargs - 1)]
            got = expr_type(arg)
            if got != want:
                raise self.err(
                    self.pos_of(arg),
                    f"expected type {want.value} in call to function "
                    f'"{node.func}", got {got.value}',
                )

    def aggregation(self, op: str, pos: int) -> ast.Expr:
        if op in EXPERIMENTAL_AGGREGATIONS and not self.experimental:
            raise self.err(
                pos,
                f"{op}() is experimental and must be enabled with "
                "--enable-feature=promql-experimental-functions",
            )
        grouping: tuple[str, ...] = ()
        without = False
        has_grouping = False
        if self.is_kw("by") or self.is_kw("without"):
            without = self.next().text.lower() == "without"
            grouping = self.label_list("grouping opts")
            has_grouping = True
        args = self.call_args("aggregation")
        if not has_grouping and (self.is_kw("by") or self.is_kw("without")):
            without = self.next().text.lower() == "without"
            grouping = self.label_list("grouping opts")
            has_grouping = True
        if not args:
            raise self.err(pos, "no arguments for aggregate expression provided")
        want_args = 2 if op in PARAM_AGGREGATIONS else 1
        if len(args) != want_args:
            raise self.err(
                pos,
                "wrong number of arguments for aggregate expression provided, expected "
                f"{want_args}, got {len(args)}",
            )
        param = args[0] if want_args == 2 else None
        expr = args[-1]
        got = expr_type(expr)
        if got != ast.ExprType.VECTOR:
            raise self.err(
                self.pos_of(expr),
                f"expected type instant vector in aggregation expression, got {got.value}",
            )
        if param is not None:
            want = PARAM_AGGREGATIONS[op]
            got = expr_type(param)
            if got != want:
                raise self.err(
                    self.pos_of(param),
                    f"expected type {want.value} in aggregation parameter, got {got.value}",
                )
        node = ast.AggregateExpr(op, expr, param, grouping, without, has_grouping)
        return self.mark(node, pos)

    def postfix(self, expr: ast.Expr) -> ast.Expr:
        pos = self.pos_of(expr)
        while True:
            if self.is_op("["):
                expr = self.mark(self.range_or_subquery(expr, pos), pos)
            elif self.is_kw("offset"):
                self.next()
                expr = self.mark(self.with_offset(expr, pos, self.offset_value()), pos)
            elif self.is_op("@"):
                self.next()
                expr = self.mark(self.with_at(expr, pos, self.at_value(pos)), pos)
            else:
                return expr

    def range_or_subquery(self, expr: ast.Expr, pos: int) -> ast.Expr:
        open_tok = self.next()
        if self.is_op(":"):
            raise self.unexpected(self.peek(), "subquery selector", "number or duration")
        range_pos = self.peek().pos
        range_ms = self.duration_expr("]", allow_colon=True)
        if range_ms <= 0:
            raise self.err(range_pos, "duration must be greater than 0")
        if self.is_op(":"):
            self.next()
            step_ms = 0
            if not self.is_op("]"):
                step_pos = self.peek().pos
                step_ms = self.duration_expr("]", allow_colon=False)
                if step_ms <= 0:
                    raise self.err(step_pos, "duration must be greater than 0")
            self.expect_op("]", "subquery selector")
            kind = expr_type(expr)
            if kind != ast.ExprType.VECTOR:
                go_type = {"range vector": "matrix", "instant vector": "vector"}.get(
                    kind.value, kind.value
                )
                raise self.err(
                    pos, f"subquery is only allowed on instant vector, got {go_type} instead"
                )
            return ast.SubqueryExpr(expr, range_ms, step_ms)
        self.expect_op("]", "range selector")
        if not isinstance(expr, ast.VectorSelector):
            raise self.err(open_tok.pos, "ranges only allowed for vector selectors")
        if expr.offset_ms != 0 or expr.at is not None:
            raise self.err(open_tok.pos, "no offset modifiers allowed before range")
        return ast.MatrixSelector(expr, range_ms)

    def duration_expr(self, closing: str, *, allow_colon: bool) -> int:
        tok = self.peek()
        if tok.kind not in ("num", "dur") and not (tok.kind == "op" and tok.text in "(+-"):
            raise self.unexpected(tok, "subquery selector", "number or duration")
        if tok.kind == "op" and tok.text == "-" and self.peek(1).kind in ("num", "dur"):
            after = self.peek(2)
            if after.kind == "op" and (
                after.text == closing or (allow_colon and after.text == ":")
            ):
                self.next()
                return -self._seconds_to_ms(self.next().value, tok.pos)
        nxt = self.peek(1)
        if (
            tok.kind in ("num", "dur")
            and nxt.kind == "op"
            and (nxt.text == closing or (allow_colon and nxt.text == ":"))
        ):
            self.next()
            return self._seconds_to_ms(tok.value, tok.pos)
        if not self.duration_exprs:
            raise self.err(tok.pos, "experimental duration expression is not enabled")
        value = self.dur_binary(0)
        return self._seconds_to_ms(value, tok.pos)

    def _seconds_to_ms(self, seconds: float, pos: int) -> int:
        if math.isnan(seconds) or math.isinf(seconds) or abs(seconds) > 9.2e15:
            raise self.err(pos, "duration out of range")
        return round(seconds * 1000)

    def dur_binary(self, min_prec: int) -> float:
        left = self.dur_unary()
        while True:
            tok = self.peek()
            if not (tok.kind == "op" and tok.text in ("+", "-", "*", "/", "%", "^")):
                return left
            prec = PRECEDENCE[tok.text]
            if prec < min_prec:
                return left
            self.next()
            right = self.dur_binary(prec if tok.text == "^" else prec + 1)
            left = _dur_arith(tok.text, left, right, self, tok.pos)

    def dur_unary(self) -> float:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.next()
            v = self.dur_binary(PRECEDENCE["^"])
            return -v if tok.text == "-" else v
        tok = self.next()
        if tok.kind in ("num", "dur"):
            return tok.value
        if tok.kind == "op" and tok.text == "(":
            v = self.dur_binary(0)
            self.expect_op(")", "duration expression")
            return v
        raise self.unexpected(tok, "duration expression")

    def offset_value(self) -> int:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.next()
            inner = self.offset_value()
            return -inner if tok.text == "-" else inner
        if tok.kind in ("num", "dur"):
            self.next()
            return self._seconds_to_ms(tok.value, tok.pos)
        if tok.kind == "op" and tok.text == "(":
            if not self.duration_exprs:
                raise self.err(tok.pos + 1, "experimental duration expression is not enabled")
            self.next()
            v = self.dur_binary(0)
            self.expect_op(")", "duration expression")
            return self._seconds_to_ms(v, tok.pos)
        raise self.unexpected(tok, "offset", "number or duration")

    def at_value(self, expr_pos: int) -> ast.At:
        tok = self.next()
        if tok.kind == "ident" and tok.text in ("start", "end") and self.is_op("("):
            self.next()
            self.expect_op(")", "@ modifier")
            return ast.At(ast.AtKind.START if tok.text == "start" else ast.AtKind.END)
        sign = 1.0
        if tok.kind == "op" and tok.text in ("+", "-"):
            sign = -1.0 if tok.text == "-" else 1.0
            tok = self.next()
        if tok.kind not in ("num", "dur"):
            raise self.unexpected(tok, "@", "timestamp")
        ts = sign * tok.value
        if math.isinf(ts) or math.isnan(ts) or abs(ts) > MAX_TIMESTAMP_S:
            raise self.err(expr_pos, f"timestamp out of bounds for @ modifier: {ts:f}")
        return ast.At(ast.AtKind.TIME, round(ts * 1000))

    def with_offset(self, expr: ast.Expr, pos: int, offset_ms: int) -> ast.Expr:
        if isinstance(expr, ast.VectorSelector):
            if expr.offset_ms:
                raise self.err(pos, "offset may not be set multiple times")
            return replace(expr, offset_ms=offset_ms)
        if isinstance(expr, ast.MatrixSelector):
            if expr.vector.offset_ms:
                raise self.err(pos, "offset may not be set multiple times")
            return replace(expr, vector=replace(expr.vector, offset_ms=offset_ms))
        if isinstance(expr, ast.SubqueryExpr):
            if expr.offset_ms:
                raise self.err(pos, "offset may not be set multiple times")
            return replace(expr, offset_ms=offset_ms)
        raise self.err(
            pos,
            "offset modifier must be preceded by an instant vector selector or range vector "
            "selector or a subquery",
        )

    def with_at(self, expr: ast.Expr, pos: int, at: ast.At) -> ast.Expr:
        if isinstance(expr, ast.VectorSelector):
            if expr.at is not None:
                raise self.err(pos, "@ <timestamp> may not be set multiple times")
            return replace(expr, at=at)
        if isinstance(expr, ast.MatrixSelector):
            if expr.vector.at is not None:
                raise self.err(pos, "@ <timestamp> may not be set multiple times")
            return replace(expr, vector=replace(expr.vector, at=at))
        if isinstance(expr, ast.SubqueryExpr):
            if expr.at is not None:
                raise self.err(pos, "@ <timestamp> may not be set multiple times")
            return replace(expr, at=at)
        raise self.err(
            pos,
            "@ modifier must be preceded by an instant vector selector or range vector "
            "selector or a subquery",
        )

    def check_binary(self, node: ast.BinaryExpr, op_pos: int, pos: int) -> ast.Expr:
        op = node.op
        lt, rt = expr_type(node.lhs), expr_type(node.rhs)
        is_cmp = op in ast.COMPARISON_OPS
        if node.return_bool and not is_cmp:
            raise self.err(op_pos, "bool modifier can only be used on comparison operators")
        scalars = lt == ast.ExprType.SCALAR and rt == ast.ExprType.SCALAR
        if is_cmp and scalars and not node.return_bool:
            raise self.err(op_pos, "comparisons between scalars must use BOOL modifier")
        m = node.matching
        if m is not None and m.on and m.include:
            for name in m.labels:
                if name in m.include:
                    raise self.err(
                        op_pos, f'label "{name}" must not occur in ON and GROUP clause at once'
                    )
        for side, kind in ((node.lhs, lt), (node.rhs, rt)):
            if kind not in (ast.ExprType.SCALAR, ast.ExprType.VECTOR):
                raise self.err(
                    self.pos_of(side),
                    "binary expression must contain only scalar and instant vector types",
                )
        both_vectors = lt == ast.ExprType.VECTOR and rt == ast.ExprType.VECTOR
        if not both_vectors:
            if m is not None and (m.explicit or m.include or m.card in _GROUP_CARDS):
                raise self.err(pos, "vector matching only allowed between instant vectors")
            node = replace(node, matching=None)
        elif op in ast.SET_OPS and m is not None and m.card in _GROUP_CARDS:
            raise self.err(pos, f'no grouping allowed for "{op}" operation')
        if op in ast.SET_OPS and not both_vectors:
            raise self.err(pos, f'set operator "{op}" not allowed in binary scalar expression')
        return self.mark(node, pos)


_GROUP_CARDS: Final = (ast.Cardinality.MANY_TO_ONE, ast.Cardinality.ONE_TO_MANY)


def _dur_arith(op: str, a: float, b: float, parser: _Parser, pos: int) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise parser.err(pos, "division by zero")
        return a / b
    if op == "%":
        if b == 0:
            raise parser.err(pos, "modulo by zero")
        return math.fmod(a, b)
    return float(a**b)


def expr_type(expr: ast.Expr) -> ast.ExprType:
    """Returns the static type of an expression."""
    if isinstance(expr, ast.NumberLiteral):
        return ast.ExprType.SCALAR
    if isinstance(expr, ast.StringLiteral):
        return ast.ExprType.STRING
    if isinstance(expr, ast.VectorSelector | ast.AggregateExpr):
        return ast.ExprType.VECTOR
    if isinstance(expr, ast.MatrixSelector | ast.SubqueryExpr):
        return ast.ExprType.MATRIX
    if isinstance(expr, ast.Call):
        return FUNCTIONS[expr.func].return_type
    if isinstance(expr, ast.UnaryExpr | ast.ParenExpr):
        return expr_type(expr.expr)
    lt, rt = expr_type(expr.lhs), expr_type(expr.rhs)
    if lt == ast.ExprType.SCALAR and rt == ast.ExprType.SCALAR:
        return ast.ExprType.SCALAR
    return ast.ExprType.VECTOR


def parse_expr(
    text: str,
    *,
    enable_experimental_functions: bool = True,
    enable_duration_expressions: bool = True,
) -> ast.Expr:
    """Parses and type-checks a PromQL expression.

    Raises:
        ParseError: with Prometheus's "line:col: parse error: ..." text.
    """
    try:
        parser = _Parser(
            text,
            experimental_functions=enable_experimental_functions,
            duration_expressions=enable_duration_expressions,
        )
        return parser.parse()
    except RecursionError as exc:
        raise ParseError("1:1: parse error: expression nested too deeply") from exc
