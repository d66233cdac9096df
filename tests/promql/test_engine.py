"""Engine tests: selection, operators, aggregations, limits and annotations end to end."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql import ast
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import (
    EvaluationError,
    ParseError,
    QueryTimeoutError,
    TooManySamplesError,
)
from watchkeeper.promql.parser import parse_expr
from watchkeeper.promql.value import Matrix, Scalar, String, Vector
from watchkeeper.testing.storage import MemoryStorage

MIN = 60_000


def _storage(series: dict[str, list[tuple[int, float]]]) -> MemoryStorage:
    db = MemoryStorage()
    with db.appender() as app:
        for text, samples in series.items():
            lb = _labels(text)
            app.append_series([lb] * len(samples), [t for t, _ in samples], [v for _, v in samples])
    return db


def _labels(text: str) -> Labels:
    e = parse_expr(text)
    assert isinstance(e, ast.VectorSelector)
    return Labels((m.name, m.value) for m in e.matchers)


def _engine(db: MemoryStorage, **kw: object) -> Engine:
    opts = EngineOptions(enable_experimental_functions=True, **kw)  # type: ignore[arg-type]
    return Engine(db, opts)


def _vector(engine: Engine, q: str, t: int) -> dict[str, float]:
    v = engine.instant_query(q, t).value
    assert isinstance(v, Vector)
    return {str(lb): float(x) for lb, x in zip(v.labels, v.values.tolist(), strict=True)}


@pytest.fixture
def counters() -> Engine:
    return _engine(
        _storage(
            {
                'http_requests_total{job="api", instance="a"}': [
                    (i * MIN, 10.0 * i) for i in range(11)
                ],
                'http_requests_total{job="api", instance="b"}': [
                    (i * MIN, 20.0 * i) for i in range(11)
                ],
                'http_requests_total{job="web", instance="c"}': [
                    (i * MIN, 5.0 * i) for i in range(11)
                ],
                'gauge{job="api"}': [(i * MIN, float(i % 3)) for i in range(11)],
            }
        )
    )


def test_instant_selector_takes_the_newest_sample_within_lookback(counters: Engine) -> None:
    got = _vector(counters, 'http_requests_total{instance="a"}', 5 * MIN + 30_000)
    assert got == {'http_requests_total{instance="a", job="api"}': 50.0}


def test_lookback_is_left_open() -> None:
    e = _engine(_storage({"m": [(0, 1.0)]}))
    assert _vector(e, "m", 5 * MIN - 1) == {"m": 1.0}
    assert _vector(e, "m", 5 * MIN) == {}


def test_a_staleness_marker_hides_the_series() -> None:
    e = _engine(_storage({"m": [(0, 1.0), (MIN, STALE_NAN)]}))
    assert _vector(e, "m", 30_000) == {"m": 1.0}
    assert _vector(e, "m", MIN + 1) == {}


def test_rate_and_sum_by_group_series(counters: Engine) -> None:
    got = _vector(counters, "sum by (job) (rate(http_requests_total[5m]))", 10 * MIN)
    assert got == pytest.approx({'{job="api"}': 0.5, '{job="web"}': 5 / 60})


def test_rate_on_a_non_counter_name_adds_prometheus_info(counters: Engine) -> None:
    res = counters.instant_query("rate(gauge[5m])", 10 * MIN)
    assert res.infos == [
        "PromQL info: metric might not be a counter, name does not end in "
        '_total/_sum/_count/_bucket: "gauge"'
    ]


def test_range_query_returns_a_sorted_matrix(counters: Engine) -> None:
    res = counters.range_query("http_requests_total * 2", 0, 2 * MIN, MIN)
    assert isinstance(res.value, Matrix)
    assert [str(lb) for lb in res.value.labels] == [
        '{instance="a", job="api"}',
        '{instance="b", job="api"}',
        '{instance="c", job="web"}',
    ]
    assert res.value.series(0)[2].tolist() == [0.0, 20.0, 40.0]


def test_scalar_results_and_range_scalars() -> None:
    e = _engine(MemoryStorage())
    assert e.instant_query("1 + 2", 0).value == Scalar(0, 3.0)
    m = e.range_query("time()", 0, 2000, 1000).value
    assert isinstance(m, Matrix)
    assert m.values.tolist() == [0.0, 1.0, 2.0]
    assert e.instant_query('"hi"', 5).value == String(5, "hi")


def test_range_query_of_a_string_is_refused() -> None:
    with pytest.raises(ParseError, match='invalid expression type "string"'):
        _engine(MemoryStorage()).range_query('"s"', 0, 10, 1)


def test_sum_of_plus_and_minus_infinity_is_nan() -> None:
    e = _engine(_storage({'m{a="1"}': [(0, math.inf)], 'm{a="2"}': [(0, -math.inf)]}))
    assert math.isnan(_vector(e, "sum(m)", 0)["{}"])


def test_min_and_max_ignore_nan_unless_all_are_nan() -> None:
    e = _engine(_storage({'m{a="1"}': [(0, math.nan)], 'm{a="2"}': [(0, 3.0)]}))
    assert _vector(e, "min(m)", 0) == {"{}": 3.0}
    assert _vector(e, "max(m)", 0) == {"{}": 3.0}


def test_topk_lists_the_largest_first(counters: Engine) -> None:
    v = counters.instant_query("topk(2, http_requests_total)", 10 * MIN).value
    assert isinstance(v, Vector)
    assert v.values.tolist() == [200.0, 100.0]


def test_count_values_labels_by_value(counters: Engine) -> None:
    got = _vector(counters, 'count_values("v", gauge)', 10 * MIN)
    assert got == {'{v="1"}': 1.0}


def test_one_to_one_matching_with_duplicates_on_the_right_fails(counters: Engine) -> None:
    with pytest.raises(EvaluationError, match="found duplicate series for the match group"):
        counters.instant_query("gauge + on(job) http_requests_total", 10 * MIN)


def test_group_left_copies_labels_from_the_one_side(counters: Engine) -> None:
    got = _vector(counters, 'http_requests_total / on(job) group_left gauge{job="api"}', 10 * MIN)
    assert got == {'{instance="a", job="api"}': 100.0, '{instance="b", job="api"}': 200.0}


def test_set_operators(counters: Engine) -> None:
    assert set(_vector(counters, "http_requests_total and on(job) gauge", 10 * MIN)) == {
        'http_requests_total{instance="a", job="api"}',
        'http_requests_total{instance="b", job="api"}',
    }
    assert set(_vector(counters, "http_requests_total unless on(job) gauge", 10 * MIN)) == {
        'http_requests_total{instance="c", job="web"}'
    }
    assert len(_vector(counters, "gauge or http_requests_total", 10 * MIN)) == 4


def test_comparison_filters_and_bool_gives_zero_or_one(counters: Engine) -> None:
    assert _vector(counters, "gauge > 0", 10 * MIN) == {'gauge{job="api"}': 1.0}
    assert _vector(counters, "gauge > bool 5", 10 * MIN) == {'{job="api"}': 0.0}


def test_functions_that_drop_the_name_can_collide() -> None:
    e = _engine(_storage({"a": [(0, 1.0)], "b": [(0, 2.0)]}))
    with pytest.raises(EvaluationError, match="same labelset"):
        e.instant_query('ceil({__name__=~"a|b"})', 0)


def test_delayed_name_removal_keeps_names_until_the_end() -> None:
    e = _engine(
        _storage({'a{x="1"}': [(0, 1.0)], 'b{x="1"}': [(0, 2.0)]}),
        enable_delayed_name_removal=True,
    )
    got = _vector(e, 'label_replace(-{x="1"}, "n", "$1", "__name__", "(.*)")', 0)
    assert got == {'{n="a", x="1"}': -1.0, '{n="b", x="1"}': -2.0}


def test_subquery_windows_use_their_own_steps(counters: Engine) -> None:
    got = _vector(counters, "max_over_time(gauge[5m:1m])", 10 * MIN)
    assert got == {'{job="api"}': 2.0}


def test_at_modifier_pins_the_time(counters: Engine) -> None:
    m = counters.range_query('http_requests_total{instance="a"} @ 60', 0, 2 * MIN, MIN).value
    assert isinstance(m, Matrix)
    assert m.values.tolist() == [10.0, 10.0, 10.0]


def test_too_many_samples_is_refused() -> None:
    db = _storage({f'm{{i="{i}"}}': [(t * 1000, 1.0) for t in range(100)] for i in range(20)})
    e = _engine(db, max_samples=500)
    with pytest.raises(TooManySamplesError, match="query processing would load too many samples"):
        e.instant_query("m[100s]", 99_000)
    assert len(_vector(e, "sum(m)", 99_000)) == 1


def test_a_query_past_its_timeout_fails() -> None:
    e = _engine(_storage({"m": [(0, 1.0)]}), timeout_s=0.0)
    with pytest.raises(QueryTimeoutError, match="query timed out"):
        e.instant_query("sum(rate(m[5m]))", 0)


def test_queries_beyond_max_concurrency_wait_for_a_slot() -> None:
    e = _engine(_storage({"m": [(0, 1.0)]}), max_concurrency=1)
    results: list[dict[str, float]] = []
    threads = [
        threading.Thread(target=lambda: results.append(_vector(e, "m", 0))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"m": 1.0}] * 4


def test_eval_expr_evaluates_a_parsed_expression(counters: Engine) -> None:
    res = counters.eval_expr(parse_expr("count(gauge)"), 10 * MIN)
    assert isinstance(res.value, Vector)
    assert res.value.values.tolist() == [1.0]
    assert res.stats.total_queryable_samples > 0


def test_stats_count_the_samples_loaded_per_step(counters: Engine) -> None:
    res = counters.range_query("sum(gauge)", 0, 2 * MIN, MIN)
    assert res.stats.samples_per_step == [(0, 1), (MIN, 1), (2 * MIN, 1)]
    assert res.stats.total_queryable_samples == 3
    res = counters.instant_query("count_over_time(gauge[3m])", 10 * MIN)
    assert res.stats.total_queryable_samples == 3


def test_quantile_warns_outside_zero_to_one(counters: Engine) -> None:
    res = counters.instant_query("quantile(2, gauge)", 10 * MIN)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2"]


def test_label_replace_rejects_a_bad_regex(counters: Engine) -> None:
    with pytest.raises(EvaluationError, match="invalid regular expression in label_replace"):
        counters.instant_query('label_replace(gauge, "a", "b", "job", "(.*")', 0)


def test_histogram_quantile_over_classic_buckets() -> None:
    series = {
        f'lat_bucket{{le="{le}"}}': [(0, c)]
        for le, c in (("0.1", 10.0), ("1", 20.0), ("+Inf", 20.0))
    }
    e = _engine(_storage(series))
    assert _vector(e, "histogram_quantile(0.5, lat_bucket)", 0) == {"{}": pytest.approx(0.1)}


def test_date_functions_use_utc() -> None:
    e = _engine(MemoryStorage())
    t = 1_700_000_000_000  # 2023-11-14T22:13:20Z
    got = _vector(e, "hour() + minute() / 100 + month() * 1000", t)
    assert got == {"{}": pytest.approx(11 * 1000 + 22 + 0.13)}


def test_vectorized_range_query_over_many_series_is_consistent() -> None:
    db = MemoryStorage()
    with db.appender() as app:
        lbs = [Labels.from_strings("__name__", "c_total", "i", str(i)) for i in range(50)]
        for lb in lbs:
            app.append_series([lb] * 30, np.arange(30) * 15_000, np.arange(30) * 2.0)
    e = _engine(db)
    m = e.range_query("sum(rate(c_total[1m]))", 60_000, 400_000, 20_000).value
    assert isinstance(m, Matrix)
    assert np.allclose(m.values, 50 * 2.0 / 15.0)
