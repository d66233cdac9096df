"""Classic histogram kernels against naive references written from Prometheus 3.5's quantile.go."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.promql.histogram import (
    bad_bucket_label_warning,
    forced_monotonicity_info,
    histogram_fraction,
    histogram_quantile,
    invalid_quantile_warning,
    parse_le,
)

F = np.float64
Bucket = tuple[float, float]


def almost_equal(a: float, b: float, eps: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    tiny = sys.float_info.min
    if a == 0 or b == 0 or abs_sum < tiny:
        return diff < eps * tiny
    return diff / min(abs_sum, sys.float_info.max) < eps


def coalesce(buckets: list[Bucket]) -> list[list[float]]:
    out: list[list[float]] = []
    for ub, c in buckets:
        if out and out[-1][0] == ub:
            out[-1][1] = float(F(out[-1][1]) + F(c))
        else:
            out.append([ub, c])
    return out


def ref_bucket_quantile(q: float, buckets: list[Bucket]) -> tuple[float, bool]:
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    bs = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(bs[-1][0]) or bs[-1][0] < 0:
        return math.nan, False
    cb = coalesce(bs)
    forced = False
    prev = cb[0][1]
    for i in range(1, len(cb)):
        curr = cb[i][1]
        if curr == prev:
            continue
        if almost_equal(prev, curr, 1e-12):
            cb[i][1] = prev
            continue
        if curr < prev:
            cb[i][1] = prev
            forced = True
            continue
        prev = curr
    if len(cb) < 2:
        return math.nan, False
    observations = cb[-1][1]
    if observations == 0:
        return math.nan, False
    rank = F(q) * F(observations)
    lo, hi = 0, len(cb) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if not cb[mid][1] >= rank:
            lo = mid + 1
        else:
            hi = mid
    b = lo
    if b == len(cb) - 1:
        return cb[-2][0], forced
    if b == 0 and cb[0][0] <= 0:
        return cb[0][0], forced
    start = F(0.0)
    end = F(cb[b][0])
    count = F(cb[b][1])
    if b > 0:
        start = F(cb[b - 1][0])
        count = count - F(cb[b - 1][1])
        rank = rank - F(cb[b - 1][1])
    return float(start + (end - start) * (rank / count)), forced


def ref_bucket_fraction(lower: float, upper: float, buckets: list[Bucket]) -> float:
    bs = sorted(buckets, key=lambda b: b[0])
    if not (math.isinf(bs[-1][0]) and bs[-1][0] > 0):
        return math.nan
    cb = coalesce(bs)
    count = cb[-1][1]
    if count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = lower_rank = upper_rank = F(0.0)
    lower_set = upper_set = False
    for i, (ub, c) in enumerate(cb):
        lb = -math.inf if i == 0 else cb[i - 1][0]

        def interp(v: float, lb: float = lb, ub: float = ub, c: float = c, r: F = rank) -> F:
            return F(r + (F(c) - r) * (F(v) - F(lb)) / (F(ub) - F(lb)))

        if not lower_set and lb >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and lb >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and lb < lower < ub:
            lower_rank, lower_set = interp(lower), True
        if not upper_set and lb < upper < ub:
            upper_rank, upper_set = interp(upper), True
        if lower_set and upper_set:
            break
        rank = F(c)
    if not lower_set or lower_rank > count:
        lower_rank = F(count)
    if not upper_set or upper_rank > count:
        upper_rank = F(count)
    return float((upper_rank - lower_rank) / F(count))


BOUNDS = st.sampled_from([-math.inf, -5.0, -1.0, 0.0, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, math.inf])
COUNTS = st.one_of(
    st.integers(0, 50).map(float),
    st.sampled_from([math.nan, 0.0, 1e-13, 1.0 + 1e-14, 1e300]),
    st.floats(0, 100),
)


class Histograms:
    def __init__(
        self, bounds: list[float], rows: list[list[float | None]], groups: list[int], n_groups: int
    ) -> None:
        self.bounds = bounds
        self.rows = rows
        self.groups = groups
        self.n_groups = n_groups
        self.ub = np.array(bounds)
        self.counts = np.array([[math.nan if v is None else v for v in r] for r in rows])
        self.present = np.array([[v is not None for v in r] for r in rows], dtype=np.bool_)
        self.gid = np.array(groups, dtype=np.int64)

    def buckets(self, g: int, s: int) -> list[Bucket]:
        return [
            (ub, float(r[s]))  # type: ignore[arg-type]
            for ub, r, gid in zip(self.bounds, self.rows, self.groups, strict=True)
            if gid == g and r[s] is not None
        ]

    def __repr__(self) -> str:
        return f"Histograms({self.bounds!r}, {self.rows!r}, {self.groups!r}, {self.n_groups})"


@st.composite
def histograms(draw: st.DrawFn) -> Histograms:
    n_groups = draw(st.integers(1, 3))
    n_steps = draw(st.integers(1, 3))
    bounds: list[float] = []
    rows: list[list[float | None]] = []
    groups: list[int] = []
    for g in range(n_groups):
        n = draw(st.integers(1, 8))
        for _ in range(n):
            bounds.append(draw(BOUNDS))
            groups.append(g)
            monotone_base = draw(st.booleans())
            row = draw(st.lists(st.one_of(st.none(), COUNTS), min_size=n_steps, max_size=n_steps))
            rows.append(
                [
                    None
                    if v is None
                    else (
                        v + 100 * bounds[-1]
                        if monotone_base and math.isfinite(bounds[-1]) and bounds[-1] > 0
                        else v
                    )
                    for v in row
                ]
            )
    return Histograms(bounds, rows, groups, n_groups)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))


@given(h=histograms(), q=st.sampled_from([-0.1, 0.0, 0.1, 0.5, 0.9, 0.99, 1.0, 1.1, math.nan]))
def test_histogram_quantile_matches_bucket_quantile_reference(h: Histograms, q: float) -> None:
    out, present, forced = histogram_quantile(q, h.ub, h.counts, h.present, h.gid, h.n_groups)
    with np.errstate(all="ignore"):
        for g in range(h.n_groups):
            any_forced = False
            for s in range(h.counts.shape[1]):
                buckets = h.buckets(g, s)
                assert present[g, s] == bool(buckets)
                if buckets:
                    want, was_forced = ref_bucket_quantile(q, buckets)
                    any_forced |= was_forced
                    assert same(float(out[g, s]), want), (g, s, buckets, out[g, s], want)
            assert bool(forced[g]) == any_forced


@given(
    h=histograms(),
    lower=st.sampled_from([-math.inf, -2.0, 0.0, 0.3, 1.0, 7.0, math.inf, math.nan]),
    upper=st.sampled_from([-1.0, 0.0, 0.5, 2.5, 50.0, math.inf, math.nan]),
)
def test_histogram_fraction_matches_bucket_fraction_reference(
    h: Histograms, lower: float, upper: float
) -> None:
    out, present = histogram_fraction(lower, upper, h.ub, h.counts, h.present, h.gid, h.n_groups)
    with np.errstate(all="ignore"):
        for g in range(h.n_groups):
            for s in range(h.counts.shape[1]):
                buckets = h.buckets(g, s)
                assert present[g, s] == bool(buckets)
                if buckets:
                    want = ref_bucket_fraction(lower, upper, buckets)
                    assert same(float(out[g, s]), want), (g, s, buckets, out[g, s], want)


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    ub = np.array([0.1, 0.5, 1.0, math.inf])
    counts = np.array([[10.0], [50.0], [90.0], [100.0]])
    present = np.ones_like(counts, dtype=np.bool_)
    out, _, forced = histogram_quantile(0.5, ub, counts, present, np.zeros(4, np.int64), 1)
    assert out[0, 0] == pytest.approx(0.1 + 0.4 * (40 / 40))
    assert not forced[0]


def test_histogram_quantile_without_inf_bucket_is_nan() -> None:
    ub = np.array([0.1, 1.0])
    counts = np.array([[1.0], [2.0]])
    out, present, _ = histogram_quantile(0.5, ub, counts, counts > 0, np.zeros(2, np.int64), 1)
    assert present[0, 0]
    assert math.isnan(out[0, 0])


def test_histogram_quantile_flags_forced_monotonicity() -> None:
    ub = np.array([1.0, 2.0, math.inf])
    counts = np.array([[5.0], [3.0], [6.0]])
    _, _, forced = histogram_quantile(0.5, ub, counts, counts > 0, np.zeros(3, np.int64), 1)
    assert forced.tolist() == [True]


def test_annotation_texts_match_prometheus() -> None:
    assert forced_monotonicity_info("http_request_duration_seconds_bucket") == (
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
        "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
        'for metric name "http_request_duration_seconds_bucket"'
    )
    assert bad_bucket_label_warning("foo_bucket", "abc") == (
        'PromQL warning: bucket label "le" is missing or has a malformed value of "abc" '
        'for metric name "foo_bucket"'
    )
    assert invalid_quantile_warning(1.5) == (
        "PromQL warning: quantile value should be between 0 and 1, got 1.5"
    )
    assert invalid_quantile_warning(-1e-07).endswith("got -1e-07")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("+Inf", math.inf),
        ("inf", math.inf),
        ("-Infinity", -math.inf),
        ("0.25", 0.25),
        ("1e3", 1000.0),
        ("0x1p-2", 0.25),
        ("", None),
        (" 1", None),
        ("1_0", None),
        ("1e999", None),
        ("abc", None),
    ],
)
def test_parse_le_follows_go_parse_float(text: str, want: float | None) -> None:
    assert parse_le(text) == want


def test_parse_le_accepts_nan() -> None:
    value = parse_le("NaN")
    assert value is not None
    assert math.isnan(value)
