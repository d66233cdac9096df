"""Grouped aggregation kernels against naive references written from Prometheus 3.5."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.promql.kernels_aggregate import (
    _kahan_group_sum,
    _mean_group_fold,
    grouped_avg,
    grouped_quantile,
    grouped_stddev,
    grouped_stdvar,
    grouped_sum,
    kahan_sum,
)

F = np.float64
VALUES = st.one_of(
    st.floats(width=64),
    st.sampled_from([1e308, -1e308, 1e-300, 0.0, -0.0, 1.0, math.nan, math.inf, -math.inf]),
    st.floats(-1e6, 1e6),
)


def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    t = F(total) + F(inc)
    if math.isinf(t):
        comp = F(0.0)
    elif abs(total) >= abs(inc):
        comp = F(comp) + ((F(total) - t) + F(inc))
    else:
        comp = F(comp) + ((F(inc) - t) + F(total))
    return float(t), float(comp)


def ref_sum(vals: list[float]) -> float:
    total, comp = vals[0], 0.0
    for v in vals[1:]:
        total, comp = kahan_inc(v, total, comp)
    return float(F(total) + F(comp))


def ref_avg(vals: list[float]) -> float:
    total, comp, mean, incremental = vals[0], 0.0, vals[0], False
    for i, v in enumerate(vals[1:]):
        count = float(i + 2)
        if not incremental:
            new_t, new_c = kahan_inc(v, total, comp)
            if not math.isinf(new_t):
                total, comp = new_t, new_c
                continue
            incremental = True
            mean = float(F(total) / (count - 1))
            comp = float(F(comp) / (count - 1))
        q = (count - 1) / count
        mean, comp = kahan_inc(float(F(v) / count), float(q * F(mean)), float(q * F(comp)))
    n = float(len(vals))
    if incremental:
        return float(F(mean) + F(comp))
    return float(F(total) / n + F(comp) / n)


def ref_stdvar(vals: list[float]) -> float:
    mean = F(vals[0])
    aux = F(0.0) if math.isfinite(vals[0]) else F(math.nan)
    count = 1.0
    for v in vals[1:]:
        count += 1
        d = F(v) - mean
        mean = mean + d / count
        aux = aux + d * (F(v) - mean)
    return float(aux / count)


def ref_quantile(q: float, vals: list[float]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    s = [v for v in vals if math.isnan(v)] + sorted(v for v in vals if not math.isnan(v))
    n = float(len(s))
    rank = F(q) * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(F(s[int(lower)]) * (1 - weight) + F(s[int(upper)]) * weight)


class Grouped:
    def __init__(self, rows: list[list[float | None]], groups: list[int], n_groups: int) -> None:
        self.rows = rows
        self.groups = groups
        self.n_groups = n_groups
        self.values = np.array([[math.nan if v is None else v for v in r] for r in rows])
        self.present = np.array([[v is not None for v in r] for r in rows], dtype=np.bool_)
        self.group_ids = np.array(groups, dtype=np.int64)

    def members(self, g: int, step: int) -> list[float]:
        return [
            float(r[step])  # type: ignore[arg-type]
            for r, gid in zip(self.rows, self.groups, strict=True)
            if gid == g and r[step] is not None
        ]

    def __repr__(self) -> str:
        return f"Grouped({self.rows!r}, {self.groups!r}, {self.n_groups!r})"


@st.composite
def grouped(draw: st.DrawFn) -> Grouped:
    n_series = draw(st.integers(1, 12))
    n_steps = draw(st.integers(1, 4))
    n_groups = draw(st.integers(1, 4))
    rows = [
        draw(st.lists(st.one_of(st.none(), VALUES), min_size=n_steps, max_size=n_steps))
        for _ in range(n_series)
    ]
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=n_series, max_size=n_series))
    return Grouped(rows, groups, n_groups)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def compare(
    data: Grouped,
    result: tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]],
    ref: object,
) -> None:
    out, present = result
    assert out.shape == (data.n_groups, data.values.shape[1])
    with np.errstate(all="ignore"):
        for g in range(data.n_groups):
            for s in range(data.values.shape[1]):
                vals = data.members(g, s)
                assert present[g, s] == bool(vals)
                if vals:
                    want = ref(vals)  # type: ignore[operator]
                    assert same(float(out[g, s]), want), (g, s, out[g, s], want)


@given(data=grouped())
def test_grouped_sum_matches_kahan_reference(data: Grouped) -> None:
    args = (data.values, data.present, data.group_ids, data.n_groups)
    compare(data, grouped_sum(*args), ref_sum)
    compare(data, _kahan_group_sum(*args), ref_sum)


@given(data=grouped())
def test_grouped_avg_matches_direct_then_incremental_mean(data: Grouped) -> None:
    args = (data.values, data.present, data.group_ids, data.n_groups)
    compare(data, grouped_avg(*args), ref_avg)
    compare(data, _mean_group_fold(*args), ref_avg)


@given(data=grouped())
def test_grouped_stdvar_and_stddev_match_welford_reference(data: Grouped) -> None:
    args = (data.values, data.present, data.group_ids, data.n_groups)
    compare(data, grouped_stdvar(*args), ref_stdvar)
    compare(data, grouped_stddev(*args), lambda v: float(np.sqrt(F(ref_stdvar(v)))))


@given(data=grouped(), q=st.sampled_from([-1.0, 0.0, 0.2, 0.5, 0.99, 1.0, 2.0, math.nan]))
def test_grouped_quantile_matches_reference(data: Grouped, q: float) -> None:
    result = grouped_quantile(q, data.values, data.present, data.group_ids, data.n_groups)
    compare(data, result, lambda v: ref_quantile(q, v))


def test_kahan_sum_compensates_cancellation() -> None:
    out = kahan_sum(np.array([1e100, 1.0, -1e100, 5.0]), np.array([0, 0, 0, 1]), 3)
    assert out[0] == 1.0
    assert out[1] == 5.0
    assert math.isnan(out[2])


def test_grouped_quantile_takes_q_per_step() -> None:
    values = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    present = np.ones_like(values, dtype=np.bool_)
    out, _ = grouped_quantile(np.array([0.0, 1.0]), values, present, np.zeros(3, np.int64), 1)
    assert out.tolist() == [[1.0, 3.0]]


@pytest.mark.parametrize("n_series", [1, 500])
def test_grouped_sum_handles_one_group_of_many_series(n_series: int) -> None:
    values = np.ones((n_series, 3))
    out, present = grouped_sum(values, values > 0, np.zeros(n_series, np.int64), 1)
    assert out.tolist() == [[float(n_series)] * 3]
    assert present.all()
