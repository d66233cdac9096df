"""Vectorized PromQL kernels: range-vector functions over ragged numpy arrays.

The engine hands over flat per-series samples (`timestamps_ms`, `values`, series i owning
`offsets[i]:offsets[i+1]`) and window bounds from `window_bounds`: flat indices `lo`, `hi` of
shape (n_series, n_steps), window = samples lo..hi-1 = times in (t - range_ms, t]. Each kernel
computes every series and every step at once and returns `(out, present)`; `present` is False
where Prometheus would emit no sample. Python loops run over positions inside windows
("columns", vectorized over cache-sized chunks of windows), never over samples; long windows
use whole-array methods instead (compensated prefix sums, a sparse table for extremes).
Arithmetic follows Prometheus 3.5's promql/functions.go step by step (Kahan sums, the
direct/incremental mean switch, counter-reset and extrapolation rules), so results agree to
the last bit in normal cases and to a few ulps on the prefix-sum path.
Staleness markers never reach these kernels: the engine drops them before windowing.
Grouped reductions for aggregation operators live in `kernels_aggregate`.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from watchkeeper.promql.errors import EvaluationError, QueryTimeoutError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Param = float | npt.NDArray[Any]
"""A scalar function argument: one float for all steps, or one value per step."""

KernelResult = tuple[FloatArray, BoolArray]

_MAX_PAD_ELEMENTS = 1 << 22
"""Upper bound on the elements of one padded (windows x positions) block for sorting."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _quiet(fn: _F) -> _F:
    """Runs a kernel with floating-point warnings off: NaN and Inf are ordinary PromQL values."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class RangeKernel(Protocol):
    """A range-vector function: `f(timestamps_ms, values, lo, hi, eval_ts_ms, range_ms, *params)`.

    `eval_ts_ms` holds the window end of each step (evaluation time minus the effective
    offset); params are the function's scalar arguments, each a float or one value per step.
    """

    def __call__(  # noqa: PLR0917
        self,
        timestamps_ms: IntArray,
        values: FloatArray,
        lo: IntArray,
        hi: IntArray,
        eval_ts_ms: IntArray,
        range_ms: int,
        /,
        *params: Param,
    ) -> KernelResult:
        """Computes the function for every series and step: (out, present)."""
        ...


WindowFn = Callable[[IntArray, FloatArray, IntArray, IntArray, IntArray, int], KernelResult]
"""A parameterless range function's body: (timestamps_ms, values, lo, hi, eval_ts_ms, range_ms)."""


def _kernel(doc: str, body: WindowFn) -> RangeKernel:
    """A parameterless `RangeKernel` from its body, run with floating-point warnings off."""

    def kernel(  # noqa: PLR0917
        timestamps_ms: IntArray,
        values: FloatArray,
        lo: IntArray,
        hi: IntArray,
        eval_ts_ms: IntArray,
        range_ms: int,
        /,
        *params: Param,
    ) -> KernelResult:
        with np.errstate(all="ignore"):
            return body(timestamps_ms, values, lo, hi, eval_ts_ms, range_ms)

    kernel.__doc__ = doc
    return kernel


def _counted(counts: IntArray, present: BoolArray) -> KernelResult:
    """A count per window where it holds samples (NaN elsewhere)."""
    return np.where(present, counts.astype(np.float64), np.nan), present


# --------------------------------------------------------------------------------------------
# The query deadline, checked between chunks of work.

_DEADLINE: ContextVar[float] = ContextVar("kernel_deadline", default=math.inf)
"""The `time.monotonic()` past which the running query has timed out (none by default)."""

_COLUMNS_PER_CHECK = 256
"""Columns of a fold between two deadline checks."""

_SAMPLES_PER_CHECK = 1 << 14
"""Samples of a scalar loop over one window between two deadline checks."""

_FEW_WINDOWS = 16
"""Up to this many windows, a scalar loop per window beats one numpy call per position."""


@contextmanager
def deadline(monotonic_s: float) -> Iterator[None]:
    """Lets kernels run inside it stop with the query's timeout error past `monotonic_s`.

    Kernels keep the signature `RangeKernel` and check the deadline between chunks of work
    (columns of a fold, chunks of windows), so one long call cannot outlive --query.timeout.
    """
    token = _DEADLINE.set(monotonic_s)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raises QueryTimeoutError when the query running this kernel is past its deadline."""
    if time.monotonic() > _DEADLINE.get():
        raise QueryTimeoutError("query execution")


# --------------------------------------------------------------------------------------------
# Window bounds and the column walk.


def window_bounds(
    timestamps_ms: IntArray, offsets: IntArray, eval_ts_ms: IntArray, range_ms: int
) -> tuple[IntArray, IntArray]:
    """Returns flat indices (lo, hi), each (n_series, n_steps), of the samples in each window.

    Windows are left-open and right-closed, (t - range_ms, t], as in Prometheus 3. Timestamps
    must increase strictly within each series. One `np.searchsorted` call covers all series
    by shifting each series into its own key band.

    Example:
        >>> lo, hi = window_bounds(
        ...     np.array([10, 20, 30, 5], dtype=np.int64),
        ...     np.array([0, 3, 4], dtype=np.int64),
        ...     np.array([20, 30], dtype=np.int64),
        ...     10,
        ... )
        >>> lo.tolist(), hi.tolist()
        ([[1, 2], [4, 4]], [[2, 3], [4, 4]])
    """
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    offs = np.asarray(offsets, dtype=np.int64)
    steps = np.asarray(eval_ts_ms, dtype=np.int64)
    n_series = len(offs) - 1
    n_steps = len(steps)
    if n_series <= 0 or n_steps == 0 or len(ts) == 0:
        base = np.broadcast_to(offs[:-1, None], (max(n_series, 0), n_steps)).copy()
        return base, base.copy()
    if n_series * n_steps * _SEARCH_COST < len(ts) and n_series <= _FEW_SERIES:
        # Few windows over many samples (a subquery with a tiny step): binary searches per
        # series cost O(windows x log(samples)) instead of a pass over every sample.
        return _window_bounds_by_series(ts, offs, steps, range_ms)
    if n_steps > 1 and bool((np.diff(steps) < 0).any()):
        return _window_bounds_unsorted(ts, offs, steps, range_ms)
    # Sample k enters hi from the first step t >= ts[k] on, and lo from the first step with
    # t - range >= ts[k]; counting entries per (series, step) and summing them up the steps
    # gives both bounds in O(samples + windows), all series at once.
    width = n_steps + 1
    row = np.repeat(np.arange(n_series, dtype=np.int64) * width, np.diff(offs))
    bounds = []
    for shift in (range_ms, 0):
        first_step = np.searchsorted(steps - np.int64(shift), ts, side="left")
        hist = np.bincount(row + first_step, minlength=n_series * width)
        counts = np.cumsum(hist.reshape(n_series, width)[:, :n_steps], axis=1, dtype=np.int64)
        counts += offs[:-1, None]
        bounds.append(counts)
    return bounds[0], bounds[1]


_SEARCH_COST = 64
"""Samples one binary search costs about as much as (window_bounds' pass per sample)."""

_FEW_SERIES = 4096
"""Most series for which window_bounds searches series by series."""


def _window_bounds_by_series(
    ts: IntArray, offs: IntArray, steps: IntArray, range_ms: int
) -> tuple[IntArray, IntArray]:
    """window_bounds by binary searches in each series' own samples (steps in any order)."""
    n_series = len(offs) - 1
    lo = np.empty((n_series, len(steps)), dtype=np.int64)
    hi = np.empty((n_series, len(steps)), dtype=np.int64)
    starts = steps - np.int64(range_ms)
    for i, (a, b) in enumerate(zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)):
        lo[i] = a + np.searchsorted(ts[a:b], starts, side="right")
        hi[i] = a + np.searchsorted(ts[a:b], steps, side="right")
    return lo, hi


