# ruff: noqa: E501 - help texts are kept verbatim from Prometheus, one per line.
"""The TSDB's lifecycle self-metrics: lock state, block writing, vertical compactions, WAL truncation.

They sit beside `tsdb/metrics.py` (not in it) so `TsdbMetrics` stays as it is while others
extend it; `TSDB` holds one `TsdbLifecycleMetrics` next to its `TsdbMetrics`.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from watchkeeper.instrument.metrics import Registry


class TsdbLifecycleMetrics:
    """The lock, block-writing, vertical-compaction and WAL-truncation metrics of a TSDB."""

    def __init__(self, registry: Registry) -> None:
        self.clean_start = registry.gauge(
            "prometheus_tsdb_clean_start",
            "-1: lockfile is disabled. 0: a lockfile from a previous execution was replaced. 1: lockfile creation was clean",
        )
        self.populating_block = registry.gauge(
            "prometheus_tsdb_compaction_populating_block",
            "Set to 1 when a block is currently being written to the disk.",
        )
        self.vertical_compactions = registry.counter(
            "prometheus_tsdb_vertical_compactions_total",
            "Total number of compactions done on overlapping blocks.",
        )
        self.wal_truncate_duration = registry.summary(
            "prometheus_tsdb_wal_truncate_duration_seconds", "Duration of WAL truncation."
        )

    @contextlib.contextmanager
    def writing_block(self) -> Iterator[None]:
        """Marks a block as being written while the body runs."""
        self.populating_block.set(1)
        try:
            yield
        finally:
            self.populating_block.set(0)

    @contextlib.contextmanager
    def truncating_wal(self) -> Iterator[None]:
        """Times a WAL truncation (a checkpoint), failed or not."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.wal_truncate_duration.observe(time.perf_counter() - start)

    def compacted(self, ranges_ms: Sequence[tuple[int, int]]) -> None:
        """Counts a compaction of blocks with these [min, max) ranges as vertical if any overlap."""
        ordered = sorted(ranges_ms)
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered)):
            self.vertical_compactions.inc()


def lockfile_state(no_lockfile: bool, lock_path: Path) -> float:
    """The prometheus_tsdb_clean_start value; call before taking the lock.

    A lock file left behind means the previous run did not close the TSDB.
    """
    if no_lockfile:
        return -1.0
    return 0.0 if lock_path.exists() else 1.0
