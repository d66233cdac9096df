"""Printing PromQL ASTs back to text that parses to the same tree."""

from __future__ import annotations

import math

from watchkeeper.model.duration import format_duration_ms
from watchkeeper.model.labels import METRIC_NAME
from watchkeeper.promql import ast
from watchkeeper.promql.lexer import IDENT_RE


def _format_number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v)) if not (v == 0 and math.copysign(1, v) < 0) else "-0"
    return repr(v)


def _quote(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _format_label_name(name: str) -> str:
    if IDENT_RE.fullmatch(name) and ":" not in name:
        return name
    return _quote(name)


def _format_duration(ms: int) -> str:
    if ms < 0:
        return "-" + format_duration_ms(-ms)
    return format_duration_ms(ms)


def _format_at(at: ast.At | None) -> str:
    if at is None:
        return ""
    if at.kind is ast.AtKind.START:
        return " @ start()"
    if at.kind is ast.AtKind.END:
        return " @ end()"
    return f" @ {at.time_ms / 1000:.3f}"


def _format_selector(sel: ast.VectorSelector) -> str:
    matchers = list(sel.matchers)
    name = ""
    if sel.name and matchers and matchers[0].name == METRIC_NAME:
        name = sel.name if ":" in sel.name or IDENT_RE.fullmatch(sel.name) else ""
        if name:
            matchers = matchers[1:]
    parts = [f"{_format_label_name(m.name)}{m.type.value}{_quote(m.value)}" for m in matchers]
    if name and not parts:
        return name
    return name + "{" + ", ".join(parts) + "}"


def _format_grouping(labels: tuple[str, ...]) -> str:
    return "(" + ", ".join(_format_label_name(n) for n in labels) + ")"


def format_expr(expr: ast.Expr) -> str:
    """Prints an expression as PromQL text that parses back to the same AST."""
    if isinstance(expr, ast.NumberLiteral):
        return _format_number(expr.value)
    if isinstance(expr, ast.StringLiteral):
        return _quote(expr.value)
    if isinstance(expr, ast.VectorSelector):
        out = _format_selector(expr)
        if expr.offset_ms:
            out += f" offset {_format_duration(expr.offset_ms)}"
        return out + _format_at(expr.at)
    if isinstance(expr, ast.MatrixSelector):
        vec = expr.vector
        out = f"{_format_selector(vec)}[{_format_duration(expr.range_ms)}]"
        if vec.offset_ms:
            out += f" offset {_format_duration(vec.offset_ms)}"
        return out + _format_at(vec.at)
    if isinstance(expr, ast.SubqueryExpr):
        step = _format_duration(expr.step_ms) if expr.step_ms else ""
        out = f"{format_expr(expr.expr)}[{_format_duration(expr.range_ms)}:{step}]"
        if expr.offset_ms:
            out += f" offset {_format_duration(expr.offset_ms)}"
        return out + _format_at(expr.at)
    if isinstance(expr, ast.Call):
        return f"{expr.func}({', '.join(format_expr(a) for a in expr.args)})"
    if isinstance(expr, ast.AggregateExpr):
        out = expr.op
        if expr.has_grouping:
            out += (" without " if expr.without else " by ") + _format_grouping(expr.grouping)
            out += " "
        args = [format_expr(expr.expr)]
        if expr.param is not None:
            args.insert(0, format_expr(expr.param))
        return out + "(" + ", ".join(args) + ")"
    if isinstance(expr, ast.BinaryExpr):
        mod = ""
        if expr.return_bool:
            mod += " bool"
        m = expr.matching
        if m is not None:
            if m.explicit or m.labels:
                mod += (" on" if m.on else " ignoring") + _format_grouping(m.labels)
            if m.card is ast.Cardinality.MANY_TO_ONE:
                mod += " group_left" + _format_grouping(m.include)
            elif m.card is ast.Cardinality.ONE_TO_MANY:
                mod += " group_right" + _format_grouping(m.include)
        return f"{format_expr(expr.lhs)} {expr.op}{mod} {format_expr(expr.rhs)}"
    if isinstance(expr, ast.UnaryExpr):
        return f"{expr.op}{format_expr(expr.expr)}"
    return f"({format_expr(expr.expr)})"
