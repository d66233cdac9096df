"""Evaluates AST nodes over all steps at once: the dispatcher under `Engine`.

`evaluate(expr, ctx)` returns a `ScalarV`, `StringV`, `VectorV` or `MatrixV` for every step
of `ctx.steps`. Python code here loops over nodes and series groups, never over samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.model.exposition.floats import format_go_float
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.promql import ast
from watchkeeper.promql.aggregate import aggregate
from watchkeeper.promql.binary import eval_binary
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.promql.eval_info import eval_info
from watchkeeper.promql.eval_select import (
    eval_matrix_selector,
    eval_vector_selector,
    matrix_from_vector,
    ragged_matrix,
    subquery_steps,
)
from watchkeeper.promql.eval_types import (
    DUPLICATE_LABELSET,
    F64,
    I64,
    Bool,
    EvalContext,
    EvalValue,
    MatrixV,
    SampleTally,
    ScalarV,
    SeriesKey,
    StringV,
    SubqueryPoints,
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


MAX_CHUNK_CELLS = 1 << 22
"""How many (series, step) cells a chunk of a subquery's inner evaluation aims at."""
FIRST_CHUNK_STEPS = 4096
"""Inner steps of a subquery's first chunk; a subquery with no more steps is not chunked."""


def evaluate(expr: ast.Expr, ctx: EvalContext) -> EvalValue:
    """Evaluates a node for every step of the context."""
    if ctx.tally is None:
        return _evaluate(expr, ctx)
    # Inside a chunked subquery: samples are counted per node across the chunks.
    ctx.tally.frames.append([id(expr), 0])
    try:
        return _evaluate(expr, ctx)
    finally:
        ctx.tally.frames.pop()


def _evaluate(expr: ast.Expr, ctx: EvalContext) -> EvalValue:
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
    elif ctx.tally is not None or len(inner_steps) > FIRST_CHUNK_STEPS:
        return _eval_subquery_in_chunks(sq, ctx, times, inner_steps)
    else:
        vec = as_vector(evaluate(sq.expr, ctx.sub(inner_steps)))
    return matrix_from_vector(vec, inner_steps, times, sq.range_ms, ctx)


class _Points:
    """Ragged points of a subquery's inner evaluation, merged by label set.

    Each added part holds its points grouped by series: runs of (series id, length).
    """

    def __init__(self) -> None:
        self.series_of: dict[SeriesKey, int] = {}
        self.keys: list[SeriesKey] = []
        self.run_ids: list[I64] = []
        self.run_lengths: list[I64] = []
        self.stamps: list[I64] = []
        self.values: list[F64] = []

    def _rows(self, keys: list[SeriesKey]) -> I64:
        rows = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            sid = self.series_of.get(key)
            if sid is None:
                sid = self.series_of[key] = len(self.keys)
                self.keys.append(key)
            rows[i] = sid
        return rows

    def _add(self, rows: I64, counts: I64, stamps: I64, values: F64) -> None:
        nonempty = counts > 0
        self.run_ids.append(rows[nonempty])
        self.run_lengths.append(counts[nonempty])
        self.stamps.append(stamps)
        self.values.append(values)

    def add_vector(self, vec: VectorV, steps: I64) -> None:
        """Adds the present points of a chunk's dense result at `steps`."""
        keys: list[SeriesKey] = []
        seen: dict[tuple[Labels, bool], int] = {}
        for lb, dn in zip(vec.labels, vec.drop_name.tolist(), strict=True):
            occurrence = seen.get((lb, dn), 0)
            seen[(lb, dn)] = occurrence + 1
            keys.append((lb, dn, occurrence))
        rows = self._rows(keys)
        n, k = vec.present.shape
        counts = np.count_nonzero(vec.present, axis=1).astype(np.int64)
        if n and int(counts.sum()) == n * k:
            stamps = np.tile(steps, n) if n > 1 else steps
            values = vec.values.reshape(-1)
        else:
            flat = np.flatnonzero(vec.present)
            stamps = steps[flat % k]
            values = vec.values.reshape(-1)[flat]
        self._add(rows, counts, stamps, values)

    def add_kept(self, kept: SubqueryPoints, first_ms: int, last_ms: int) -> None:
        """Adds the points of an earlier chunk in first_ms..last_ms."""
        rows = self._rows(kept.keys)
        m = len(kept.keys)
        ids = np.repeat(np.arange(m, dtype=np.int64), np.diff(kept.offsets))
        keep = (kept.timestamps_ms >= first_ms) & (kept.timestamps_ms <= last_ms)
        counts = np.bincount(ids[keep], minlength=m).astype(np.int64)
        self._add(rows, counts, kept.timestamps_ms[keep], kept.values[keep])

    def finish(self, first_ms: int, last_ms: int) -> SubqueryPoints:
        """All points, grouped by series in first-seen order, in time order per series."""
        n = len(self.keys)
        ids = _joined(self.run_ids, np.int64)
        lengths = _joined(self.run_lengths, np.int64)
        per_series = np.bincount(ids, weights=lengths, minlength=n).astype(np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_series, out=offsets[1:])
        ts = _joined(self.stamps, np.int64)
        values = _joined(self.values, np.float64)
        self.stamps, self.values = [], []
        if len(ids) > 1 and not bool((ids[1:] >= ids[:-1]).all()):
            # Move whole runs: each series' runs, in the order they came (time order).
            order = np.argsort(ids, kind="stable")
            src_start = np.zeros(len(lengths), dtype=np.int64)
            np.cumsum(lengths[:-1], out=src_start[1:])
            moved = lengths[order]
            dest_start = np.zeros(len(moved), dtype=np.int64)
            np.cumsum(moved[:-1], out=dest_start[1:])
            index = np.repeat(src_start[order] - dest_start, moved)
            index += np.arange(len(index), dtype=np.int64)
            ts, values = ts[index], values[index]
        return SubqueryPoints(self.keys, offsets, ts, values, first_ms, last_ms)


