"""Reliability with real processes and files: kill -9, damaged WAL segments, a full disk."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.options import TsdbOptions
from watchkeeper.tsdb.wal import list_segments

pytestmark = pytest.mark.integration

HOUR = 3_600_000
ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)
N_SERIES = 200

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from watchkeeper.model.labels import Labels
    from watchkeeper.tsdb.db import TSDB
    from watchkeeper.tsdb.options import TsdbOptions

    db = TSDB.open(Path(sys.argv[1]), TsdbOptions(wal_segment_size_bytes=256 * 1024))
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(int(sys.argv[2]))]
    with db.appender() as app:
        refs = app.refs(series)
    step = 0
    while True:
        with db.appender() as app:
            app.append(refs, np.full(len(refs), step * 1000, np.int64), np.full(len(refs), step))
        print(step, flush=True)
        step += 1
    """
)


def open_db(path: Path, registry: Registry | None = None) -> TSDB:
    return TSDB.open(
        path, TsdbOptions(wal_segment_size_bytes=256 * 1024), registry=registry or Registry()
    )


def test_every_acknowledged_sample_survives_kill_9_during_ingest(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), str(N_SERIES)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 400:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    db = open_db(tmp_path)
    with db.querier(0, 10**9) as q:
        ss = q.select(ALL)
    assert len(ss) == N_SERIES
    for i in range(len(ss)):
        _, ts, vals = ss.series(i)
        assert len(ts) >= acked + 1
        assert ts[: acked + 1].tolist() == [s * 1000 for s in range(acked + 1)]
        assert vals[: acked + 1].tolist() == [float(s) for s in range(acked + 1)]
    db.close()


def _ingest(db: TSDB, steps: range) -> None:
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(N_SERIES)]
    with db.appender() as app:
        refs = app.refs(series)
    for step in steps:
        with db.appender() as app:
            app.append(refs, np.full(N_SERIES, step * 1000, np.int64), np.full(N_SERIES, step))


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_wal_segment_is_cut_off_logged_counted_and_the_rest_is_served(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = open_db(tmp_path)
    _ingest(db, range(300))
    db.close()
    last = tmp_path / "wal" / f"{list_segments(tmp_path / 'wal')[-1]:08d}"
    data = bytearray(last.read_bytes())
    cut = len(data) * 2 // 3
    if damage == "truncated":
        last.write_bytes(bytes(data[:cut]))
    else:
        data[cut] ^= 0x04
        last.write_bytes(bytes(data))
    registry = Registry()
    with caplog.at_level(logging.WARNING):
        db = open_db(tmp_path, registry)
    assert "WAL corruption" in caplog.text
    assert "prometheus_tsdb_wal_corruptions_total 1" in registry.render().decode()
    with db.querier(0, 10**9) as q:
        ss = q.select(ALL)
    _, ts, _ = ss.series(0)
    assert 100 < len(ts) < 300
    assert ts.tolist() == [s * 1000 for s in range(len(ts))]
    # The repaired database keeps working and keeps its data across another restart.
    _ingest(db, range(1000, 1010))
    db.close()
    db = open_db(tmp_path)
    with db.querier(0, 10**9) as q:
        assert len(q.select(ALL).series(0)[1]) == len(ts) + 10
    db.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_during_block_write_is_reported_and_loses_nothing(small_disk: Path) -> None:
    data = small_disk / "data"
    db = open_db(data)
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(50)]
    with db.appender() as app:
        refs = app.refs(series)
    rng = np.random.default_rng(1)
    steps = range(0, 3 * HOUR + 2 * 15_000, 15_000)
    for t in steps:
        with db.appender() as app:
            app.append(refs, np.full(len(refs), t, np.int64), rng.random(len(refs)))
    with db.querier(0, 4 * HOUR) as q:
        before = q.select(ALL)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    report = db.maintenance()
    assert report.errors
    assert "No space left" in report.errors[0]
    assert db.blocks() == []
    assert db.metrics.compactions_failed.value == 1
    assert [p.name for p in data.iterdir() if p.is_dir()] == ["wal"]
    with db.querier(0, 4 * HOUR) as q:
        after = q.select(ALL)
    assert after.labels == before.labels
    assert np.array_equal(after.values.view(np.uint64), before.values.view(np.uint64))
    filler.unlink()
    report = db.maintenance()
    assert report.errors == []
    assert len(db.blocks()) == 1
    db.close()
    db = open_db(data)
    with db.querier(0, 4 * HOUR) as q:
        again = q.select(ALL)
    assert np.array_equal(again.timestamps_ms, before.timestamps_ms)
    assert np.array_equal(again.values.view(np.uint64), before.values.view(np.uint64))
    db.close()


def test_a_full_disk_fails_the_commit_cleanly_and_later_commits_survive(small_disk: Path) -> None:
    from watchkeeper.storage.interface import StorageError

    data = small_disk / "data"
    db = open_db(data)
    _ingest(db, range(50))
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(N_SERIES)]
    rng = np.random.default_rng(2)
    app = db.appender()
    refs = app.refs(series)
    # Random values do not compress, so the record cannot fit in what is left.
    for step in range(50, 60):
        app.append(refs, np.full(N_SERIES, step * 1000, np.int64), rng.random(N_SERIES))
    with pytest.raises(StorageError, match="WAL"):
        app.commit()
    with db.querier(0, 10**9) as q:
        assert len(q.select(ALL).series(0)[1]) == 50
    filler.unlink()
    _ingest(db, range(60, 70))
    db.close()
    db = open_db(data)
    with db.querier(0, 10**9) as q:
        ts = q.select(ALL).series(0)[1]
    assert ts.tolist() == [s * 1000 for s in [*range(50), *range(60, 70)]]
    db.close()
