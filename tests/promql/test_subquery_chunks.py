"""Subqueries evaluated in chunks of inner steps give what one evaluation over all steps gives.

A long subquery's inner expression is evaluated a few steps at a time so that its dense
(series x steps) form stays small; the chunks' points are merged by label set. Forcing tiny
chunks must change nothing a user sees: values (bit for bit), annotations and sample counts.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql import eval_node
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import PromQLError, QueryTimeoutError
from watchkeeper.promql.value import Matrix, QueryResult, Scalar, Vector
from watchkeeper.testing.storage import MemoryStorage

SPAN_MS = 600_000
"""Samples lie in [0, SPAN_MS); range queries cover it too."""

EXPRESSIONS = [
    "sum_over_time(m[2m:7s])",
    "max_over_time(rate(m[1m])[5m:10s])",
    "rate(m[2m:5s])",
    # abs: count_values merges 0 and -0 as one value over all the steps it is given.
    'count_over_time(count_values("v", abs(m))[3m:5s])',
    "last_over_time(sum(m)[4m:3s])",
    "avg_over_time(m[2m:7s] offset 30s)",
    "min_over_time(m[2m:7s] @ end())",
    "sum_over_time((m @ start())[2m:7s])",
    "max_over_time(sum_over_time(m[1m:5s])[3m:20s])",
    'count_over_time(absent(m{i="9"})[2m:5s])',
    "quantile_over_time(0.5, m[2m:5s])",
    "count_over_time(timestamp(m)[3m:5s])",
    "changes(m[3m:1s])",
    "deriv((m * 2)[3m:4s])",
    "count(count_over_time(vector(time())[1m:1s]))",
]

samples = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, SPAN_MS - 1),
        st.sampled_from([0.0, 1.0, 2.5, -0.0, float("nan"), STALE_NAN, 1e300, -7.0]),
    ),
    min_size=5,
    max_size=80,
)


def _storage(points: list[tuple[int, int, float]]) -> MemoryStorage:
    db = MemoryStorage()
    by_series: dict[int, dict[int, float]] = {}
    for series, ts, value in points:
        by_series.setdefault(series, {})[ts] = value
    with db.appender() as app:
        for series, pts in sorted(by_series.items()):
            times = sorted(pts)
            lb = Labels.from_strings("__name__", "m", "i", str(series))
            app.append_series([lb] * len(times), times, [pts[t] for t in times])
    return db


def _bits(values: np.ndarray) -> list[int]:
    bits: list[int] = np.asarray(values, dtype=np.float64).view(np.uint64).tolist()
    return bits


def _canonical(result: QueryResult) -> object:
    """What a user sees, series sorted by labels (chunks list series by first appearance)."""
    value = result.value
    if isinstance(value, Vector):
        rows = sorted(zip(value.labels, _bits(value.values), strict=True), key=lambda r: r[0].pairs)
        out: object = [(lb.pairs, v) for lb, v in rows]
    elif isinstance(value, Matrix):
        out = sorted(
            (lb.pairs, ts.tolist(), _bits(vs))
            for lb, ts, vs in (value.series(i) for i in range(len(value)))
        )
    elif isinstance(value, Scalar):
        out = _bits(np.array([value.value]))
    else:
        out = value
    stats = result.stats
    return (
        out,
        sorted(result.warnings),
        sorted(result.infos),
        stats.peak_samples,
        stats.total_queryable_samples,
    )


def _run(engine: Engine, expr: str, *, instant: bool) -> object:
    try:
        if instant:
            return _canonical(engine.instant_query(expr, SPAN_MS - 1000))
        return _canonical(engine.range_query(expr, 0, SPAN_MS, 45_000))
    except PromQLError as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=samples,
    expr=st.sampled_from(EXPRESSIONS),
    instant=st.booleans(),
    first_steps=st.integers(1, 6),
    max_cells=st.integers(1, 40),
)
def test_chunked_subqueries_equal_one_evaluation_bit_for_bit(
    points: list[tuple[int, int, float]],
    expr: str,
    instant: bool,
    first_steps: int,
    max_cells: int,
) -> None:
    engine = Engine(_storage(points), EngineOptions(timeout_s=30))
    whole = _run(engine, expr, instant=instant)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eval_node, "FIRST_CHUNK_STEPS", first_steps)
        mp.setattr(eval_node, "MAX_CHUNK_CELLS", max_cells)
        chunked = _run(engine, expr, instant=instant)
    assert chunked == whole


def test_chunks_keep_the_sample_limit() -> None:
    db = _storage([(s, t, float(t % 7)) for s in range(4) for t in range(0, SPAN_MS, 5000)])
    expr = "sum_over_time(m[5m:1s])"
    limit = Engine(db).instant_query(expr, SPAN_MS).stats.peak_samples
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eval_node, "FIRST_CHUNK_STEPS", 7)
        mp.setattr(eval_node, "MAX_CHUNK_CELLS", 30)
        assert Engine(db, EngineOptions(max_samples=limit)).instant_query(expr, SPAN_MS).value
        with pytest.raises(PromQLError, match="too many samples"):
            Engine(db, EngineOptions(max_samples=limit - 1)).instant_query(expr, SPAN_MS)


def test_timeout_stops_a_chunked_subquery_between_chunks() -> None:
    engine = Engine(MemoryStorage(), EngineOptions(timeout_s=0.3))
    began = time.perf_counter()
    with pytest.raises(QueryTimeoutError):
        engine.instant_query(
            'count(count_over_time(count_values("v", vector(time()))[20m:1ms]))', SPAN_MS
        )
    assert time.perf_counter() - began < 5


COUNT_VALUES_SCRIPT = textwrap.dedent(
    """
    import time
    from watchkeeper.promql.engine import Engine, EngineOptions
    from watchkeeper.testing.storage import MemoryStorage

    engine = Engine(MemoryStorage(), EngineOptions(timeout_s=120))
    began = time.perf_counter()
    result = engine.instant_query(
        'count(count_over_time(count_values("v", vector(time()))[5m:1ms]))', 1_767_225_600_000
    )
    print(float(result.value.values[0]), time.perf_counter() - began)
    """
)


def test_count_values_of_300000_distinct_values_in_a_subquery_fits_in_memory() -> None:
    """300,000 inner steps x 300,000 series would be 810 GB dense; the points are 300,000.

    Measured: about 5 s and under 300 MB of peak resident memory (2 shared cores).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-c", COUNT_VALUES_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    count, seconds = (float(x) for x in done.stdout.split())
    assert count == 300_000
    assert seconds < 60
    if peak_kib > before:  # the peak of every child so far: only a new maximum is ours
        assert peak_kib < 1024 * 1024
