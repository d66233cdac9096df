"""Instant-vector functions: math, clamp, label manipulation, sorting, time and date functions.

Each takes the call node, its evaluated arguments and the context, and works on whole
(n_series, n_steps) arrays. Range functions are in `kernels.py` (see `eval_node.py`).
Signatures (argument types, arity) are in `signatures.py`, re-exported here as `FUNCTIONS`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Final

import numpy as np

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import InvalidMatcherError, MatchType, compile_anchored
from watchkeeper.promql import ast
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.promql.eval_types import (
    DUPLICATE_LABELSET,
    F64,
    Bool,
    EvalContext,
    EvalValue,
    ScalarV,
    VectorV,
    arg_pos,
    as_scalar,
    as_string,
    as_vector,
    drop_name,
)
from watchkeeper.promql.histogram import (
    bad_bucket_label_warning,
    forced_monotonicity_info,
    histogram_fraction,
    histogram_quantile,
    invalid_quantile_warning,
    parse_le,
)
from watchkeeper.promql.signatures import FUNCTIONS

__all__ = ["FUNCTIONS", "INSTANT_FUNCTIONS", "absent_labels", "is_valid_label_name"]

InstantFunction = Callable[[ast.Call, list[EvalValue], EvalContext], EvalValue]


def is_valid_label_name(name: str) -> bool:
    """Tells whether a label name is valid UTF-8 and non-empty (Prometheus 3's rule)."""
    if not name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _vec(v: EvalValue) -> VectorV:
    return as_vector(v)


def _scalar(v: EvalValue) -> F64:
    return as_scalar(v).values


def _string(v: EvalValue) -> str:
    return as_string(v).value


def _map_values(
    fn: Callable[[F64], F64],
) -> InstantFunction:
    def apply(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
        vec = _vec(args[0])
        with np.errstate(all="ignore"):
            values = fn(vec.values)
        return drop_name(VectorV(vec.labels, values, vec.present, vec.drop_name), ctx)

    return apply


def _sgn(v: F64) -> F64:
    out: F64 = np.sign(v)
    return out


_MATH: Final[dict[str, Callable[[F64], F64]]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": np.degrees,
    "rad": np.radians,
    "sgn": _sgn,
}


def _round(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    to_nearest = _scalar(args[1]) if len(args) > 1 else np.ones(ctx.n_steps)
    with np.errstate(all="ignore"):
        inverse = 1.0 / to_nearest
        values = np.floor(vec.values * inverse[None, :] + 0.5) / inverse[None, :]
    return drop_name(VectorV(vec.labels, values, vec.present, vec.drop_name), ctx)


def _clamp(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    n = ctx.n_steps
    lo = _scalar(args[1]) if call.func in ("clamp", "clamp_min") else np.full(n, -np.inf)
    if call.func == "clamp":
        hi = _scalar(args[2])
    elif call.func == "clamp_max":
        hi = _scalar(args[1])
    else:
        hi = np.full(n, np.inf)
    values = np.maximum(lo[None, :], np.minimum(hi[None, :], vec.values))
    present = vec.present
    if call.func == "clamp":
        present = present & ~(hi < lo)[None, :]
    out = drop_name(VectorV(vec.labels, values, present, vec.drop_name), ctx)
    return out.nonempty()


def _timestamp(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    values = np.broadcast_to(ctx.steps / 1000.0, vec.values.shape).copy()
    return drop_name(VectorV(vec.labels, values, vec.present, vec.drop_name), ctx)


def _vector(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    values = _scalar(args[0])[None, :].copy()
    return VectorV(
        [Labels()], values, np.ones((1, ctx.n_steps), dtype=np.bool_), np.zeros(1, np.bool_)
    )


def _scalar_fn(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    count = vec.present.sum(axis=0)
    picked = np.where(vec.present, vec.values, 0.0).sum(axis=0) if len(vec.labels) else None
    out = np.full(ctx.n_steps, np.nan)
    if picked is not None:
        one = count == 1
        # The single present value (summing zeros elsewhere keeps NaN and Inf intact).
        first = np.argmax(vec.present, axis=0)
        out[one] = vec.values[first[one], np.flatnonzero(one)]
    return ScalarV(out)


def _time(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    return ScalarV(ctx.steps / 1000.0)


def _pi(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    return ScalarV(np.full(ctx.n_steps, math.pi))


def absent_labels(expr: ast.Expr) -> Labels:
    """The labels `absent()` gives its result: the selector's equality matchers."""
    expr = ast.unwrap_parens(expr)
    if isinstance(expr, ast.MatrixSelector):
        expr = expr.vector
    if not isinstance(expr, ast.VectorSelector):
        return Labels()
    out: dict[str, str] = {}
    has: set[str] = set()
    for m in expr.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.type is MatchType.EQUAL and m.name not in has:
            out[m.name] = m.value
            has.add(m.name)
        else:
            out.pop(m.name, None)
    return Labels(out.items())


def _absent(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    missing: Bool = np.ones(ctx.n_steps, dtype=np.bool_)
    if len(vec.labels):
        missing = np.logical_not(vec.present.any(axis=0))
    if not missing.any():
        return VectorV.empty(ctx.n_steps)
    return VectorV(
        [absent_labels(call.args[0])],
        np.ones((1, ctx.n_steps)),
        missing[None, :].copy(),
        np.ones(1, dtype=np.bool_),
    )


def _sort_key_rows(vec: VectorV, descending: bool) -> list[int]:
    col = vec.values[:, 0] if vec.values.shape[1] else np.zeros(len(vec.labels))
    nan = np.isnan(col)
    key = -col if descending else col
    order = np.lexsort((key, nan))
    return [int(i) for i in order]


def _sort(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    if ctx.n_steps != 1 or len(vec.labels) < 2:
        return vec
    return vec.take(_sort_key_rows(vec, call.func == "sort_desc"))


_NAT_RE: Final = re.compile(r"(\d+|\D+)")


def _natural_key(s: str) -> tuple[tuple[int, int, str], ...]:
    parts = []
    for chunk in _NAT_RE.findall(s):
        if chunk.isdigit():
            parts.append((0, int(chunk), chunk))
        else:
            parts.append((1, 0, chunk))
    return tuple(parts)


def _sort_by_label(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    names = [_string(a) for a in args[1:]]
    desc = call.func == "sort_by_label_desc"

    def compare(a: int, b: int) -> int:
        la, lb = vec.labels[a], vec.labels[b]
        for n in names:
            va, vb = la.get(n), lb.get(n)
            if va == vb:
                continue
            less = _natural_key(va) < _natural_key(vb)
            return (1 if less else -1) if desc else (-1 if less else 1)
        c = (la > lb) - (la < lb)
        return -c if desc else c

    order = sorted(range(len(vec.labels)), key=functools.cmp_to_key(compare))
    return vec.take(order)


_EXPAND_RE: Final = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+)|(\$))")


def _expand(template: str, match: re.Match[str]) -> str:
    """Expands $1, ${1}, $name as Go's Regexp.Expand does (unknown groups are empty)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name is None or name == "":
            return ""
        try:
            got = match.group(int(name)) if name.isdigit() else match.group(name)
        except (IndexError, error_type):
            return ""
        return got or ""

    return _EXPAND_RE.sub(sub, template)


error_type = re.error


def _check_unique(labels: list[Labels], present_any: list[bool] | None = None) -> None:
    seen: set[Labels] = set()
    for lb in labels:
        if lb in seen:
            raise EvaluationError(DUPLICATE_LABELSET)
        seen.add(lb)


def _label_replace(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    dst, repl, src, regex = (_string(a) for a in args[1:5])
    try:
        pattern = compile_anchored(regex)
    except InvalidMatcherError as exc:
        raise EvaluationError(f"invalid regular expression in label_replace(): {regex}") from exc
    if not is_valid_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_replace(): {dst}")
    labels = list(vec.labels)
    drop = vec.drop_name.copy()
    for i, lb in enumerate(labels):
        m = pattern.fullmatch(lb.get(src))
        if m is None:
            continue
        labels[i] = lb.with_mapping({dst: _expand(repl, m)})
        if dst == METRIC_NAME:
            drop[i] = False
    _check_unique(labels)
    return VectorV(labels, vec.values, vec.present, drop)


def _label_join(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    vec = _vec(args[0])
    dst = _string(args[1])
    sep = _string(args[2])
    srcs = [_string(a) for a in args[3:]]
    for s in srcs:
        if not is_valid_label_name(s):
            raise EvaluationError(f"invalid source label name in label_join(): {s}")
    if not is_valid_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")
    labels = list(vec.labels)
    drop = vec.drop_name.copy()
    for i, lb in enumerate(labels):
        labels[i] = lb.with_mapping({dst: sep.join(lb.get(s) for s in srcs)})
        if dst == METRIC_NAME:
            drop[i] = False
    _check_unique(labels)
    return VectorV(labels, vec.values, vec.present, drop)


def _date_fn(kind: str) -> InstantFunction:
    def apply(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
        if args:
            vec = _vec(args[0])
        else:
            vec = VectorV(
                [Labels()],
                (ctx.steps / 1000.0)[None, :],
                np.ones((1, ctx.n_steps), dtype=np.bool_),
                np.zeros(1, np.bool_),
            )
        v = vec.values
        finite = np.isfinite(v)
        secs = np.where(finite, np.trunc(np.where(finite, v, 0.0)), 0).astype(np.int64)
        dt = secs.astype("datetime64[s]")
        days = secs // 86400
        if kind == "year":
            out = dt.astype("datetime64[Y]").astype(np.int64) + 1970
        elif kind == "month":
            out = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
        elif kind == "day_of_month":
            out = (dt.astype("datetime64[D]") - dt.astype("datetime64[M]")).astype(np.int64) + 1
        elif kind == "day_of_year":
            out = (dt.astype("datetime64[D]") - dt.astype("datetime64[Y]")).astype(np.int64) + 1
        elif kind == "day_of_week":
            out = (days + 4) % 7
        elif kind == "hour":
            out = (secs // 3600) % 24
        elif kind == "minute":
            out = (secs // 60) % 60
        else:
            month = dt.astype("datetime64[M]")
            out = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(
                np.int64
            )
        values = np.where(finite, out.astype(np.float64), np.nan)
        return drop_name(VectorV(vec.labels, values, vec.present, vec.drop_name), ctx)

    return apply


def _bucket_groups(
    vec: VectorV, ctx: EvalContext, pos: int
) -> tuple[VectorV, F64, np.ndarray, list[Labels]]:
    """Parses `le`, warns (at `pos`) about bad ones, and numbers buckets without `le`."""
    bounds: list[float] = []
    rows: list[int] = []
    for i, lb in enumerate(vec.labels):
        le = lb.get("le")
        bound = parse_le(le)
        if bound is None:
            if vec.present[i].any():
                ctx.warnings[bad_bucket_label_warning(lb.get(METRIC_NAME), le)] = pos
            continue
        rows.append(i)
        bounds.append(bound)
    kept = vec.take(rows)
    index: dict[Labels, int] = {}
    keys: list[Labels] = []
    gid = np.empty(len(rows), dtype=np.int64)
    for j, lb in enumerate(kept.labels):
        key = lb.without("le")
        g = index.get(key)
        if g is None:
            g = len(keys)
            index[key] = g
            keys.append(key)
        gid[j] = g
    return kept, np.asarray(bounds, dtype=np.float64), gid, keys


def _histogram_result(
    keys: list[Labels], out: F64, present: np.ndarray, ctx: EvalContext
) -> VectorV:
    vec = VectorV(keys, out, present, np.zeros(len(keys), dtype=np.bool_))
    return drop_name(vec, ctx).nonempty()


def _histogram_quantile(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    q = _scalar(args[0])
    vec = _vec(args[1])
    bad = q[np.isnan(q) | (q < 0) | (q > 1)]
    if len(bad):
        ctx.warnings[invalid_quantile_warning(float(bad[0]))] = arg_pos(call, 0)
    kept, bounds, gid, keys = _bucket_groups(vec, ctx, arg_pos(call, 1))
    if not keys:
        return VectorV.empty(ctx.n_steps)
    out, present, forced = histogram_quantile(q, bounds, kept.values, kept.present, gid, len(keys))
    for g in np.flatnonzero(forced).tolist():
        ctx.infos[forced_monotonicity_info(keys[g].get(METRIC_NAME))] = arg_pos(call, 1)
    return _histogram_result(keys, out, present, ctx)


def _histogram_fraction(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    lower = _scalar(args[0])
    upper = _scalar(args[1])
    vec = _vec(args[2])
    kept, bounds, gid, keys = _bucket_groups(vec, ctx, arg_pos(call, 2))
    if not keys:
        return VectorV.empty(ctx.n_steps)
    out, present = histogram_fraction(
        lower, upper, bounds, kept.values, kept.present, gid, len(keys)
    )
    return _histogram_result(keys, out, present, ctx)


def _info(call: ast.Call, args: list[EvalValue], ctx: EvalContext) -> EvalValue:
    """Never called: `info()` reads info series from storage (eval_info.py, via eval_node).

    It stays in the table so every function of `signatures.FUNCTIONS` has an entry.
    """
    raise EvaluationError("internal error: info() is evaluated by eval_info, not as a function")


INSTANT_FUNCTIONS: Final[dict[str, InstantFunction]] = {
    **{name: _map_values(fn) for name, fn in _MATH.items()},
    "round": _round,
    "clamp": _clamp,
    "clamp_min": _clamp,
    "clamp_max": _clamp,
    "timestamp": _timestamp,
    "vector": _vector,
    "scalar": _scalar_fn,
    "time": _time,
    "pi": _pi,
    "absent": _absent,
    "sort": _sort,
    "sort_desc": _sort,
    "sort_by_label": _sort_by_label,
    "sort_by_label_desc": _sort_by_label,
    "label_replace": _label_replace,
    "label_join": _label_join,
    "info": _info,
    "histogram_quantile": _histogram_quantile,
    "histogram_fraction": _histogram_fraction,
    **{
        name: _date_fn(name)
        for name in (
            "year",
            "month",
            "day_of_month",
            "day_of_year",
            "day_of_week",
            "hour",
            "minute",
            "days_in_month",
        )
    },
}
"""Instant-vector and scalar functions by name (range functions are in kernels.py)."""