def _joined(parts: list[npt.NDArray[Any]], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """One array of the parts (the part itself when there is only one)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.empty(0, dtype=dtype)
    return np.concatenate(parts)


def _eval_subquery_in_chunks(
    sq: ast.SubqueryExpr, ctx: EvalContext, times: I64, inner_steps: I64
) -> MatrixV:
    """Evaluates a long subquery's inner expression a few steps at a time.

    An instant vector is dense (series x steps): with many inner steps and many series,
    each present at a few steps only (`count_values` of a changing value), the dense form
    does not fit in memory while the points do. Each chunk's dense size stays near
    MAX_CHUNK_CELLS (the next chunk's length follows the last one's series count); its
    present points are kept and merged by label set, in time order per series.

    Inside a chunk of an enclosing subquery, the points of this subquery's previous chunk
    that the new windows still need are reused, so each inner step is evaluated (and its
    samples counted) once, as without chunks.
    """
    interval = sq.step_ms or ctx.default_subquery_step_ms
    tally = ctx.tally if ctx.tally is not None else SampleTally()
    first_ms, last_ms = int(inner_steps[0]), int(inner_steps[-1])
    acc = _Points()
    kept = tally.reuse.get(id(sq)) if ctx.tally is not None else None
    if kept is not None and kept.first_ms <= first_ms:
        acc.add_kept(kept, first_ms, last_ms)
        inner_steps = inner_steps[inner_steps > kept.last_ms]
    k = len(inner_steps)
    pos, size = 0, FIRST_CHUNK_STEPS
    while pos < k:
        ctx.check_deadline()
        steps = inner_steps[pos : pos + size]
        vec = as_vector(evaluate(sq.expr, ctx.sub(steps, step_ms=interval, tally=tally)))
        acc.add_vector(vec, steps)
        n = len(vec.labels)
        del vec
        pos += len(steps)
        size = max(1, min(MAX_CHUNK_CELLS // max(n, 1), 2 * len(steps)))
    ctx.check_deadline()
    points = acc.finish(first_ms, last_ms)
    if ctx.tally is not None and (kept is None or kept.last_ms <= last_ms):
        tally.reuse[id(sq)] = points
    return ragged_matrix(
        [key[0] for key in points.keys],
        points.offsets,
        points.timestamps_ms,
        points.values,
        drop_name=np.array([key[1] for key in points.keys], dtype=np.bool_),
        times=times,
        range_ms=sq.range_ms,
        ctx=ctx,
    )


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


__all__ = [
    "FIRST_CHUNK_STEPS",
    "MAX_CHUNK_CELLS",
    "eval_aggregate",
    "eval_call",
    "eval_range_function",
    "eval_subquery",
    "evaluate",
]
