"""Aggregation operators as grouped reductions over (n_series, n_steps) arrays.

Series are numbered by output group once (a dict over label sets); every reduction then
runs over all groups and steps at once, with `kernels_aggregate` for the Kahan sums,
Prometheus's mean, variance and quantile, and lexsorts for topk/bottomk/limitk.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.model.exposition.floats import format_go_float, format_go_positional
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.promql import ast
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.promql.eval_types import F64, I64, Bool, EvalContext, VectorV
from watchkeeper.promql.functions import is_valid_label_name
from watchkeeper.promql.kernels_aggregate import (
    grouped_avg,
    grouped_quantile,
    grouped_stddev,
    grouped_stdvar,
    grouped_sum,
)


def group_keys(
    labels: list[Labels], grouping: tuple[str, ...], without: bool
) -> tuple[I64, list[Labels]]:
    """Numbers each series by output group; returns (group ids, group label sets)."""
    index: dict[tuple[tuple[str, str], ...], int] = {}
    out: list[Labels] = []
    ids: list[int] = []
    names = frozenset((*grouping, METRIC_NAME)) if without else frozenset(grouping)
    setdefault = index.setdefault
    for lb in labels:
        if without:
            key = tuple(p for p in lb.pairs if p[0] not in names)
        else:
            key = tuple(p for p in lb.pairs if p[0] in names)
        gid = setdefault(key, len(index))
        if gid == len(out):
            out.append(Labels.from_sorted_pairs(key))
        ids.append(gid)
    return np.fromiter(ids, dtype=np.int64, count=len(ids)), out


def _reduce(ufunc: np.ufunc, values: npt.NDArray[Any], gid: I64, n_groups: int, fill: float) -> F64:
    order = np.argsort(gid, kind="stable")
    sorted_gid = gid[order]
    starts = np.flatnonzero(np.r_[True, sorted_gid[1:] != sorted_gid[:-1]])
    out = np.full((n_groups, values.shape[1]), fill)
    if len(order):
        red = ufunc.reduceat(values[order], starts, axis=0)
        out[sorted_gid[starts]] = red
    return out


def _group_drop(vec: VectorV, gid: I64, n_groups: int, keeps_name: bool) -> Bool:
    if not keeps_name or not len(gid):
        return np.zeros(n_groups, dtype=np.bool_)
    out = np.zeros(n_groups, dtype=np.bool_)
    np.logical_or.at(out, gid, vec.drop_name)
    return out


def aggregate(
    expr: ast.AggregateExpr,
    vec: VectorV,
    param: F64 | str | None,
    ctx: EvalContext,
) -> VectorV:
    """Evaluates one aggregation over every step."""
    op = expr.op
    k = ctx.n_steps
    if op == "count_values":
        if not isinstance(param, str):
            raise EvaluationError("count_values needs a string parameter")
        return _count_values(expr, vec, param, ctx)
    if op in ("topk", "bottomk", "limitk", "limit_ratio"):
        if not isinstance(param, np.ndarray):
            raise EvaluationError(f"{op} needs a scalar parameter")
        return _select_k(expr, vec, param, ctx)
    gid, keys = group_keys(vec.labels, expr.grouping, expr.without)
    n_groups = len(keys)
    if n_groups == 0:
        return VectorV.empty(k)
    keeps_name = (not expr.without) and METRIC_NAME in expr.grouping
    present = vec.present
    values = vec.values
    if n_groups == len(vec.labels) and op in _ONE_PER_GROUP:
        # Every group holds one series (group ids are first-seen order, so group i is
        # series i): the answer is the series itself, as Prometheus's fold leaves it.
        out, seen = _ONE_PER_GROUP[op](values, present), present
    elif op == "sum":
        out, seen = grouped_sum(values, present, gid, n_groups)
    elif op == "avg":
        out, seen = grouped_avg(values, present, gid, n_groups)
    elif op == "count":
        counts = _reduce(np.add, present.astype(np.float64), gid, n_groups, 0.0)
        out, seen = counts, counts > 0
    elif op == "group":
        seen = _reduce(np.logical_or, present, gid, n_groups, False).astype(np.bool_)
        out = np.ones((n_groups, k))
    elif op in ("min", "max"):
        masked = np.where(present, values, np.nan)
        red = np.fmin if op == "min" else np.fmax
        out = _reduce(red, masked, gid, n_groups, np.nan)
        seen = _reduce(np.logical_or, present, gid, n_groups, False).astype(np.bool_)
    elif op == "stddev":
        out, seen = grouped_stddev(values, present, gid, n_groups)
    elif op == "stdvar":
        out, seen = grouped_stdvar(values, present, gid, n_groups)
    elif op == "quantile":
        if not isinstance(param, np.ndarray):
            raise EvaluationError("quantile needs a scalar parameter")
        bad = param[(param < 0) | (param > 1) | np.isnan(param)]
        if len(bad) and present.any():
            ctx.warn(
                f"quantile value should be between 0 and 1, got {format_go_float(float(bad[0]))}",
                _param_pos(expr),
            )
        out, seen = grouped_quantile(param, values, present, gid, n_groups)
    else:  # pragma: no cover - the parser admits only the operators above
        raise EvaluationError(f"unknown aggregation {op}")
    drop = _group_drop(vec, gid, n_groups, keeps_name)
    result = VectorV(keys, np.where(seen, out, np.nan), seen, drop)
    return result.nonempty()


_ONE_PER_GROUP: dict[str, Callable[[F64, Bool], F64]] = {
    # Kahan-compensated folds end with value + compensation (0.0): -0.0 becomes 0.0.
    "sum": lambda values, present: values + 0.0,
    "avg": lambda values, present: values + 0.0,
    "min": lambda values, present: values,
    "max": lambda values, present: values,
    "count": lambda values, present: present.astype(np.float64),
    "group": lambda values, present: np.ones(values.shape),
}
"""Aggregations whose result over a single series needs no reduction."""


def _param_pos(expr: ast.AggregateExpr) -> int:
    """Where the aggregation's parameter starts (Prometheus points its warnings there)."""
    # Prometheus strips the parameter's parentheses before evaluating it.
    return ast.unwrap_parens(expr.param).pos if expr.param is not None else expr.pos


