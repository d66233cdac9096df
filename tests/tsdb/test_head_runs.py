"""Series-major head runs: exact round trips, partial decodes, merges and chunked reads."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.storage.merge import ragged_arange
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.tsdb import head_runs
from watchkeeper.tsdb.head import Head
from watchkeeper.tsdb.head_runs import (
    RawRun,
    Run,
    expand,
    merge_runs,
    sort_unique,
)
from watchkeeper.tsdb.head_samples import SampleStore

ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)

_samples = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.integers(-(1 << 62), 1 << 62) | st.integers(0, 2000),
        st.integers(0, (1 << 64) - 1) | st.sampled_from([0, 1, 0x7FF8000000000001, 1 << 63]),
    ),
    min_size=1,
    max_size=200,
)


def _columns(
    rows: list[tuple[int, int, int]],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    refs = np.array([r for r, _, _ in rows], dtype=np.uint32)
    ts = np.array([t for _, t, _ in rows], dtype=np.int64)
    vals = np.array([v for _, _, v in rows], dtype=np.uint64).view(np.float64)
    return sort_unique(refs, ts, vals)


@given(_samples)
def test_a_run_decodes_to_exactly_the_samples_and_bits_it_encoded(
    rows: list[tuple[int, int, int]],
) -> None:
    refs, ts, vals = _columns(rows)
    run = Run.encode(refs, ts, vals)
    got_refs, cnt, got_ts, got_vals = run.decode()
    assert np.array_equal(expand(got_refs, cnt), refs)
    assert np.array_equal(got_ts, ts)
    assert np.array_equal(got_vals.view(np.uint64), vals.view(np.uint64))


@given(_samples, st.data())
def test_decoding_some_series_gives_just_their_samples(
    rows: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    refs, ts, vals = _columns(rows)
    run = Run.encode(refs, ts, vals)
    pick = sorted(data.draw(st.sets(st.integers(0, run.num_series - 1))))
    idx = np.array(pick, dtype=np.intp)
    got_refs, cnt, got_ts, got_vals = run.decode(idx)
    want = np.isin(refs, run.refs[idx])
    assert np.array_equal(expand(got_refs, cnt), refs[want])
    assert np.array_equal(got_ts, ts[want])
    assert np.array_equal(got_vals.view(np.uint64), vals[want].view(np.uint64))


def test_merged_runs_keep_the_earliest_written_sample_of_a_timestamp() -> None:
    a = Run.encode(np.array([1, 1], np.uint32), np.array([10, 20], np.int64), np.array([1.0, 2.0]))
    b = Run.encode(np.array([1, 2], np.uint32), np.array([20, 5], np.int64), np.array([9.0, 3.0]))
    refs, cnt, ts, vals = merge_runs([a, b], 1).decode()
    assert refs.tolist() == [1, 2]
    assert cnt.tolist() == [2, 1]
    assert ts.tolist() == [10, 20, 5]
    assert vals.tolist() == [1.0, 2.0, 3.0]


def test_ragged_helpers_match_their_loop_definitions() -> None:
    starts, counts = np.array([4, 0, 9, 2]), np.array([3, 0, 1, 2])
    want = [i for s, c in zip(starts, counts, strict=True) for i in range(s, s + c)]
    assert ragged_arange(starts, counts).tolist() == want
    assert expand(np.array([5, -2, 7]), np.array([2, 1, 3])).tolist() == [5, 5, -2, 7, 7, 7]


def test_regular_scrapes_of_counters_take_few_bytes_per_sample() -> None:
    n_series, steps = 1000, 120
    refs = np.repeat(np.arange(n_series, dtype=np.uint32), steps)
    ts = np.tile(np.arange(steps, dtype=np.int64) * 15_000, n_series) + 1_700_000_000_000
    vals = np.cumsum(np.random.default_rng(1).integers(0, 50, n_series * steps)).astype(float)
    run = Run.encode(refs, ts, vals)
    assert run.nbytes / run.n < 4.5


@pytest.mark.parametrize("chunk", [3, 50])
def test_a_head_read_in_small_chunks_agrees_with_the_reference_store(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(head_runs, "CHUNK_SAMPLES", chunk)
    head = Head(segment_samples=64, out_of_order_time_window_ms=10**6, chunk_range_ms=10**9)
    ref = MemoryStorage(allow_out_of_order=True)
    rng = np.random.default_rng(7)
    series = [Labels.from_dict({"__name__": f"m{i % 3}", "i": str(i)}) for i in range(40)]
    seen: set[tuple[int, int]] = set()
    for step in range(60):
        pick = np.flatnonzero(rng.random(40) < 0.6)
        ts = 1000 + step * 10 + rng.integers(-30, 3, len(pick))
        keep = [
            k for k, (p, t) in enumerate(zip(pick, ts, strict=True)) if (int(p), int(t)) not in seen
        ]
        seen.update((int(pick[k]), int(ts[k])) for k in keep)
        pick, ts = pick[keep], ts[keep]
        vals = rng.normal(0, 100, len(pick)).round(rng.integers(0, 4))
        for store in (head, ref):
            with store.appender() as app:
                app.append(app.refs([series[p] for p in pick]), ts, vals)
    assert head._store.num_pages > 2
    for matchers in (ALL, (Matcher(MatchType.EQUAL, "__name__", "m1"),)):
        for lo, hi in ((0, 10**6), (1200, 1400)):
            got = head.querier(lo, hi).select(matchers)
            want = ref.querier(lo, hi).select(matchers)
            assert got.labels == want.labels
            assert np.array_equal(got.offsets, want.offsets)
            assert np.array_equal(got.timestamps_ms, want.timestamps_ms)
            assert np.array_equal(got.values.view(np.uint64), want.values.view(np.uint64))


def test_runs_merge_level_by_level_until_they_are_dense() -> None:
    store = SampleStore(100, fanout=4, dense_samples=8)
    refs = np.arange(50, dtype=np.uint64)
    for step in range(40):
        store.append(refs, np.full(50, step * 10, np.int64), np.full(50, float(step)))
    store.settle()
    # NB: each run holds 2 samples per series; four make one of 8, which is dense.
    assert [(r.level, r.n) for r in store._runs] == [(1, 400)] * 5
    sel = np.ones(50, dtype=np.bool_)
    refs_out, ts, vals = store.gather(sel, 0, 10**6)
    assert len(ts) == 2000
    assert np.array_equal(np.sort(vals[refs_out == 7]), np.arange(40.0))


def test_a_single_run_is_read_in_label_order_not_ref_order() -> None:
    head = Head()
    series = [Labels.from_dict({"__name__": "m", "i": f"{2999 - i:04d}"}) for i in range(3000)]
    third = 36 + np.arange(3000) % 100  # NB: one byte of delta-of-delta for every series
    for ts in (np.full(3000, 5), np.full(3000, 20), third):
        with head.appender() as app:
            app.append(app.refs(series), ts.astype(np.int64), np.ones(3000))
    head.compact_memory()
    assert head._store.num_pages == 1
    got = head.querier(0, 1000).select(ALL)
    assert got.labels == sorted(series)
    assert got.timestamps_ms[2::3].tolist() == third[::-1].tolist()


def test_raw_runs_and_encoded_runs_merge_into_the_same_samples() -> None:
    rng = np.random.default_rng(3)
    parts = []
    for _ in range(3):
        refs = rng.integers(0, 20, 60).astype(np.uint32)
        ts = rng.integers(0, 50, 60).astype(np.int64)
        parts.append(sort_unique(refs, ts, rng.normal(0, 10, 60)))
    raw = [RawRun.of(*p) for p in parts]
    enc = [Run.encode(*p) for p in parts]
    want = merge_runs(enc, 1).decode()
    mixes: list[list[RawRun | Run]] = [[*raw], [raw[0], enc[1], raw[2]]]
    for runs in mixes:
        got = merge_runs(runs, 1).decode()
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(np.asarray(g).view(np.uint8), np.asarray(w).view(np.uint8))


def test_the_newest_runs_stay_raw_until_they_merge_and_a_freeze_encodes_them() -> None:
    store = SampleStore(100, fanout=4, dense_samples=8)
    refs = np.arange(50, dtype=np.uint64)
    for step in range(6):
        store.append(refs, np.full(50, step * 10, np.int64), np.full(50, float(step)))
    assert [type(r).__name__ for r in store._runs] == ["RawRun"] * 3
    removed = store.remove(lambda r, ts: (r == 7) & (ts == 20))
    assert removed == 1
    store.freeze()
    assert [type(r).__name__ for r in store._runs] == ["Run"]
    refs_out, ts, vals = store.gather(np.ones(50, dtype=np.bool_), 0, 10**6)
    assert len(ts) == 299
    assert np.sort(vals[refs_out == 7]).tolist() == [0.0, 1.0, 3.0, 4.0, 5.0]


def test_a_select_reads_raw_runs_and_the_open_segment_in_label_order() -> None:
    head = Head(segment_samples=64)
    series = [Labels.from_dict({"__name__": "m", "i": f"{99 - i:02d}"}) for i in range(100)]
    for step in range(5):
        with head.appender() as app:
            app.append(app.refs(series), np.full(100, step * 10, np.int64), np.full(100, step))
    assert any(type(r).__name__ == "RawRun" for r in head._store._runs)
    got = head.querier(0, 1000).select(ALL)
    assert got.labels == sorted(series)
    assert got.timestamps_ms.tolist() == [0, 10, 20, 30, 40] * 100
    assert got.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] * 100
    one = head.querier(15, 35).select([Matcher(MatchType.EQUAL, "i", "42")])
    assert one.timestamps_ms.tolist() == [20, 30]


def test_reads_during_background_merges_see_every_sample_once() -> None:
    store = SampleStore(100, fanout=2, dense_samples=10**6)
    refs = np.arange(50, dtype=np.uint64)
    sel = np.ones(50, dtype=np.bool_)
    for step in range(60):
        store.append(refs, np.full(50, step * 10, np.int64), np.full(50, float(step)))
        refs_out, ts, vals = store.gather(sel, 0, 10**6)
        assert len(ts) == 50 * (step + 1)
        assert np.array_equal(np.sort(vals[refs_out == 3]), np.arange(step + 1.0))
    store.settle()
    assert store.num_samples == 3000
    assert not any(isinstance(r, RawRun) for r in store._runs[:-1])


def _assert_same(got: SeriesSet, want: SeriesSet) -> None:
    assert got.labels == want.labels
    assert np.array_equal(got.offsets, want.offsets)
    assert np.array_equal(got.timestamps_ms, want.timestamps_ms)
    assert np.array_equal(got.values.view(np.uint64), want.values.view(np.uint64))


def test_small_selects_of_the_open_segment_agree_with_the_reference_store_across_commits() -> None:
    head = Head(segment_samples=1 << 16, out_of_order_time_window_ms=10**6, chunk_range_ms=10**9)
    ref = MemoryStorage(allow_out_of_order=True)
    rng = np.random.default_rng(11)
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(300)]
    seen: set[tuple[int, int]] = set()
    for step in range(30):
        pick = np.flatnonzero(rng.random(300) < 0.5)
        ts = 1000 + step * 10 + rng.integers(-40, 3, len(pick))
        keep = [
            k for k, (p, t) in enumerate(zip(pick, ts, strict=True)) if (int(p), int(t)) not in seen
        ]
        seen.update((int(pick[k]), int(ts[k])) for k in keep)
        pick, ts = pick[keep], ts[keep]
        vals = rng.normal(0, 100, len(pick))
        for store in (head, ref):
            with store.appender() as app:
                app.append(app.refs([series[p] for p in pick]), ts, vals)
        for matchers in (
            [Matcher(MatchType.EQUAL, "i", str(step))],
            [Matcher(MatchType.REGEX, "i", "1[0-3]|27|299")],
        ):
            for lo, hi in ((0, 10**6), (1050, 1150)):
                _assert_same(
                    head.querier(lo, hi).select(matchers), ref.querier(lo, hi).select(matchers)
                )
    assert head._store.num_pages == 0
    assert head._store._ix_n == head._store._n


def test_a_small_select_after_a_delete_sees_just_the_samples_left() -> None:
    head = Head(segment_samples=1 << 16)
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(100)]
    for step in range(10):
        with head.appender() as app:
            app.append(app.refs(series), np.full(100, step * 10, np.int64), np.full(100, step))
    one = [Matcher(MatchType.EQUAL, "i", "7")]
    assert head.querier(0, 1000).select(one).timestamps_ms.tolist() == list(range(0, 100, 10))
    head.delete(one, 20, 50)
    assert head.querier(0, 1000).select(one).timestamps_ms.tolist() == [0, 10, 60, 70, 80, 90]
    with head.appender() as app:
        app.append(app.refs(series[7:8]), np.array([100], np.int64), np.array([1.5]))
    got = head.querier(0, 1000).select(one)
    assert got.timestamps_ms.tolist() == [0, 10, 60, 70, 80, 90, 100]
    assert got.values.tolist() == [0, 1, 6, 7, 8, 9, 1.5]
