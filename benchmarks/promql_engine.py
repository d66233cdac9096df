"""Benchmark: the PromQL engine alone, without HTTP, over MemoryStorage and over the TSDB.

Two kinds of figures, each the median of several runs:

- per-query latency of small instant queries (a few series): the engine's fixed overhead,
  which dominates recording-rule groups of many small rules. "engine" excludes storage:
  the selector results are loaded once and served from memory, so the figure is parsing,
  evaluation and result assembly only.
- large range queries: 10,000 series x 1,440 steps (one day at 60 s), CPU seconds.

Run: .venv/bin/python benchmarks/promql_engine.py [--quick] [--no-tsdb] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.storage.interface import Querier, Queryable, SelectHints, SeriesSet
from watchkeeper.storage.memory import MemoryStorage

STEP_MS = 60_000
SCRAPE_MS = 60_000

SMALL_QUERIES = [
    "sum by (job) (rate(metric_17[5m]))",
    "metric_17",
    "metric_17 * 2",
    "rate(metric_17[5m])",
    'sum(metric_17{job="j1"})',
    "metric_17 / on (instance, job) metric_18",
]

BIG_QUERIES = [
    "sum by (job) (big)",
    "big * 2",
    "big / on (instance, job) big_b",
    "rate(big[5m])",
]


class _CachedQuerier(Querier):
    """Serves each selector's series from a cache filled on first use (engine-only runs)."""

    def __init__(self, inner: Queryable) -> None:
        self._inner = inner
        self._cache: dict[tuple[tuple[Matcher, ...], int, int], SeriesSet] = {}

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        key = (tuple(matchers), hints.start_ms if hints else 0, hints.end_ms if hints else 0)
        hit = self._cache.get(key)
        if hit is None:
            lo, hi = (hints.start_ms, hints.end_ms) if hints else (0, 1 << 62)
            with self._inner.querier(lo, hi) as q:
                hit = q.select(matchers, hints=hints)
            self._cache[key] = hit
        return hit

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return []

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return []

    def close(self) -> None:
        return None


class _CachedQueryable:
    """A Queryable whose queriers all share one `_CachedQuerier`."""

    def __init__(self, inner: Queryable) -> None:
        self._querier = _CachedQuerier(inner)

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        return self._querier


def _small_data(add: Callable[[Labels, np.ndarray, np.ndarray], None], end_ms: int) -> None:
    ts = np.arange(end_ms - 3_600_000, end_ms + 1, 15_000, dtype=np.int64)
    for m in range(50):
        for j in range(10):
            lb = Labels.from_strings(
                "__name__", f"metric_{m}", "job", f"j{j % 3}", "instance", f"i{j}"
            )
            add(lb, ts, np.cumsum(np.ones(len(ts))) * (j + 1))


def _big_data(
    add: Callable[[Labels, np.ndarray, np.ndarray], None], n_series: int, end_ms: int, steps: int
) -> None:
    rng = np.random.default_rng(0)
    ts = np.arange(end_ms - (steps - 1) * STEP_MS - 600_000, end_ms + 1, SCRAPE_MS, dtype=np.int64)
    for name in ("big", "big_b"):
        for i in range(n_series):
            lb = Labels.from_strings(
                "__name__", name, "job", f"job{i % 10}", "instance", f"host{i}"
            )
            add(lb, ts, np.cumsum(rng.integers(0, 100, len(ts))).astype(np.float64))


def _median_s(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(inner):
            fn()
        runs.append((time.process_time() - t0) / inner)
    return statistics.median(runs)


def bench_small(queryable: Queryable, label: str, end_ms: int, repeats: int) -> None:
    """Prints per-query latency of small instant queries, total and engine-only."""
    total = Engine(queryable, EngineOptions())
    engine_only = Engine(_CachedQueryable(queryable), EngineOptions())
    print(f"\n{label}: small instant queries over 10 series (ms per query, median)")
    print(f"  {'query':48} {'total':>8} {'engine':>8}")
    for q in SMALL_QUERIES:
        a = _median_s(partial(total.instant_query, q, end_ms), repeats, 200)
        b = _median_s(partial(engine_only.instant_query, q, end_ms), repeats, 500)
        print(f"  {q:48} {a * 1e3:8.3f} {b * 1e3:8.3f}")


def bench_big(queryable: Queryable, label: str, end_ms: int, steps: int, repeats: int) -> None:
    """Prints CPU seconds of range queries over many series and steps."""
    engine_only = Engine(_CachedQueryable(queryable), EngineOptions())
    start = end_ms - (steps - 1) * STEP_MS
    print(f"\n{label}: range queries, {steps} steps (CPU s, median, storage excluded)")
    for q in BIG_QUERIES:
        s = _median_s(partial(engine_only.range_query, q, start, end_ms, STEP_MS), repeats)
        print(f"  {q:48} {s:8.3f}")


def main() -> None:
    """Runs the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 series x 1,440 steps")
    parser.add_argument("--no-tsdb", action="store_true", help="MemoryStorage only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n_series = 1_000 if args.quick else 10_000
    steps = 1_440
    end_ms = 1_700_000_000_000 // STEP_MS * STEP_MS

    mem = MemoryStorage()
    _small_data(mem.add_series, end_ms)
    _big_data(mem.add_series, n_series, end_ms, steps)
    bench_small(mem, "MemoryStorage", end_ms, args.repeats)
    bench_big(mem, f"MemoryStorage, {n_series} series", end_ms, steps, max(3, args.repeats // 2))
    del mem

    if args.no_tsdb:
        return
    from watchkeeper.tsdb.db import TSDB

    with tempfile.TemporaryDirectory() as d:
        db = TSDB.open(Path(d) / "db")
        try:
            with db.appender() as app:

                def add(lb: Labels, ts: np.ndarray, vs: np.ndarray) -> None:
                    app.append_series([lb] * len(ts), ts, vs)

                _small_data(add, end_ms)
            bench_small(db, "TSDB head", end_ms, args.repeats)
        finally:
            db.close()


if __name__ == "__main__":
    main()
