"""prometheus_tsdb_clean_start and the other lifecycle metrics, on a real data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.tsdb.db import LOCK_FILENAME, TSDB
from watchkeeper.tsdb.lifecycle_metrics import TsdbLifecycleMetrics
from watchkeeper.tsdb.options import TsdbOptions


def _gauge(registry: Registry, name: str) -> float:
    for line in registry.render().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.rpartition(" ")[2])
    raise AssertionError(f"{name} is not exported")


@pytest.mark.parametrize(
    ("leftover_lock", "no_lockfile", "expected"),
    [(False, False, 1.0), (True, False, 0.0), (False, True, -1.0)],
)
def test_clean_start_tells_whether_the_last_run_left_its_lock_file(
    tmp_path: Path, leftover_lock: bool, no_lockfile: bool, expected: float
) -> None:
    if leftover_lock:
        (tmp_path / LOCK_FILENAME).write_text("")
    registry = Registry()
    db = TSDB.open(tmp_path, TsdbOptions(no_lockfile=no_lockfile), registry=registry)
    try:
        assert _gauge(registry, "prometheus_tsdb_clean_start") == expected
        assert _gauge(registry, "prometheus_tsdb_compaction_populating_block") == 0
    finally:
        db.close()
    again = Registry()
    TSDB.open(tmp_path, registry=again).close()
    assert _gauge(again, "prometheus_tsdb_clean_start") == 1, "a closed TSDB leaves no lock"


def test_only_compactions_of_overlapping_blocks_count_as_vertical() -> None:
    registry = Registry()
    metrics = TsdbLifecycleMetrics(registry)
    metrics.compacted([(0, 10), (10, 20), (20, 30)])
    assert metrics.vertical_compactions.value == 0
    metrics.compacted([(10, 20), (0, 15)])
    assert metrics.vertical_compactions.value == 1


def test_writing_a_block_shows_while_it_lasts_even_when_it_fails() -> None:
    metrics = TsdbLifecycleMetrics(Registry())
    with metrics.writing_block():
        assert metrics.populating_block.value == 1
    with pytest.raises(OSError, match="disk full"), metrics.writing_block():
        raise OSError("disk full")
    assert metrics.populating_block.value == 0
    with metrics.truncating_wal():
        pass
    assert metrics.wal_truncate_duration.count == 1
