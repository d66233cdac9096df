"""Absurd queries: tiny-step subqueries, huge ranges, limits and the timeout.

A subquery with a 1 ms step has millions of inner steps; it must cost time in proportion to
its samples (no per-step Python loop), answer what Prometheus answers, refuse with
Prometheus's errors where it refuses, and stop at --query.timeout.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import PromQLError, QueryTimeoutError, TooManySamplesError
from watchkeeper.promql.kernels import sum_over_time
from watchkeeper.promql.value import Matrix, Vector
from watchkeeper.remote import codec
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.remote import post_remote_write
from watchkeeper.testing.storage import MemoryStorage

T = 1_767_225_600_000
"""2026-01-01T00:00:00Z: every instant query runs here."""
SCRAPE_MS = 15_000
HOUR = 3_600_000
SERIES_TIMES = np.arange(T - 7 * HOUR, T + 1, SCRAPE_MS, dtype=np.int64)
SERIES_VALUES = (np.arange(len(SERIES_TIMES)) % 97).astype(np.float64)
"""`x{job="a"}`: a sawtooth scraped every 15 s for the 7 hours before T."""


def _engine(**options: Any) -> Engine:
    db = MemoryStorage()
    with db.appender() as app:
        labels = Labels.from_strings("__name__", "x", "job", "a")
        app.append_series([labels] * len(SERIES_TIMES), SERIES_TIMES, SERIES_VALUES)
    return Engine(db, EngineOptions(**options))


def _scalar_result(engine: Engine, query: str) -> float:
    value = engine.instant_query(query, T).value
    assert isinstance(value, Vector)
    assert len(value.labels) == 1
    return float(value.values[0])


def _inner_steps(range_ms: int, step_ms: int) -> np.ndarray:
    """A subquery's inner steps ending at T: multiples of the step in (T - range, T]."""
    first = (T - range_ms) // step_ms * step_ms + step_ms
    return np.arange(first, T + 1, step_ms, dtype=np.int64)


def _series_at(steps: np.ndarray) -> np.ndarray:
    """What `x` evaluates to at each step (the newest sample, 5 m lookback)."""
    idx = np.searchsorted(SERIES_TIMES, steps, side="right") - 1
    return SERIES_VALUES[idx]


def test_tiny_step_subquery_costs_time_in_proportion_to_its_samples() -> None:
    engine = _engine()
    began = time.perf_counter()
    assert _scalar_result(engine, "sum_over_time(vector(1)[5m:1ms])") == 300_000
    # NB: bounds with room for a busy CI machine; the position-by-position folds took
    # 2.3 s and over 20 s.
    assert time.perf_counter() - began < 2.0
    began = time.perf_counter()
    assert _scalar_result(engine, "sum_over_time(vector(1)[1h:1ms])") == 3_600_000
    assert time.perf_counter() - began < 6.0


@pytest.mark.parametrize(
    ("func", "reduce"),
    [
        ("sum_over_time", math.fsum),
        ("avg_over_time", lambda v: math.fsum(v) / len(v)),
        ("max_over_time", max),
        ("min_over_time", min),
        ("count_over_time", len),
    ],
)
def test_tiny_step_subqueries_equal_brute_force(func: str, reduce: Any) -> None:
    engine = _engine()
    steps = _inner_steps(10 * 60_000, 1)
    times = (steps / 1000).tolist()
    got = _scalar_result(engine, f"{func}(vector(time())[10m:1ms])")
    assert got == pytest.approx(reduce(times), rel=1e-14)
    got = _scalar_result(engine, f"{func}(x[1h:1ms])")
    assert got == pytest.approx(reduce(_series_at(_inner_steps(HOUR, 1)).tolist()), rel=1e-14)


@pytest.mark.parametrize(
    ("query", "want", "rel"),
    [
        ("stddev_over_time(vector(time())[5m:1ms])", np.std, 1e-9),
        ("stdvar_over_time(vector(time())[5m:1ms])", np.var, 1e-9),
        # NB: Prometheus's sums of x*y (about 1e17 here) cancel to the slope with ~1e-8 error;
        # test_absurd_query_matches_prometheus checks that we share that error.
        ("deriv(vector(time())[5m:1ms])", lambda times: 1.0, 1e-7),
    ],
)
def test_long_single_window_welford_and_regression_run_in_well_under_the_fold_time(
    query: str, want: Any, rel: float
) -> None:
    """One window of 300,000 samples: a scalar loop over the window, no numpy call per sample."""
    engine = _engine()
    began = time.perf_counter()
    got = _scalar_result(engine, query)
    assert time.perf_counter() - began < 2.0  # the column fold took 4.9-9.9 s
    times = _inner_steps(5 * 60_000, 1) / 1000
    assert got == pytest.approx(float(want(times)), rel=rel)


def test_nested_tiny_step_subqueries_equal_brute_force() -> None:
    engine = _engine()
    query = "sum_over_time(sum_over_time(vector(1)[1m:10ms])[1h:10ms])"
    assert _scalar_result(engine, query) == 6_000 * 360_000


