"""Binary operators: arithmetic, comparisons and set operators, with vector matching.

Series are numbered by matching signature once; each side's signature table then says,
for every signature and step, which series (if any) is there, so matching all steps is a
few fancy-indexing operations. Errors use Prometheus's texts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.promql import ast
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.promql.eval_types import (
    F64,
    I64,
    NAME_LABELS,
    EvalContext,
    EvalValue,
    ScalarV,
    VectorV,
    as_vector,
    labels_without,
    merge_same_labels,
    strip_names,
)

_ARITH: Final[dict[str, Callable[[F64, F64], F64]]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
_CMP: Final[dict[str, Callable[[F64, F64], F64]]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


def go_labels(lb: Labels) -> str:
    """Formats labels as Go's labels.Labels.String(): {a="b", c="d"}."""
    parts = []
    for n, v in lb:
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{n}="{esc}"')
    return "{" + ", ".join(parts) + "}"


def _apply(op: str, a: F64, b: F64) -> F64:
    with np.errstate(all="ignore"):
        if op in _ARITH:
            out: F64 = _ARITH[op](a, b)
            return out
        res: F64 = _CMP[op](a, b).astype(np.float64)
        return res


def scalar_binop(op: str, a: F64, b: F64) -> F64:
    """Scalar op scalar (comparisons give 0/1: the parser requires `bool` for them)."""
    return _apply(op, a, b)


def _drop_name_labels(labels: list[Labels], ctx: EvalContext) -> list[Labels]:
    if ctx.delayed_name_removal:
        return labels
    return strip_names(labels)


def vector_scalar(
    op: str, vec: VectorV, scalar: F64, *, swap: bool, return_bool: bool, ctx: EvalContext
) -> VectorV:
    """Vector op scalar (or scalar op vector when `swap`)."""
    s = scalar[None, :]
    lhs, rhs = (s, vec.values) if swap else (vec.values, s)
    result = _apply(op, np.broadcast_to(lhs, vec.values.shape), rhs)
    present = vec.present
    if op in _CMP:
        if return_bool:
            values = result
        else:
            present = present & (result == 1.0)
            values = vec.values
    else:
        values = result
    drops = op not in _CMP or return_bool
    labels = _drop_name_labels(vec.labels, ctx) if drops else vec.labels
    drop = np.ones(len(labels), np.bool_) if drops and ctx.delayed_name_removal else vec.drop_name
    if drops and not ctx.delayed_name_removal:
        drop = np.zeros(len(labels), np.bool_)
    out = VectorV(labels, values, present, drop).nonempty()
    if drops and not ctx.delayed_name_removal:
        out = merge_same_labels(out)
    return out


def _signatures(labels: list[Labels], m: ast.VectorMatching) -> tuple[I64, list[Labels]]:
    index: dict[tuple[tuple[str, str], ...], int] = {}
    keys: list[Labels] = []
    ids: list[int] = []
    names = frozenset(m.labels) if m.on else frozenset((*m.labels, METRIC_NAME))
    keep = m.on
    setdefault = index.setdefault
    for lb in labels:
        if keep:
            key = tuple(p for p in lb.pairs if p[0] in names)
        else:
            key = tuple(p for p in lb.pairs if p[0] not in names)
        sid = setdefault(key, len(index))
        if sid == len(keys):
            keys.append(Labels.from_sorted_pairs(key))
        ids.append(sid)
    return np.fromiter(ids, dtype=np.int64, count=len(ids)), keys


def _sig_table(sig: I64, present: np.ndarray, n_sigs: int) -> tuple[I64, I64]:
    """Per (signature, step): how many series are present, and the last such series."""
    n, k = present.shape
    count = np.zeros((n_sigs, k), dtype=np.int64)
    row = np.full((n_sigs, k), -1, dtype=np.int64)
    if n == 0:
        return count, row
    rows = np.arange(n, dtype=np.int64)[:, None]
    if np.bincount(sig, minlength=n_sigs).max() <= 1:
        count[sig] = present
        row[sig] = np.where(present, rows, -1)
        return count, row
    order = np.argsort(sig, kind="stable")
    sorted_sig = sig[order]
    starts = np.flatnonzero(np.r_[True, sorted_sig[1:] != sorted_sig[:-1]])
    p = present[order]
    count[sorted_sig[starts]] = np.add.reduceat(p.astype(np.int64), starts, axis=0)
    row[sorted_sig[starts]] = np.maximum.reduceat(np.where(p, rows[order], -1), starts, axis=0)
    return count, row


