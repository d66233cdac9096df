"""Vectorized grouped reductions for PromQL aggregation operators (sum, avg, quantile...).

Inputs are step-aligned matrices: `values` and `present` of shape (n_series, n_steps) and
`group_ids` (n_series,) numbering each series's output group 0..n_groups-1. Series are folded
into their group in input order, as Prometheus's aggregation loop does, so Kahan compensation
and the direct/incremental mean switch give Prometheus's exact results. Python loops run over
a series' rank inside its group, vectorized over all groups and steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from watchkeeper.promql.kernels import (
    BoolArray,
    FloatArray,
    IntArray,
    KernelResult,
    Param,
    _per_step,
    _quiet,
    kahan_inc,
)

_MAX_BLOCK_ELEMENTS = 1 << 22


class _Groups:
    """Members of each group by rank, groups ordered largest first for column walks."""

    def __init__(self, group_ids: IntArray, n_groups: int) -> None:
        gid = np.asarray(group_ids, dtype=np.int64)
        self.n_groups = n_groups
        self.by_group = np.argsort(gid, kind="stable").astype(np.int64)
        sizes = np.bincount(gid, minlength=n_groups).astype(np.int64)
        self.first = np.zeros(n_groups, dtype=np.int64)
        np.cumsum(sizes[:-1], out=self.first[1:])
        self.order = np.argsort(-sizes, kind="stable").astype(np.int64)
        self.sizes = sizes[self.order]
        self.active: list[int] = []
        if n_groups and len(gid):
            hist = np.bincount(self.sizes, minlength=int(self.sizes[0]) + 1)
            self.active = (n_groups - np.cumsum(hist)[: int(self.sizes[0])]).tolist()

    def ranks(self) -> Iterator[tuple[int, int, IntArray]]:
        """Yields (rank j, k active groups, series index of member j of the first k groups)."""
        for j, k in enumerate(self.active):
            yield j, k, self.by_group[self.first[self.order[:k]] + j]

    def unsort(self, arr: FloatArray, present: BoolArray) -> KernelResult:
        """Puts rows computed in size order back into group order."""
        out = np.empty_like(arr)
        seen = np.empty_like(present)
        out[self.order] = arr
        seen[self.order] = present
        return out, seen


_U = 2.0**-53
_MAX_PREFIX_ELEMENTS = 1 << 16


def _fast_group_sums(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> tuple[FloatArray, BoolArray, FloatArray]:
    """Group sums from compensated prefix sums over the series axis: (sums, exact, counts).

    Series are sorted by group; a running sum down the series with TwoSum error terms gives
    each group's sum as a difference of two prefixes. `exact` marks the (group, step) cells
    whose error bound is below 1e-15 of the result and that hold only finite values, where
    the sum matches Prometheus's sequential Kahan sum to a few ulps (see kernels.py).
    """
    gid = np.asarray(group_ids, dtype=np.int64)
    order = np.argsort(gid, kind="stable")
    sizes = np.bincount(gid, minlength=n_groups)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    n_series, n_steps = values.shape
    sums = np.zeros((n_groups, n_steps))
    exact = np.zeros((n_groups, n_steps), dtype=np.bool_)
    counts = np.zeros((n_groups, n_steps))
    width = max(1, _MAX_PREFIX_ELEMENTS // max(n_series, 1))
    for c0 in range(0, n_steps, width):
        cols = slice(c0, min(n_steps, c0 + width))
        m = present[order, cols]
        raw = values[order, cols]
        finite = np.isfinite(raw) | ~m
        x = np.where(m & finite, raw, 0.0)

        def prefix(a: FloatArray) -> FloatArray:
            out = np.zeros((a.shape[0] + 1, a.shape[1]))
            np.cumsum(a, axis=0, out=out[1:])
            return out

        p = prefix(x)
        before, after = p[:-1], p[1:]
        virtual = after - before
        err = prefix((before - (after - virtual)) + (x - virtual))
        slack = prefix(np.abs(err[1:]))
        mag = prefix(np.abs(x))
        bad = prefix((~finite).astype(np.float64))
        nonzero = prefix((x != 0).astype(np.float64))
        cnt = prefix(m.astype(np.float64))
        a = p[ends] - p[starts]
        b = err[ends] - err[starts]
        total = a + b
        bound = _U * (np.abs(a) + np.abs(b) + np.abs(total) + slack[ends] + slack[starts])
        magnitude = mag[ends] * (1 + n_series * _U) - mag[starts]
        n = cnt[ends] - cnt[starts]
        clean = bad[ends] == bad[starts]
        ok = (
            clean
            & (magnitude < 1e300)
            & (bound * 1.01 <= 1e-15 * np.abs(total))
            & (n * n * _U * _U * magnitude <= 1e-15 * np.abs(total))
        )
        zero = clean & (nonzero[ends] == nonzero[starts])
        sums[:, cols] = np.where(zero, 0.0, total)
        exact[:, cols] = ok | zero
        counts[:, cols] = n
    return sums, exact, counts


_ALWAYS_FOLD_GROUP_SIZE = 8
"""Groups up to this size are always folded, so small groups are summed exactly as in
Prometheus whatever else the query holds (the prefix path is exact only to a few ulps)."""


def _fold_is_cheaper(values: FloatArray, group_ids: IntArray, n_groups: int) -> bool:
    """Tells whether to use the exact rank fold rather than the prefix-sum path.

    Measured: a rank fold pays ~30 µs per rank plus ~15 ns per value, the prefix path ~60 ns
    per value; folds win for long ranges, prefixes for instant queries over large groups.
    """
    if not values.size or not n_groups:
        return True
    largest = int(np.bincount(np.asarray(group_ids, dtype=np.int64), minlength=n_groups).max())
    if largest <= _ALWAYS_FOLD_GROUP_SIZE:
        return True
    return largest * 30e-6 + values.size * 15e-9 < values.size * 60e-9


def _refold(
    fold: Callable[[FloatArray, BoolArray, IntArray, int], KernelResult],
    values: FloatArray,
    present: BoolArray,
    group_ids: IntArray,
    *,
    out: FloatArray,
    redo: BoolArray,
) -> None:
    """Recomputes with the exact fold the groups that have a cell in `redo` (in place)."""
    groups = np.flatnonzero(redo.any(axis=1))
    if not len(groups):
        return
    remap = np.full(out.shape[0], -1, dtype=np.int64)
    remap[groups] = np.arange(len(groups))
    gid = np.asarray(group_ids, dtype=np.int64)
    rows = np.flatnonzero(remap[gid] >= 0)
    exact, _ = fold(values[rows], present[rows], remap[gid[rows]], len(groups))
    out[groups] = np.where(redo[groups], exact, out[groups])


@_quiet
def grouped_sum(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """`sum`: each group's present values per step, equal to Prometheus's Kahan sum.

    Returns (out, present), each (n_groups, n_steps); a group is present where any member is.
    """
    if _fold_is_cheaper(values, group_ids, n_groups):
        return _kahan_group_sum(values, present, group_ids, n_groups)
    sums, exact, counts = _fast_group_sums(values, present, group_ids, n_groups)
    seen = counts > 0
    _refold(_kahan_group_sum, values, present, group_ids, out=sums, redo=seen & ~exact)
    return np.where(seen, sums, np.nan), seen


@_quiet
def _kahan_group_sum(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """Prometheus's sum aggregation, folding members in order with Kahan compensation."""
    g = _Groups(group_ids, n_groups)
    n_steps = values.shape[1]
    total = np.zeros((n_groups, n_steps))
    comp = np.zeros((n_groups, n_steps))
    seen = np.zeros((n_groups, n_steps), dtype=np.bool_)
    for _, k, rows in g.ranks():
        v = values[rows]
        m = present[rows]
        new_t, new_c = kahan_inc(v, total[:k], comp[:k])
        total[:k] = np.where(m, new_t, total[:k])
        comp[:k] = np.where(m, new_c, comp[:k])
        seen[:k] |= m
    result = np.where(seen, total + comp, np.nan)
    return g.unsort(result, seen)


