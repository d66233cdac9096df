"""Blocks: atomic writes, exact reads through the Querier, matchers, damaged files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.model.value import STALE_NAN
from watchkeeper.storage.interface import SelectHints, SeriesSet
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.tsdb import block as block_mod
from watchkeeper.tsdb.block import TMP_SUFFIX, Block, write_block
from watchkeeper.tsdb.chunks import CorruptionError

T0 = 1_700_000_000_000


def make_series(n_series: int = 30, per: int = 500, seed: int = 0) -> SeriesSet:
    rng = np.random.default_rng(seed)
    labels = sorted(
        Labels.from_dict(
            {"__name__": f"metric_{i % 3}", "instance": f"host{i // 3}", "job": "node"}
            | ({"odd": "yes"} if i % 2 else {})
        )
        for i in range(n_series)
    )
    lens = rng.integers(1, per, size=n_series)
    offsets = np.zeros(n_series + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    ts = np.concatenate([T0 + np.sort(rng.choice(7_200_000, n, replace=False)) for n in lens])
    values = np.concatenate(
        [rng.poisson(3, n).cumsum().astype(np.float64) if i % 2 else rng.normal(size=n)
         for i, n in enumerate(lens)]
    )  # fmt: skip
    values[3] = STALE_NAN
    return SeriesSet(labels, offsets, ts.astype(np.int64), values)


def memory_of(series: SeriesSet) -> MemoryStorage:
    storage = MemoryStorage()
    with storage.appender() as app:
        for i in range(len(series)):
            lbls, ts, vals = series.series(i)
            app.append_series([lbls] * len(ts), ts, vals)
    return storage


def assert_same(got: SeriesSet, want: SeriesSet) -> None:
    assert got.labels == want.labels
    assert got.offsets.tolist() == want.offsets.tolist()
    assert np.array_equal(got.timestamps_ms, want.timestamps_ms)
    assert np.array_equal(got.values.view(np.uint64), want.values.view(np.uint64))


@pytest.fixture
def written(tmp_path: Path) -> Iterator[tuple[Block, SeriesSet]]:
    series = make_series()
    path = write_block(tmp_path, series, mint_ms=T0, maxt_ms=T0 + 7_200_000)
    assert path is not None
    block = Block.open(path)
    yield block, series
    block.close()


MATCHER_CASES = [
    [Matcher.equal("__name__", "metric_1")],
    [Matcher(MatchType.REGEX, "instance", "host[12]"), Matcher(MatchType.NOT_EQUAL, "odd", "yes")],
    [Matcher(MatchType.NOT_REGEX, "__name__", "metric_0|metric_2")],
    [Matcher.equal("odd", "")],
    [Matcher(MatchType.REGEX, "odd", "yes|")],
    [Matcher.equal("__name__", "absent")],
]


@pytest.mark.parametrize("matchers", MATCHER_CASES)
@pytest.mark.parametrize("window", [(T0, T0 + 7_200_000), (T0 + 1_000_000, T0 + 2_500_000)])
def test_block_queries_match_the_in_memory_storage(
    written: tuple[Block, SeriesSet], matchers: list[Matcher], window: tuple[int, int]
) -> None:
    block, series = written
    want = memory_of(series).querier(*window).select(matchers)
    with block.querier(*window) as q:
        assert_same(q.select(matchers), want)


def test_block_meta_is_written_in_prometheus_shape(written: tuple[Block, SeriesSet]) -> None:
    block, series = written
    doc = json.loads((block.path / "meta.json").read_text())
    assert doc["ulid"] == block.path.name
    assert doc["stats"]["numSamples"] == series.sample_count
    assert doc["stats"]["numSeries"] == len(series)
    assert doc["compaction"] == {"level": 1, "sources": [block.path.name]}
    assert doc["minTime"] == T0
    assert doc["maxTime"] == T0 + 7_200_000
    assert {p.name for p in block.path.iterdir()} == {"chunks", "index", "meta.json", "tombstones"}


def test_label_names_and_values_come_from_the_index(written: tuple[Block, SeriesSet]) -> None:
    block, _ = written
    with block.querier(T0, T0 + 7_200_000) as q:
        assert q.label_names() == ["__name__", "instance", "job", "odd"]
        assert q.label_values("__name__") == ["metric_0", "metric_1", "metric_2"]
        assert q.label_values("odd", [Matcher.equal("__name__", "metric_0")]) == ["yes"]
        assert q.label_names([Matcher.equal("odd", "")]) == ["__name__", "instance", "job"]


def test_series_hint_returns_labels_without_samples(written: tuple[Block, SeriesSet]) -> None:
    block, series = written
    got = block.querier(T0, T0 + 7_200_000).select(
        [Matcher.equal("job", "node")], hints=SelectHints(T0, T0 + 7_200_000, func="series")
    )
    assert got.labels == series.labels
    assert got.sample_count == 0


def test_writing_no_samples_returns_none_and_leaves_nothing(tmp_path: Path) -> None:
    assert write_block(tmp_path, SeriesSet.empty(), mint_ms=0, maxt_ms=10) is None
    assert list(tmp_path.iterdir()) == []


def test_unsorted_input_is_sorted_and_long_series_span_chunks(tmp_path: Path) -> None:
    n = 10_000
    labels = [Labels.from_strings("__name__", "b"), Labels.from_strings("__name__", "a")]
    ts = np.concatenate([np.arange(n), np.arange(3)]).astype(np.int64)
    vals = np.arange(n + 3, dtype=np.float64)
    path = write_block(
        tmp_path, SeriesSet(labels, np.array([0, n, n + 3]), ts, vals), mint_ms=0, maxt_ms=n
    )
    assert path is not None
    with Block.open(path) as b:
        got = b.querier(0, n).select([Matcher(MatchType.REGEX, "__name__", ".+")])
        assert [str(lbls) for lbls in got.labels] == ["a", "b"]
        assert got.values[:3].tolist() == [n, n + 1, n + 2]
        assert b.meta.stats.num_chunks == 4


def test_a_failed_write_leaves_no_block_and_no_temporary_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(block_mod, "write_index", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_block(tmp_path, make_series(), mint_ms=T0, maxt_ms=T0 + 1)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_chunk_page_is_counted_and_the_rest_is_served(tmp_path: Path) -> None:
    n = 3
    per = 200_000
    labels = [Labels.from_strings("__name__", f"m{i}") for i in range(n)]
    ts = np.tile(np.arange(per, dtype=np.int64), n)
    vals = np.arange(n * per, dtype=np.float64)
    path = write_block(
        tmp_path, SeriesSet(labels, np.arange(n + 1) * per, ts, vals), mint_ms=0, maxt_ms=per
    )
    assert path is not None
    chunks = path / "chunks" / "000001"
    data = bytearray(chunks.read_bytes())
    data[100] ^= 0xFF
    chunks.write_bytes(bytes(data))
    with Block.open(path) as b:
        assert b.verify()
        assert b.num_corrupt_chunks > 0
        got = b.querier(0, per).select([Matcher(MatchType.REGEX, "__name__", ".+")])
        assert got.warnings
        assert "damaged" in got.warnings[0]
        assert got.labels[-1] == labels[-1]
        assert got.series(len(got) - 1)[2][-1] == n * per - 1


def test_a_damaged_index_is_refused_with_a_clear_error(
    written: tuple[Block, SeriesSet], tmp_path: Path
) -> None:
    block, _ = written
    index = block.path / "index"
    data = bytearray(index.read_bytes())
    data[20] ^= 0x55
    index.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="checksum"):
        Block.open(block.path)


def test_a_leftover_temporary_dir_is_not_a_block(tmp_path: Path) -> None:
    (tmp_path / ("01H00000000000000000000000" + TMP_SUFFIX)).mkdir()
    assert block_mod.block_dirs(tmp_path) == []


def test_a_prometheus_block_is_named_as_such(tmp_path: Path) -> None:
    d = tmp_path / "01H00000000000000000000000"
    d.mkdir()
    (d / "meta.json").write_text('{"ulid": "x", "minTime": 0, "maxTime": 1, "version": 1}')
    with pytest.raises(CorruptionError, match="Prometheus block"):
        Block.open(d)


@pytest.mark.parametrize("deleted", [False, True])
@pytest.mark.parametrize("search_alone", [0, 1_000])
def test_any_time_window_reads_exactly_the_samples_inside_it(
    tmp_path: Path, deleted: bool, search_alone: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short windows over long chunks are trimmed per chunk; edges are inclusive."""
    monkeypatch.setattr(block_mod, "PAGE_TARGET_SAMPLES", 6_000)  # many pages
    # Chunks searched one by one, or all bisected together.
    monkeypatch.setattr(block_mod, "_SEARCH_CHUNKS_ALONE", search_alone)
    series = make_series(n_series=12, per=9000, seed=3)  # chunks of up to 4,096 samples
    path = write_block(tmp_path, series, mint_ms=T0, maxt_ms=T0 + 7_200_000)
    assert path is not None
    cut = (T0 + 1_000_000, T0 + 1_500_000)
    memory = MemoryStorage()
    with memory.appender() as app:
        for i in range(len(series)):
            lbls, ts, vals = series.series(i)
            if deleted and lbls.get("odd"):
                alive = (ts < cut[0]) | (ts > cut[1])
                ts, vals = ts[alive], vals[alive]
            app.append_series([lbls] * len(ts), ts, vals)
    everything = [Matcher(MatchType.REGEX, "__name__", ".+")]
    with Block.open(path) as block:
        assert len(block.index.chunk_refs.page_offset) > 5
        if deleted:
            block.delete([Matcher.equal("odd", "yes")], *cut)
        rng = np.random.default_rng(5)
        stamps = series.timestamps_ms
        for _ in range(150):
            a, b = sorted(int(t) for t in rng.choice(stamps, 2))
            a -= int(rng.integers(0, 2))
            b += int(rng.integers(0, 2))
            with block.querier(a, b) as q:
                assert_same(q.select(everything), memory.querier(a, b).select(everything))
