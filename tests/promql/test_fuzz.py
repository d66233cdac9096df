"""Generated queries (valid and broken) never crash the engine: a result or a PromQLError."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from watchkeeper.model.labels import Labels
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import PromQLError, QueryTimeoutError, TooManySamplesError
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.strategies import METRIC_NAMES, promql_texts


def _storage() -> MemoryStorage:
    db = MemoryStorage()
    rng = np.random.default_rng(7)
    with db.appender() as app:
        for name in METRIC_NAMES:
            for job in ("api", "web"):
                for inst in ("a", "b"):
                    lb = Labels.from_dict({"__name__": name, "job": job, "instance": inst})
                    n = 40
                    vals = np.cumsum(rng.random(n))
                    vals[5] = np.nan
                    app.append_series([lb] * n, np.arange(n) * 15_000, vals)
            lb = Labels.from_dict({"__name__": name, "le": "+Inf", "job": "api"})
            app.append_series([lb], [0], [1.0])
    return db


DB = _storage()
ENGINE = Engine(
    DB,
    EngineOptions(
        enable_experimental_functions=True,
        enable_duration_expressions=True,
        max_samples=200_000,
        timeout_s=20.0,
    ),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(promql_texts())
def test_any_query_gives_a_result_or_a_promql_error(text: str) -> None:
    with contextlib.suppress(PromQLError):
        ENGINE.instant_query(text, 300_000)
    with contextlib.suppress(PromQLError):
        ENGINE.range_query(text, 0, 600_000, 45_000)


@pytest.mark.parametrize(
    "text",
    [
        "up[1000y]",
        "sum_over_time(up[100d:1ms])",
        "rate(up[1000d:1s])",
    ],
)
def test_absurd_queries_hit_the_sample_limit(text: str) -> None:
    db = MemoryStorage()
    with db.appender() as app:
        lbs = [Labels.from_dict({"__name__": "up", "i": str(i)}) for i in range(50)]
        for lb in lbs:
            app.append_series([lb] * 500, np.arange(500) * 1000, np.arange(500.0))
    engine = Engine(db, EngineOptions(max_samples=1000, timeout_s=30))
    with pytest.raises((TooManySamplesError, QueryTimeoutError)):
        engine.instant_query(text, 499_000)


def test_count_values_over_many_steps_hits_the_sample_limit() -> None:
    db = MemoryStorage()
    with db.appender() as app:
        lbs = [Labels.from_dict({"__name__": "up", "i": str(i)}) for i in range(20)]
        for lb in lbs:
            app.append_series(
                [lb] * 500, np.arange(500) * 1000, np.random.default_rng(1).random(500)
            )
    engine = Engine(db, EngineOptions(max_samples=5000))
    with pytest.raises(TooManySamplesError):
        engine.range_query('count_values("v", up)', 0, 499_000, 1000)


def test_tiny_steps_over_a_long_range_hit_the_sample_limit() -> None:
    db = MemoryStorage()
    with db.appender() as app:
        app.append_series([Labels.from_strings("__name__", "up")] * 2, [0, 1000], [1.0, 1.0])
    engine = Engine(db, EngineOptions(max_samples=10_000))
    with pytest.raises(TooManySamplesError):
        engine.range_query("up", 0, 10_000_000, 1)
