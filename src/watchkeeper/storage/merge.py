"""Merging queriers: one view over several sources (head and blocks, local and remote).

`merge_series_sets` unions series by label set and interleaves their samples by time;
samples with the same timestamp in several sources appear once (the first source wins),
as Prometheus's chained series merge does for identical overlapping data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import Querier, SelectHints, SeriesSet

_SLICE_MIN_SAMPLES: Final = 64
"""Average samples per series piece above which a merge copies slices, not an index."""


def order_by_rank_and_time(
    rank: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], n_ranks: int
) -> npt.NDArray[np.intp]:
    """A stable order by (rank, timestamp): one sort on a combined key when it fits."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.intp)
    t_min, t_max = int(ts.min()), int(ts.max())
    span = t_max - t_min + 1
    if span * n_ranks < (1 << 62):
        return np.argsort(rank * span + (ts - t_min), kind="stable")
    return np.lexsort((ts, rank))


def group_ranked_samples(
    rank: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float64],
    n_ranks: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Orders samples by (series rank, time) and keeps the first of equal timestamps.

    Returns (timestamps, values, offsets) of the ragged layout `SeriesSet` uses, with
    n_ranks + 1 offsets (ranks with no sample get empty slices).
    """
    order = order_by_rank_and_time(rank, ts, n_ranks)
    rank, ts, vals = rank[order], ts[order], vals[order]
    dup = np.zeros(len(rank), dtype=np.bool_)
    dup[1:] = (rank[1:] == rank[:-1]) & (ts[1:] == ts[:-1])
    if dup.any():
        keep = ~dup
        rank, ts, vals = rank[keep], ts[keep], vals[keep]
    offsets = np.zeros(n_ranks + 1, dtype=np.int64)
    np.cumsum(np.bincount(rank, minlength=n_ranks), out=offsets[1:])
    return ts, vals, offsets


def ragged_arange(starts: npt.NDArray[Any], counts: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Concatenates `arange(s, s + c)` over pairs, without a Python loop.

    Example:
        >>> ragged_arange(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist()
        [5, 6, 9, 10, 11]
    """
    counts = counts.astype(np.int64)
    starts = starts.astype(np.int64)
    if not counts.all():
        nonzero = counts > 0
        starts, counts = starts[nonzero], counts[nonzero]
    if len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    out = np.ones(int(ends[-1]), dtype=np.int64)
    out[0] = starts[0]
    out[ends[:-1]] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(out, out=out)


def _union_labels(sets: Sequence[SeriesSet]) -> tuple[list[Labels], list[npt.NDArray[np.int64]]]:
    """The sorted union of the sets' label sets, and each set's series ranks in it."""
    first = sets[0].labels
    if all(s.labels == first for s in sets[1:]):
        same = np.arange(len(first), dtype=np.int64)
        return list(first), [same] * len(sets)
    ordered = sorted({lbls for s in sets for lbls in s.labels})
    rank_of: dict[Labels, int] = {lbls: i for i, lbls in enumerate(ordered)}
    ranks = [
        np.fromiter((rank_of[x] for x in s.labels), dtype=np.int64, count=len(s)) for s in sets
    ]
    return ordered, ranks


def merge_series_sets(sets: Sequence[SeriesSet]) -> SeriesSet:
    """Merges sets into one sorted set; duplicate (series, timestamp) samples are kept once.

    Works series by series where it can: the pieces of a series that do not overlap in
    time (the usual case: blocks and the head cover different ranges) are concatenated in
    time order without sorting samples; only series whose pieces overlap are sorted.
    """
    warnings = [w for s in sets for w in s.warnings]
    nonempty = [s for s in sets if len(s)]
    if len(nonempty) <= 1:
        base = nonempty[0] if nonempty else SeriesSet.empty()
        if warnings == base.warnings:
            return base
        return SeriesSet(base.labels, base.offsets, base.timestamps_ms, base.values, warnings)
    ordered, ranks = _union_labels(nonempty)
    n_ranks = len(ordered)
    # One segment per (input, series): where its samples lie and the time range they span.
    seg_rank = np.concatenate(ranks)
    seg_input = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in enumerate(nonempty)])
    seg_start = np.concatenate([s.offsets[:-1].astype(np.int64) for s in nonempty])
    seg_len = np.concatenate([np.diff(s.offsets).astype(np.int64) for s in nonempty])
    first_ts = np.full(len(seg_len), np.iinfo(np.int64).max, dtype=np.int64)
    last_ts = np.full(len(seg_len), np.iinfo(np.int64).min, dtype=np.int64)
    at = 0
    for s in nonempty:
        lens = np.diff(s.offsets)
        full = np.flatnonzero(lens > 0)
        first_ts[at + full] = s.timestamps_ms[s.offsets[full]]
        last_ts[at + full] = s.timestamps_ms[s.offsets[full + 1] - 1]
        at += len(s)
    # Segments of a series in time order: any overlap shows between neighbours.
    by_time = np.lexsort((seg_input, first_ts, seg_rank))
    r, f, la = seg_rank[by_time], first_ts[by_time], last_ts[by_time]
    clash = (r[1:] == r[:-1]) & (f[1:] <= la[:-1])
    overlapping = np.zeros(n_ranks, dtype=np.bool_)
    overlapping[r[1:][clash]] = True
    if overlapping.any():
        # Series whose pieces overlap: their samples are sorted below, so gather them in
        # input order (a stable sort then keeps the first input's duplicate).
        key2 = np.where(overlapping[seg_rank], seg_input, first_ts)
        order = np.lexsort((seg_input, key2, seg_rank))
    else:
        order = by_time
    order = order[seg_len[order] > 0]
    ts, vals = _gather(nonempty, seg_input[order], seg_start[order], seg_len[order])
    per_rank = np.bincount(seg_rank, weights=seg_len, minlength=n_ranks).astype(np.int64)
    offsets = np.zeros(n_ranks + 1, dtype=np.int64)
    np.cumsum(per_rank, out=offsets[1:])
    if overlapping.any():
        ts, vals, offsets = _sort_overlapping(ts, vals, offsets, overlapping)
    return SeriesSet(ordered, offsets, ts, vals, warnings)


