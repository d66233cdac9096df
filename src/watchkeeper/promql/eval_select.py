"""Selectors and subqueries: loading series for all steps at once.

An instant selector looks back `lookback_ms` from each step, (t - lookback, t], and takes the
newest sample unless it is a staleness marker; a range selector keeps the ragged samples and
window bounds per (series, step). Both come from one `kernels.window_bounds` call.
"""

from __future__ import annotations

import numpy as np

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import stale_mask
from watchkeeper.promql import ast
from watchkeeper.promql.eval_types import F64, I64, Bool, EvalContext, MatrixV, VectorV
from watchkeeper.promql.kernels import window_bounds
from watchkeeper.storage.interface import SelectHints, SeriesSet


def at_times(ctx: EvalContext, at: ast.At | None, offset_ms: int) -> I64:
    """The times a selector is evaluated at: the steps, or the `@` time, minus the offset."""
    if at is None:
        base = ctx.steps
    elif at.kind is ast.AtKind.START:
        base = np.full(ctx.n_steps, ctx.query_start_ms, dtype=np.int64)
    elif at.kind is ast.AtKind.END:
        base = np.full(ctx.n_steps, ctx.query_end_ms, dtype=np.int64)
    else:
        base = np.full(ctx.n_steps, at.time_ms, dtype=np.int64)
    out: I64 = base - np.int64(offset_ms)
    return out


def select(
    ctx: EvalContext,
    sel: ast.VectorSelector,
    mint_ms: int,
    maxt_ms: int,
    *,
    range_ms: int,
    func: str,
) -> SeriesSet:
    """Loads the series a selector matches with their samples in [mint_ms, maxt_ms]."""
    ctx.check_deadline()
    querier = ctx.queryable.querier(mint_ms, maxt_ms)
    try:
        hints = SelectHints(mint_ms, maxt_ms, ctx.step_ms, range_ms, func)
        result = querier.select(list(sel.matchers), hints=hints)
    finally:
        querier.close()
    for w in result.warnings:
        ctx.warnings[w] = -1
    return result


def _drop_stale(ss: SeriesSet) -> SeriesSet:
    stale = stale_mask(ss.values)
    if not stale.any():
        return ss
    keep = ~stale
    n = len(ss.labels)
    ids = np.repeat(np.arange(n, dtype=np.int64), np.diff(ss.offsets))
    per_series = np.bincount(ids[keep], minlength=n).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_series, out=offsets[1:])
    return SeriesSet(ss.labels, offsets, ss.timestamps_ms[keep], ss.values[keep], ss.warnings)


def _first_step_at_or_after(times: I64, timestamps_ms: I64) -> I64:
    """For each timestamp, the first index j with times[j] >= it (len(times) if none)."""
    k = len(times)
    if k > 1:
        step = int(times[1] - times[0])
        if step > 0 and bool((np.diff(times) == step).all()):
            # Evenly spaced steps: ceil((ts - t0) / step), clipped, with no search at all.
            pos: I64 = np.subtract(times[0], timestamps_ms)
            pos //= step
            np.negative(pos, out=pos)
            np.clip(pos, 0, k, out=pos)
            return pos
    out: I64 = np.searchsorted(times, timestamps_ms, side="left").astype(np.int64, copy=False)
    return out


def latest_samples(
    timestamps_ms: I64, offsets: I64, times: I64, lookback_ms: int
) -> tuple[I64, Bool]:
    """Index of each series' newest sample in (t - lookback, t] for every time t.

    Returns (index, present), each (n_series, n_steps); index is meaningless where not present.
    `times` must be non-decreasing (steps, or one `@` time repeated). Rather than searching
    every (series, step) in the samples, each sample finds the first step it can serve with
    one `np.searchsorted` into the short `times` array (cache-resident); the last sample of
    each (series, step) cell is scattered into the grid, and a running maximum along the
    steps carries it forward to the following steps, as sample indices grow with time.
    """
    n, k = len(offsets) - 1, len(times)
    n_samples = len(timestamps_ms)
    if n_samples == 0 or n == 0:
        return np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=np.bool_)
    pos = _first_step_at_or_after(times, timestamps_ms)
    sid = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    last = np.empty(n_samples, dtype=np.bool_)
    np.not_equal(pos[1:], pos[:-1], out=last[:-1])
    last[:-1] |= sid[1:] != sid[:-1]
    last[-1] = True
    last &= pos < k
    chosen = np.flatnonzero(last)
    idx = np.full((n, k), -1, dtype=np.int64)
    idx[sid[chosen], pos[chosen]] = chosen
    np.maximum.accumulate(idx, axis=1, out=idx)
    present = idx >= 0
    np.maximum(idx, 0, out=idx)
    present &= timestamps_ms[idx] > (times - np.int64(lookback_ms))[None, :]
    return idx, present


def aligned_samples(timestamps_ms: I64, offsets: I64, times: I64, lookback_ms: int) -> Bool | None:
    """The presence grid when sample j of every series is the one step j sees, else None.

    The common case of a range query whose step is the scrape interval: every series has
    one sample per step, in (previous step, step]. Then the grid is the samples themselves
    (reshaped), and `latest_samples`' scatter and running maximum are not needed.
    """
    n, k = len(offsets) - 1, len(times)
    if n == 0 or len(timestamps_ms) != n * k:
        return None
    if not bool((np.diff(offsets) == k).all()):
        return None
    grid = timestamps_ms.reshape(n, k)
    ok = grid <= times
    if k > 1:
        ok[:, 1:] &= grid[:, 1:] > times[:-1]
    if not bool(ok.all()):
        return None
    present: Bool = grid > times - np.int64(lookback_ms)
    return present