def _window_bounds_unsorted(
    ts: IntArray, offs: IntArray, steps: IntArray, range_ms: int
) -> tuple[IntArray, IntArray]:
    """window_bounds for steps in any order: one searchsorted over per-series key bands."""
    n_series = len(offs) - 1
    t_min = min(int(ts.min()), int(steps.min()) - range_ms)
    t_max = max(int(ts.max()), int(steps.max()))
    span = t_max - t_min + 2
    if span * n_series < (1 << 62):
        band = np.arange(n_series, dtype=np.int64) * np.int64(span)
        keys = ts - np.int64(t_min) + np.repeat(band, np.diff(offs))
        ends = (steps - np.int64(t_min))[None, :] + band[:, None]
        lo = np.searchsorted(keys, ends - np.int64(range_ms), side="right").astype(np.int64)
        hi = np.searchsorted(keys, ends, side="right").astype(np.int64)
        return lo, hi
    # NB: absurd time spans would overflow the key bands; fall back to one search per series.
    lo = np.empty((n_series, len(steps)), dtype=np.int64)
    hi = np.empty((n_series, len(steps)), dtype=np.int64)
    for i in range(n_series):
        a, b = int(offs[i]), int(offs[i + 1])
        lo[i] = a + np.searchsorted(ts[a:b], steps - range_ms, side="right")
        hi[i] = a + np.searchsorted(ts[a:b], steps, side="right")
    return lo, hi


_CHUNK_WINDOWS = 1 << 14
"""Windows folded together: keeps each column's arrays in the CPU cache."""


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Windows sorted longest first: position j of the first `active[j]` windows exists."""

    start: IntArray
    length: IntArray
    active: list[int]

    def columns(self, first: int = 0) -> Iterator[tuple[int, int, IntArray]]:
        """Yields (j, k, flat sample index of position j in the first k windows)."""
        for j in range(first, len(self.active)):
            if not j % _COLUMNS_PER_CHECK:
                check_deadline()
            k = self.active[j]
            yield j, k, self.start[:k] + j


@dataclass(frozen=True, slots=True)
class _Windows:
    """The windows that hold at least `min_len` samples, in flat (series, step) order.

    `ids` are flat window numbers (series * n_steps + step), `start` the index of each
    window's first sample and `length` its number of samples.
    """

    ids: IntArray
    start: IntArray
    length: IntArray
    shape: tuple[int, int]

    @classmethod
    def of(cls, lo: IntArray, hi: IntArray, min_len: int = 1) -> _Windows:
        """Selects the windows of (lo, hi) that hold at least min_len samples."""
        lengths = (hi - lo).ravel()
        ids = np.flatnonzero(lengths >= min_len).astype(np.int64)
        return cls(ids, lo.ravel()[ids], lengths[ids], (lo.shape[0], lo.shape[1]))

    def subset(self, which: IntArray) -> _Windows:
        """The windows at positions `which`."""
        return _Windows(self.ids[which], self.start[which], self.length[which], self.shape)

    def __len__(self) -> int:
        return len(self.ids)

    def fold(
        self,
        fn: Callable[[_Chunk, IntArray], FloatArray],
        n_out: int = 1,
        *,
        max_elements: int = 1 << 62,
    ) -> FloatArray:
        """Runs a column fold `fn(chunk, positions)` over cache-sized chunks of windows.

        Windows are sorted by length, longest first, so each chunk's column j covers a
        prefix of it; `positions` index this object's per-window arrays for the chunk.
        `fn` returns one value per window, or an (n_out, windows) array; so does `fold`.
        A chunk spans at most `max_elements` window positions (longest length x windows).
        """
        out = np.empty((n_out, len(self)) if n_out > 1 else len(self))
        if not len(self):
            return out
        max_len = int(self.length.max())
        key = self.length.astype(np.uint16 if max_len < (1 << 16) else np.int64)
        # NB: a stable sort of small unsigned ints is a radix sort; reversed gives longest first.
        order = np.argsort(key, kind="stable")[::-1]
        c0 = 0
        while c0 < len(order):
            check_deadline()
            size = max(1, min(_CHUNK_WINDOWS, max_elements // int(self.length[order[c0]])))
            pos = order[c0 : c0 + size]
            c0 += size
            length = self.length[pos]
            top = int(length[0])
            at_most = np.cumsum(np.bincount(length, minlength=top + 1))
            active = (len(pos) - at_most[:top]).tolist()
            out[..., pos] = fn(_Chunk(self.start[pos], length, active), pos)
        return out

    def steps(self) -> IntArray:
        """The step number of each window."""
        steps: IntArray = self.ids % max(self.shape[1], 1)
        return steps

    def scatter(self, result: FloatArray) -> KernelResult:
        """Places per-window results back into (n_series, n_steps) arrays."""
        out = np.full(self.shape[0] * self.shape[1], np.nan)
        present = np.zeros(self.shape[0] * self.shape[1], dtype=np.bool_)
        out[self.ids] = result
        present[self.ids] = True
        return out.reshape(self.shape), present.reshape(self.shape)


def _per_step(param: Param, n_steps: int) -> FloatArray:
    """Broadcasts a scalar argument to one float per step."""
    arr = np.asarray(param, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n_steps, float(arr))
    if arr.shape != (n_steps,):
        msg = f"scalar argument has {arr.shape[0]} values for {n_steps} steps"
        raise ValueError(msg)
    return arr


def kahan_inc(
    inc: FloatArray, total: FloatArray, comp: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """One vectorized step of Prometheus's kahanSumInc (Neumaier variant, C reset at Inf)."""
    t = total + inc
    comp = comp + np.where(np.abs(total) >= np.abs(inc), (total - t) + inc, (inc - t) + total)
    comp = np.where(np.isinf(t), 0.0, comp)
    return t, comp


