"""WAL segments: records survive a reopen; torn or corrupt tails are cut off and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.tsdb.wal import (
    ReplayStatus,
    SamplesRecord,
    SeriesRecord,
    WriteAheadLog,
    list_segments,
    read_records,
    write_checkpoint,
)


def _samples(i: int, n: int = 100) -> SamplesRecord:
    return SamplesRecord(
        np.arange(n, dtype=np.uint64),
        np.full(n, i * 1000, dtype=np.int64),
        np.full(n, float(i)),
    )


def _write(wal_dir: Path, count: int, *, segment_size: int = 64 * 1024) -> None:
    wal = WriteAheadLog(
        wal_dir, segment_size_bytes=segment_size, fsync_interval_ms=0, compress=False
    )
    wal.log([SeriesRecord(np.array([0], dtype=np.uint64), [Labels.from_strings("a", "b")])])
    for i in range(count):
        wal.log([_samples(i)])
    wal.close()


def test_records_are_read_back_in_order_across_segments(tmp_path: Path) -> None:
    _write(tmp_path, 200)
    assert len(list_segments(tmp_path)) > 1
    recs = list(read_records(tmp_path))
    assert isinstance(recs[0], SeriesRecord)
    assert [int(r.timestamps_ms[0]) for r in recs[1:] if isinstance(r, SamplesRecord)] == [
        i * 1000 for i in range(200)
    ]


def test_a_reopened_wal_writes_into_a_new_segment(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    before = list_segments(tmp_path)
    wal = WriteAheadLog(tmp_path, segment_size_bytes=1 << 20)
    wal.log([_samples(99)])
    wal.close()
    assert list_segments(tmp_path) == [*before, before[-1] + 1]
    assert len(list(read_records(tmp_path))) == 5


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "garbage"])
def test_a_damaged_tail_is_cut_off_and_everything_before_it_is_read(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path, 50, segment_size=1 << 20)
    seg = tmp_path / "00000000"
    data = bytearray(seg.read_bytes())
    record_size = (len(data) - 8) // 51
    cut_at = len(data) - record_size * 10 - record_size // 2
    if damage == "truncate":
        seg.write_bytes(bytes(data[:cut_at]))
    elif damage == "bitflip":
        data[cut_at] ^= 0x10
        seg.write_bytes(bytes(data))
    else:
        seg.write_bytes(bytes(data) + b"\x07garbage")
    status = ReplayStatus()
    seen: list[object] = []
    with caplog.at_level(logging.WARNING):
        recs = list(read_records(tmp_path, status, on_corruption=seen.append))
    assert len(seen) == 1
    assert "WAL corruption" in caplog.text
    assert len(recs) == (51 if damage == "garbage" else 40)
    # The repair leaves a log that reads cleanly.
    assert len(list(read_records(tmp_path, on_corruption=seen.append))) == len(recs)
    assert len(seen) == 1


def test_corruption_in_an_early_segment_drops_later_segments(tmp_path: Path) -> None:
    _write(tmp_path, 200)
    segs = list_segments(tmp_path)
    first = tmp_path / "00000000"
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF
    first.write_bytes(bytes(data))
    seen: list[object] = []
    recs = list(read_records(tmp_path, on_corruption=seen.append))
    assert len(seen) == 1
    assert list_segments(tmp_path) == [segs[0]]
    assert 0 < len(recs) < 201


def test_a_checkpoint_replaces_the_segments_it_covers(tmp_path: Path) -> None:
    _write(tmp_path, 200)
    segs = list_segments(tmp_path)
    through = segs[-2]
    write_checkpoint(tmp_path, through, iter([_samples(7)]))
    assert list_segments(tmp_path) == [segs[-1]]
    assert (tmp_path / f"checkpoint.{through:08d}").is_dir()
    recs = list(read_records(tmp_path))
    assert int(recs[0].timestamps_ms[0]) == 7000  # type: ignore[union-attr]


def test_a_segment_in_another_format_is_set_aside_not_cut(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    foreign = tmp_path / "00000001"
    foreign.write_bytes(b"\x01\x00\x10prometheus-record-bytes")
    seen: list[object] = []
    recs = list(read_records(tmp_path, on_corruption=seen.append))
    assert len(recs) == 4
    assert len(seen) == 1
    assert (tmp_path / "00000001.unreadable").read_bytes().startswith(b"\x01\x00\x10prom")
    assert list_segments(tmp_path) == [0]
