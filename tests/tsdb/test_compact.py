"""Compaction: Prometheus's leveled planning, and merging with dedup and tombstones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.tsdb.block import Block, BlockMeta, BlockStats, write_block
from watchkeeper.tsdb.compact import compact, exponential_ranges, plan_compaction

H = 3_600_000


def meta(name: str, mint: int, maxt: int, tombstones: int = 0) -> BlockMeta:
    return BlockMeta(
        ulid=name,
        min_time_ms=mint,
        max_time_ms=maxt,
        stats=BlockStats(num_series=10, num_tombstones=tombstones),
        dir=Path(name),
    )


RANGES = exponential_ranges(2 * H)


def test_exponential_ranges_grow_by_the_factor() -> None:
    assert RANGES == [2 * H, 6 * H, 18 * H]
    assert exponential_ranges(20, steps=4, factor=2) == [20, 40, 80, 160]


def test_three_adjacent_2h_blocks_are_compacted_but_not_the_newest() -> None:
    metas = [meta(f"b{i}", i * 2 * H, (i + 1) * 2 * H) for i in range(4)]
    assert plan_compaction(metas, RANGES) == [[Path("b0"), Path("b1"), Path("b2")]]
    assert plan_compaction(metas[:3], RANGES) == []


def test_overlapping_blocks_are_compacted_first() -> None:
    metas = [meta("a", 0, 2 * H), meta("b", 2 * H, 4 * H), meta("c", H, 3 * H)]
    assert plan_compaction(metas, RANGES) == [[Path("a"), Path("c"), Path("b")]]


def test_larger_ranges_are_filled_from_compacted_blocks() -> None:
    metas = [meta(f"b{i}", i * 6 * H, (i + 1) * 6 * H) for i in range(3)]
    metas.append(meta("new", 18 * H, 20 * H))
    assert plan_compaction(metas, RANGES) == [[Path("b0"), Path("b1"), Path("b2")]]


def test_big_blocks_with_many_tombstones_are_rewritten() -> None:
    metas = [meta("big", 0, 18 * H, tombstones=5), meta("new", 18 * H, 20 * H)]
    assert plan_compaction(metas, RANGES) == [[Path("big")]]


def _block(dir_: Path, names: list[str], ts: list[int], vals: list[float]) -> Path:
    labels = [Labels.from_strings("__name__", n) for n in names]
    per = len(ts)
    path = write_block(
        dir_,
        SeriesSet(
            labels,
            np.arange(len(labels) + 1, dtype=np.int64) * per,
            np.tile(np.asarray(ts, dtype=np.int64), len(labels)),
            np.tile(np.asarray(vals, dtype=np.float64), len(labels)),
        ),
        mint_ms=min(ts),
        maxt_ms=max(ts) + 1,
    )
    assert path is not None
    return path


def test_compaction_merges_dedups_and_drops_deleted_samples(tmp_path: Path) -> None:
    a = Block.open(_block(tmp_path, ["x", "y"], [0, 10, 20], [1, 2, 3]))
    b = Block.open(_block(tmp_path, ["x", "z"], [20, 30], [3, 4]))
    a.delete([Matcher.equal("__name__", "y")], 0, 10)
    out = compact([b, a], tmp_path)
    assert out is not None
    with Block.open(out) as c:
        got = c.querier(0, 100).select([Matcher(MatchType.REGEX, "__name__", ".+")])
        assert [lbls.name for lbls in got.labels] == ["x", "y", "z"]
        assert got.series(0)[1].tolist() == [0, 10, 20, 30]
        assert got.series(1)[1].tolist() == [20]
        assert c.meta.compaction.level == 2
        assert sorted(c.meta.compaction.sources) == sorted([a.meta.ulid, b.meta.ulid])
        assert (c.meta.min_time_ms, c.meta.max_time_ms) == (0, 31)
    a.close()
    b.close()


def test_compacting_only_deleted_data_writes_nothing(tmp_path: Path) -> None:
    a = Block.open(_block(tmp_path / "in", ["x"], [0, 10], [1, 2]))
    a.delete([Matcher.equal("__name__", "x")], 0, 10)
    assert compact([a], tmp_path / "out") is None
    a.close()