def vector_vector(expr: ast.BinaryExpr, lhs: VectorV, rhs: VectorV, ctx: EvalContext) -> VectorV:
    """Vector op vector with Prometheus's vector matching rules."""
    m = expr.matching or ast.VectorMatching()
    op = expr.op
    k = ctx.n_steps
    all_labels = lhs.labels + rhs.labels
    sig_all, keys = _signatures(all_labels, m)
    n_sigs = len(keys)
    lsig, rsig = sig_all[: len(lhs.labels)], sig_all[len(lhs.labels) :]
    if op in ast.SET_OPS:
        return _set_op(op, lhs, rhs, (lsig, rsig, n_sigs), ctx)
    if not len(lhs.labels) or not len(rhs.labels):
        return VectorV.empty(k)
    one_to_many = m.card is ast.Cardinality.ONE_TO_MANY
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    msig, osig = (rsig, lsig) if one_to_many else (lsig, rsig)
    if np.bincount(osig, minlength=n_sigs).max() <= 1:
        # Each signature has at most one series on the one side: match rows, not steps.
        sig_row = np.full(n_sigs, -1, dtype=np.int64)
        sig_row[osig] = np.arange(len(osig), dtype=np.int64)
        prow = sig_row[msig]
        valid = prow >= 0
        safe_row = np.where(valid, prow, 0)
        one_vals = one.values[safe_row]
        matched = many.present & one.present[safe_row] & valid[:, None]
        partner = np.where(matched, safe_row[:, None], -1) if m.include else safe_row[:, None]
    else:
        ocount, orow = _sig_table(osig, one.present, n_sigs)
        if (ocount > 1).any():
            s, step = np.argwhere(ocount > 1)[0]
            rows = np.flatnonzero((osig == s) & one.present[:, step]).tolist()
            side = "left" if one_to_many else "right"
            a, b = one.labels[rows[-1]], one.labels[rows[-2]]
            raise EvaluationError(
                f"found duplicate series for the match group {go_labels(keys[int(s)])} on the "
                f"{side} hand-side of the operation: [{go_labels(a)}, {go_labels(b)}];"
                "many-to-many matching not allowed: matching labels must be unique on one side"
            )
        # The one-side series each many-side series meets at each step (-1: none).
        partner = orow[msig]
        matched = many.present & (partner >= 0)
        safe_partner = np.where(partner >= 0, partner, 0)
        one_vals = one.values[safe_partner, np.arange(k)[None, :]]
    if m.card is ast.Cardinality.ONE_TO_ONE and np.bincount(msig, minlength=n_sigs).max() > 1:
        mcount, _ = _sig_table(msig, matched, n_sigs)
        if (mcount > 1).any():
            raise EvaluationError(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right)"
            )
    lv, rv = (one_vals, many.values) if one_to_many else (many.values, one_vals)
    result = _apply(op, lv, rv)
    is_cmp = op in _CMP
    if is_cmp and not expr.return_bool:
        keep = matched & (result == 1.0)
        values = lv
    else:
        keep = matched
        values = result
    drops = not is_cmp or expr.return_bool
    return _assemble(
        expr=expr,
        m=m,
        many=many,
        one=one,
        partner=partner,
        keep=keep,
        values=values,
        drops=drops,
        ctx=ctx,
    )


def _result_labels(
    many_lb: Labels, one_lb: Labels, m: ast.VectorMatching, drops: bool, ctx: EvalContext
) -> Labels:
    lb = many_lb
    if drops and not ctx.delayed_name_removal:
        lb = labels_without(lb, NAME_LABELS)
    if m.card is ast.Cardinality.ONE_TO_ONE:
        lb = lb.keep(*m.labels) if m.on else lb.without(*m.labels)
    if m.include:
        updates = {name: one_lb.get(name) for name in m.include}
        lb = lb.with_mapping(updates)
    return lb