@_quiet
def grouped_avg(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """`avg`: Kahan direct mean per group and step, switching to incremental mean on overflow."""
    if _fold_is_cheaper(values, group_ids, n_groups):
        return _mean_group_fold(values, present, group_ids, n_groups)
    sums, exact, counts = _fast_group_sums(values, present, group_ids, n_groups)
    seen = counts > 0
    means = sums / np.where(seen, counts, 1.0)
    _refold(_mean_group_fold, values, present, group_ids, out=means, redo=seen & ~exact)
    return np.where(seen, means, np.nan), seen


@_quiet
def _mean_group_fold(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """Prometheus's avg aggregation: Kahan direct mean, incremental mean after overflow."""
    g = _Groups(group_ids, n_groups)
    shape = (n_groups, values.shape[1])
    total = np.zeros(shape)
    comp = np.zeros(shape)
    mean = np.zeros(shape)
    count = np.zeros(shape)
    incremental = np.zeros(shape, dtype=np.bool_)
    for _, k, rows in g.ranks():
        v = values[rows]
        m = present[rows]
        first = m & (count[:k] == 0)
        later = m & ~first
        cnt = count[:k] + m
        count[:k] = cnt
        tot, c, mn, inc = total[:k], comp[:k], mean[:k], incremental[:k]
        tot[first] = v[first]
        new_t, new_c = kahan_inc(v, tot, c)
        overflow = np.isinf(new_t)
        direct = later & ~inc & ~overflow
        switch = later & ~inc & overflow
        tot[direct] = new_t[direct]
        c[direct] = new_c[direct]
        if switch.any():
            mn[switch] = tot[switch] / (cnt[switch] - 1)
            c[switch] = c[switch] / (cnt[switch] - 1)
            inc |= switch
        upd = later & inc
        if upd.any():
            q = (cnt[upd] - 1) / cnt[upd]
            new_m, new_c2 = kahan_inc(v[upd] / cnt[upd], q * mn[upd], q * c[upd])
            mn[upd] = new_m
            c[upd] = new_c2
    seen = count > 0
    result = np.where(incremental, mean + comp, total / count + comp / count)
    return g.unsort(np.where(seen, result, np.nan), seen)


@_quiet
def grouped_stdvar(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """`stdvar`: population variance per group (Welford, no compensation, as Prometheus).

    The first value of a group that is NaN or ±Inf makes the group's result NaN.
    """
    g = _Groups(group_ids, n_groups)
    shape = (n_groups, values.shape[1])
    mean = np.zeros(shape)
    aux = np.zeros(shape)
    count = np.zeros(shape)
    for _, k, rows in g.ranks():
        v = values[rows]
        m = present[rows]
        first = m & (count[:k] == 0)
        later = m & ~first
        cnt = count[:k] + m
        count[:k] = cnt
        mn, ax = mean[:k], aux[:k]
        mn[first] = v[first]
        ax[first] = np.where(np.isfinite(v[first]), 0.0, np.nan)
        d = v - mn
        new_mean = mn + d / cnt
        new_aux = ax + d * (v - new_mean)
        mn[later] = new_mean[later]
        ax[later] = new_aux[later]
    seen = count > 0
    return g.unsort(np.where(seen, aux / count, np.nan), seen)


@_quiet
def grouped_stddev(
    values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """`stddev`: square root of `grouped_stdvar`."""
    out, seen = grouped_stdvar(values, present, group_ids, n_groups)
    return np.sqrt(out), seen


@_quiet
def grouped_quantile(
    q: Param, values: FloatArray, present: BoolArray, group_ids: IntArray, n_groups: int
) -> KernelResult:
    """`quantile`: φ-quantile (q per step) of each group's present values per step.

    NaN values sort first, as in Prometheus; q < 0 gives -Inf, q > 1 +Inf, NaN q NaN.
    """
    g = _Groups(group_ids, n_groups)
    n_steps = values.shape[1]
    q_steps = _per_step(q, n_steps)
    out = np.full((n_groups, n_steps), np.nan)
    counts = np.zeros((n_groups, n_steps), dtype=np.int64)
    if not g.active:
        return g.unsort(out, counts > 0)
    # Groups in size order: a block of groups pads to the size of its largest group. Each
    # series goes to row `slot` (its group's place in size order) at column `rank`.
    gid = np.asarray(group_ids, dtype=np.int64)
    slot_of_group = np.empty(n_groups, dtype=np.int64)
    slot_of_group[g.order] = np.arange(n_groups)
    series = g.by_group
    rank_in_group = np.arange(len(series)) - g.first[gid[series]]
    slot = slot_of_group[gid[series]]
    by_slot = np.argsort(slot, kind="stable")
    series, rank_in_group, slot = series[by_slot], rank_in_group[by_slot], slot[by_slot]
    i = 0
    while i < n_groups:
        width = int(g.sizes[i])
        if width == 0:
            break
        rows_per_block = max(1, _MAX_BLOCK_ELEMENTS // max(width * n_steps, 1))
        stop = min(n_groups, i + rows_per_block)
        block = np.full((stop - i, width, n_steps), np.nan)
        a, b = np.searchsorted(slot, [i, stop])
        rows = series[a:b]
        m = present[rows]
        v = values[rows]
        where = (slot[a:b] - i, rank_in_group[a:b])
        block[where] = np.where(m, v, np.nan)
        flags = np.zeros(block.shape, dtype=np.bool_)
        flags[where] = m
        cnt = flags.sum(axis=1, dtype=np.int64)
        flags[where] = m & np.isnan(v)
        nan_count = flags.sum(axis=1, dtype=np.int64)
        block.sort(axis=1)
        n = cnt.astype(np.float64)
        rank = q_steps[None, :] * (n - 1)
        lower = np.maximum(0.0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)

        def pick(r: FloatArray, blk: FloatArray = block, nans: IntArray = nan_count) -> FloatArray:
            ri = np.clip(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0), 0, 1 << 40)
            idx = ri.astype(np.int64)
            shifted = np.clip(idx - nans, 0, blk.shape[1] - 1)
            got = np.take_along_axis(blk, shifted[:, None, :], axis=1)[:, 0, :]
            return np.where(idx < nans, np.nan, got)

        res = pick(lower) * (1 - weight) + pick(upper) * weight
        res = np.where(q_steps[None, :] < 0, -np.inf, res)
        res = np.where(q_steps[None, :] > 1, np.inf, res)
        res = np.where(np.isnan(q_steps)[None, :], np.nan, res)
        out[i:stop] = np.where(cnt > 0, res, np.nan)
        counts[i:stop] = cnt
        i = stop
    return g.unsort(out, counts > 0)


@_quiet
def kahan_sum(values: FloatArray, group_ids: IntArray, n_groups: int) -> FloatArray:
    """Kahan-compensated sum of flat values per group id, in input order (NaN for empty groups).

    The engine's building block for sums outside aggregation operators.
    """
    v = np.asarray(values, dtype=np.float64)[:, None]
    out, _ = grouped_sum(v, np.ones(v.shape, dtype=np.bool_), group_ids, n_groups)
    return out[:, 0]
