"""Head benchmark: append throughput (head + WAL), RSS per series, select latencies.

Run `python benchmarks/tsdb_head.py [--series N] [--steps N] [--runs N]`. It creates N
series (default 200,000: 400 hosts × 500 metrics, a `shard` label 0..19 spread over every
host), appends `steps` scrapes 15 s apart (default 480 = 2 h) in batches of 1,000 series
through a head backed by a real WAL, and prints: append samples/s (median over slices
of the fill), head RSS per series, and the median latency of selecting one series, one
shard (1/20 of the series, spread across all refs), and every series over the whole head.
Values mix counters, gauges with two decimals and constants; timestamps carry a few ms of
per-scrape jitter as real scrapes do.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.tsdb.head import Head
from watchkeeper.tsdb.wal import WriteAheadLog

STEP_MS = 15_000
BATCH = 1000
METRICS_PER_HOST = 500


def _labels(n: int) -> list[Labels]:
    return [
        Labels.from_dict(
            {
                "__name__": f"metric_{i % METRICS_PER_HOST}",
                "instance": f"host-{i // METRICS_PER_HOST}:9100",
                "job": "node",
                "shard": str(i % 20),
            }
        )
        for i in range(n)
    ]


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _timed(fn: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    """Fills a head and prints the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--series", type=int, default=200_000)
    ap.add_argument("--steps", type=int, default=480)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-all", action="store_true", help="skip the every-series select")
    args = ap.parse_args()
    n, steps = args.series, args.steps
    rng = np.random.default_rng(42)
    labels = _labels(n)
    kind = np.arange(n) % 3  # 0 counter, 1 gauge, 2 constant
    counter = rng.integers(0, 10**6, n).astype(np.float64)
    gauge = np.round(rng.uniform(0, 100, n), 2)
    const = rng.integers(0, 4, n).astype(np.float64)
    t0 = 1_700_000_000_000
    host_off = (np.arange(n) // METRICS_PER_HOST) * 37 % STEP_MS
    with tempfile.TemporaryDirectory() as tmp:
        rss0 = _rss()
        wal = WriteAheadLog(Path(tmp) / "wal", segment_size_bytes=128 << 20)
        head = Head(wal=wal)
        app = head.appender()
        refs = app.refs(labels)
        app.rollback()
        rates: list[float] = []
        slice_steps = max(1, steps // 12)
        total_t = 0.0
        for s in range(steps):
            counter += rng.integers(0, 50, n)
            gauge = np.round(gauge + rng.normal(0, 1, n), 2)
            vals = np.where(kind == 0, counter, np.where(kind == 1, gauge, const))
            jitter = rng.integers(0, 4, n // METRICS_PER_HOST + 1)[np.arange(n) // METRICS_PER_HOST]
            ts = t0 + s * STEP_MS + host_off + jitter
            t_a = time.perf_counter()
            for b in range(0, n, BATCH):
                a = head.appender()
                a.append(refs[b : b + BATCH], ts[b : b + BATCH], vals[b : b + BATCH])
                a.commit()
            total_t += time.perf_counter() - t_a
            if (s + 1) % slice_steps == 0:
                rates.append(slice_steps * n / total_t)
                total_t = 0.0
        t_s = time.perf_counter()
        head._store.settle()  # NB: background merges still running count below, not above
        settle_s = time.perf_counter() - t_s
        rss = _rss() - rss0
        mint, maxt = t0, t0 + steps * STEP_MS + STEP_MS
        one = [
            Matcher(MatchType.EQUAL, "__name__", "metric_7"),
            Matcher(MatchType.EQUAL, "instance", "host-3:9100"),
        ]
        shard = [Matcher(MatchType.EQUAL, "shard", "0")]
        every = [Matcher(MatchType.EQUAL, "job", "node")]
        print(f"series {n}, steps {steps}, samples {n * steps}")
        print(f"append: {statistics.median(rates) / 1e6:.2f} M samples/s (head + WAL)")
        print(f"merges pending after the last commit: {settle_s:.2f} s")
        print(f"RSS per series: {rss / n / 1024:.2f} KiB")
        cases = [("one series", one), ("1/20 of series", shard), ("all series", every)]
        for name, ms in cases[: 2 if args.skip_all else 3]:
            ss = head.select(ms, mint, maxt)
            assert len(ss), name
            assert len(ss.timestamps_ms) == len(ss) * steps, (len(ss), len(ss.timestamps_ms))
            secs = _timed(lambda ms=ms: head.select(ms, mint, maxt), args.runs)
            print(f"select {name} ({len(ss)} series) × whole head: {secs * 1000:.1f} ms")
        head.close()


if __name__ == "__main__":
    main()
