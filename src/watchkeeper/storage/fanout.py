"""Fan-out storage: one primary (the local TSDB) and secondaries (remote storage).

As in Prometheus: appends go to every storage, the primary first; reads merge every
querier, and a secondary that fails to answer becomes a warning on the result instead
of an error, so a down remote-read endpoint never breaks local queries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import (
    Appender,
    AppendResult,
    Querier,
    SelectHints,
    SeriesSet,
    Storage,
)
from watchkeeper.storage.merge import merge_series_sets

log = logging.getLogger(__name__)


class FanoutStorage:
    """Writes to and reads from a primary storage and any number of secondaries."""

    def __init__(self, primary: Storage, secondaries: Sequence[Storage] = ()) -> None:
        self.primary = primary
        self.secondaries = list(secondaries)

    def appender(self) -> Appender:
        """Returns an appender that writes to every storage."""
        return FanoutAppender(self.primary.appender(), [s.appender() for s in self.secondaries])

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        """Returns a querier that merges the primary with the secondaries."""
        primary = self.primary.querier(mint_ms, maxt_ms)
        secondaries: list[Querier] = []
        try:
            secondaries.extend(s.querier(mint_ms, maxt_ms) for s in self.secondaries)
        except Exception:
            primary.close()
            for q in secondaries:
                q.close()
            raise
        if not secondaries:
            return primary
        return FanoutQuerier(primary, secondaries)

    def close(self) -> None:
        """Closes every storage (the primary last)."""
        for s in self.secondaries:
            try:
                s.close()
            except Exception:
                log.exception("closing secondary storage failed")
        self.primary.close()


class FanoutAppender(Appender):
    """Appends to the primary and mirrors what it accepted to the secondaries.

    The primary decides what is accepted; a secondary's refs are kept alongside. Commit
    commits the primary first; a secondary's commit error is logged, not raised.
    """

    def __init__(self, primary: Appender, secondaries: Sequence[Appender]) -> None:
        self._primary = primary
        self._secondaries = list(secondaries)
        self._labels: dict[int, Labels] = {}
        self._secondary_refs: list[dict[int, int]] = [{} for _ in secondaries]

    def refs(self, series: Sequence[Labels]) -> npt.NDArray[np.uint64]:
        """Returns the primary's refs (creating series in every storage)."""
        refs = self._primary.refs(series)
        for i, app in enumerate(self._secondaries):
            other = app.refs(series)
            mapping = self._secondary_refs[i]
            for r, o in zip(refs.tolist(), other.tolist(), strict=True):
                mapping[r] = o
        return refs

    def append(
        self,
        refs: npt.NDArray[np.uint64],
        timestamps_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> AppendResult:
        """Appends to the primary, then the accepted samples to each secondary."""
        result = self._primary.append(refs, timestamps_ms, values)
        if self._secondaries and result.accepted.any():
            acc = result.accepted
            kept = refs[acc]
            for i, app in enumerate(self._secondaries):
                mapping = self._secondary_refs[i]
                other = np.fromiter(
                    (mapping[r] for r in kept.tolist()), dtype=np.uint64, count=len(kept)
                )
                app.append(other, timestamps_ms[acc], values[acc])
        return result

    def commit(self) -> None:
        """Commits the primary (errors raise), then the secondaries (errors are logged)."""
        try:
            self._primary.commit()
        except Exception:
            for app in self._secondaries:
                app.rollback()
            raise
        for app in self._secondaries:
            try:
                app.commit()
            except Exception:
                log.exception("commit to secondary storage failed")

    def rollback(self) -> None:
        """Rolls every appender back."""
        self._primary.rollback()
        for app in self._secondaries:
            try:
                app.rollback()
            except Exception:
                log.exception("rollback of secondary storage failed")


class FanoutQuerier(Querier):
    """Merges a primary querier with secondaries whose failures become warnings."""

    def __init__(self, primary: Querier, secondaries: Sequence[Querier]) -> None:
        self._primary = primary
        self._secondaries = list(secondaries)

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        """Returns the merged series; errors of secondaries are reported as warnings."""
        sets = [self._primary.select(matchers, hints=hints)]
        warnings: list[str] = []
        for q in self._secondaries:
            try:
                sets.append(q.select(matchers, hints=hints))
            except Exception as exc:
                warnings.append(f"secondary storage failed: {exc}")
        merged = merge_series_sets(sets)
        if warnings:
            merged.warnings = [*merged.warnings, *warnings]
        return merged

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted union of label names (failing secondaries are skipped)."""
        names = set(self._primary.label_names(matchers))
        for q in self._secondaries:
            try:
                names.update(q.label_names(matchers))
            except Exception:
                log.warning("secondary storage failed to list label names", exc_info=True)
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted union of label values (failing secondaries are skipped)."""
        values = set(self._primary.label_values(name, matchers))
        for q in self._secondaries:
            try:
                values.update(q.label_values(name, matchers))
            except Exception:
                log.warning("secondary storage failed to list label values", exc_info=True)
        return sorted(values)

    def close(self) -> None:
        """Closes every querier."""
        self._primary.close()
        for q in self._secondaries:
            q.close()
