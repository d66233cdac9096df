"""The JSON syntax tree of /api/v1/parse_query, in Prometheus's translateAST shape."""

from __future__ import annotations

from typing import Any

from watchkeeper.model.exposition.floats import format_go_positional
from watchkeeper.promql import ast
from watchkeeper.promql.signatures import FUNCTIONS


def _at(at: ast.At | None) -> tuple[Any, Any]:
    if at is None:
        return None, None
    if at.kind is ast.AtKind.TIME:
        return at.time_ms, None
    return None, at.kind.value


def _selector(sel: ast.VectorSelector) -> dict[str, Any]:
    ts, start_or_end = _at(sel.at)
    return {
        "type": "vectorSelector",
        "name": sel.name,
        "offset": sel.offset_ms,
        "matchers": [
            {"name": m.name, "type": m.type.value, "value": m.value} for m in sel.matchers
        ],
        "timestamp": ts,
        "startOrEnd": start_or_end,
    }


def translate_ast(node: ast.Expr) -> dict[str, Any]:
    """Converts a parsed expression into Prometheus's parse_query JSON."""
    if isinstance(node, ast.AggregateExpr):
        return {
            "type": "aggregation",
            "op": node.op,
            "expr": translate_ast(node.expr),
            "param": translate_ast(node.param) if node.param is not None else None,
            "grouping": list(node.grouping),
            "without": node.without,
        }
    if isinstance(node, ast.BinaryExpr):
        matching: dict[str, Any] | None = None
        if node.matching is not None:
            matching = {
                "card": node.matching.card.value,
                "labels": list(node.matching.labels),
                "on": node.matching.on,
                "include": list(node.matching.include),
            }
        return {
            "type": "binaryExpr",
            "op": node.op,
            "lhs": translate_ast(node.lhs),
            "rhs": translate_ast(node.rhs),
            "matching": matching,
            "bool": node.return_bool,
        }
    if isinstance(node, ast.Call):
        sig = FUNCTIONS.get(node.func)
        func: dict[str, Any] = {"name": node.func}
        if sig is not None:
            func.update(
                argTypes=[t.value for t in sig.arg_types],
                variadic=sig.variadic,
                returnType=sig.return_type.value,
            )
        return {"type": "call", "func": func, "args": [translate_ast(a) for a in node.args]}
    if isinstance(node, ast.MatrixSelector):
        return {
            "type": "matrixSelector",
            "range": node.range_ms,
            "vectorSelector": _selector(node.vector),
        }
    if isinstance(node, ast.SubqueryExpr):
        ts, start_or_end = _at(node.at)
        return {
            "type": "subquery",
            "expr": translate_ast(node.expr),
            "range": node.range_ms,
            "offset": node.offset_ms,
            "step": node.step_ms,
            "timestamp": ts,
            "startOrEnd": start_or_end,
        }
    if isinstance(node, ast.NumberLiteral):
        return {"type": "numberLiteral", "val": format_go_positional(node.value)}
    if isinstance(node, ast.ParenExpr):
        return {"type": "parenExpr", "expr": translate_ast(node.expr)}
    if isinstance(node, ast.StringLiteral):
        return {"type": "stringLiteral", "val": node.value}
    if isinstance(node, ast.UnaryExpr):
        return {"type": "unaryExpr", "op": node.op, "expr": translate_ast(node.expr)}
    return _selector(node)