def eval_vector_selector(
    ctx: EvalContext, sel: ast.VectorSelector, *, want_timestamps: bool = False
) -> tuple[VectorV, I64]:
    """Evaluates an instant selector; with `want_timestamps`, also each sample's time (ms).

    The timestamps array is empty unless asked for.
    """
    times = at_times(ctx, sel.at, sel.offset_ms)
    lookback = ctx.lookback_ms
    ss = select(ctx, sel, int(times.min()) - lookback + 1, int(times.max()), range_ms=0, func="")
    n, k = len(ss.labels), ctx.n_steps
    if n == 0:
        return VectorV.empty(k), np.empty((0, k), dtype=np.int64)
    aligned = aligned_samples(ss.timestamps_ms, ss.offsets, times, lookback)
    if aligned is not None:
        # NB: copies, as the gather below makes: storage may hand out arrays it keeps.
        present = aligned
        values = ss.values.reshape(n, k).copy()
        present &= ~stale_mask(values)
        sample_ts = (
            ss.timestamps_ms.reshape(n, k).copy() if want_timestamps else np.empty((n, 0), np.int64)
        )
    elif len(ss.values):
        idx, present = latest_samples(ss.timestamps_ms, ss.offsets, times, lookback)
        values = ss.values[idx]
        present &= ~stale_mask(values)
        sample_ts = ss.timestamps_ms[idx] if want_timestamps else np.empty((n, 0), np.int64)
    else:
        values = np.zeros((n, k))
        present = np.zeros((n, k), dtype=np.bool_)
        sample_ts = np.zeros((n, k), dtype=np.int64)
    vec = VectorV(list(ss.labels), values, present, np.zeros(n, dtype=np.bool_))
    ctx.add_samples(present.sum(axis=0))
    ctx.count_samples(int(present.sum()))
    keep = present.any(axis=1)
    if not keep.all():
        rows = np.flatnonzero(keep)
        vec = vec.take(rows)
        sample_ts = sample_ts[rows]
    return vec, sample_ts


def eval_matrix_selector(ctx: EvalContext, msel: ast.MatrixSelector, func: str = "") -> MatrixV:
    """Evaluates a range selector into ragged samples and per-step windows."""
    sel = msel.vector
    times = at_times(ctx, sel.at, sel.offset_ms)
    ss = select(
        ctx,
        sel,
        int(times.min()) - msel.range_ms + 1,
        int(times.max()),
        range_ms=msel.range_ms,
        func=func,
    )
    ss = _drop_stale(ss)
    lo, hi = window_bounds(ss.timestamps_ms, ss.offsets, times, msel.range_ms)
    if len(ss.labels):
        per_step = (hi - lo).sum(axis=0)
        ctx.add_samples(per_step)
        ctx.count_samples(int(per_step.max()), per_step_peak=True)
    return MatrixV(
        list(ss.labels),
        ss.offsets,
        ss.timestamps_ms,
        ss.values,
        lo,
        hi,
        times,
        msel.range_ms,
        np.zeros(len(ss.labels), dtype=np.bool_),
    )


def subquery_steps(ctx: EvalContext, sq: ast.SubqueryExpr) -> tuple[I64, I64]:
    """Returns (outer window ends per step, inner evaluation steps) of a subquery."""
    interval = sq.step_ms or ctx.default_subquery_step_ms
    times = at_times(ctx, sq.at, sq.offset_ms)
    first = int(times.min()) - sq.range_ms
    quotient = abs(first) // interval
    start = interval * (quotient if first >= 0 else -quotient)  # Go truncates toward zero
    if start <= first:
        start += interval
    end = int(times.max())
    if end < start:
        return times, np.empty(0, dtype=np.int64)
    # Every inner step holds at least one sample per series: refuse before allocating.
    ctx.count_subquery_steps(start, end, interval)
    return times, np.arange(start, end + 1, interval, dtype=np.int64)


def matrix_from_vector(
    vec: VectorV, inner_steps: I64, times: I64, range_ms: int, ctx: EvalContext
) -> MatrixV:
    """Turns an inner evaluation into a range vector with windows ending at `times`.

    Works on flat indices: a subquery with a tiny step has millions of inner steps, and a
    dense inner result (every series at every step) needs no index arrays at all.
    """
    n, k = vec.present.shape
    counts = np.count_nonzero(vec.present, axis=1).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    ctx.check_deadline()
    if int(offsets[-1]) == n * k:
        ts = np.tile(inner_steps, n) if n > 1 else inner_steps
        values = vec.values.reshape(-1)
    else:
        flat = np.flatnonzero(vec.present)
        ts = inner_steps[flat % k] if k else np.empty(0, dtype=np.int64)
        values = vec.values.reshape(-1)[flat]
        del flat
    ctx.check_deadline()
    return ragged_matrix(
        vec.labels,
        offsets,
        ts,
        values,
        drop_name=vec.drop_name,
        times=times,
        range_ms=range_ms,
        ctx=ctx,
    )


def ragged_matrix(
    labels: list[Labels],
    offsets: I64,
    timestamps_ms: I64,
    values: F64,
    *,
    drop_name: Bool,
    times: I64,
    range_ms: int,
    ctx: EvalContext,
) -> MatrixV:
    """A subquery's range vector from its ragged points, with windows ending at `times`."""
    lo, hi = window_bounds(timestamps_ms, offsets, times, range_ms)
    if len(labels):
        ctx.count_samples(int((hi - lo).sum(axis=0).max()), per_step_peak=True)
    return MatrixV(
        list(labels),
        offsets,
        timestamps_ms,
        values,
        lo,
        hi,
        times,
        range_ms,
        drop_name.copy(),
        is_subquery=True,
    )
