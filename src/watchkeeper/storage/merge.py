"""Merging queriers: one view over several sources (head and blocks, local and remote).

`merge_series_sets` unions series by label set and interleaves their samples by time;
samples with the same timestamp in several sources appear once (the first source wins),
as Prometheus's chained series merge does for identical overlapping data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import Querier, SelectHints, SeriesSet


def _order_by_rank_and_time(
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


def merge_series_sets(sets: Sequence[SeriesSet]) -> SeriesSet:
    """Merges sets into one sorted set; duplicate (series, timestamp) samples are kept once."""
    warnings = [w for s in sets for w in s.warnings]
    nonempty = [s for s in sets if len(s)]
    if len(nonempty) <= 1:
        base = nonempty[0] if nonempty else SeriesSet.empty()
        if warnings == base.warnings:
            return base
        return SeriesSet(base.labels, base.offsets, base.timestamps_ms, base.values, warnings)
    ordered = sorted({lbls for s in nonempty for lbls in s.labels})
    rank_of: dict[Labels, int] = {lbls: i for i, lbls in enumerate(ordered)}
    ranks: list[npt.NDArray[np.int64]] = []
    for s in nonempty:
        per_series = np.fromiter((rank_of[x] for x in s.labels), dtype=np.int64, count=len(s))
        ranks.append(np.repeat(per_series, np.diff(s.offsets)))
    rank = np.concatenate(ranks)
    ts = np.concatenate([s.timestamps_ms for s in nonempty])
    vals = np.concatenate([s.values for s in nonempty])
    order = _order_by_rank_and_time(rank, ts, len(ordered))
    rank, ts, vals = rank[order], ts[order], vals[order]
    dup = np.zeros(len(rank), dtype=np.bool_)
    dup[1:] = (rank[1:] == rank[:-1]) & (ts[1:] == ts[:-1])
    if dup.any():
        keep = ~dup
        rank, ts, vals = rank[keep], ts[keep], vals[keep]
    offsets = np.zeros(len(ordered) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rank, minlength=len(ordered)), out=offsets[1:])
    return SeriesSet(ordered, offsets, ts, vals, warnings)


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