def _go_f(x: float) -> str:
    """Formats a float as Go's %f verb does."""
    if math.isnan(x):
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:f}"


def _range_seconds(range_ms: int) -> float:
    """The range in seconds exactly as Go's Duration.Seconds() computes it."""
    return float(range_ms // 1000) + float(range_ms % 1000) / 1000


# --------------------------------------------------------------------------------------------
# rate, increase, delta, irate, idelta.


def _extrapolated_rate(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    *,
    is_counter: bool,
    is_rate: bool,
) -> KernelResult:
    """Prometheus's extrapolatedRate for float samples; windows with < 2 samples are absent."""
    w = _Windows.of(lo, hi, 2)
    if not len(w):
        return w.scatter(np.empty(0))
    first = values[w.start]
    result = values[w.start + w.length - 1] - first
    if is_counter:
        result = _add_reset_corrections(values, lo, hi, w, result)
    end_all = np.asarray(eval_ts_ms, dtype=np.int64)[w.steps()]
    range_s = _range_seconds(range_ms)
    # NB: cache-sized slices keep the many temporaries out of main memory.
    for c0 in range(0, len(w), _CHUNK_WINDOWS * 4):
        sl = slice(c0, c0 + _CHUNK_WINDOWS * 4)
        start, length = w.start[sl], w.length[sl]
        t_first = timestamps_ms[start]
        t_last = timestamps_ms[start + length - 1]
        end = end_all[sl]
        to_start = (t_first - (end - np.int64(range_ms))) / 1000
        to_end = (end - t_last) / 1000
        sampled = (t_last - t_first) / 1000
        average = sampled / (length - 1)
        threshold = average * 1.1
        to_start = np.where(to_start >= threshold, average / 2, to_start)
        res = result[sl]
        if is_counter:
            f = first[sl]
            to_zero = sampled * (f / res)
            use_zero = (res > 0) & (f >= 0) & (to_zero < to_start)
            to_start = np.where(use_zero, to_zero, to_start)
        interval = sampled + to_start
        interval = interval + np.where(to_end >= threshold, average / 2, to_end)
        factor = interval / sampled
        if is_rate:
            factor = factor / range_s
        result[sl] = res * factor
    return w.scatter(result)


def _add_reset_corrections(
    values: FloatArray, lo: IntArray, hi: IntArray, w: _Windows, result: FloatArray
) -> FloatArray:
    """Adds the value before each counter reset in each window, in sample order."""
    drops = np.zeros(len(values), dtype=np.bool_)
    drops[1:] = values[1:] < values[:-1]
    # NB: a drop across a series boundary is harmless: windows never start before their series,
    # and position lo itself is never counted (a reset needs its predecessor in the window).
    resets = np.flatnonzero(drops).astype(np.int64)
    if not len(resets):
        return result
    first_reset = np.searchsorted(resets, w.start + 1, side="left")
    n_resets = np.searchsorted(resets, w.start + w.length, side="left") - first_reset
    with_resets = np.flatnonzero(n_resets > 0)
    if not len(with_resets):
        return result
    order = with_resets[np.argsort(-n_resets[with_resets], kind="stable")]
    counts = n_resets[order]
    begin = first_reset[order]
    acc = result[order]
    for j in range(int(counts[0])):
        if not j % _COLUMNS_PER_CHECK:
            check_deadline()
        k = int(np.count_nonzero(counts > j))
        acc[:k] = acc[:k] + values[resets[begin[:k] + j] - 1]
    result = result.copy()
    result[order] = acc
    return result


rate = _kernel(
    "Per-second increase with counter-reset correction and extrapolation (`rate`).",
    lambda ts, v, lo, hi, ev, r: _extrapolated_rate(
        ts, v, lo, hi, ev, r, is_counter=True, is_rate=True
    ),
)


increase = _kernel(
    "Increase over the range with counter-reset correction and extrapolation (`increase`).",
    lambda ts, v, lo, hi, ev, r: _extrapolated_rate(
        ts, v, lo, hi, ev, r, is_counter=True, is_rate=False
    ),
)


delta = _kernel(
    "Gauge difference over the range, extrapolated to the window edges (`delta`).",
    lambda ts, v, lo, hi, ev, r: _extrapolated_rate(
        ts, v, lo, hi, ev, r, is_counter=False, is_rate=False
    ),
)


def _instant_value(
    timestamps_ms: IntArray, values: FloatArray, lo: IntArray, hi: IntArray, *, is_rate: bool
) -> KernelResult:
    """irate/idelta from the last two samples of each window."""
    w = _Windows.of(lo, hi, 2)
    last_i = w.start + w.length - 1
    prev = values[last_i - 1]
    last = values[last_i]
    result = last - prev
    if is_rate:
        # NB: after a counter reset Prometheus keeps the last value itself (NaN never resets).
        result = np.where(last < prev, last, result)
        result = result / ((timestamps_ms[last_i] - timestamps_ms[last_i - 1]) / 1000)
    return w.scatter(result)


irate = _kernel(
    "Per-second rate from the last two samples (`irate`).",
    lambda ts, v, lo, hi, ev, r: _instant_value(ts, v, lo, hi, is_rate=True),
)


idelta = _kernel(
    "Difference of the last two samples (`idelta`).",
    lambda ts, v, lo, hi, ev, r: _instant_value(ts, v, lo, hi, is_rate=False),
)


# --------------------------------------------------------------------------------------------
# Linear regression: deriv, predict_linear.


def _regression_one(
    ts: IntArray, ys: FloatArray, base: int
) -> tuple[list[float], list[float], bool]:
    """One window of `_linear_regression`'s fold as a scalar loop, in the fold's order.

    Returns the Kahan sums and compensations of x, y, xy, x² and whether y is constant.
    Python floats round as numpy's float64 does, so the sums are the fold's, bit for bit.
    """
    isinf = math.isinf
    sums = [0.0, 0.0, 0.0, 0.0]
    comps = [0.0, 0.0, 0.0, 0.0]
    init_y = float(ys[0])
    const_y = True
    for a0 in range(0, len(ys), _SAMPLES_PER_CHECK):
        check_deadline()
        chunk_ts = ts[a0 : a0 + _SAMPLES_PER_CHECK].tolist()
        chunk_ys = ys[a0 : a0 + _SAMPLES_PER_CHECK].tolist()
        for t_ms, y in zip(chunk_ts, chunk_ys, strict=True):
            # NB: the fold skips the first sample; comparing it too changes nothing, as
            # windows hold two samples or more (a NaN first sample is unequal to the next).
            if const_y and y != init_y:
                const_y = False
            x = (t_ms - base) / 1e3
            for a, inc in enumerate((x, y, x * y, x * x)):
                total = sums[a]
                t = total + inc
                if isinf(t):
                    comps[a] = 0.0
                elif abs(total) >= abs(inc):
                    comps[a] += (total - t) + inc
                else:
                    comps[a] += (inc - t) + total
                sums[a] = t
    return sums, comps, const_y


def _linear_regression(
    timestamps_ms: IntArray, values: FloatArray, w: _Windows, intercept_ms: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Prometheus's linearRegression per window (Kahan sums of x, y, xy, x²).

    Up to `_FEW_WINDOWS` windows per chunk (a subquery with a tiny step) run a scalar loop
    per window, the rest a column fold: both add in sample order, so they agree bit for bit.
    """

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        n_win = len(pos)
        init_y = values[chunk.start]
        base = intercept_ms[pos]
        if n_win <= _FEW_WINDOWS:
            sums_t = np.empty((4, n_win))
            comps_t = np.empty((4, n_win))
            const_y = np.empty(n_win, dtype=np.bool_)
            for i, (a, n, b) in enumerate(
                zip(chunk.start.tolist(), chunk.length.tolist(), base.tolist(), strict=True)
            ):
                s, c, const = _regression_one(timestamps_ms[a : a + n], values[a : a + n], b)
                sums_t[:, i], comps_t[:, i], const_y[i] = s, c, const
            sums, comps = list(sums_t), list(comps_t)
        else:
            sums = [np.zeros(n_win) for _ in range(4)]
            comps = [np.zeros(n_win) for _ in range(4)]
            const_y = np.ones(n_win, dtype=np.bool_)
            for j, k, idx in chunk.columns():
                y = values[idx]
                if j:
                    const_y[:k] &= y == init_y[:k]
                x = (timestamps_ms[idx] - base[:k]) / 1e3
                for a, inc in enumerate((x, y, x * y, x * x)):
                    sums[a][:k], comps[a][:k] = kahan_inc(inc, sums[a][:k], comps[a][:k])
        n = chunk.length.astype(np.float64)
        sx, sy, sxy, sx2 = (s + c for s, c in zip(sums, comps, strict=True))
        cov_xy = sxy - sx * sy / n
        var_x = sx2 - sx * sx / n
        slope = cov_xy / var_x
        intercept = sy / n - slope * sx / n
        inf_y = np.isinf(init_y)
        slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
        intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
        return np.stack([slope, intercept])

    result = w.fold(fold, n_out=2)
    return result[0], result[1]


@_quiet
def deriv(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Per-second slope of a least-squares line, x measured from the first sample (`deriv`)."""
    w = _Windows.of(lo, hi, 2)
    slope, _ = _linear_regression(timestamps_ms, values, w, timestamps_ms[w.start])
    return w.scatter(slope)


@_quiet
def predict_linear(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Value a least-squares line predicts `t` seconds after evaluation (`predict_linear`).

    params: `t_s` (float or per step) and optionally the evaluation times (int64 per step):
    Prometheus regresses around the evaluation time, which differs from the window end
    `eval_ts_ms` when an offset or @ applies; it defaults to `eval_ts_ms`.
    """
    n_steps = lo.shape[1]
    duration = _per_step(params[0], n_steps)
    intercept_steps = (
        np.asarray(params[1], dtype=np.int64)
        if len(params) > 1
        else np.asarray(eval_ts_ms, dtype=np.int64)
    )
    w = _Windows.of(lo, hi, 2)
    steps = w.steps()
    slope, intercept = _linear_regression(timestamps_ms, values, w, intercept_steps[steps])
    return w.scatter(slope * duration[steps] + intercept)


# --------------------------------------------------------------------------------------------
# Counting: changes, resets, count, present.


def _pair_count(flags: BoolArray, lo: IntArray, hi: IntArray) -> KernelResult:
    """Counts flagged consecutive pairs (flags[k] compares k-1 and k) inside each window."""
    prefix = np.zeros(len(flags) + 1, dtype=np.int64)
    np.cumsum(flags, out=prefix[1:])
    nonempty = hi > lo
    start = np.minimum(lo + 1, hi)
    counts = (prefix[hi] - prefix[start]).astype(np.float64)
    return np.where(nonempty, counts, np.nan), nonempty


@_quiet
def changes(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Number of value changes between consecutive samples; NaN to NaN is no change."""
    flags = np.zeros(len(values), dtype=np.bool_)
    prev, cur = values[:-1], values[1:]
    flags[1:] = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    return _pair_count(flags, lo, hi)


@_quiet
def resets(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Number of counter resets (a sample lower than its predecessor)."""
    flags = np.zeros(len(values), dtype=np.bool_)
    flags[1:] = values[1:] < values[:-1]
    return _pair_count(flags, lo, hi)


count_over_time = _kernel(
    "Number of samples in each window.",
    lambda ts, v, lo, hi, ev, r: _counted(hi - lo, hi > lo),
)


present_over_time = _kernel(
    "1 for every window that holds a sample.",
    lambda ts, v, lo, hi, ev, r: _counted(np.ones_like(hi), hi > lo),
)


def _at(values: FloatArray, index: IntArray, present: BoolArray) -> KernelResult:
    """Gathers values[index] where present (NaN elsewhere)."""
    safe = np.where(present, index, 0)
    if not len(values):
        return np.full(index.shape, np.nan), present
    return np.where(present, values[safe], np.nan), present


last_over_time = _kernel(
    "The most recent sample value in each window.",
    lambda ts, v, lo, hi, ev, r: _at(v, hi - 1, hi > lo),
)


first_over_time = _kernel(
    "The oldest sample value in each window (Prometheus 3.7+, experimental).",
    lambda ts, v, lo, hi, ev, r: _at(v, lo, hi > lo),
)


ts_of_last_over_time = _kernel(
    "The timestamp (seconds) of the most recent sample in each window.",
    lambda ts, v, lo, hi, ev, r: _at(ts / 1000, hi - 1, hi > lo),
)


# --------------------------------------------------------------------------------------------
# Sequential folds: sums, means, variance, extremes.


_BLOCK = 1 << 12
"""Samples per block of the compensated prefix sums (bounds their magnitude and error)."""

_U = 2.0**-53
"""Unit roundoff of float64."""


@dataclass(frozen=True, slots=True)
class _Partial:
    """Sums of one part of each window: value, rounding-error bound, sum of magnitudes."""

    total: FloatArray
    bound: FloatArray
    magnitude: FloatArray


@dataclass(frozen=True, slots=True)
class _CompensatedPrefix:
    """Prefix sums of rows restarting at each row, with TwoSum error prefixes.

    `prefix + err_prefix` is exact up to the error prefix's own rounding, at most
    `_U * slack`; `abs_prefix` bounds the magnitudes summed.
    """

    prefix: FloatArray
    err_prefix: FloatArray
    slack: FloatArray
    abs_prefix: FloatArray

    @classmethod
    def of(cls, rows: FloatArray) -> _CompensatedPrefix:
        """Prefix sums along axis 1 of a 2-D array of finite values."""
        shape = (rows.shape[0], rows.shape[1] + 1)
        prefix = np.zeros(shape)
        np.cumsum(rows, axis=1, out=prefix[:, 1:])
        before, after = prefix[:, :-1], prefix[:, 1:]
        # TwoSum: before + x == after + err exactly.
        b_virtual = after - before
        err = (before - (after - b_virtual)) + (rows - b_virtual)
        del b_virtual
        err_prefix = np.zeros(shape)
        np.cumsum(err, axis=1, out=err_prefix[:, 1:])
        del err
        slack = np.zeros(shape)
        np.cumsum(np.abs(err_prefix[:, 1:]), axis=1, out=slack[:, 1:])
        abs_prefix = np.zeros(shape)
        np.cumsum(np.abs(rows), axis=1, out=abs_prefix[:, 1:])
        return cls(prefix, err_prefix, slack, abs_prefix)

    def part(self, row: IntArray, i: IntArray, j: IntArray) -> _Partial:
        """The sum of elements i..j-1 of each given row."""
        p, e, sl = self.prefix, self.err_prefix, self.slack
        a = p[row, j] - p[row, i]
        b = e[row, j] - e[row, i]
        total = a + b
        bound = _U * (np.abs(a) + np.abs(b) + np.abs(total) + sl[row, j] + sl[row, i])
        width = float(self.prefix.shape[1])
        magnitude = self.abs_prefix[row, j] * (1 + width * _U) - self.abs_prefix[row, i]
        return _Partial(total, bound, magnitude)


def _window_sums(values: FloatArray, w: _Windows) -> tuple[FloatArray, BoolArray]:
    """Window sums from compensated prefix sums, and where they provably match Kahan's.

    Prefix sums restart every `_BLOCK` samples; TwoSum recovers each rounding error, so
    prefix + error prefix is exact up to the error prefix's own rounding, which is bounded.
    A window spanning blocks adds its head (end of its first block), the whole blocks
    between (from compensated prefix sums of block totals) and its tail: O(samples +
    windows) for any window length. A window is accepted when it holds only finite values,
    cannot overflow, and its error bound is below 1e-15 of the result, so that it agrees
    with Prometheus's sequential Kahan sum to a few ulps; the rest need an exact fold.
    """
    n = len(values)
    n_blocks = max(1, -(-n // _BLOCK))
    finite = np.isfinite(values)
    x = np.zeros(n_blocks * _BLOCK)
    x[:n] = np.where(finite, values, 0.0)
    inner = _CompensatedPrefix.of(x.reshape(n_blocks, _BLOCK))
    del x
    bad = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(~finite, out=bad[1:])
    nonzero = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(values != 0, out=nonzero[1:])

    all_blocks = np.arange(n_blocks, dtype=np.int64)
    whole = inner.part(all_blocks, np.zeros_like(all_blocks), np.full_like(all_blocks, _BLOCK))
    outer = _CompensatedPrefix.of(whole.total[None, :])
    bound_prefix = np.zeros(n_blocks + 1)
    np.cumsum(whole.bound, out=bound_prefix[1:])
    mag_prefix = np.zeros(n_blocks + 1)
    np.cumsum(whole.magnitude, out=mag_prefix[1:])

    lo = w.start
    hi = w.start + w.length
    first_block = lo // _BLOCK
    last_block = (hi - 1) // _BLOCK
    spans = last_block > first_block
    head = inner.part(
        first_block, lo - first_block * _BLOCK, np.where(spans, _BLOCK, hi - first_block * _BLOCK)
    )
    tail = inner.part(last_block, np.zeros_like(lo), np.where(spans, hi - last_block * _BLOCK, 0))
    b_lo = np.where(spans, first_block + 1, 0)
    b_hi = np.where(spans, last_block, 0)
    row0 = np.zeros_like(lo)
    mid = outer.part(row0, b_lo, b_hi)
    mid_bound = mid.bound + (bound_prefix[b_hi] - bound_prefix[b_lo]) * (1 + n_blocks * _U)
    mid_mag = (mag_prefix[b_hi] - mag_prefix[b_lo]) * (1 + n_blocks * _U)
    partial = head.total + mid.total
    total = partial + tail.total
    bound = head.bound + mid_bound + tail.bound + _U * (np.abs(partial) + np.abs(total))
    magnitude = head.magnitude + mid_mag + tail.magnitude
    count = w.length.astype(np.float64)
    ok = (
        (bad[hi] == bad[lo])
        & (magnitude < 1e300)
        & (bound * 1.01 <= 1e-15 * np.abs(total))
        & (count * count * _U * _U * magnitude <= 1e-15 * np.abs(total))
    )
    ok |= nonzero[hi] == nonzero[lo]
    total = np.where(nonzero[hi] == nonzero[lo], 0.0, total)
    return np.where(ok, total, np.nan), ok


def _kahan_fold(values: FloatArray) -> Callable[[_Chunk, IntArray], FloatArray]:
    """A fold computing Prometheus's sum_over_time (Kahan) for each window of a chunk."""

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        total = np.zeros(len(pos))
        comp = np.zeros(len(pos))
        for _, k, idx in chunk.columns():
            total[:k], comp[:k] = kahan_inc(values[idx], total[:k], comp[:k])
        result: FloatArray = np.where(np.isinf(total), total, total + comp)
        return result

    return fold


def _mean_fold(values: FloatArray) -> Callable[[_Chunk, IntArray], FloatArray]:
    """A fold computing Prometheus's avg_over_time (direct, then incremental) per window."""

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        total = values[chunk.start].copy()
        comp = np.zeros(len(pos))
        mean = np.zeros(len(pos))
        incremental = np.zeros(len(pos), dtype=np.bool_)
        for j, k, idx in chunk.columns(first=1):
            v = values[idx]
            count = float(j + 1)
            s, c, m, inc = total[:k], comp[:k], mean[:k], incremental[:k]
            new_s, new_c = kahan_inc(v, s, c)
            overflow = np.isinf(new_s)
            direct = ~inc & ~overflow
            switch = ~inc & overflow
            s[direct] = new_s[direct]
            c[direct] = new_c[direct]
            if switch.any():
                m[switch] = s[switch] / (count - 1)
                c[switch] = c[switch] / (count - 1)
                inc |= switch
            if inc.any():
                q = (count - 1) / count
                new_m, new_c = kahan_inc(v[inc] / count, q * m[inc], q * c[inc])
                m[inc] = new_m
                c[inc] = new_c
        n = chunk.length.astype(np.float64)
        result: FloatArray = np.where(incremental, mean + comp, total / n + comp / n)
        return result

    return fold


def _prefix_is_cheaper(values: FloatArray, w: _Windows, ns_per_sample: float) -> bool:
    """Tells whether a whole-array method beats the column fold for these windows.

    Measured: a column fold costs ~8 ns per window position plus ~4 µs of interpreter time
    per column (one column per position of the longest window of each chunk); whole-array
    methods cost `ns_per_sample` per sample plus ~200 ns per window. Long, overlapping
    windows, and few long windows (a subquery with a tiny step), favour the whole-array
    methods; many short ones the fold.
    """
    if not len(w):
        return False
    positions = float(w.length.sum())
    columns = max(float(w.length.max()), positions / _CHUNK_WINDOWS)
    fold_ns = positions * 8 + columns * 4000
    return fold_ns > len(values) * ns_per_sample + len(w) * 200


@_quiet
def _sum_or_mean(
    values: FloatArray, lo: IntArray, hi: IntArray, *, mean: bool, prefix: bool | None = None
) -> KernelResult:
    """sum_over_time or avg_over_time: Kahan folds, or prefix sums where provably exact.

    `prefix` forces a method (tests); by default the cheaper one for the window shape runs.
    """
    w = _Windows.of(lo, hi)
    fold = _mean_fold(values) if mean else _kahan_fold(values)
    if prefix is None:
        prefix = _prefix_is_cheaper(values, w, 220)
    if not prefix:
        return w.scatter(w.fold(fold))
    sums, ok = _window_sums(values, w)
    result = sums / w.length if mean else sums
    rest = np.flatnonzero(~ok)
    if len(rest):
        result[rest] = w.subset(rest).fold(fold)
    return w.scatter(result)


sum_over_time = _kernel(
    "Sum of each window, equal to Prometheus 3.5's Kahan-compensated sum.",
    lambda ts, v, lo, hi, ev, r: _sum_or_mean(v, lo, hi, mean=False),
)


avg_over_time = _kernel(
    "Mean of each window: Kahan direct mean, switching to incremental mean on overflow.",
    lambda ts, v, lo, hi, ev, r: _sum_or_mean(v, lo, hi, mean=True),
)


def _variance_one(xs: FloatArray) -> tuple[float, float]:
    """One window of `_variance`'s fold as a scalar loop: (aux, its compensation).

    Same operations in the same order as the column fold; Python floats round as numpy's
    float64 does, so the two agree bit for bit.
    """
    isinf = math.isinf
    mean = c_mean = aux = c_aux = 0.0
    count = 0.0
    for a0 in range(0, len(xs), _SAMPLES_PER_CHECK):
        check_deadline()
        for f in xs[a0 : a0 + _SAMPLES_PER_CHECK].tolist():
            count += 1.0
            d = f - (mean + c_mean)
            inc = d / count
            t = mean + inc
            if isinf(t):
                c_mean = 0.0
            elif abs(mean) >= abs(inc):
                c_mean += (mean - t) + inc
            else:
                c_mean += (inc - t) + mean
            mean = t
            inc = d * (f - (mean + c_mean))
            t = aux + inc
            if isinf(t):
                c_aux = 0.0
            elif abs(aux) >= abs(inc):
                c_aux += (aux - t) + inc
            else:
                c_aux += (inc - t) + aux
            aux = t
    return aux, c_aux


def _variance(values: FloatArray, w: _Windows) -> FloatArray:
    """Welford's variance with Kahan-compensated mean and sum of squares, per window.

    Up to `_FEW_WINDOWS` windows per chunk (a subquery with a tiny step) run a scalar loop
    per window, the rest a column fold; the recurrence is sequential, so no whole-array
    method reproduces Prometheus's rounding, and both paths agree bit for bit.
    """

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        if len(pos) <= _FEW_WINDOWS:
            parts = [
                _variance_one(values[a : a + n])
                for a, n in zip(chunk.start.tolist(), chunk.length.tolist(), strict=True)
            ]
            aux = np.array([p[0] for p in parts])
            c_aux = np.array([p[1] for p in parts])
        else:
            mean = np.zeros(len(pos))
            c_mean = np.zeros(len(pos))
            aux = np.zeros(len(pos))
            c_aux = np.zeros(len(pos))
            for j, k, idx in chunk.columns():
                f = values[idx]
                d = f - (mean[:k] + c_mean[:k])
                mean[:k], c_mean[:k] = kahan_inc(d / float(j + 1), mean[:k], c_mean[:k])
                dev = d * (f - (mean[:k] + c_mean[:k]))
                aux[:k], c_aux[:k] = kahan_inc(dev, aux[:k], c_aux[:k])
        result: FloatArray = (aux + c_aux) / chunk.length
        return result

    return w.fold(fold)


@_quiet
def stdvar_over_time(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Population variance of each window."""
    w = _Windows.of(lo, hi)
    return w.scatter(_variance(values, w))


@_quiet
def stddev_over_time(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Population standard deviation of each window."""
    w = _Windows.of(lo, hi)
    return w.scatter(np.sqrt(_variance(values, w)))


@_quiet
def _range_extreme(
    values: FloatArray, lo: IntArray, hi: IntArray, *, largest: bool, sparse: bool | None = None
) -> KernelResult:
    """max/min_over_time: a column fold, or a sparse table for long windows.

    Prometheus keeps the first sample and replaces it only by a strictly better one (or when
    it holds NaN), so the result is the first best non-NaN value, NaN if all are NaN. The
    sparse table answers every window from two overlapping power-of-two blocks in
    O(samples x log(window)); ties prefer the left operand, keeping the first of equal
    values (-0 before 0). `sparse` forces a method (tests).
    """
    w = _Windows.of(lo, hi)
    better = np.greater if largest else np.less
    if sparse is None:
        levels = max(1, int(w.length.max()).bit_length()) if len(w) else 1
        sparse = _prefix_is_cheaper(values, w, 30 * levels)
    if not sparse:

        def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
            kept = values[chunk.start].copy()
            for _, k, idx in chunk.columns():
                v = values[idx]
                kept[:k] = np.where(better(v, kept[:k]) | np.isnan(kept[:k]), v, kept[:k])
            return kept

        return w.scatter(w.fold(fold))
    nan = np.isnan(values)
    level = np.where(nan, -np.inf if largest else np.inf, values)
    nan_prefix = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(nan, out=nan_prefix[1:])
    out = np.empty(len(w))
    k_of = np.zeros(len(w), dtype=np.int64)
    if len(w):
        k_of = np.floor(np.log2(w.length)).astype(np.int64)
        # NB: float log2 is exact for powers of two; guard the rounding at other lengths.
        k_of -= (np.left_shift(1, k_of) > w.length).astype(np.int64)
    top = int(k_of.max()) if len(w) else -1
    for k in range(top + 1):
        sel = np.flatnonzero(k_of == k)
        if len(sel):
            left = level[w.start[sel]]
            right = level[w.start[sel] + w.length[sel] - (1 << k)]
            out[sel] = np.where(better(right, left), right, left)
        if k < top:
            a, b = level[: -(1 << k)], level[1 << k :]
            level = np.where(better(b, a), b, a)
    all_nan = nan_prefix[w.start + w.length] - nan_prefix[w.start] == w.length
    return w.scatter(np.where(all_nan, np.nan, out))


def _compare_one(values: FloatArray, largest: bool) -> int:
    """Index in `values` of the sample compareOverTime keeps (ties and NaN as in the fold).

    The fold takes every sample while it holds NaN, then each one at least as good: so it
    ends on the last sample equal to the best non-NaN value, or on the last sample if all
    are NaN. Selection only, so this equals the fold exactly.
    """
    numbers = ~np.isnan(values)
    if not numbers.any():
        return len(values) - 1
    finite = values[numbers]
    best = finite.max() if largest else finite.min()
    return int(np.flatnonzero(values == best)[-1])


def _compare_over_time(
    timestamps_ms: IntArray, values: FloatArray, lo: IntArray, hi: IntArray, *, largest: bool
) -> KernelResult:
    """ts_of_min/max: Prometheus's compareOverTime, keeping the timestamp of the kept value.

    Up to `_FEW_WINDOWS` windows per chunk are searched one window at a time with
    whole-array numpy calls; the rest run a column fold.
    """
    w = _Windows.of(lo, hi)
    better = np.greater_equal if largest else np.less_equal

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        if len(pos) <= _FEW_WINDOWS:
            kept_at = []
            for a, n in zip(chunk.start.tolist(), chunk.length.tolist(), strict=True):
                check_deadline()
                kept_at.append(a + _compare_one(values[a : a + n], largest))
            few: FloatArray = timestamps_ms[np.array(kept_at, dtype=np.int64)] / 1000
            return few
        kept = values[chunk.start].copy()
        kept_ts = timestamps_ms[chunk.start].copy()
        for _, k, idx in chunk.columns():
            v = values[idx]
            take = better(v, kept[:k]) | np.isnan(kept[:k])
            kept[:k] = np.where(take, v, kept[:k])
            kept_ts[:k] = np.where(take, timestamps_ms[idx], kept_ts[:k])
        result: FloatArray = kept_ts / 1000
        return result

    return w.scatter(w.fold(fold))


max_over_time = _kernel(
    "Largest value in each window; NaN only when every sample is NaN.",
    lambda ts, v, lo, hi, ev, r: _range_extreme(v, lo, hi, largest=True),
)


min_over_time = _kernel(
    "Smallest value in each window; NaN only when every sample is NaN.",
    lambda ts, v, lo, hi, ev, r: _range_extreme(v, lo, hi, largest=False),
)


ts_of_max_over_time = _kernel(
    "Timestamp (seconds) of the latest maximum in each window.",
    lambda ts, v, lo, hi, ev, r: _compare_over_time(ts, v, lo, hi, largest=True),
)


ts_of_min_over_time = _kernel(
    "Timestamp (seconds) of the latest minimum in each window.",
    lambda ts, v, lo, hi, ev, r: _compare_over_time(ts, v, lo, hi, largest=False),
)


def _smooth_one(xs: list[float], sf: float, tf: float) -> float:
    """One window of `double_exponential_smoothing`, in the vector fold's operation order."""
    s0, s1 = 0.0, xs[0]
    trend = xs[1] - s1
    for j in range(1, len(xs)):
        x = sf * xs[j]
        if j > 1:
            trend = tf * (s1 - s0) + (1 - tf) * trend
        y = (1 - sf) * (s1 + trend)
        s0 = s1
        s1 = x + y
    return s1


@_quiet
def double_exponential_smoothing(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Holt's double exponential smoothing with factors sf and tf (params, each in (0, 1)).

    Raises:
        EvaluationError: a factor is outside (0, 1) at a step with samples, with
            Prometheus's message.
    """
    n_steps = lo.shape[1]
    sf_all = _per_step(params[0], n_steps)
    tf_all = _per_step(params[1], n_steps)
    nonempty = np.flatnonzero((hi > lo).ravel())
    if len(nonempty):
        steps = nonempty % n_steps
        bad_sf = (sf_all[steps] <= 0) | (sf_all[steps] >= 1)
        bad_tf = (tf_all[steps] <= 0) | (tf_all[steps] >= 1)
        bad = np.flatnonzero(bad_sf | bad_tf)
        if len(bad):
            step = int(steps[bad[0]])
            if bad_sf[bad[0]]:
                msg = f"invalid smoothing factor. Expected: 0 < sf < 1, got: {_go_f(sf_all[step])}"
            else:
                msg = f"invalid trend factor. Expected: 0 < tf < 1, got: {_go_f(tf_all[step])}"
            raise EvaluationError(msg)
    w = _Windows.of(lo, hi, 2)
    win_steps = w.steps()
    sf_win = sf_all[win_steps]
    tf_win = tf_all[win_steps]

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        sf, tf = sf_win[pos], tf_win[pos]
        if len(pos) <= _FEW_WINDOWS:
            return np.array(
                [
                    _smooth_one(values[a : a + n].tolist(), f, t)
                    for a, n, f, t in zip(
                        chunk.start.tolist(),
                        chunk.length.tolist(),
                        sf.tolist(),
                        tf.tolist(),
                        strict=True,
                    )
                ]
            )
        s0 = np.zeros(len(pos))
        s1 = values[chunk.start].copy()
        trend = values[chunk.start + 1] - s1
        for j, k, idx in chunk.columns(first=1):
            x = sf[:k] * values[idx]
            if j > 1:
                trend[:k] = tf[:k] * (s1[:k] - s0[:k]) + (1 - tf[:k]) * trend[:k]
            y = (1 - sf[:k]) * (s1[:k] + trend[:k])
            s0[:k] = s1[:k]
            s1[:k] = x + y
        return s1

    return w.scatter(w.fold(fold))


# --------------------------------------------------------------------------------------------
# Order statistics: quantile_over_time, mad_over_time.


def _sorted_rows(values: FloatArray, chunk: _Chunk) -> tuple[FloatArray, IntArray]:
    """A chunk's windows as rows sorted with NaN last (padding NaN), and NaNs per row."""
    width = int(chunk.length[0])
    pos = np.arange(width, dtype=np.int64)
    inside = pos[None, :] < chunk.length[:, None]
    idx = np.where(inside, chunk.start[:, None] + pos[None, :], 0)
    block = np.where(inside, values[idx], np.nan)
    nan_count = np.count_nonzero(np.isnan(block), axis=1) - (width - chunk.length)
    block.sort(axis=1)
    return block, nan_count.astype(np.int64)


def _quantile_rows(
    q: FloatArray, block: FloatArray, nan_count: IntArray, length: IntArray
) -> FloatArray:
    """Prometheus's quantile() on rows sorted NaN-last, as if NaNs were sorted first."""
    n = length.astype(np.float64)
    rank = q * (n - 1)
    lower = np.maximum(0.0, np.floor(rank))
    upper = np.minimum(n - 1, lower + 1)
    weight = rank - np.floor(rank)

    def pick(r: FloatArray) -> FloatArray:
        ri = np.clip(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0), 0, 1 << 40).astype(np.int64)
        shifted = np.clip(ri - nan_count, 0, block.shape[1] - 1)
        got = np.take_along_axis(block, shifted[:, None], axis=1)[:, 0]
        return np.where(ri < nan_count, np.nan, got)

    result = pick(lower) * (1 - weight) + pick(upper) * weight
    result = np.where(q < 0, -np.inf, result)
    result = np.where(q > 1, np.inf, result)
    return np.where(np.isnan(q), np.nan, result)


@_quiet
def quantile_over_time(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """The φ-quantile (param q per step) of each window, interpolating between neighbours.

    q < 0 gives -Inf, q > 1 gives +Inf, NaN gives NaN (the engine adds the warning).
    """
    q_all = _per_step(params[0], lo.shape[1])
    w = _Windows.of(lo, hi)
    q_win = q_all[w.steps()]

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        block, nan_count = _sorted_rows(values, chunk)
        return _quantile_rows(q_win[pos], block, nan_count, chunk.length)

    return w.scatter(w.fold(fold, max_elements=_MAX_PAD_ELEMENTS))


@_quiet
def mad_over_time(  # noqa: PLR0917
    timestamps_ms: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    eval_ts_ms: IntArray,
    range_ms: int,
    /,
    *params: Param,
) -> KernelResult:
    """Median absolute deviation from the median of each window."""
    w = _Windows.of(lo, hi)

    def fold(chunk: _Chunk, pos: IntArray) -> FloatArray:
        block, nan_count = _sorted_rows(values, chunk)
        length = chunk.length
        half = np.full(len(length), 0.5)
        median = _quantile_rows(half, block, nan_count, length)
        inside = np.arange(block.shape[1])[None, :] < (length - nan_count)[:, None]
        dev = np.where(inside, np.abs(block - median[:, None]), np.nan)
        # NB: deviations from a NaN median are NaN; they are counted as NaNs sort first.
        dev_nan = np.count_nonzero(np.isnan(dev) & inside, axis=1) + nan_count
        dev.sort(axis=1)
        return _quantile_rows(half, dev, dev_nan.astype(np.int64), length)

    return w.scatter(w.fold(fold, max_elements=_MAX_PAD_ELEMENTS))


RANGE_FUNCTIONS: dict[str, RangeKernel] = {
    "rate": rate,
    "increase": increase,
    "delta": delta,
    "irate": irate,
    "idelta": idelta,
    "deriv": deriv,
    "predict_linear": predict_linear,
    "changes": changes,
    "resets": resets,
    "avg_over_time": avg_over_time,
    "sum_over_time": sum_over_time,
    "min_over_time": min_over_time,
    "max_over_time": max_over_time,
    "count_over_time": count_over_time,
    "stddev_over_time": stddev_over_time,
    "stdvar_over_time": stdvar_over_time,
    "last_over_time": last_over_time,
    "first_over_time": first_over_time,
    "present_over_time": present_over_time,
    "quantile_over_time": quantile_over_time,
    "mad_over_time": mad_over_time,
    "double_exponential_smoothing": double_exponential_smoothing,
    "ts_of_min_over_time": ts_of_min_over_time,
    "ts_of_max_over_time": ts_of_max_over_time,
    "ts_of_last_over_time": ts_of_last_over_time,
}
"""Range-vector functions by PromQL name. quantile_over_time takes q as its only param,
predict_linear takes t (and optionally evaluation times), double_exponential_smoothing sf, tf."""
