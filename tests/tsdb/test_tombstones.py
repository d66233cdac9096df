"""Tombstones: deletions hide samples, survive reopening, and clean up into a new block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.tsdb.block import Block, write_block
from watchkeeper.tsdb.chunks import CorruptionError
from watchkeeper.tsdb.tombstones import Tombstones


def two_series(tmp_path: Path) -> Path:
    labels = [Labels.from_strings("__name__", "a"), Labels.from_strings("__name__", "b")]
    ts = np.tile(np.arange(100, dtype=np.int64) * 10, 2)
    path = write_block(
        tmp_path / "data",
        SeriesSet(labels, np.array([0, 100, 200]), ts, np.arange(200, dtype=np.float64)),
        mint_ms=0,
        maxt_ms=1000,
    )
    assert path is not None
    return path


def test_deleted_samples_are_hidden_and_stay_hidden_after_reopening(tmp_path: Path) -> None:
    path = two_series(tmp_path)
    with Block.open(path) as b:
        b.delete([Matcher.equal("__name__", "a")], 100, 190)
        got = b.querier(0, 1000).select([Matcher.equal("__name__", "a")])
        assert got.sample_count == 90
        assert b.meta.stats.num_tombstones == 1
    with Block.open(path) as b:
        assert b.querier(0, 1000).select([Matcher.equal("__name__", "a")]).sample_count == 90
        assert b.querier(0, 1000).select([Matcher.equal("__name__", "b")]).sample_count == 100


def test_cleaning_tombstones_writes_a_block_without_the_deleted_data(tmp_path: Path) -> None:
    path = two_series(tmp_path)
    with Block.open(path) as b:
        assert b.clean_tombstones(tmp_path / "data") is None
        b.delete([Matcher.equal("__name__", "b")], 0, 1000)
        new = b.clean_tombstones(tmp_path / "data")
        assert new is not None
    with Block.open(new) as nb:
        got = nb.querier(0, 1000).select([Matcher.equal("__name__", "b")])
        assert len(got) == 0
        assert nb.meta.compaction.parents[0].ulid == path.name
        assert nb.meta.stats.num_series == 1


def test_everything_deleted_means_no_new_block(tmp_path: Path) -> None:
    path = two_series(tmp_path)
    with Block.open(path) as b:
        b.delete([Matcher.equal("__name__", "a")], -10, 10_000)
        b.delete([Matcher.equal("__name__", "b")], -10, 10_000)
        assert b.clean_tombstones(tmp_path / "out") is None


def test_overlapping_intervals_are_merged() -> None:
    t = Tombstones().with_intervals(np.array([1, 1]), 0, 10).with_intervals(np.array([1]), 5, 20)
    assert (t.series.tolist(), t.mint.tolist(), t.maxt.tolist()) == ([1], [0], [20])


def test_tombstones_round_trip_through_bytes(tmp_path: Path) -> None:
    t = Tombstones(np.array([3, 1]), np.array([-5, 0]), np.array([5, 9]))
    t.write(tmp_path)
    back = Tombstones.read(tmp_path)
    assert back.series.tolist() == [1, 3]
    assert back.mint.tolist() == [0, -5]


@given(st.binary(max_size=100))
def test_damaged_tombstones_raise_only_corruption_errors(data: bytes) -> None:
    with pytest.raises(CorruptionError):
        Tombstones.from_bytes(data)


@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 50), st.integers(0, 50)), max_size=6),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60)), max_size=40, unique=True),
)
def test_deleted_mask_matches_a_naive_check(
    intervals: list[tuple[int, int, int]], samples: list[tuple[int, int]]
) -> None:
    samples.sort()
    stones = Tombstones(
        np.array([s for s, _, _ in intervals], dtype=np.int64),
        np.array([lo for _, lo, _ in intervals], dtype=np.int64),
        np.array([hi for _, _, hi in intervals], dtype=np.int64),
    )
    series = np.array([s for s, _ in samples], dtype=np.int64)
    ts = np.array([t for _, t in samples], dtype=np.int64)
    want = [any(s == i and lo <= t <= hi for i, lo, hi in intervals) for s, t in samples]
    assert stones.deleted_mask(series, ts).tolist() == want
