"""Evaluates AST nodes over all steps at once: the dispatcher under `Engine`.

`evaluate(expr, ctx)` returns a `ScalarV`, `StringV`, `VectorV` or `MatrixV` for every step
of `ctx.steps`. Python code here loops over nodes and series groups, never over samples.
"""

from __future__ import annotations

import numpy as np

from watchkeeper.model.exposition.floats import format_go_float
from watchkeeper.model.labels import METRIC_NAME
from watchkeeper.promql import ast
from watchkeeper.promql.aggregate import aggregate
from watchkeeper.promql.binary import eval_binary
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.promql.eval_info import eval_info
from watchkeeper.promql.eval_select import (
    eval_matrix_selector,
    eval_vector_selector,
    matrix_from_vector,
    subquery_steps,
)
from watchkeeper.promql.eval_types import (
    DUPLICATE_LABELSET,
    Bool,
    EvalContext,
    EvalValue,
    MatrixV,
    ScalarV,
    StringV,
    VectorV,
    arg_pos,
    as_matrix,
    as_scalar,
    as_vector,
    drop_name,
    strip_names,
)
from watchkeeper.promql.functions import INSTANT_FUNCTIONS, absent_labels
from watchkeeper.promql.kernels import RANGE_FUNCTIONS, deadline
from watchkeeper.promql.signatures import FUNCTIONS

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def evaluate(expr: ast.Expr, ctx: EvalContext) -> EvalValue:
    """Evaluates a node for every step of the context."""
    ctx.check_deadline()
    if isinstance(expr, ast.NumberLiteral):
        return ScalarV(np.full(ctx.n_steps, expr.value))
    if isinstance(expr, ast.StringLiteral):
        return StringV(expr.value)
    if isinstance(expr, ast.ParenExpr):
        return evaluate(expr.expr, ctx)
    if isinstance(expr, ast.VectorSelector):
        vec, _ = eval_vector_selector(ctx, expr)
        return vec
    if isinstance(expr, ast.MatrixSelector):
        return eval_matrix_selector(ctx, expr)
    if isinstance(expr, ast.SubqueryExpr):
        return eval_subquery(expr, ctx)
    if isinstance(expr, ast.UnaryExpr):
        val = evaluate(expr.expr, ctx)
        if expr.op == "+":
            return val
        if isinstance(val, ScalarV):
            return ScalarV(-val.values)
        val = as_vector(val)
        return drop_name(VectorV(val.labels, -val.values, val.present, val.drop_name), ctx)
    if isinstance(expr, ast.BinaryExpr):
        lhs = evaluate(expr.lhs, ctx)
        rhs = evaluate(expr.rhs, ctx)
        out = eval_binary(expr, lhs, rhs, ctx)
        if isinstance(out, VectorV):
            ctx.count_samples(int(out.present.sum()))
        return out
    if isinstance(expr, ast.AggregateExpr):
        return eval_aggregate(expr, ctx)
    return eval_call(expr, ctx)


def eval_subquery(sq: ast.SubqueryExpr, ctx: EvalContext) -> MatrixV:
    """Evaluates the inner expression on the subquery's own step grid."""
    times, inner_steps = subquery_steps(ctx, sq)
    if not len(inner_steps):
        vec = VectorV.empty(0)
    else:
        vec = as_vector(evaluate(sq.expr, ctx.sub(inner_steps)))
    return matrix_from_vector(vec, inner_steps, times, sq.range_ms, ctx)


def eval_aggregate(expr: ast.AggregateExpr, ctx: EvalContext) -> VectorV:
    """Evaluates an aggregation: its parameter, its operand, then the grouped reduction."""
    param: np.ndarray | str | None = None
    if expr.param is not None:
        pv = evaluate(expr.param, ctx)
        param = pv.value if isinstance(pv, StringV) else as_scalar(pv).values
    vec = as_vector(evaluate(expr.expr, ctx))
    out = aggregate(expr, vec, param, ctx)
    ctx.count_samples(int(out.present.sum()))
    return out


def _matrix_arg_pos(call: ast.Call, mi: int) -> int:
    """Where Prometheus places annotations about a call's range vector argument.

    A subquery argument is replaced by an evaluated selector without a position, so its
    annotations point at the query's very start.
    """
    if isinstance(ast.unwrap_parens(call.args[mi]), ast.SubqueryExpr):
        return 0
    return arg_pos(call, mi)