def _gather(
    sets: Sequence[SeriesSet],
    seg_input: npt.NDArray[np.int64],
    seg_start: npt.NDArray[np.int64],
    seg_len: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Concatenates the given segments of the sets' samples, in the given order."""
    if len(seg_len) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if int(seg_len.sum()) >= _SLICE_MIN_SAMPLES * len(seg_len):
        # Long segments: copying slices beats building an index as large as the output.
        tss = [s.timestamps_ms for s in sets]
        vss = [s.values for s in sets]
        ends = (seg_start + seg_len).tolist()
        spans = list(zip(seg_input.tolist(), seg_start.tolist(), ends, strict=True))
        return (
            np.concatenate([tss[i][a:b] for i, a, b in spans]),
            np.concatenate([vss[i][a:b] for i, a, b in spans]),
        )
    bases = np.zeros(len(sets), dtype=np.int64)
    np.cumsum([len(s.timestamps_ms) for s in sets[:-1]], out=bases[1:])
    take = ragged_arange(bases[seg_input] + seg_start, seg_len)
    ts_all = np.concatenate([s.timestamps_ms for s in sets])
    vals_all = np.concatenate([s.values for s in sets])
    return ts_all[take], vals_all[take]


def _sort_overlapping(
    ts: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    overlapping: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Sorts the samples of overlapping series by time and drops duplicate timestamps."""
    which = np.flatnonzero(overlapping)
    lens = np.diff(offsets)
    pos = ragged_arange(offsets[which], lens[which])
    rank = np.repeat(which, lens[which])
    sub_order = order_by_rank_and_time(rank, ts[pos], len(overlapping))
    pos_sorted = pos[sub_order]
    sub_ts, sub_vals = ts[pos_sorted], vals[pos_sorted]
    ts = ts.copy()
    vals = vals.copy()
    ts[pos] = sub_ts
    vals[pos] = sub_vals
    sub_rank = rank[sub_order]
    dup_sub = np.zeros(len(pos), dtype=np.bool_)
    dup_sub[1:] = (sub_rank[1:] == sub_rank[:-1]) & (sub_ts[1:] == sub_ts[:-1])
    if not dup_sub.any():
        return ts, vals, offsets
    keep = np.ones(len(ts), dtype=np.bool_)
    keep[pos[dup_sub]] = False
    dropped = np.bincount(sub_rank[dup_sub], minlength=len(overlapping))
    new_offsets = offsets.copy()
    new_offsets[1:] -= np.cumsum(dropped)
    return ts[keep], vals[keep], new_offsets


class MergeQuerier(Querier):
    """Queries every querier and merges the results; an error from any of them is raised.

    Closing it closes every querier it holds.
    """

    def __init__(self, queriers: Sequence[Querier]) -> None:
        self._queriers = list(queriers)

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        """Returns the merged series of every querier."""
        if len(self._queriers) == 1:
            return self._queriers[0].select(matchers, hints=hints)
        return merge_series_sets([q.select(matchers, hints=hints) for q in self._queriers])

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted union of every querier's label names."""
        names: set[str] = set()
        for q in self._queriers:
            names.update(q.label_names(matchers))
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted union of every querier's values of a label."""
        values: set[str] = set()
        for q in self._queriers:
            values.update(q.label_values(name, matchers))
        return sorted(values)

    def close(self) -> None:
        """Closes every querier."""
        for q in self._queriers:
            q.close()
