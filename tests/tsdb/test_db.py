"""The TSDB: head and blocks together, maintenance, retention, admin operations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.storage.interface import SeriesSet, StorageError
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.options import TsdbOptions
from watchkeeper.tsdb.wal import list_segments

HOUR = 3_600_000
STEP = 60_000
ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)
CUT_END = 3 * HOUR + 2 * STEP
SERIES = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(20)]


def fill(db: TSDB, start_ms: int, end_ms: int, step_ms: int = STEP) -> None:
    """Appends one sample per series per step in [start_ms, end_ms), value = timestamp."""
    with db.appender() as app:
        refs = app.refs(SERIES)
    for t in range(start_ms, end_ms, step_ms):
        with db.appender() as app:
            app.append(refs, np.full(len(refs), t, np.int64), np.full(len(refs), float(t)))


def everything(db: TSDB) -> SeriesSet:
    with db.querier(-(2**62), 2**62) as q:
        return q.select(ALL)


def assert_complete(ss: SeriesSet, start_ms: int, end_ms: int, step_ms: int = STEP) -> None:
    want = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
    assert ss.labels == sorted(SERIES)
    for i in range(len(ss)):
        _, ts, vals = ss.series(i)
        assert ts.tolist() == want.tolist()
        assert vals.tolist() == want.astype(float).tolist()


def open_db(path: Path, **kw: int) -> TSDB:
    opts = TsdbOptions(wal_segment_size_bytes=256 * 1024, **kw)  # type: ignore[arg-type]
    return TSDB.open(path, opts, registry=Registry())


def test_samples_survive_a_close_and_reopen(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    fill(db, 0, HOUR)
    db.close()
    db = open_db(tmp_path)
    assert_complete(everything(db), 0, HOUR)
    assert db.wal_replay_status()["current"] >= 0
    db.close()


def test_maintenance_cuts_the_head_into_blocks_and_checkpoints_the_wal(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    fill(db, 0, CUT_END)
    report = db.maintenance()
    assert report.errors == []
    assert len(report.head_blocks) == 1
    (meta,) = db.blocks()
    assert (meta.min_time_ms, meta.max_time_ms) == (0, 2 * HOUR)
    assert db.head.min_time_ms >= 2 * HOUR
    assert any(p.name.startswith("checkpoint.") for p in (tmp_path / "wal").iterdir())
    assert_complete(everything(db), 0, CUT_END)
    db.close()
    db = open_db(tmp_path)
    assert_complete(everything(db), 0, CUT_END)
    db.close()


def test_maintenance_compacts_adjacent_blocks_and_removes_their_inputs(tmp_path: Path) -> None:
    db = open_db(tmp_path, retention_ms=1000 * HOUR)
    end = 0
    for end in range(2 * HOUR, 18 * HOUR, 2 * HOUR):
        fill(db, end - 2 * HOUR, end, 5 * STEP)
        db.maintenance()
    metas = db.blocks()
    assert any(m.max_time_ms - m.min_time_ms == 6 * HOUR for m in metas), metas
    on_disk = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name != "wal")
    assert on_disk == sorted(m.ulid for m in metas)
    assert_complete(everything(db), 0, end, 5 * STEP)
    db.close()


def test_time_retention_deletes_whole_old_blocks(tmp_path: Path) -> None:
    registry = Registry()
    opts = TsdbOptions(retention_ms=6 * HOUR, wal_segment_size_bytes=256 * 1024)
    db = TSDB.open(tmp_path, opts, registry=registry)
    for end in range(4 * HOUR, 20 * HOUR, 2 * HOUR):
        fill(db, end - 2 * HOUR, end, 10 * STEP)
        db.maintenance()
    metas = db.blocks()
    newest = max(m.max_time_ms for m in metas)
    assert all(newest - m.max_time_ms < 6 * HOUR for m in metas)
    assert "prometheus_tsdb_time_retentions_total" in registry.render().decode()
    assert db.start_time_ms() == min(m.min_time_ms for m in metas)
    db.close()


def test_size_retention_deletes_the_oldest_blocks_first(tmp_path: Path) -> None:
    db = open_db(tmp_path, retention_bytes=1)
    fill(db, 0, 7 * HOUR, 10 * STEP)
    db.maintenance()
    assert db.blocks() == []
    assert db.metrics.size_retentions.value >= 1
    db.close()


def test_a_querier_keeps_reading_a_block_deleted_under_it(tmp_path: Path) -> None:
    db = open_db(tmp_path, retention_bytes=1)
    fill(db, 0, CUT_END)
    db.metrics.registry.render()
    opts_db = db
    opts_db.options = TsdbOptions(wal_segment_size_bytes=256 * 1024)
    db.maintenance()
    assert len(db.blocks()) == 1
    q = db.querier(0, 4 * HOUR)
    db.options = TsdbOptions(retention_bytes=1, wal_segment_size_bytes=256 * 1024)
    db.maintenance()
    assert db.blocks() == []
    assert_complete(q.select(ALL), 0, CUT_END)
    q.close()
    db.close()


def test_deleted_series_disappear_from_head_and_blocks_and_stay_deleted(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    fill(db, 0, CUT_END)
    db.maintenance()
    gone = [Matcher.equal("i", "3")]
    db.delete_series(gone, HOUR, 3 * HOUR)
    with db.querier(0, 4 * HOUR) as q:
        ss = q.select(gone)
    ts = ss.series(0)[1]
    assert ts.min() == 0
    assert not ((ts >= HOUR) & (ts <= 3 * HOUR)).any()
    db.clean_tombstones()
    db.close()
    db = open_db(tmp_path)
    with db.querier(0, 4 * HOUR) as q:
        again = q.select(gone)
    assert again.timestamps_ms.tolist() == ts.tolist()
    db.close()


def test_a_snapshot_with_head_opens_as_a_database_with_the_same_data(tmp_path: Path) -> None:
    db = open_db(tmp_path / "data")
    fill(db, 0, CUT_END)
    db.maintenance()
    fill(db, CUT_END, 4 * HOUR)
    snap = db.snapshot(tmp_path / "snap", with_head=True)
    db.close()
    copy = open_db(snap)
    assert_complete(everything(copy), 0, 4 * HOUR)
    copy.close()


def test_status_reports_head_cardinality_and_wal_replay(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    fill(db, 0, 10 * STEP)
    status = db.tsdb_status()
    assert status["headStats"]["numSeries"] == 20
    assert status["headStats"]["maxTime"] == 9 * STEP
    assert status["seriesCountByMetricName"] == [{"name": "m", "value": 20}]
    assert set(db.wal_replay_status()) == {"min", "max", "current"}
    text = db.metrics.registry.render().decode()
    for name in (
        "prometheus_tsdb_head_series 20",
        "prometheus_tsdb_lowest_timestamp 0",
        "prometheus_tsdb_wal_corruptions_total 0",
        "prometheus_tsdb_blocks_loaded 0",
    ):
        assert name in text
    db.close()


def test_a_locked_data_directory_cannot_be_opened_twice(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    with pytest.raises(StorageError, match="locked"):
        open_db(tmp_path)
    db.close()


def test_leftover_temporary_block_directories_are_removed_on_open(tmp_path: Path) -> None:
    (tmp_path / "01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp-for-creation").mkdir()
    (tmp_path / "01ARZ3NDEKTSV4RRFFQ69G5FAW.tmp-for-deletion").mkdir()
    db = open_db(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock", "wal"]
    db.close()


def test_the_wal_does_not_grow_forever(tmp_path: Path) -> None:
    db = open_db(tmp_path, retention_ms=1000 * HOUR)
    for end in range(4 * HOUR, 12 * HOUR, 2 * HOUR):
        fill(db, end - 2 * HOUR, end, STEP)
        db.maintenance()
    segs = list_segments(tmp_path / "wal")
    assert len(segs) <= 3
    db.close()


def test_out_of_order_samples_within_the_window_are_kept_even_behind_a_block(
    tmp_path: Path,
) -> None:
    db = open_db(tmp_path, out_of_order_time_window_ms=3 * HOUR)
    fill(db, 0, CUT_END)
    late = Labels.from_dict({"__name__": "late"})
    with db.appender() as app:
        res = app.append(app.refs([late]), np.array([HOUR + 1], np.int64), np.array([7.0]))
    assert res.accepted.all()
    db.maintenance()
    (meta,) = db.blocks()
    assert meta.max_time_ms == 2 * HOUR
    with db.appender() as app:
        res = app.append(app.refs([late]), np.array([HOUR + 2], np.int64), np.array([8.0]))
    assert res.accepted.all()
    db.close()
    db = open_db(tmp_path, out_of_order_time_window_ms=3 * HOUR)
    with db.querier(0, 4 * HOUR) as q:
        ss = q.select([Matcher.equal("__name__", "late")])
    assert ss.timestamps_ms.tolist() == [HOUR + 1, HOUR + 2]
    db.close()


def test_maintenance_on_another_thread_during_ingest_and_queries_loses_nothing(
    tmp_path: Path,
) -> None:
    import threading

    db = open_db(tmp_path, retention_ms=1000 * HOUR)
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(work: object) -> None:
        try:
            while not stop.is_set():
                work()  # type: ignore[operator]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def query() -> None:
        with db.querier(0, 2**40) as q:
            ss = q.select(ALL)
        counts = np.diff(ss.offsets)
        assert len(counts) == 0 or counts.min() >= counts.max() - 1

    threads = [
        threading.Thread(target=loop, args=(db.maintenance,)),
        threading.Thread(target=loop, args=(query,)),
    ]
    for t in threads:
        t.start()
    end = 13 * HOUR
    fill(db, 0, end, 5 * STEP)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    db.maintenance()
    assert len(db.blocks()) >= 3
    assert_complete(everything(db), 0, end, 5 * STEP)
    db.close()
    db = open_db(tmp_path)
    assert_complete(everything(db), 0, end, 5 * STEP)
    db.close()