def _count_values(expr: ast.AggregateExpr, vec: VectorV, label: str, ctx: EvalContext) -> VectorV:
    if not is_valid_label_name(label):
        raise EvaluationError(f'invalid label name "{label}"')
    k = ctx.n_steps
    grouping = expr.grouping
    gid, keys = group_keys(vec.labels, grouping, expr.without)
    rows, cols = np.nonzero(vec.present)
    if not len(rows):
        return VectorV.empty(k)
    vals = vec.values[rows, cols]
    # NB: distinct by the printed value, as Prometheus keys them: 0 and -0 apart, every NaN one.
    bits = np.where(np.isnan(vals), np.nan, vals).view(np.uint64)
    uniq_bits, inv = np.unique(bits, return_inverse=True)
    uniq = uniq_bits.view(np.float64)
    inv = inv.reshape(-1)
    composite = gid[rows] * len(uniq) + inv
    series_keys, series_of = np.unique(composite, return_inverse=True)
    series_of = series_of.reshape(-1)
    n_out = len(series_keys)
    ctx.count_samples(n_out)
    # Each distinct value is formatted once, and each group's labels split once around
    # where the new label sorts: one tuple concatenation per output series.
    texts = [format_go_positional(u) for u in uniq.tolist()]
    around: dict[int, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {}
    labels: list[Labels] = []
    for key in series_keys.tolist():
        g, u = divmod(key, len(uniq))
        halves = around.get(g)
        if halves is None:
            pairs = tuple(p for p in keys[g].pairs if p[0] != label)
            at = bisect.bisect_left([name for name, _ in pairs], label)
            halves = around[g] = (pairs[:at], pairs[at:])
        labels.append(Labels.from_sorted_pairs((*halves[0], (label, texts[u]), *halves[1])))
    counts = np.bincount(series_of * k + cols, minlength=n_out * k).astype(np.float64)
    counts = counts.reshape(n_out, k)
    out = VectorV(labels, counts, counts > 0, np.zeros(n_out, dtype=np.bool_))
    from watchkeeper.promql.eval_types import merge_same_labels

    return merge_same_labels(out) if len(set(labels)) != len(labels) else out


_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P3 = 1609587929392839161
_P4 = 9650029242287828579
_P5 = 2870177450012600261
_M64 = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _xxh_round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _M64, 31) * _P1) & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 of `data`, the hash Prometheus's labels.Hash uses.

    Example:
        >>> hex(xxh64(b""))
        '0xef46db3751d8e999'
    """
    n = len(data)
    i = 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        while i + 32 <= n:
            for j in range(4):
                v[j] = _xxh_round(v[j], int.from_bytes(data[i + 8 * j : i + 8 * j + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for lane in v:
            h = ((h ^ _xxh_round(0, lane)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        h ^= _xxh_round(0, int.from_bytes(data[i : i + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


def _encode_size(n: int) -> bytes:
    if n < 255:
        return bytes((n,))
    return bytes((255, n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF))


def labels_hash(lb: Labels) -> int:
    """Prometheus 3.5's labels.Hash: XXH64 of the labels' packed form (size-prefixed strings)."""
    buf = bytearray()
    for name, value in lb:
        for text in (name, value):
            raw = text.encode("utf-8", "surrogateescape")
            buf += _encode_size(len(raw)) + raw
    return xxh64(bytes(buf))


def _ratio_offset(lb: Labels) -> float:
    return labels_hash(lb) / float((1 << 64) - 1)


def _select_k(expr: ast.AggregateExpr, vec: VectorV, param: F64, ctx: EvalContext) -> VectorV:
    op = expr.op
    n, k = vec.values.shape
    if n == 0:
        return VectorV.empty(k)
    gid, keys = group_keys(vec.labels, expr.grouping, expr.without)
    if op == "limit_ratio":
        ratio = param.copy()
        if np.isnan(ratio).any():
            raise EvaluationError("Ratio value is NaN")
        for r in ratio[(ratio < -1) | (ratio > 1)][:1]:
            cap = 1.0 if r > 0 else -1.0
            ctx.warn(
                f"ratio value should be between -1 and 1, got {format_go_float(float(r))}, "
                f"capping to {format_go_float(cap)}",
                _param_pos(expr),
            )
        ratio = np.clip(ratio, -1.0, 1.0)
        offs = np.array([_ratio_offset(lb) for lb in vec.labels])[:, None]
        chosen = np.where(ratio[None, :] >= 0, offs < ratio[None, :], offs >= 1.0 + ratio[None, :])
        selected = vec.present & chosen
        out = VectorV(vec.labels, vec.values, selected, vec.drop_name)
        return out.nonempty()
    if np.isnan(param).any():
        raise EvaluationError("Parameter value is NaN")
    if (np.abs(param) >= 2.0**63).any():
        bad = param[np.abs(param) >= 2.0**63][0]
        raise EvaluationError(f"Scalar value {format_go_float(float(bad))} overflows int64")
    kk = np.trunc(param).astype(np.int64)
    present = vec.present
    v = vec.values
    if op == "limitk":
        value_key: F64 = np.zeros_like(v)
        nan_key: npt.NDArray[np.bool_] = np.zeros_like(present)
    else:
        value_key = -v if op == "topk" else v.copy()
        nan_key = np.isnan(v)
        value_key = np.where(nan_key, 0.0, value_key)
    gid2 = np.broadcast_to(gid[:, None], (n, k))
    # Sort each step's rows by (group, absent last, NaN last, value).
    order = np.lexsort((value_key.T, nan_key.T, (~present).T, gid2.T), axis=-1)  # (k, n)
    sorted_gid = np.take_along_axis(gid2.T, order, axis=-1)
    pos = np.broadcast_to(np.arange(n), (k, n))
    change = np.ones((k, n), dtype=np.bool_)
    change[:, 1:] = sorted_gid[:, 1:] != sorted_gid[:, :-1]
    start = np.maximum.accumulate(np.where(change, pos, 0), axis=-1)
    rank = pos - start
    chosen_sorted = rank < kk[:, None]
    chosen = np.zeros((k, n), dtype=np.bool_)
    np.put_along_axis(chosen, order, chosen_sorted, axis=-1)
    selected = present & chosen.T
    keep = selected.any(axis=1)
    rows = np.flatnonzero(keep)
    out = VectorV(
        [vec.labels[i] for i in rows.tolist()],
        vec.values[rows],
        selected[rows],
        vec.drop_name[rows],
    )
    if k == 1 and op in ("topk", "bottomk") and len(rows):
        # Instant queries list each group's series by value, as Prometheus does.
        col = out.values[:, 0]
        nan = np.isnan(col)
        key = -col if op == "topk" else col
        ordr = np.lexsort((np.where(nan, 0.0, key), nan, gid[rows]))
        out = out.take(ordr)
    del keys
    return out