def _matrix_arg(call: ast.Call) -> int:
    sig = FUNCTIONS[call.func]
    for i, t in enumerate(sig.arg_types):
        if t is ast.ExprType.MATRIX:
            return i
    return -1


def eval_call(call: ast.Call, ctx: EvalContext) -> EvalValue:
    """Evaluates a function call."""
    name = call.func
    if name == "timestamp":
        arg = ast.unwrap_parens(call.args[0])
        if isinstance(arg, ast.VectorSelector):
            vec, sample_ts = eval_vector_selector(ctx, arg, want_timestamps=True)
            values = sample_ts / 1000.0
            return drop_name(VectorV(vec.labels, values, vec.present, vec.drop_name), ctx)
    if name == "info":
        # Its second argument selects info series itself: it is never evaluated as a vector.
        enriched = eval_info(call, as_vector(evaluate(call.args[0], ctx)), ctx)
        ctx.count_samples(int(enriched.present.sum()))
        return enriched
    mi = _matrix_arg(call)
    if mi < 0:
        if name not in INSTANT_FUNCTIONS:
            raise EvaluationError(f'function "{name}" is not supported for float samples')
        args = [evaluate(a, ctx) for a in call.args]
        out = INSTANT_FUNCTIONS[name](call, args, ctx)
        if isinstance(out, VectorV):
            ctx.count_samples(int(out.present.sum()))
        return out
    return eval_range_function(call, mi, ctx)


def eval_range_function(call: ast.Call, mi: int, ctx: EvalContext) -> VectorV:
    """Evaluates a function over a range vector through `kernels.RANGE_FUNCTIONS`."""
    name = call.func
    params: list[np.ndarray] = []
    for i, a in enumerate(call.args):
        if i == mi:
            continue
        params.append(as_scalar(evaluate(a, ctx)).values)
    mat = as_matrix(evaluate(ast.unwrap_parens(call.args[mi]), ctx))
    k = ctx.n_steps
    if name == "absent_over_time":
        missing: Bool = np.ones(k, dtype=np.bool_)
        if len(mat.labels):
            missing = np.logical_not((mat.hi > mat.lo).any(axis=0))
        if not missing.any():
            return VectorV.empty(k)
        return VectorV(
            [absent_labels(call.args[mi])],
            np.ones((1, k)),
            missing[None, :].copy(),
            np.ones(1, dtype=np.bool_),
        )
    if not len(mat.labels):
        return VectorV.empty(k)
    if name == "quantile_over_time":
        q = params[0]
        bad = q[(q < 0) | (q > 1) | np.isnan(q)]
        if len(bad) and (mat.hi > mat.lo).any():
            ctx.warn(
                f"quantile value should be between 0 and 1, got {format_go_float(float(bad[0]))}",
                arg_pos(call, 0),
            )
    if name == "predict_linear":
        # Prometheus regresses around the step time, not the window end (offset, @).
        params.append(ctx.steps)
    kernel = RANGE_FUNCTIONS[name]
    with deadline(ctx.deadline):
        out, present = kernel(
            mat.timestamps_ms, mat.values, mat.lo, mat.hi, mat.eval_ts_ms, mat.range_ms, *params
        )
    ctx.check_deadline()
    vec = VectorV(list(mat.labels), out, present, mat.drop_name.copy())
    vec = vec.nonempty()
    if name in ("rate", "increase"):
        # Each metric name once, in order of first appearance (annotations keep order).
        for metric in dict.fromkeys(lb.get(METRIC_NAME) for lb in vec.labels):
            if metric and not metric.endswith(_COUNTER_SUFFIXES):
                ctx.info(
                    "metric might not be a counter, name does not end in "
                    f'_total/_sum/_count/_bucket: "{metric}"',
                    _matrix_arg_pos(call, mi),
                )
    ctx.count_samples(int(vec.present.sum()))
    if name in ("last_over_time", "first_over_time"):
        return vec
    if ctx.delayed_name_removal:
        return VectorV(vec.labels, vec.values, vec.present, np.ones(len(vec.labels), np.bool_))
    labels = strip_names(vec.labels)
    if len(set(labels)) != len(labels):
        raise EvaluationError(DUPLICATE_LABELSET)
    return VectorV(labels, vec.values, vec.present, np.zeros(len(labels), np.bool_))


__all__ = ["eval_aggregate", "eval_call", "eval_range_function", "eval_subquery", "evaluate"]
