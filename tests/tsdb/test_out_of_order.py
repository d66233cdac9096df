"""Out-of-order samples as Prometheus 3.5 keeps them with `out_of_order_time_window` set:
accepted back to (head max time - window) even behind persisted blocks, written later as
blocks that overlap, merged by vertical compaction, and preferred over the in-order sample
of the same timestamp."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port
from watchkeeper.testing.remote import post_remote_write
from watchkeeper.testing.web import ApiServerThread, encode_write_request, make_api_deps
from watchkeeper.tsdb.block import BlockWriter
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.head import Head
from watchkeeper.tsdb.options import TsdbOptions
from watchkeeper.tsdb.wal import (
    OutOfOrderFlushedRecord,
    SamplesRecord,
    WriteAheadLog,
    decode,
    encode,
)
from watchkeeper.web.app import WebOptions

MIN = 60_000
HOUR = 60 * MIN
RANGE = 30 * MIN
"""A 30 min block range: with a 1 h window, samples can land behind the newest block."""
A, B = Labels.from_dict({"__name__": "a"}), Labels.from_dict({"__name__": "b"})


def open_db(path: Path, registry: Registry | None = None) -> TSDB:
    opts = TsdbOptions(
        min_block_duration_ms=RANGE,
        out_of_order_time_window_ms=HOUR,
        wal_segment_size_bytes=256 * 1024,
    )
    return TSDB.open(path, opts, registry=registry or Registry())


def append(db: TSDB | Head, series: Labels, ts: list[int], vals: list[float]) -> Any:
    with db.appender() as app:
        refs = np.repeat(app.refs([series]), len(ts))
        return app.append(refs, np.array(ts, np.int64), np.array(vals))


def fill_minutes(db: TSDB, start_min: int, end_min: int) -> None:
    """One sample per minute in [start_min, end_min] for a and b, value = the minute."""
    for m in range(start_min, end_min + 1):
        with db.appender() as app:
            app.append(app.refs([A, B]), np.full(2, m * MIN, np.int64), np.full(2, float(m)))


def samples(ss: SeriesSet) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for i, lbls in enumerate(ss.labels):
        lo, hi = int(ss.offsets[i]), int(ss.offsets[i + 1])
        out[str(lbls)] = list(
            zip(ss.timestamps_ms[lo:hi].tolist(), ss.values[lo:hi].tolist(), strict=True)
        )
    return out


def query(db: TSDB, mint: int = 0, maxt: int = 10 * HOUR) -> dict[str, list[tuple[int, float]]]:
    with db.querier(mint, maxt) as q:
        return samples(q.select([Matcher(MatchType.REGEX, "__name__", ".+")]))


def metric(registry: Registry, name: str) -> float:
    m = registry.get(name)
    assert m is not None, name
    return sum(s.value for s in m.samples())


def expected_after_ooo() -> dict[str, list[tuple[int, float]]]:
    """In-order 0..120 min, then the out-of-order writes of `write_ooo`."""
    a = {m * MIN: float(m) for m in range(121)}
    a.update({70 * MIN + 30_000: 1000.0, 75 * MIN: 2000.0, 100 * MIN: 3000.0})
    b = {m * MIN: float(m) for m in range(121)}
    b[80 * MIN + 20_000] = 4000.0
    return {str(A): sorted(a.items()), str(B): sorted(b.items())}


def write_ooo(db: TSDB) -> None:
    """Out-of-order writes within the 1 h window, behind the block that ends at 90 min."""
    assert append(db, A, [70 * MIN + 30_000, 75 * MIN], [1000.0, 2000.0]).accepted.all()
    assert append(db, A, [100 * MIN], [3000.0]).accepted.all()
    assert append(db, B, [80 * MIN + 20_000], [4000.0]).accepted.all()
    # A second out-of-order write of a timestamp is dropped: the first one stays.
    assert append(db, B, [80 * MIN + 20_000], [4001.0]).accepted.all()


@pytest.fixture
def db_with_block(tmp_path: Path) -> Iterator[tuple[TSDB, Registry]]:
    registry = Registry()
    db = open_db(tmp_path, registry)
    fill_minutes(db, 0, 120)
    db.maintenance()
    assert [(m.min_time_ms, m.max_time_ms) for m in db.blocks()] == [
        (0, 30 * MIN),
        (30 * MIN, 60 * MIN),
        (60 * MIN, 90 * MIN),
    ]
    yield db, registry
    db.close()


def test_samples_behind_a_block_within_the_window_are_queryable_at_once(
    db_with_block: tuple[TSDB, Registry],
) -> None:
    db, registry = db_with_block
    write_ooo(db)
    assert query(db) == expected_after_ooo()
    assert metric(registry, "prometheus_tsdb_head_out_of_order_samples_appended_total") == 5
    assert metric(registry, "prometheus_tsdb_out_of_order_samples_total") == 0


def test_samples_older_than_the_window_are_rejected_and_counted(
    db_with_block: tuple[TSDB, Registry],
) -> None:
    db, registry = db_with_block
    res = append(db, A, [60 * MIN - 1], [9.0])
    assert (res.too_old, int(res.accepted.sum())) == (1, 0)
    assert metric(registry, "prometheus_tsdb_too_old_samples_total") == 1
    assert metric(registry, "prometheus_tsdb_head_out_of_order_samples_appended_total") == 0
    assert query(db)[str(A)][59:61] == [(59 * MIN, 59.0), (60 * MIN, 60.0)]


def test_out_of_order_samples_survive_a_restart(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    fill_minutes(db, 0, 120)
    db.maintenance()
    write_ooo(db)
    db.close()
    db = open_db(tmp_path)
    assert query(db) == expected_after_ooo()
    db.close()


def test_out_of_order_blocks_overlap_and_are_merged_into_one(tmp_path: Path) -> None:
    registry = Registry()
    db = open_db(tmp_path, registry)
    fill_minutes(db, 0, 120)
    db.maintenance()
    write_ooo(db)
    fill_minutes(db, 121, 160)
    # In the head's range after the next cut: stays in the head, through a WAL checkpoint.
    assert append(db, A, [140 * MIN], [5000.0]).accepted.all()
    report = db.maintenance()
    want = expected_after_ooo()
    for name in want:
        want[name] += [(m * MIN, float(m)) for m in range(121, 161)]
    want[str(A)] = sorted({**dict(want[str(A)]), 140 * MIN: 5000.0}.items())
    # The head cut [90, 120); then the out-of-order samples behind it became blocks of
    # their own ([60, 90) and [90, 120)), overlapping in-order ones; compaction merged
    # each overlapping pair (and went on to bigger ranges).
    made = {p.name for p in report.head_blocks}
    assert len(made) == 3
    metas = db.blocks()
    assert made <= {src for m in metas for src in m.compaction.sources}
    assert metric(registry, "prometheus_tsdb_vertical_compactions_total") == 2
    assert all(b.min_time_ms >= a.max_time_ms for a, b in itertools.pairwise(metas))
    # Every sample once: minutes 0..119 of a and b, plus the two new timestamps.
    assert sum(m.stats.num_samples for m in metas) == 2 * 120 + 2
    assert db.head.num_ooo_samples == 1
    assert query(db) == want
    db.close()
    db = open_db(tmp_path)
    assert db.head.num_ooo_samples == 1
    assert query(db) == want
    fill_minutes(db, 161, 200)
    db.maintenance()
    assert sum(m.stats.num_samples for m in db.blocks()) == 2 * 180 + 2
    assert db.head.num_ooo_samples == 0
    assert query(db) == {
        n: [*s, *((m * MIN, float(m)) for m in range(161, 201))] for n, s in want.items()
    }
    db.close()


def test_queries_prefer_the_newer_of_overlapping_blocks(tmp_path: Path) -> None:
    for values in ([1.0, 2.0, 3.0], [10.0, 20.0]):
        ts = [0, MIN, 2 * MIN][: len(values)]
        batch = SeriesSet([A], np.array([0, len(ts)]), np.array(ts, np.int64), np.array(values))
        with BlockWriter(tmp_path, mint_ms=0, maxt_ms=RANGE) as writer:
            writer.add(batch)
            writer.commit()
    db = open_db(tmp_path)
    assert query(db) == {str(A): [(0, 10.0), (MIN, 20.0), (2 * MIN, 3.0)]}
    db.close()


def test_an_out_of_order_duplicate_of_an_in_order_sample_wins_in_the_head() -> None:
    head = Head(out_of_order_time_window_ms=HOUR)
    append(head, A, [0, MIN, 2 * MIN], [0.0, 1.0, 2.0])
    assert append(head, A, [MIN, MIN], [7.0, 8.0]).accepted.all()
    got = samples(head.querier(0, HOUR).select([Matcher.equal("__name__", "a")]))
    assert got == {str(A): [(0, 0.0), (MIN, 7.0), (2 * MIN, 2.0)]}


def test_a_failed_flush_gives_the_samples_back_and_a_done_one_is_logged(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_size_bytes=64 * 1024, fsync_interval_ms=0)
    head = Head(wal=wal, out_of_order_time_window_ms=HOUR)
    append(head, A, [HOUR], [1.0])
    append(head, A, [10 * MIN], [2.0])
    cols = head.begin_ooo_flush(HOUR)
    assert cols is not None
    assert cols[1].tolist() == [10 * MIN]
    append(head, A, [20 * MIN], [3.0])
    head.finish_ooo_flush(written=False)
    assert head.num_ooo_samples == 2
    assert head.begin_ooo_flush(HOUR) is not None
    append(head, A, [30 * MIN], [4.0])
    head.finish_ooo_flush(written=True)
    assert head.num_ooo_samples == 1
    head.close()
    again = Head(out_of_order_time_window_ms=HOUR)
    again.replay(tmp_path)
    got = samples(again.querier(0, 2 * HOUR).select([Matcher.equal("__name__", "a")]))
    assert got == {str(A): [(30 * MIN, 4.0), (HOUR, 1.0)]}


def test_out_of_order_wal_records_round_trip() -> None:
    rec = SamplesRecord(
        np.array([3, 1], np.uint64), np.array([5, 4], np.int64), np.array([1.5, 2.5]), True
    )
    for record in (rec, OutOfOrderFlushedRecord()):
        rtype, payload = encode(record, compress=True)
        assert decode(rtype, payload) == record
    assert decode(*encode(SamplesRecord(rec.refs, rec.timestamps_ms, rec.values))) != rec


# The same writes into the real Prometheus 3.5 and into ours, over remote write.

PROMETHEUS = peer_binary("prometheus")


def _post(url: str, series: list[tuple[Labels, list[int], list[float]]]) -> int:
    return post_remote_write(url + "/api/v1/write", encode_write_request(series), timeout_s=10)


def _prometheus_samples(url: str, name: str, at_ms: int) -> list[tuple[int, float]]:
    params = urllib.parse.urlencode({"query": f"{name}[3h]", "time": at_ms / 1000})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as resp:
        result = json.loads(resp.read())["data"]["result"]
    return [(round(float(t) * 1000), float(v)) for t, v in result[0]["values"]]


@pytest.mark.integration
@pytest.mark.peers
def _prometheus_metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.integration
@pytest.mark.peers
def test_out_of_order_writes_read_back_as_prometheus_reads_them(tmp_path: Path) -> None:
    if PROMETHEUS is None:
        pytest.skip("the prometheus peer binary is not installed (../shared/peers/fetch-peers.sh)")
    # NB: an hour back, so the later in-order writes are not in the future either.
    end = int(time.time()) // 60 * 60_000 - HOUR

    def minutes(lo: int, hi: int) -> list[tuple[Labels, list[int], list[float]]]:
        ts = [end + m * MIN for m in range(lo, hi + 1)]
        return [(s, ts, [float(m) for m in range(lo, hi + 1)]) for s in (A, B)]

    writes: list[list[tuple[Labels, list[int], list[float]]]] = [
        # Behind the newest block (it ends 45 to 15 min before `end`) and in the head's
        # range: new timestamps and duplicates of in-order ones.
        [
            (
                A,
                [end - 50 * MIN, end - 50 * MIN + 30_000, end - 10 * MIN, end - 10 * MIN + 30_000],
                [1000.0, 1001.0, 1002.0, 1003.0],
            )
        ],
        [(B, [end - 40 * MIN + 20_000], [2000.0])],
        [(B, [end - 40 * MIN + 20_000], [2001.0])],
        # Older than the 1 h window: refused.
        [(A, [end - 70 * MIN], [1004.0])],
    ]
    d = tmp_path / "prometheus"
    d.mkdir()
    (d / "prometheus.yml").write_text("storage:\n  tsdb:\n    out_of_order_time_window: 1h\n")
    port = free_port()
    proc = ServerProcess(
        [
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.min-block-duration=30m",
        ],
        d,
        command=[str(PROMETHEUS)],
    )
    registry = Registry()
    db = open_db(tmp_path / "ours", registry)
    with (
        proc,
        ApiServerThread(
            make_api_deps(remote_write_sink=db), WebOptions(enable_remote_write_receiver=True)
        ) as ours,
    ):
        prom = f"http://127.0.0.1:{port}"
        proc.wait_ready(prom + "/-/ready")

        # Where an out-of-order write repeats an in-order timestamp, Prometheus keeps one
        # of the two as its iterators happen to meet them (usually the out-of-order one;
        # after its own compactions sometimes the other): either is Prometheus's answer.
        written_twice = {end - 50 * MIN: (-50.0, 1000.0), end - 10 * MIN: (-10.0, 1002.0)}

        def compare(at_ms: int) -> dict[str, list[tuple[int, float]]]:
            got = query(db, at_ms - 3 * HOUR + 1, at_ms)
            for name, lbls in (("a", A), ("b", B)):
                theirs = _prometheus_samples(prom, name, at_ms)
                mine = got[str(lbls)]
                if name == "a":
                    for t, v in theirs:
                        if t in written_twice:
                            assert v in written_twice[t], (t, v)
                    assert [(t, v) for t, v in mine if t in written_twice] == [
                        (t, vals[1]) for t, vals in sorted(written_twice.items())
                    ]
                    theirs = [(t, v) for t, v in theirs if t not in written_twice]
                    mine = [(t, v) for t, v in mine if t not in written_twice]
                assert mine == theirs, name
            return got

        assert _post(prom, minutes(-120, 0)) == _post(ours.url, minutes(-120, 0)) == 204
        db.maintenance()
        _wait_for(
            lambda: _prometheus_metric(prom, "prometheus_tsdb_compactions_total") > 0,
            "Prometheus did not compact its head",
        )
        for w in writes:
            assert _post(prom, w) == _post(ours.url, w)
        got = compare(end)
        assert (end - 50 * MIN, 1000.0) in got[str(A)]
        # More in-order data: a head compaction, then the out-of-order samples become
        # blocks that overlap, then vertical compaction merges them.
        assert _post(prom, minutes(1, 40)) == _post(ours.url, minutes(1, 40)) == 204
        db.maintenance()
        _wait_for(
            lambda: _prometheus_metric(prom, "prometheus_tsdb_vertical_compactions_total") > 0,
            "Prometheus did not compact overlapping blocks",
        )
        assert metric(registry, "prometheus_tsdb_vertical_compactions_total") > 0
        compare(end + 40 * MIN)
    db.close()
