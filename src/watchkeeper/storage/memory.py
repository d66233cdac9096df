"""MemoryStorage: a small, exact in-memory implementation of the storage interfaces.

For data that lives only as long as a process: PromQL over data given in Python (the
library), `watchkeeper test rules`, the PromQL test-script runner, and unit tests of the
stages above storage. It keeps every sample of a series in one sorted numpy array; it has
no WAL and no limits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, matches_all
from watchkeeper.storage.interface import (
    Appender,
    AppendResult,
    Querier,
    SelectHints,
    SeriesSet,
)


class _MemorySeries:
    __slots__ = ("labels", "timestamps_ms", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.timestamps_ms = np.empty(0, dtype=np.int64)
        self.values = np.empty(0, dtype=np.float64)


class MemoryStorage:
    """Stores series in memory; rejects out-of-order and conflicting duplicate samples."""

    def __init__(self, *, allow_out_of_order: bool = False) -> None:
        self._series: list[_MemorySeries] = []
        self._by_labels: dict[Labels, int] = {}
        self.allow_out_of_order = allow_out_of_order

    def appender(self) -> Appender:
        """Returns a new write transaction."""
        return _MemoryAppender(self)

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        """Returns a querier over [mint_ms, maxt_ms]."""
        return _MemoryQuerier(self, mint_ms, maxt_ms)

    def close(self) -> None:
        """Nothing to release."""

    def add_series(
        self, labels: Labels, timestamps_ms: npt.ArrayLike, values: npt.ArrayLike
    ) -> None:
        """Sets a whole series at once (sorted by time; the last of equal timestamps wins).

        Raises:
            ValueError: when timestamps and values are not 1-D arrays of equal length.
        """
        ts = np.asarray(timestamps_ms, dtype=np.int64)
        vs = np.asarray(values, dtype=np.float64)
        if ts.shape != vs.shape or ts.ndim != 1:
            raise ValueError(f"series {labels}: timestamps and values must be 1-D of equal length")
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        keep = np.ones(len(ts), dtype=np.bool_)
        keep[:-1] = ts[1:] != ts[:-1]
        series = self._series[self._ref(labels)]
        series.timestamps_ms, series.values = ts[keep], vs[keep]

    def __len__(self) -> int:
        return len(self._series)

    def clear(self) -> None:
        """Drops every series."""
        self._series.clear()
        self._by_labels.clear()

    def _ref(self, labels: Labels) -> int:
        ref = self._by_labels.get(labels)
        if ref is None:
            ref = len(self._series)
            self._series.append(_MemorySeries(labels))
            self._by_labels[labels] = ref
        return ref


class _MemoryAppender(Appender):
    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage
        self._pending: list[
            tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.float64]]
        ] = []
        self._last: dict[int, tuple[int, float]] = {}

    def refs(self, series: Sequence[Labels]) -> npt.NDArray[np.uint64]:
        return np.fromiter(
            (self._storage._ref(s) for s in series), dtype=np.uint64, count=len(series)
        )

    def append(
        self,
        refs: npt.NDArray[np.uint64],
        timestamps_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> AppendResult:
        accepted = np.ones(len(refs), dtype=np.bool_)
        result = AppendResult(accepted)
        for i in range(len(refs)):
            ref = int(refs[i])
            t = int(timestamps_ms[i])
            last = self._last.get(ref)
            if last is None:
                s = self._storage._series[ref]
                if len(s.timestamps_ms):
                    last = (int(s.timestamps_ms[-1]), float(s.values[-1]))
            if last is not None and not self._storage.allow_out_of_order:
                if t < last[0]:
                    accepted[i] = False
                    result.out_of_order += 1
                    continue
                if t == last[0]:
                    same = np.float64(last[1]).view(np.uint64) == values[i].view(np.uint64)
                    if not same:
                        result.duplicate += 1
                    accepted[i] = False
                    continue
            self._last[ref] = (t, float(values[i]))
        self._pending.append((refs[accepted], timestamps_ms[accepted], values[accepted]))
        return result

    def commit(self) -> None:
        if not self._pending:
            return
        refs = np.concatenate([p[0] for p in self._pending])
        ts = np.concatenate([p[1] for p in self._pending])
        vals = np.concatenate([p[2] for p in self._pending])
        self._pending.clear()
        for ref in np.unique(refs):
            mask = refs == ref
            s = self._storage._series[int(ref)]
            all_ts = np.concatenate([s.timestamps_ms, ts[mask]])
            all_vals = np.concatenate([s.values, vals[mask]])
            order = np.argsort(all_ts, kind="stable")
            all_ts, all_vals = all_ts[order], all_vals[order]
            keep = np.ones(len(all_ts), dtype=np.bool_)
            keep[:-1] = all_ts[1:] != all_ts[:-1]
            s.timestamps_ms, s.values = all_ts[keep], all_vals[keep]

    def rollback(self) -> None:
        self._pending.clear()


class _MemoryQuerier(Querier):
    def __init__(self, storage: MemoryStorage, mint_ms: int, maxt_ms: int) -> None:
        self._storage = storage
        self._mint = mint_ms
        self._maxt = maxt_ms

    def _matching(self, matchers: Sequence[Matcher]) -> list[_MemorySeries]:
        out = []
        for s in self._storage._series:
            if not matches_all(list(matchers), s.labels):
                continue
            lo = np.searchsorted(s.timestamps_ms, self._mint, side="left")
            hi = np.searchsorted(s.timestamps_ms, self._maxt, side="right")
            if hi > lo:
                out.append(s)
        return out

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        chosen = sorted(self._matching(matchers), key=lambda s: s.labels)
        if not chosen:
            return SeriesSet.empty()
        ts_parts, val_parts, counts = [], [], []
        for s in chosen:
            lo = int(np.searchsorted(s.timestamps_ms, self._mint, side="left"))
            hi = int(np.searchsorted(s.timestamps_ms, self._maxt, side="right"))
            ts_parts.append(s.timestamps_ms[lo:hi])
            val_parts.append(s.values[lo:hi])
            counts.append(hi - lo)
        offsets = np.zeros(len(chosen) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return SeriesSet(
            [s.labels for s in chosen], offsets, np.concatenate(ts_parts), np.concatenate(val_parts)
        )

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names = {n for s in self._matching(matchers) for n, _ in s.labels}
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        values = {s.labels.get(name) for s in self._matching(matchers)}
        values.discard("")
        return sorted(values)
