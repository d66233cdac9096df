"""Summary quantiles over client_golang's sliding window, as /metrics shows them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from watchkeeper.instrument.metrics import WINDOW_SLICE_CAPACITY, Registry, Summary
from watchkeeper.testing.clock import ManualClock


def _seconds(clock: ManualClock) -> float:
    return clock.now_ms() / 1000


def _exposed(registry: Registry) -> dict[str, float]:
    """The rendered samples, keyed by their series text."""
    out: dict[str, float] = {}
    for line in registry.render().decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def test_quantiles_are_observed_values_picked_by_rank() -> None:
    registry = Registry()
    s = registry.summary("x_seconds", "Help.", objectives=(0.5, 0.9, 0.99))
    for v in range(1, 101):
        s.observe(float(v))
    exposed = _exposed(registry)
    assert exposed['x_seconds{quantile="0.5"}'] == 50
    assert exposed['x_seconds{quantile="0.9"}'] == 90
    assert exposed['x_seconds{quantile="0.99"}'] == 99
    assert exposed["x_seconds_sum"] == 5050
    assert exposed["x_seconds_count"] == 100


def test_an_empty_window_exports_nan_quantiles_as_prometheus_does() -> None:
    registry = Registry()
    registry.summary("x_seconds", "Help.", objectives=(0.5, 0.9, 0.99))
    text = registry.render().decode()
    assert 'x_seconds{quantile="0.5"} NaN' in text
    assert "x_seconds_count 0" in text


def test_a_summary_without_objectives_exports_only_sum_and_count() -> None:
    registry = Registry()
    registry.summary("x_seconds", "Help.").observe(1.5)
    assert _exposed(registry) == {"x_seconds_sum": 1.5, "x_seconds_count": 1}


def test_observations_leave_the_quantiles_after_max_age_but_stay_in_sum_and_count() -> None:
    clock = ManualClock(1_000_000)
    s = Summary(
        "x_seconds",
        "Help.",
        objectives=(0.5,),
        max_age_s=600,
        age_buckets=5,
        now=lambda: _seconds(clock),
    )
    s.observe(100.0)
    clock.advance(300_000)
    s.observe(1.0)
    s.observe(2.0)
    assert s.quantile(1.0) == 100.0, "five minutes on, the first observation still counts"
    clock.advance(420_000)
    assert s.quantile(1.0) == 2.0, "twelve minutes on, only the later ones count"
    clock.advance(600_000)
    assert math.isnan(s.quantile(0.5))
    assert (s.sum, s.count) == (103.0, 3)


def test_labelled_children_keep_their_own_windows_and_put_quantile_last() -> None:
    registry = Registry()
    s = registry.summary("q_seconds", "Help.", ("slice",), objectives=(0.5,))
    s.labels("inner_eval").observe(1.0)
    s.labels("queue_time").observe(7.0)
    exposed = _exposed(registry)
    assert exposed['q_seconds{slice="inner_eval",quantile="0.5"}'] == 1.0
    assert exposed['q_seconds{slice="queue_time",quantile="0.5"}'] == 7.0
    assert exposed['q_seconds_count{slice="queue_time"}'] == 1


def test_memory_stays_bounded_and_quantiles_stay_close_under_many_observations() -> None:
    s = Summary("x_seconds", "Help.", objectives=(0.1, 0.5, 0.9), now=lambda: 0.0)
    values = np.random.default_rng(7).random(20 * WINDOW_SLICE_CAPACITY)
    for v in values.tolist():
        s.observe(v)
    window = s._window
    assert window is not None
    assert sum(len(v) for v in window._values) <= WINDOW_SLICE_CAPACITY
    for q in (0.1, 0.5, 0.9):
        assert s.quantile(q) == pytest.approx(q, abs=0.05)
    assert s.count == len(values)


def test_a_full_slice_weighs_what_it_stands_for_against_a_sparse_one() -> None:
    clock = ManualClock(0)
    s = Summary("x_seconds", "Help.", objectives=(0.5,), now=lambda: _seconds(clock))
    for _ in range(10 * WINDOW_SLICE_CAPACITY):
        s.observe(1.0)
    clock.advance(120_000)
    for _ in range(WINDOW_SLICE_CAPACITY):
        s.observe(2.0)
    assert s.quantile(0.5) == 1.0, "ten times more ones were observed than twos"
    assert s.quantile(0.95) == 2.0


@pytest.mark.parametrize("objectives", [(1.5,), (-0.1,)])
def test_objectives_outside_zero_to_one_are_refused(objectives: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="x_seconds: quantile objectives"):
        Summary("x_seconds", "Help.", objectives=objectives)


def test_a_quantile_label_is_refused() -> None:
    with pytest.raises(ValueError, match="label named quantile"):
        Summary("x_seconds", "Help.", ("quantile",))
