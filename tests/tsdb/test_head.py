"""The head: batch appends, Prometheus's ordering rules, isolation, selects and truncation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType, matches_all
from watchkeeper.model.value import STALE_NAN, STALE_NAN_BITS
from watchkeeper.storage.interface import SeriesSet, StorageError
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.tsdb.head import Head
from watchkeeper.tsdb.metrics import TsdbMetrics
from watchkeeper.tsdb.wal import WriteAheadLog

HOUR = 3_600_000
ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)


def lbl(name: str, **kv: str) -> Labels:
    return Labels.from_dict({"__name__": name, **kv})


def append(head: Head, series: list[Labels], ts: list[int], vals: list[float]) -> None:
    with head.appender() as app:
        app.append(app.refs(series), np.array(ts, dtype=np.int64), np.array(vals, dtype=np.float64))


def as_dict(ss: SeriesSet) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for i in range(len(ss)):
        labels, ts, vals = ss.series(i)
        out[str(labels)] = list(zip(ts.tolist(), vals.tolist(), strict=True))
    return out


def metric(head: Head, name: str) -> float:
    m = head.metrics.registry.get(name)
    assert m is not None
    return sum(s.value for s in m.samples())


def test_appended_samples_are_selected_sorted_by_labels_as_ragged_arrays() -> None:
    head = Head()
    a, b = lbl("up", job="b"), lbl("up", job="a")
    append(head, [a, b, a, b], [10, 10, 20, 20], [1, 2, 3, 4])
    ss = head.querier(0, 100).select(ALL)
    assert ss.labels == [b, a]
    assert ss.offsets.tolist() == [0, 2, 4]
    assert ss.timestamps_ms.tolist() == [10, 20, 10, 20]
    assert ss.values.tolist() == [2, 4, 1, 3]


def test_select_respects_the_inclusive_time_range_and_leaves_out_empty_series() -> None:
    head = Head()
    append(head, [lbl("a"), lbl("b")], [10, 50], [1, 2])
    ss = head.querier(10, 49).select(ALL)
    assert as_dict(ss) == {"a": [(10, 1.0)]}
    assert as_dict(head.querier(50, 50).select(ALL)) == {"b": [(50, 2.0)]}


def test_nothing_is_visible_before_commit_and_rollback_discards() -> None:
    head = Head()
    app = head.appender()
    app.append(app.refs([lbl("x")]), np.array([1], np.int64), np.array([1.0]))
    assert len(head.querier(0, 10).select(ALL)) == 0
    app.rollback()
    assert len(head.querier(0, 10).select(ALL)) == 0

    def fail() -> None:
        with head.appender() as app2:
            app2.append(app2.refs([lbl("x")]), np.array([2], np.int64), np.array([2.0]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert len(head.querier(0, 10).select(ALL)) == 0


def test_out_of_order_and_duplicate_samples_are_rejected_and_counted() -> None:
    head = Head()
    s = lbl("m")
    append(head, [s], [100], [1.0])
    with head.appender() as app:
        ref = app.refs([s])
        res = app.append(
            np.repeat(ref, 4),
            np.array([50, 100, 100, 150], np.int64),
            np.array([9.0, 1.0, 2.0, 3.0]),
        )
    assert res.accepted.tolist() == [False, False, False, True]
    assert (res.out_of_order, res.duplicate) == (1, 1)
    assert as_dict(head.querier(0, 1000).select(ALL)) == {"m": [(100, 1.0), (150, 3.0)]}
    assert metric(head, "prometheus_tsdb_out_of_order_samples_total") == 1
    assert metric(head, "prometheus_tsdb_head_samples_appended_total") == 2


def test_ordering_rules_apply_within_one_batch_as_if_appended_one_by_one() -> None:
    head = Head()
    with head.appender() as app:
        ref = app.refs([lbl("m")])[0]
        refs = np.full(6, ref, dtype=np.uint64)
        res = app.append(
            refs,
            np.array([10, 30, 20, 30, 30, 40], np.int64),
            np.array([1.0, 2.0, 9.0, 2.0, 5.0, 4.0]),
        )
    assert res.accepted.tolist() == [True, True, False, False, False, True]
    assert (res.out_of_order, res.duplicate) == (1, 1)
    assert as_dict(head.querier(0, 100).select(ALL)) == {"m": [(10, 1.0), (30, 2.0), (40, 4.0)]}


def test_later_appends_in_one_transaction_see_earlier_ones() -> None:
    head = Head()
    with head.appender() as app:
        ref = app.refs([lbl("m")])
        assert app.append(ref, np.array([10], np.int64), np.array([1.0])).accepted.all()
        res = app.append(ref, np.array([5], np.int64), np.array([1.0]))
        assert res.out_of_order == 1


def test_out_of_order_samples_inside_the_window_are_accepted() -> None:
    head = Head(out_of_order_time_window_ms=100)
    s = lbl("m")
    append(head, [s], [1000], [1.0])
    with head.appender() as app:
        res = app.append(
            np.repeat(app.refs([s]), 2), np.array([950, 850], np.int64), np.array([2.0, 3.0])
        )
    assert res.accepted.tolist() == [True, False]
    assert res.too_old == 1
    assert as_dict(head.querier(0, 2000).select(ALL)) == {"m": [(950, 2.0), (1000, 1.0)]}
    assert metric(head, "prometheus_tsdb_head_out_of_order_samples_appended_total") == 1
    assert metric(head, "prometheus_tsdb_too_old_samples_total") == 1


def test_samples_far_behind_the_head_are_out_of_bounds() -> None:
    head = Head(chunk_range_ms=2 * HOUR)
    append(head, [lbl("a")], [10 * HOUR], [1.0])
    with head.appender() as app:
        res = app.append(app.refs([lbl("b")]), np.array([8 * HOUR], np.int64), np.array([1.0]))
    assert res.out_of_bounds == 1


def test_staleness_markers_and_nan_payloads_come_back_unchanged() -> None:
    head = Head()
    bits = np.array([STALE_NAN_BITS, 0x7FF8000000000001, 0xFFF0000000000000], dtype=np.uint64)
    append(head, [lbl("m")] * 3, [1, 2, 3], bits.view(np.float64).tolist())
    ss = head.querier(0, 10).select(ALL)
    assert ss.values.view(np.uint64).tolist() == bits.tolist()
    # A stale marker repeated at the same timestamp is a silent duplicate.
    with head.appender() as app:
        app.append(app.refs([lbl("m")]), np.array([4], np.int64), np.array([STALE_NAN]))
    with head.appender() as app:
        res = app.append(app.refs([lbl("m")]), np.array([4], np.int64), np.array([STALE_NAN]))
    assert res.rejected == 0
    assert not res.accepted.any()


def test_unknown_refs_and_empty_label_sets_are_errors() -> None:
    head = Head()
    app = head.appender()
    with pytest.raises(StorageError, match="unknown series ref"):
        app.append(np.array([42], np.uint64), np.array([1], np.int64), np.array([1.0]))
    with pytest.raises(StorageError, match="empty labelset"):
        app.refs([Labels()])


SERIES = [
    lbl("up", job="api", instance="a"),
    lbl("up", job="web", instance="b"),
    lbl("up", instance="c"),
    lbl("http_requests_total", job="api", code="200"),
    lbl("http_requests_total", job="api", code="500"),
]
MATCHERS = st.builds(
    Matcher,
    st.sampled_from(list(MatchType)),
    st.sampled_from(["__name__", "job", "instance", "code", "missing"]),
    st.sampled_from(["", "api", "up", "a|b", ".*", ".+", "a.*", "200", "w.b", "xyz"]),
)


@given(st.lists(MATCHERS, min_size=1, max_size=3))
def test_matchers_select_exactly_as_prometheus_including_empty_values(
    matchers: list[Matcher],
) -> None:
    head = Head()
    append(head, SERIES, [1] * len(SERIES), [1.0] * len(SERIES))
    expected = sorted(s for s in SERIES if matches_all(matchers, s))
    q = head.querier(0, 10)
    assert q.select(matchers).labels == expected
    names = sorted({n for s in expected for n in s.names()})
    assert q.label_names(matchers) == names
    values = sorted({s.get("job") for s in expected} - {""})
    assert q.label_values("job", matchers) == values


def test_label_names_and_values_without_matchers_list_the_whole_head() -> None:
    head = Head()
    append(head, SERIES, [1] * len(SERIES), [1.0] * len(SERIES))
    q = head.querier(0, 10)
    assert q.label_names() == ["__name__", "code", "instance", "job"]
    assert q.label_values("job") == ["api", "web"]
    assert head.querier(100, 200).label_names() == []


@pytest.mark.parametrize("ooo", [False, True])
@settings(max_examples=25)
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 400), st.integers(-3, 3)),
        min_size=1,
        max_size=300,
    ),
    batch=st.integers(1, 40),
)
def test_the_head_agrees_with_the_reference_store_through_page_compression(
    ops: list[tuple[int, int, int]], batch: int, ooo: bool
) -> None:
    head = Head(
        segment_samples=1024,
        chunk_range_ms=10**9,
        out_of_order_time_window_ms=10**9 if ooo else 0,
    )
    head._store._cap = 7  # NB: tiny open segment, so most data lives in compressed pages.
    head._store._refs = head._store._refs[:7]
    head._store._ts = head._store._ts[:7]
    head._store._vals = head._store._vals[:7]
    if ooo:
        # NB: MemoryStorage lets a later duplicate win; Prometheus keeps the first.
        first: dict[tuple[int, int], tuple[int, int, int]] = {}
        for op in ops:
            first.setdefault((op[0], op[1]), op)
        ops = list(first.values())
    ref_store = MemoryStorage(allow_out_of_order=ooo)
    for start in range(0, len(ops), batch):
        chunk = ops[start : start + batch]
        series = [lbl("m", i=str(i)) for i, _, _ in chunk]
        ts = np.array([t for _, t, _ in chunk], np.int64)
        vals = np.array([float(v) for _, _, v in chunk])
        for store in (head, ref_store):
            with store.appender() as app:
                app.append(app.refs(series), ts, vals)
    got = head.querier(0, 1000).select(ALL)
    want = ref_store.querier(0, 1000).select(ALL)
    assert as_dict(got) == as_dict(want)


def _wal_head(path: Path) -> Head:
    wal = WriteAheadLog(path, segment_size_bytes=64 * 1024, fsync_interval_ms=0)
    return Head(wal=wal)


def test_a_head_replayed_from_its_wal_holds_every_committed_sample(tmp_path: Path) -> None:
    head = _wal_head(tmp_path)
    series = [lbl("m", i=str(i)) for i in range(50)]
    for step in range(40):
        append(head, series, [step * 1000] * 50, [float(step)] * 50)
    app = head.appender()
    app.append(app.refs(series), np.full(50, 99_000, np.int64), np.ones(50))
    # Uncommitted: not in the WAL.
    before = as_dict(head.querier(0, 10**6).select(ALL))
    head.close()
    again = Head()
    status = again.replay(tmp_path)
    assert status.corruptions == []
    assert as_dict(again.querier(0, 10**6).select(ALL)) == before
    assert again.num_series == 50


def test_truncation_drops_old_samples_and_idle_series_and_a_checkpoint_keeps_the_rest(
    tmp_path: Path,
) -> None:
    head = _wal_head(tmp_path)
    old, live = lbl("old"), lbl("live")
    append(head, [old, live], [1000, 1000], [1.0, 1.0])
    append(head, [live], [5000], [2.0])
    assert head.truncate(3000) == 1
    assert head.num_series == 1
    assert as_dict(head.querier(0, 10**6).select(ALL)) == {"live": [(5000, 2.0)]}
    head.truncate_wal(3000)
    # Refs handed out before truncation still work: the series comes back.
    with head.appender() as app:
        app.append(np.array([0], np.uint64), np.array([6000], np.int64), np.array([3.0]))
    head.close()
    again = Head()
    again.min_valid_time_ms = 3000
    again.replay(tmp_path)
    assert as_dict(again.querier(0, 10**6).select(ALL)) == {
        "live": [(5000, 2.0)],
        "old": [(6000, 3.0)],
    }


def test_deletions_apply_now_and_after_a_replay(tmp_path: Path) -> None:
    head = _wal_head(tmp_path)
    append(head, [lbl("a"), lbl("b")] * 3, [1, 1, 2, 2, 3, 3], [1, 1, 2, 2, 3, 3])
    assert head.delete([Matcher.equal("__name__", "a")], 2, 3) == 2
    append(head, [lbl("a")], [4], [4.0])
    want = {"a": [(1, 1.0), (4, 4.0)], "b": [(1, 1.0), (2, 2.0), (3, 3.0)]}
    assert as_dict(head.querier(0, 10).select(ALL)) == want
    head.close()
    again = Head()
    again.replay(tmp_path)
    assert as_dict(again.querier(0, 10).select(ALL)) == want


def test_head_metrics_use_prometheus_names() -> None:
    registry = Registry()
    head = Head(metrics=TsdbMetrics(registry))
    append(head, [lbl("a"), lbl("b")], [5, 7], [1, 1])
    text = registry.render().decode()
    assert "prometheus_tsdb_head_series 2" in text
    assert 'prometheus_tsdb_head_samples_appended_total{type="float"} 2' in text
    assert "prometheus_tsdb_head_series_created_total 2" in text
    assert "prometheus_tsdb_head_min_time 5" in text
    assert "prometheus_tsdb_head_max_time 7" in text


def test_stats_report_cardinality_like_the_tsdb_status_api() -> None:
    head = Head()
    append(head, SERIES, [1] * 5, [1.0] * 5)
    api = head.stats().as_api()
    assert api["headStats"]["numSeries"] == 5
    assert api["headStats"]["minTime"] == 1
    assert api["seriesCountByMetricName"][0] == {"name": "up", "value": 3}
    assert {"name": "job", "value": 2} in api["labelValueCountByLabelName"]


def test_readers_on_other_threads_see_whole_commits_only() -> None:
    head = Head()
    series = [lbl("m", i=str(i)) for i in range(100)]
    with head.appender() as app:
        refs = app.refs(series)
    errors: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            ss = head.querier(0, 10**9).select(ALL)
            counts = np.diff(ss.offsets)
            if len(counts) and counts.min() != counts.max():
                errors.append(f"torn commit: {counts.min()} != {counts.max()}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for step in range(300):
        with head.appender() as app:
            app.append(refs, np.full(100, step, np.int64), np.full(100, float(step)))
    done.set()
    for t in readers:
        t.join()
    assert errors == []


def test_interleaved_appenders_are_validated_again_at_commit() -> None:
    head = Head()
    s = lbl("m")
    first, second = head.appender(), head.appender()
    assert first.append(first.refs([s]), np.array([10], np.int64), np.array([1.0])).accepted.all()
    assert second.append(second.refs([s]), np.array([10], np.int64), np.array([2.0])).accepted.all()
    first.commit()
    second.commit()
    assert as_dict(head.querier(0, 100).select(ALL)) == {"m": [(10, 1.0)]}
    assert metric(head, "prometheus_tsdb_head_samples_appended_total") == 1


def test_label_order_batches_cover_every_series_once_in_order() -> None:
    head = Head()
    series = [lbl("m", i=f"{i:04d}") for i in range(3000)][::-1]
    append(head, series, [5] * 3000, [1.0] * 3000)
    append(head, series, [9] * 3000, [2.0] * 3000)
    batches = list(head.iter_label_batches(0, 8, batch_samples=1000))
    assert len(batches) == 3
    labels = [x for b in batches for x in b.labels]
    assert labels == sorted(series)
    assert all(b.timestamps_ms.tolist() == [5] * len(b) for b in batches)


def test_out_of_order_samples_are_replayed_from_the_wal(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_size_bytes=64 * 1024, fsync_interval_ms=0)
    head = Head(wal=wal, out_of_order_time_window_ms=1000)
    append(head, [lbl("m")], [500], [1.0])
    append(head, [lbl("m")], [100], [2.0])
    head.close()
    again = Head(out_of_order_time_window_ms=1000)
    again.replay(tmp_path)
    assert as_dict(again.querier(0, 1000).select(ALL)) == {"m": [(100, 2.0), (500, 1.0)]}


def test_label_order_batches_read_compressed_pages_once_and_match_a_select() -> None:
    head = Head(segment_samples=1024, out_of_order_time_window_ms=10**6)
    rng = np.random.default_rng(5)
    series = [lbl(f"m{i % 7}", i=str(i)) for i in range(2500)]
    for step in range(6):
        ts = np.full(2500, 1000 + step * 10, np.int64)
        ts[rng.random(2500) < 0.1] -= 5  # some out-of-order samples
        append(head, series, ts.tolist(), rng.random(2500).tolist())
    assert head._store.num_pages > 1
    batches = list(head.iter_label_batches(0, 10**6, batch_samples=3000))
    assert len(batches) == 3
    want = head.querier(0, 10**6).select(ALL)
    got_labels = [x for b in batches for x in b.labels]
    assert got_labels == want.labels
    assert np.array_equal(np.concatenate([b.timestamps_ms for b in batches]), want.timestamps_ms)
    assert np.array_equal(
        np.concatenate([b.values for b in batches]).view(np.uint64), want.values.view(np.uint64)
    )


def test_deletion_and_truncation_reach_into_compressed_pages() -> None:
    head = Head(segment_samples=1024)
    series = [lbl("m", i=str(i)) for i in range(100)]
    for step in range(30):
        append(head, series, [step * 10] * 100, [float(step)] * 100)
    assert head._store.num_pages > 1
    head.delete([Matcher.equal("i", "7")], 50, 120)
    head.truncate(40)
    ss = head.querier(0, 1000).select([Matcher(MatchType.REGEX, "i", "7|8")])
    assert as_dict(ss) == {
        'm{i="7"}': [(t, t / 10) for t in [40, *range(130, 300, 10)]],
        'm{i="8"}': [(t, t / 10) for t in range(40, 300, 10)],
    }
    assert head.min_time_ms == 40