def test_long_window_sums_match_an_exact_sum_across_prefix_blocks() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(100, 30, 50_000)
    ts = np.arange(len(values), dtype=np.int64)
    lo = np.array([[0, 3, 4_095, 17]], dtype=np.int64)
    hi = np.array([[50_000, 4_097, 45_000, 8_210]], dtype=np.int64)
    out, present = sum_over_time(ts, values, lo, hi, ts[:4], 1)
    assert present.all()
    for j in range(4):
        exact = math.fsum(values[lo[0, j] : hi[0, j]].tolist())
        assert out[0, j] == pytest.approx(exact, rel=4e-16, abs=0)


def test_huge_range_selects_every_sample() -> None:
    engine = _engine()
    assert _scalar_result(engine, "count_over_time(x[100y])") == len(SERIES_TIMES)
    value = engine.instant_query("x[100y]", T).value
    assert isinstance(value, Matrix)
    assert value.timestamps_ms.tolist() == SERIES_TIMES.tolist()
    assert _scalar_result(engine, "sum_over_time(vector(1)[100y:1d])") == 36_500


def test_subquery_steps_count_against_max_samples() -> None:
    engine = _engine()
    with pytest.raises(TooManySamplesError) as err:
        engine.instant_query("sum_over_time(vector(1)[14h:1ms])", T)
    assert str(err.value) == (
        "query processing would load too many samples into memory in query execution"
    )
    with pytest.raises(TooManySamplesError):
        engine.instant_query("sum_over_time(vector(1)[100y:1m])", T)
    small = _engine(max_samples=1_000)
    assert _scalar_result(small, "count_over_time(vector(1)[1s:1ms])") == 1_000
    with pytest.raises(TooManySamplesError):
        small.instant_query("count_over_time(vector(1)[2s:1ms])", T)


@pytest.mark.parametrize(
    "query",
    [
        # One window of 3.6 million samples: the scalar loop over a window.
        "stddev_over_time(vector(time())[1h:1ms])",
        # 600 windows of 60,000 samples: the column fold.
        "stddev_over_time(stddev_over_time(vector(time())[1m:1ms])[10m:1s])",
    ],
)
def test_timeout_stops_a_long_fold_with_prometheus_error(query: str) -> None:
    engine = _engine(timeout_s=0.3)
    began = time.perf_counter()
    with pytest.raises(QueryTimeoutError) as err:
        engine.instant_query(query, T)
    assert str(err.value) == "query timed out in query execution"
    assert time.perf_counter() - began < 3.0


# ---------------------------------------------------------------------------------------------
# The same queries through the real Prometheus 3.5.

PEER_QUERIES = [
    "sum_over_time(vector(1)[5m:1ms])",
    "avg_over_time(vector(time())[1h:1ms])",
    "max_over_time(x[6h:1ms])",
    "count_over_time(x[1h:1ms])",
    "sum_over_time(x[5m:1ms])",
    "rate(x[1h:1ms])",
    "stddev_over_time(x[1m:1ms])",
    "stddev_over_time(vector(time())[5m:1ms])",
    "stdvar_over_time(x[1h:1ms])",
    "deriv(vector(time())[5m:1ms])",
    "predict_linear(vector(time())[5m:1ms], 60)",
    "max_over_time(sum_over_time(vector(1)[1m:1ms])[5m:1s])",
    "count_over_time(x[100y])",
    "sum_over_time(vector(1)[100y:1d])",
    "sum_over_time(vector(1)[14h:1ms])",
    "sum_over_time(vector(1)[100y:1m])",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _remote_write(url: str) -> None:
    labels = Labels.from_strings("__name__", "x", "job", "a")
    for a in range(0, len(SERIES_TIMES), 200):
        payload = codec.encode_write_request(
            codec.WriteBatch.from_series(
                [(labels, SERIES_TIMES[a : a + 200].tolist(), SERIES_VALUES[a : a + 200].tolist())]
            )
        )
        assert post_remote_write(url, payload) in (200, 204)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (see ../shared/peers/fetch-peers.sh)")
    root: Path = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    base = f"http://127.0.0.1:{_free_port()}"
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={base.removeprefix('http://')}",
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=100y",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        _remote_write(f"{base}/api/v1/write")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ask_prometheus(base: str, query: str) -> tuple[str, Any]:
    params = urllib.parse.urlencode({"query": query, "time": str(T / 1000)})
    try:
        with urllib.request.urlopen(f"{base}/api/v1/query?{params}", timeout=120) as resp:
            body: dict[str, Any] = json.load(resp)
    except urllib.error.HTTPError as err:
        body = json.load(err)
    if body["status"] != "success":
        return "error", body["error"]
    return "ok", [float(r["value"][1]) for r in body["data"]["result"]]


@pytest.mark.integration
@pytest.mark.peers
@pytest.mark.parametrize("query", PEER_QUERIES)
def test_absurd_query_matches_prometheus(prometheus: str, query: str) -> None:
    want_kind, want = _ask_prometheus(prometheus, query)
    if want_kind == "error":
        with pytest.raises(PromQLError) as err:
            _engine().instant_query(query, T)
        assert str(err.value) == want
        return
    value = _engine().instant_query(query, T).value
    assert isinstance(value, Vector)
    assert value.values.tolist() == pytest.approx(want, rel=1e-12)
