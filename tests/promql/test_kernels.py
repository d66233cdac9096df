"""Range-function kernels against naive per-window references written from Prometheus 3.5."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.promql import kernels
from watchkeeper.promql.errors import EvaluationError, QueryTimeoutError
from watchkeeper.promql.kernels import (
    RANGE_FUNCTIONS,
    _range_extreme,
    _sum_or_mean,
    window_bounds,
)

F = np.float64
Points = list[tuple[int, float]]
Ref = Callable[[Points, int, int, Sequence[float]], float | None]

EXTREMES = [1e308, -1e308, 1e-308, 5e-324, 0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf]


# ---------------------------------------------------------------------------------------------
# Naive references: one Python loop per window, following promql/functions.go step by step.


def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    t = F(total) + F(inc)
    if math.isinf(t):
        comp = F(0.0)
    elif abs(total) >= abs(inc):
        comp = F(comp) + ((F(total) - t) + F(inc))
    else:
        comp = F(comp) + ((F(inc) - t) + F(total))
    return float(t), float(comp)


def ref_extrapolated(
    points: Points, t: int, range_ms: int, *, counter: bool, is_rate: bool
) -> float | None:
    if len(points) < 2:
        return None
    (t0, v0), (t1, v1) = points[0], points[-1]
    result = F(v1) - F(v0)
    if counter:
        prev = v0
        for _, v in points[1:]:
            if v < prev:
                result = result + F(prev)
            prev = v
    to_start = F(t0 - (t - range_ms)) / 1000
    to_end = F(t - t1) / 1000
    sampled = F(t1 - t0) / 1000
    average = sampled / (len(points) - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if counter and result > 0 and v0 >= 0:
        to_zero = sampled * (F(v0) / result)
        to_start = min(to_start, to_zero)
    interval = sampled + to_start
    if to_end >= threshold:
        to_end = average / 2
    interval = interval + to_end
    factor = interval / sampled
    if is_rate:
        factor = factor / (F(range_ms // 1000) + F(range_ms % 1000) / 1000)
    return float(result * factor)


def ref_instant(points: Points, *, is_rate: bool) -> float | None:
    if len(points) < 2:
        return None
    (ta, a), (tb, b) = points[-2], points[-1]
    result = F(b) - F(a)
    if is_rate and b < a:
        result = F(b)
    if is_rate:
        result = result / (F(tb - ta) / 1000)
    return float(result)


def ref_regression(points: Points, intercept_ms: int) -> tuple[float, float]:
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    init_y = points[0][1]
    const_y = True
    for i, (ts, v) in enumerate(points):
        if const_y and i > 0 and v != init_y:
            const_y = False
        x = float(F(ts - intercept_ms) / 1e3)
        sx, cx = kahan_inc(x, sx, cx)
        sy, cy = kahan_inc(v, sy, cy)
        sxy, cxy = kahan_inc(float(F(x) * F(v)), sxy, cxy)
        sx2, cx2 = kahan_inc(float(F(x) * F(x)), sx2, cx2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    n = F(len(points))
    fsx, fsy, fsxy, fsx2 = F(sx) + F(cx), F(sy) + F(cy), F(sxy) + F(cxy), F(sx2) + F(cx2)
    cov = fsxy - fsx * fsy / n
    var = fsx2 - fsx * fsx / n
    slope = cov / var
    return float(slope), float(fsy / n - slope * fsx / n)


def ref_sum(points: Points) -> float | None:
    if not points:
        return None
    total = comp = 0.0
    for _, v in points:
        total, comp = kahan_inc(v, total, comp)
    return total if math.isinf(total) else float(F(total) + F(comp))


def ref_avg(points: Points) -> float | None:
    if not points:
        return None
    total, count, mean, comp, incremental = points[0][1], 1.0, 0.0, 0.0, False
    for i, (_, v) in enumerate(points[1:]):
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
    if incremental:
        return float(F(mean) + F(comp))
    return float(F(total) / count + F(comp) / count)


def ref_variance(points: Points) -> float | None:
    if not points:
        return None
    count = 0.0
    mean = c_mean = aux = c_aux = 0.0
    for _, v in points:
        count += 1
        d = F(v) - (F(mean) + F(c_mean))
        mean, c_mean = kahan_inc(float(d / count), mean, c_mean)
        aux, c_aux = kahan_inc(float(d * (F(v) - (F(mean) + F(c_mean)))), aux, c_aux)
    return float((F(aux) + F(c_aux)) / count)


def ref_compare(
    points: Points, better: Callable[[float, float], bool], *, ts: bool
) -> float | None:
    if not points:
        return None
    kept_t, kept = points[0]
    for t, v in points:
        if better(v, kept) or math.isnan(kept):
            kept, kept_t = v, t
    return kept_t / 1000 if ts else kept


def go_sorted(vals: list[float]) -> list[float]:
    nans = [v for v in vals if math.isnan(v)]
    return nans + sorted(v for v in vals if not math.isnan(v))


def ref_quantile(q: float, vals: list[float]) -> float:
    if not vals or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    s = go_sorted(vals)
    n = float(len(s))
    rank = F(q) * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(F(s[int(lower)]) * (1 - weight) + F(s[int(upper)]) * weight)


def ref_mad(points: Points) -> float | None:
    if not points:
        return None
    vals = [v for _, v in points]
    median = ref_quantile(0.5, vals)
    return ref_quantile(0.5, [float(abs(F(v) - F(median))) for v in vals])


def ref_des(points: Points, sf: float, tf: float) -> float | None:
    if len(points) < 2:
        return None
    s0, s1 = F(0.0), F(points[0][1])
    b = F(points[1][1]) - F(points[0][1])
    for i in range(1, len(points)):
        x = F(sf) * F(points[i][1])
        if i - 1 != 0:
            b = F(tf) * (s1 - s0) + (1 - F(tf)) * b
        y = (1 - F(sf)) * (s1 + b)
        s0, s1 = s1, x + y
    return float(s1)


def ref_pairs(points: Points, flag: Callable[[float, float], bool]) -> float | None:
    if not points:
        return None
    return float(sum(flag(a, b) for (_, a), (_, b) in itertools.pairwise(points)))


def _changed(a: float, b: float) -> bool:
    return b != a and not (math.isnan(a) and math.isnan(b))


REFERENCES: dict[str, Ref] = {
    "rate": lambda p, t, r, _: ref_extrapolated(p, t, r, counter=True, is_rate=True),
    "increase": lambda p, t, r, _: ref_extrapolated(p, t, r, counter=True, is_rate=False),
    "delta": lambda p, t, r, _: ref_extrapolated(p, t, r, counter=False, is_rate=False),
    "irate": lambda p, t, r, _: ref_instant(p, is_rate=True),
    "idelta": lambda p, t, r, _: ref_instant(p, is_rate=False),
    "deriv": lambda p, t, r, _: ref_regression(p, p[0][0])[0] if len(p) >= 2 else None,
    "predict_linear": lambda p, t, r, a: (
        float(F(ref_regression(p, t)[0]) * F(a[0]) + F(ref_regression(p, t)[1]))
        if len(p) >= 2
        else None
    ),
    "changes": lambda p, t, r, _: ref_pairs(p, _changed),
    "resets": lambda p, t, r, _: ref_pairs(p, lambda a, b: b < a),
    "avg_over_time": lambda p, t, r, _: ref_avg(p),
    "sum_over_time": lambda p, t, r, _: ref_sum(p),
    "min_over_time": lambda p, t, r, _: ref_compare(p, lambda c, k: c < k, ts=False),
    "max_over_time": lambda p, t, r, _: ref_compare(p, lambda c, k: c > k, ts=False),
    "count_over_time": lambda p, t, r, _: float(len(p)) if p else None,
    "stddev_over_time": lambda p, t, r, _: (
        None if not p else float(np.sqrt(F(ref_variance(p) or 0.0)))
    ),
    "stdvar_over_time": lambda p, t, r, _: ref_variance(p),
    "last_over_time": lambda p, t, r, _: p[-1][1] if p else None,
    "first_over_time": lambda p, t, r, _: p[0][1] if p else None,
    "present_over_time": lambda p, t, r, _: 1.0 if p else None,
    "quantile_over_time": lambda p, t, r, a: ref_quantile(a[0], [v for _, v in p]) if p else None,
    "mad_over_time": lambda p, t, r, _: ref_mad(p),
    "double_exponential_smoothing": lambda p, t, r, a: ref_des(p, a[0], a[1]),
    "ts_of_min_over_time": lambda p, t, r, _: ref_compare(p, lambda c, k: c <= k, ts=True),
    "ts_of_max_over_time": lambda p, t, r, _: ref_compare(p, lambda c, k: c >= k, ts=True),
    "ts_of_last_over_time": lambda p, t, r, _: p[-1][0] / 1000 if p else None,
}


# ---------------------------------------------------------------------------------------------
# Data.


class Dataset:
    """Ragged series plus evaluation steps, as the engine hands them to kernels."""

    def __init__(
        self, series: list[Points], steps: list[int], range_ms: int, params: list[list[float]]
    ) -> None:
        self.series = series
        self.steps = steps
        self.range_ms = range_ms
        self.params = params
        self.timestamps = np.array([t for s in series for t, _ in s], dtype=np.int64)
        self.values = np.array([v for s in series for _, v in s], dtype=np.float64)
        self.offsets = np.zeros(len(series) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in series], out=self.offsets[1:])
        self.eval_ts = np.array(steps, dtype=np.int64)

    def window(self, i: int, t: int) -> Points:
        return [(ts, v) for ts, v in self.series[i] if t - self.range_ms < ts <= t]

    def __repr__(self) -> str:
        return f"Dataset({self.series!r}, {self.steps!r}, {self.range_ms!r}, {self.params!r})"


@st.composite
def values_of(draw: st.DrawFn, n: int) -> list[float]:
    kind = draw(st.sampled_from(["counter", "gauge", "wild", "extreme", "large"]))
    if kind == "counter":
        incs = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
        resets = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        out: list[float] = []
        cur = float(draw(st.integers(0, 10_000)))
        for inc, reset in zip(incs, resets, strict=True):
            cur = float(inc) if reset else cur + inc
            out.append(cur)
        return out
    if kind == "gauge":
        return draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n))
    if kind == "large":
        return draw(
            st.lists(st.sampled_from([1e300, -1e300, 1e-300, 3.0, 1e308]), min_size=n, max_size=n)
        )
    if kind == "extreme":
        return draw(st.lists(st.sampled_from(EXTREMES), min_size=n, max_size=n))
    return draw(st.lists(st.floats(width=64), min_size=n, max_size=n))


@st.composite
def datasets(draw: st.DrawFn, n_params: int = 0) -> Dataset:
    n_series = draw(st.integers(1, 4))
    series: list[Points] = []
    for _ in range(n_series):
        n = draw(st.integers(0, 14))
        gaps = draw(st.lists(st.integers(1, 40_000), min_size=n, max_size=n))
        start = draw(st.integers(-100_000, 100_000))
        times = (start + np.cumsum(gaps, dtype=np.int64)).tolist() if n else []
        series.append(list(zip(times, draw(values_of(n)), strict=True)))
    n_steps = draw(st.integers(1, 6))
    step = draw(st.integers(1, 60_000))
    first = draw(st.integers(-100_000, 400_000))
    range_ms = draw(st.integers(1, 150_000))
    steps = [first + i * step for i in range(n_steps)]
    params = [
        draw(
            st.lists(
                st.sampled_from([-0.5, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.5, math.nan]),
                min_size=n_steps,
                max_size=n_steps,
            )
        )
        for _ in range(n_params)
    ]
    return Dataset(series, steps, range_ms, params)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def check(
    name: str, data: Dataset, params: Sequence[Any], ref_params: Callable[[int], list[float]]
) -> None:
    lo, hi = window_bounds(data.timestamps, data.offsets, data.eval_ts, data.range_ms)
    out, present = RANGE_FUNCTIONS[name](
        data.timestamps, data.values, lo, hi, data.eval_ts, data.range_ms, *params
    )
    assert out.shape == present.shape == (len(data.series), len(data.steps))
    with np.errstate(all="ignore"):
        for i in range(len(data.series)):
            for j, t in enumerate(data.steps):
                want = REFERENCES[name](data.window(i, t), t, data.range_ms, ref_params(j))
                if want is None:
                    assert not present[i, j], (name, i, t)
                    continue
                assert present[i, j], (name, i, t)
                got = float(out[i, j])
                assert same(got, want), f"{name} series {i} t={t}: got {got!r}, want {want!r}"


# ---------------------------------------------------------------------------------------------
# Tests.


@given(data=datasets())
def test_window_bounds_select_samples_in_left_open_right_closed_windows(data: Dataset) -> None:
    lo, hi = window_bounds(data.timestamps, data.offsets, data.eval_ts, data.range_ms)
    for i in range(len(data.series)):
        base = int(data.offsets[i])
        for j, t in enumerate(data.steps):
            idx = [
                base + k for k, (ts, _) in enumerate(data.series[i]) if t - data.range_ms < ts <= t
            ]
            if idx:
                assert (lo[i, j], hi[i, j]) == (idx[0], idx[-1] + 1)
            else:
                assert lo[i, j] == hi[i, j]


def test_window_bounds_handle_no_samples_and_no_series() -> None:
    lo, hi = window_bounds(
        np.empty(0, dtype=np.int64), np.zeros(3, dtype=np.int64), np.arange(4, dtype=np.int64), 5
    )
    assert lo.shape == (2, 4)
    assert (lo == hi).all()
    lo, hi = window_bounds(
        np.empty(0, dtype=np.int64), np.zeros(1, dtype=np.int64), np.arange(4, dtype=np.int64), 5
    )
    assert lo.shape == (0, 4)


PLAIN = [
    name
    for name in RANGE_FUNCTIONS
    if name not in ("quantile_over_time", "predict_linear", "double_exponential_smoothing")
]


@pytest.mark.parametrize("name", PLAIN)
@given(data=datasets())
def test_range_function_matches_naive_reference(name: str, data: Dataset) -> None:
    check(name, data, (), lambda j: [])


@given(data=datasets(n_params=1))
def test_quantile_over_time_matches_reference_for_each_step_q(data: Dataset) -> None:
    q = np.array(data.params[0])
    check("quantile_over_time", data, (q,), lambda j: [data.params[0][j]])


@given(data=datasets(), t_s=st.floats(-1000, 1000))
def test_predict_linear_matches_reference(data: Dataset, t_s: float) -> None:
    check("predict_linear", data, (t_s,), lambda j: [t_s])


@given(data=datasets(), sf=st.floats(0.01, 0.99), tf=st.floats(0.01, 0.99))
def test_double_exponential_smoothing_matches_reference(
    data: Dataset, sf: float, tf: float
) -> None:
    check("double_exponential_smoothing", data, (sf, tf), lambda j: [sf, tf])


@given(data=datasets(), sf=st.floats(0.01, 0.99), tf=st.floats(0.01, 0.99))
def test_double_exponential_smoothing_scalar_and_vector_folds_agree_bit_for_bit(
    data: Dataset, sf: float, tf: float
) -> None:
    """Few windows take a scalar loop per window, many the numpy fold: same bits."""
    lo, hi = window_bounds(data.timestamps, data.offsets, data.eval_ts, data.range_ms)
    args = (data.timestamps, data.values, lo, hi, data.eval_ts, data.range_ms, sf, tf)
    fn = RANGE_FUNCTIONS["double_exponential_smoothing"]
    scalar, seen = fn(*args)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "_FEW_WINDOWS", -1)
        vector, seen_v = fn(*args)
    assert (seen == seen_v).all()
    assert np.array_equal(scalar[seen].view(np.uint64), vector[seen].view(np.uint64))


SCALAR_PATH_FUNCTIONS = [
    "stddev_over_time",
    "stdvar_over_time",
    "deriv",
    "predict_linear",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
]


@pytest.mark.parametrize("name", SCALAR_PATH_FUNCTIONS)
@given(data=datasets(), t_s=st.floats(-1000, 1000))
def test_per_window_scalar_path_and_column_fold_agree_bit_for_bit(
    name: str, data: Dataset, t_s: float
) -> None:
    """Few long windows take a scalar loop per window, many the column fold: same bits."""
    lo, hi = window_bounds(data.timestamps, data.offsets, data.eval_ts, data.range_ms)
    params = (t_s,) if name == "predict_linear" else ()
    args = (data.timestamps, data.values, lo, hi, data.eval_ts, data.range_ms, *params)
    fn = RANGE_FUNCTIONS[name]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "_FEW_WINDOWS", 1 << 30)
        mp.setattr(kernels, "_SAMPLES_PER_CHECK", 3)
        scalar, seen = fn(*args)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "_FEW_WINDOWS", -1)
        vector, seen_v = fn(*args)
    assert (seen == seen_v).all()
    assert np.array_equal(scalar[seen].view(np.uint64), vector[seen].view(np.uint64))


def test_scalar_path_of_long_windows_matches_reference() -> None:
    rng = np.random.default_rng(11)
    n = 3_000
    times = np.cumsum(rng.integers(1, 50, n)).tolist()
    values = rng.normal(1e9, 30, n)
    values[rng.random(n) < 0.01] = np.nan
    series = [list(zip(times, values.tolist(), strict=True))]
    data = Dataset(series, [times[-1], times[-1] - 7_000], 100_000, [])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "_SAMPLES_PER_CHECK", 1_000)
        for name in ("stddev_over_time", "deriv", "ts_of_min_over_time", "ts_of_max_over_time"):
            check(name, data, (), lambda j: [])
        check("predict_linear", data, (30.0,), lambda j: [30.0])


@pytest.mark.parametrize("name", ["stddev_over_time", "deriv"])
def test_scalar_loop_over_one_long_window_stops_at_the_deadline(name: str) -> None:
    ts = np.arange(4_000_000, dtype=np.int64)
    vs = ts / 1000
    lo = np.zeros((1, 1), dtype=np.int64)
    hi = np.full((1, 1), len(ts), dtype=np.int64)
    began = time.monotonic()
    with kernels.deadline(began + 0.05), pytest.raises(QueryTimeoutError):
        RANGE_FUNCTIONS[name](ts, vs, lo, hi, ts[-1:], len(ts))
    assert time.monotonic() - began < 0.5


def _one_series() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], Any, Any, Any]:
    ts = np.array([0, 15_000, 30_000], dtype=np.int64)
    vs = np.array([1.0, 2.0, 4.0])
    steps = np.array([30_000, 45_000], dtype=np.int64)
    lo, hi = window_bounds(ts, np.array([0, 3], dtype=np.int64), steps, 60_000)
    return ts, vs, lo, hi, steps


@pytest.mark.parametrize(
    ("sf", "tf", "message"),
    [
        (0.0, 0.5, "invalid smoothing factor. Expected: 0 < sf < 1, got: 0.000000"),
        (1.5, 0.5, "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.500000"),
        (0.5, 1.0, "invalid trend factor. Expected: 0 < tf < 1, got: 1.000000"),
        (0.5, math.inf, "invalid trend factor. Expected: 0 < tf < 1, got: +Inf"),
    ],
)
def test_double_exponential_smoothing_rejects_factors_outside_unit_interval(
    sf: float, tf: float, message: str
) -> None:
    ts, vs, lo, hi, steps = _one_series()
    with pytest.raises(EvaluationError) as err:
        RANGE_FUNCTIONS["double_exponential_smoothing"](ts, vs, lo, hi, steps, 60_000, sf, tf)
    assert str(err.value) == message


def test_double_exponential_smoothing_accepts_bad_factors_when_no_window_has_samples() -> None:
    ts, vs, _, _, steps = _one_series()
    empty = np.zeros((1, 2), dtype=np.int64)
    _out, present = RANGE_FUNCTIONS["double_exponential_smoothing"](
        ts, vs, empty, empty, steps, 60_000, 2.0, 0.5
    )
    assert not present.any()


def test_predict_linear_regresses_around_given_evaluation_times() -> None:
    ts, vs, lo, hi, steps = _one_series()
    moved = steps + 60_000
    out_end, _ = RANGE_FUNCTIONS["predict_linear"](ts, vs, lo, hi, steps, 60_000, 0.0)
    out_moved, _ = RANGE_FUNCTIONS["predict_linear"](ts, vs, lo, hi, steps, 60_000, 0.0, moved)
    slope = ref_regression([(0, 1.0), (15_000, 2.0), (30_000, 4.0)], 0)[0]
    assert out_moved[0, 0] == pytest.approx(out_end[0, 0] + 60 * slope)


def test_rate_of_a_regular_counter_is_its_slope() -> None:
    ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
    vs = ts / 1000 * 2.0
    steps = np.array([300_000, 450_000], dtype=np.int64)
    lo, hi = window_bounds(ts, np.array([0, len(ts)], dtype=np.int64), steps, 60_000)
    out, present = RANGE_FUNCTIONS["rate"](ts, vs, lo, hi, steps, 60_000)
    assert present.all()
    assert out == pytest.approx(np.full((1, 2), 2.0))


def test_many_series_and_long_windows_match_reference() -> None:
    rng = np.random.default_rng(7)
    series: list[Points] = []
    for i in range(60):
        n = int(rng.integers(0, 200))
        times = np.cumsum(rng.integers(1_000, 30_000, n)).tolist()
        vals = np.cumsum(rng.integers(0, 50, n)).astype(float)
        vals[rng.random(n) < 0.05] = 0.0
        if i % 7 == 0:
            vals[rng.random(n) < 0.1] = np.nan
        series.append(list(zip(times, vals.tolist(), strict=True)))
    data = Dataset(series, list(range(0, 3_000_000, 97_000)), 600_000, [])
    for name in ("rate", "sum_over_time", "avg_over_time", "max_over_time", "mad_over_time"):
        check(name, data, (), lambda j: [])


@pytest.mark.parametrize("method", [True, False])
@given(data=datasets())
def test_sum_and_mean_methods_agree_with_reference(data: Dataset, method: bool) -> None:
    lo, hi = window_bounds(data.timestamps, data.offsets, data.eval_ts, data.range_ms)
    for name, mean in (("sum_over_time", False), ("avg_over_time", True)):
        out, present = _sum_or_mean(data.values, lo, hi, mean=mean, prefix=method)
        _compare_with_reference(name, data, out, present)


@pytest.mark.parametrize("method", [True, False])
@given(data=datasets())
def test_extreme_methods_agree_with_reference(data: Dataset, method: bool) -> None:
    lo, hi = window_bounds(data.timestamps, data.offsets, data.eval_ts, data.range_ms)
    for name, largest in (("max_over_time", True), ("min_over_time", False)):
        out, present = _range_extreme(data.values, lo, hi, largest=largest, sparse=method)
        _compare_with_reference(name, data, out, present)


def _compare_with_reference(
    name: str, data: Dataset, out: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
) -> None:
    with np.errstate(all="ignore"):
        for i in range(len(data.series)):
            for j, t in enumerate(data.steps):
                want = REFERENCES[name](data.window(i, t), t, data.range_ms, [])
                assert present[i, j] == (want is not None)
                if want is not None:
                    assert same(float(out[i, j]), want), (name, i, t, out[i, j], want)


@given(data=datasets(), seed=st.integers(0, 2**32 - 1))
def test_window_bounds_accept_evaluation_times_in_any_order(data: Dataset, seed: int) -> None:
    shuffled = np.random.default_rng(seed).permutation(data.eval_ts)
    lo, hi = window_bounds(data.timestamps, data.offsets, shuffled, data.range_ms)
    lo_sorted, hi_sorted = window_bounds(
        data.timestamps, data.offsets, np.sort(shuffled), data.range_ms
    )
    back = np.argsort(np.argsort(shuffled, kind="stable"), kind="stable")
    assert (lo == lo_sorted[:, back]).all()
    assert (hi == hi_sorted[:, back]).all()