def _assemble(
    *,
    expr: ast.BinaryExpr,
    m: ast.VectorMatching,
    many: VectorV,
    one: VectorV,
    partner: I64,
    keep: np.ndarray,
    values: F64,
    drops: bool,
    ctx: EvalContext,
) -> VectorV:
    k = ctx.n_steps
    if not m.include:
        # Each many-side series gives at most one output series: no pairing needed.
        hit = np.flatnonzero(keep.any(axis=1))
        if not len(hit):
            return VectorV.empty(k)
        empty = Labels()
        hit_labels = [_result_labels(many.labels[i], empty, m, drops, ctx) for i in hit.tolist()]
        flags = many.drop_name[hit] | (drops and ctx.delayed_name_removal)
        return _dedupe(VectorV(hit_labels, values[hit], keep[hit], flags), m)
    rows, cols = np.nonzero(keep)
    if not len(rows):
        return VectorV.empty(k)
    n_one = len(one.labels)
    pair = rows * (n_one + 1) + (partner[rows, cols] + 1 if m.include else 0)
    uniq, out_of = np.unique(pair, return_inverse=True)
    out_of = out_of.reshape(-1)
    labels: list[Labels] = []
    drop_flags: list[bool] = []
    for key in uniq.tolist():
        mrow, orow1 = divmod(key, n_one + 1)
        one_lb = one.labels[orow1 - 1] if orow1 else Labels()
        labels.append(_result_labels(many.labels[mrow], one_lb, m, drops, ctx))
        drop_flags.append(bool(many.drop_name[mrow]) or (drops and ctx.delayed_name_removal))
    n_out = len(labels)
    out_vals = np.zeros((n_out, k))
    out_present = np.zeros((n_out, k), dtype=np.bool_)
    out_vals[out_of, cols] = values[rows, cols]
    out_present[out_of, cols] = True
    vec = VectorV(labels, out_vals, out_present, np.asarray(drop_flags, dtype=np.bool_))
    return _dedupe(vec, m)


def _dedupe(vec: VectorV, m: ast.VectorMatching) -> VectorV:
    if len(set(vec.labels)) == len(vec.labels):
        return vec
    try:
        return merge_same_labels(vec)
    except EvaluationError as exc:
        if m.card is ast.Cardinality.ONE_TO_ONE:
            raise EvaluationError(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right)"
            ) from exc
        raise EvaluationError(
            "multiple matches for labels: grouping labels must ensure unique matches"
        ) from exc


def _set_op(
    op: str,
    lhs: VectorV,
    rhs: VectorV,
    sigs: tuple[I64, I64, int],
    ctx: EvalContext,
) -> VectorV:
    lsig, rsig, n_sigs = sigs
    k = ctx.n_steps
    rcount, _ = _sig_table(rsig, rhs.present, n_sigs)
    r_has = rcount > 0
    if op == "and":
        present = lhs.present & r_has[lsig] if len(lhs.labels) else lhs.present
        return VectorV(lhs.labels, lhs.values, present, lhs.drop_name).nonempty()
    if op == "unless":
        present = lhs.present & ~r_has[lsig] if len(lhs.labels) else lhs.present
        return VectorV(lhs.labels, lhs.values, present, lhs.drop_name).nonempty()
    lcount, _ = _sig_table(lsig, lhs.present, n_sigs)
    l_has = lcount > 0
    rpresent = rhs.present & ~l_has[rsig] if len(rhs.labels) else rhs.present
    out = VectorV(
        lhs.labels + rhs.labels,
        np.concatenate([lhs.values, rhs.values]).reshape(-1, k),
        np.concatenate([lhs.present, rpresent]).reshape(-1, k),
        np.concatenate([lhs.drop_name, rhs.drop_name]),
    ).nonempty()
    return merge_same_labels(out)


def eval_binary(
    expr: ast.BinaryExpr, lhs: EvalValue, rhs: EvalValue, ctx: EvalContext
) -> EvalValue:
    """Dispatches on the operand types."""
    if isinstance(lhs, ScalarV) and isinstance(rhs, ScalarV):
        return ScalarV(scalar_binop(expr.op, lhs.values, rhs.values))
    if isinstance(lhs, VectorV) and isinstance(rhs, ScalarV):
        return vector_scalar(
            expr.op, lhs, rhs.values, swap=False, return_bool=expr.return_bool, ctx=ctx
        )
    if isinstance(lhs, ScalarV) and isinstance(rhs, VectorV):
        return vector_scalar(
            expr.op, rhs, lhs.values, swap=True, return_bool=expr.return_bool, ctx=ctx
        )
    return vector_vector(expr, as_vector(lhs), as_vector(rhs), ctx)
