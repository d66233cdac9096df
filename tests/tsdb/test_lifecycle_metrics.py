"""prometheus_tsdb_clean_start and the other lifecycle metrics, on a real data directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
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


def test_wal_fsync_durations_are_a_summary_with_prometheus_quantiles(tmp_path: Path) -> None:
    registry = Registry()
    db = TSDB.open(tmp_path, TsdbOptions(wal_fsync_interval_ms=0), registry=registry)
    try:
        with db.appender() as app:
            refs = app.refs([Labels.from_strings("__name__", "up")])
            app.append(refs, np.array([1_000], np.int64), np.array([1.0]))
    finally:
        db.close()
    text = registry.render().decode()
    assert "# TYPE prometheus_tsdb_wal_fsync_duration_seconds summary" in text
    for quantile in ("0.5", "0.9", "0.99"):
        line = f'prometheus_tsdb_wal_fsync_duration_seconds{{quantile="{quantile}"}} '
        assert line in text
        assert float(text.partition(line)[2].partition("\n")[0]) >= 0, "one fsync was observed"
    assert _gauge(registry, "prometheus_tsdb_wal_fsync_duration_seconds_count") >= 1
