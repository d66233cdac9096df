"""Classic-histogram kernels: histogram_quantile and histogram_fraction over `le` buckets.

Inputs are step-aligned: bucket series `counts`/`present` (n_series, n_steps), each series's
parsed upper bound (`parse_le`) and its output group (the series's labels without `le`).
Per group and step the present buckets are sorted by bound, equal bounds coalesced and, for
quantiles, monotonicity enforced, as Prometheus 3.5's BucketQuantile and BucketFraction do;
all groups and steps are computed at once, looping only over bucket ranks.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from watchkeeper.model.exposition.floats import format_go_float, go_quote
from watchkeeper.promql.kernels import BoolArray, FloatArray, IntArray, Param, _per_step, _quiet

SMALL_DELTA_TOLERANCE = 1e-12
"""Relative difference below which neighbouring bucket counts are treated as equal."""

_MIN_NORMAL = sys.float_info.min
_MAX_BLOCK_ELEMENTS = 1 << 22


def forced_monotonicity_info(metric_name: str) -> str:
    """The info annotation histogram_quantile adds when bucket counts had to be made monotonic."""
    return (
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
        "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
        f"for metric name {go_quote(metric_name)}"
    )


def bad_bucket_label_warning(metric_name: str, le: str) -> str:
    """The warning for a bucket series whose `le` label is missing or does not parse."""
    return (
        'PromQL warning: bucket label "le" is missing or has a malformed value of '
        f"{go_quote(le)} for metric name {go_quote(metric_name)}"
    )


def invalid_quantile_warning(q: float) -> str:
    """The warning for a quantile outside [0, 1] (Go's %g formatting of q)."""
    return f"PromQL warning: quantile value should be between 0 and 1, got {format_go_float(q)}"


def parse_le(text: str) -> float | None:
    """Parses an `le` label value as Go's strconv.ParseFloat does; None if malformed.

    Example:
        >>> parse_le("+Inf"), parse_le("0.5"), parse_le(""), parse_le("1e999")
        (inf, 0.5, None, None)
    """
    if not text or text != text.strip() or "_" in text:
        return None
    lowered = text.lower().lstrip("+-")
    try:
        if lowered.startswith("0x"):
            if "p" not in lowered:
                return None
            value = float.fromhex(text)
        else:
            value = float(text)
    except ValueError:
        return None
    if math.isinf(value) and lowered not in ("inf", "infinity"):
        return None  # NB: Go reports out-of-range literals as errors, not as ±Inf.
    return value


class _Buckets:
    """Present buckets per (group, step), compacted in ascending bound order.

    `bounds`/`counts` are (groups, max_buckets, steps); position j < n[g, s] holds the j-th
    smallest present bound of group g at step s, equal bounds already coalesced.
    """

    def __init__(
        self,
        upper_bounds: FloatArray,
        counts: FloatArray,
        present: BoolArray,
        group_ids: IntArray,
        n_groups: int,
    ) -> None:
        ub = np.asarray(upper_bounds, dtype=np.float64)
        gid = np.asarray(group_ids, dtype=np.int64)
        n_steps = counts.shape[1]
        order = np.lexsort((ub, gid))
        ub_s, gid_s = ub[order], gid[order]
        new = np.ones(len(order), dtype=np.bool_)
        new[1:] = (gid_s[1:] != gid_s[:-1]) | (ub_s[1:] != ub_s[:-1])
        bucket = np.cumsum(new) - 1
        n_unique = int(bucket[-1]) + 1 if len(bucket) else 0
        b_counts = np.zeros((n_unique, n_steps))
        b_present = np.zeros((n_unique, n_steps), dtype=np.bool_)
        vals = np.where(present[order], counts[order], 0.0)
        if n_unique == len(order):
            b_counts[bucket] = vals
            b_present[bucket] = present[order]
        else:
            np.add.at(b_counts, bucket, vals)
            np.logical_or.at(b_present, bucket, present[order])
        b_gid = gid_s[new]
        b_ub = ub_s[new]
        rank = np.arange(n_unique) - np.searchsorted(b_gid, b_gid, side="left")
        width = int(rank.max()) + 1 if n_unique else 1
        bounds = np.full((n_groups, width, n_steps), np.inf)
        cnt = np.full((n_groups, width, n_steps), np.nan)
        mask = np.zeros((n_groups, width, n_steps), dtype=np.bool_)
        bounds[b_gid, rank] = b_ub[:, None]
        cnt[b_gid, rank] = b_counts
        mask[b_gid, rank] = b_present
        self.n = mask.sum(axis=1).astype(np.int64)
        self.width = width
        if not bool((~mask[:, :-1, :] & mask[:, 1:, :]).any()):
            # No gaps between present buckets (the usual case): already compact.
            self.bounds, self.counts = bounds, cnt
        else:
            # Stable partition: present buckets first, keeping bound order.
            perm = np.argsort(~mask, axis=1, kind="stable")
            self.bounds = np.take_along_axis(bounds, perm, axis=1)
            self.counts = np.take_along_axis(cnt, perm, axis=1)
        steps = np.arange(n_steps, dtype=np.int64)
        self._base = (np.arange(n_groups, dtype=np.int64) * width * n_steps)[:, None] + steps

    def at(self, arr: FloatArray, pos: IntArray) -> FloatArray:
        """arr[g, pos[g, s], s] for every group and step (pos clipped to the array)."""
        idx = np.clip(pos, 0, self.width - 1)
        flat = arr.reshape(-1)
        picked: FloatArray = flat[self._base + idx * arr.shape[2]]
        return picked

    def has_inf_last(self) -> BoolArray:
        """Whether the largest present bound is +Inf."""
        last = self.at(self.bounds, self.n - 1)
        result: BoolArray = (self.n > 0) & np.isposinf(last)
        return result


def _almost_equal(a: FloatArray, b: FloatArray, epsilon: float) -> BoolArray:
    """Prometheus's almost.Equal, vectorized (staleness markers never occur here)."""
    both_nan = np.isnan(a) & np.isnan(b)
    abs_sum = np.abs(a) + np.abs(b)
    diff = np.abs(a - b)
    tiny = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
    rel = diff / np.minimum(abs_sum, sys.float_info.max)
    close = np.where(tiny, diff < epsilon * _MIN_NORMAL, rel < epsilon)
    result: BoolArray = both_nan | (a == b) | close
    return result


@_quiet
def histogram_quantile(  # noqa: PLR0917
    q: Param,
    upper_bounds: FloatArray,
    counts: FloatArray,
    present: BoolArray,
    group_ids: IntArray,
    n_groups: int,
) -> tuple[FloatArray, BoolArray, BoolArray]:
    """φ-quantile (q per step) of classic histograms, as Prometheus 3.5's BucketQuantile.

    Args:
        q: the quantile, a float or one per step.
        upper_bounds: the parsed `le` of each bucket series (n_series,); skip unparsable
            series beforehand and add `bad_bucket_label_warning`.
        counts: cumulative bucket counts (n_series, n_steps).
        present: where each bucket series has a value (n_series, n_steps).
        group_ids: output group of each series (its labels without `le`), 0..n_groups-1.
        n_groups: number of output groups.

    Returns:
        (out, present, forced_monotonic): out and present are (n_groups, n_steps), present
        where the group has any bucket; forced_monotonic (n_groups,) tells where
        `forced_monotonicity_info` must be added.
    """
    n_steps = counts.shape[1]
    q_s = _per_step(q, n_steps)[None, :]
    b = _Buckets(upper_bounds, counts, present, group_ids, n_groups)
    out_present = b.n > 0
    c = b.counts.copy()
    forced = np.zeros(b.n.shape, dtype=np.bool_)
    if b.width > 1:
        prev = c[:, 0, :].copy()
        for j in range(1, b.width):
            active = j < b.n
            curr = c[:, j, :]
            equal = curr == prev
            close = _almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) & ~equal & active
            decrease = active & ~equal & ~close & (curr < prev)
            c[:, j, :] = np.where(close | decrease, prev, curr)
            forced |= decrease
            grow = active & ~equal & ~close & ~decrease
            prev = np.where(grow, curr, prev)
    n = b.n
    observations = b.at(c, n - 1)
    rank = q_s * observations
    # sort.Search(n-1, counts[i] >= rank), step for step. With monotonic counts (no NaN)
    # it is the number of the first n-1 buckets below rank; otherwise replay the bisection.
    if not bool(np.isnan(c).any()) and not bool(np.isnan(rank).any()):
        idx = np.zeros(n.shape, dtype=np.int64)
        for j in range(b.width - 1):
            idx += (c[:, j, :] < rank) & (j < n - 1)
    else:
        lo = np.zeros(n.shape, dtype=np.int64)
        hi = np.maximum(n - 1, 0)
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            mid = (lo + hi) // 2
            ok = b.at(c, mid) >= rank
            lo = np.where(open_ & ~ok, mid + 1, lo)
            hi = np.where(open_ & ok, mid, hi)
        idx = lo
    ub_b = b.at(b.bounds, idx)
    ub_prev = b.at(b.bounds, idx - 1)
    c_b = b.at(c, idx)
    c_prev = b.at(c, idx - 1)
    start = np.where(idx > 0, ub_prev, 0.0)
    count = np.where(idx > 0, c_b - c_prev, c_b)
    rank_in = np.where(idx > 0, rank - c_prev, rank)
    result = start + (ub_b - start) * (rank_in / count)
    result = np.where((idx == 0) & (ub_b <= 0), ub_b, result)
    result = np.where(idx == n - 1, b.at(b.bounds, n - 2), result)
    valid = b.has_inf_last() & (n >= 2) & (observations != 0)
    result = np.where(valid, result, np.nan)
    forced &= valid
    in_range = (q_s >= 0) & (q_s <= 1)
    forced &= in_range
    result = np.where(q_s < 0, -np.inf, result)
    result = np.where(q_s > 1, np.inf, result)
    result = np.where(np.isnan(q_s), np.nan, result)
    forced &= out_present
    any_forced = np.asarray(forced.any(axis=1), dtype=np.bool_)
    return np.where(out_present, result, np.nan), out_present, any_forced


@_quiet
def histogram_fraction(  # noqa: PLR0917
    lower: Param,
    upper: Param,
    upper_bounds: FloatArray,
    counts: FloatArray,
    present: BoolArray,
    group_ids: IntArray,
    n_groups: int,
) -> tuple[FloatArray, BoolArray]:
    """Estimated fraction of observations between lower and upper, as BucketFraction.

    Arguments are as for `histogram_quantile`; lower and upper are floats or one per step.
    """
    n_steps = counts.shape[1]
    lo_s = _per_step(lower, n_steps)[None, :]
    up_s = _per_step(upper, n_steps)[None, :]
    b = _Buckets(upper_bounds, counts, present, group_ids, n_groups)
    n = b.n
    shape = n.shape
    rank = np.zeros(shape)
    lower_rank = np.zeros(shape)
    upper_rank = np.zeros(shape)
    lower_set = np.zeros(shape, dtype=np.bool_)
    upper_set = np.zeros(shape, dtype=np.bool_)
    done = np.zeros(shape, dtype=np.bool_)
    for j in range(b.width):
        active = (j < n) & ~done
        lower_bound = b.bounds[:, j - 1, :] if j else np.full(shape, -np.inf)
        upper_bound = b.bounds[:, j, :]
        cnt = b.counts[:, j, :]

        def interpolate(
            v: FloatArray,
            lb: FloatArray = lower_bound,
            ub: FloatArray = upper_bound,
            bc: FloatArray = cnt,
            r: FloatArray = rank,
        ) -> FloatArray:
            result: FloatArray = r + (bc - r) * (v - lb) / (ub - lb)
            return result

        hit = active & ~lower_set & (lower_bound >= lo_s)
        lower_rank = np.where(hit, rank, lower_rank)
        lower_set |= hit
        hit = active & ~upper_set & (lower_bound >= up_s)
        upper_rank = np.where(hit, rank, upper_rank)
        upper_set |= hit
        done |= active & lower_set & upper_set
        active &= ~done
        hit = active & ~lower_set & (lower_bound < lo_s) & (upper_bound > lo_s)
        lower_rank = np.where(hit, interpolate(np.broadcast_to(lo_s, shape)), lower_rank)
        lower_set |= hit
        hit = active & ~upper_set & (lower_bound < up_s) & (upper_bound > up_s)
        upper_rank = np.where(hit, interpolate(np.broadcast_to(up_s, shape)), upper_rank)
        upper_set |= hit
        done |= active & lower_set & upper_set
        active &= ~done
        rank = np.where(active, cnt, rank)
    total = b.at(b.counts, n - 1)
    lower_rank = np.where(~lower_set | (lower_rank > total), total, lower_rank)
    upper_rank = np.where(~upper_set | (upper_rank > total), total, upper_rank)
    result = (upper_rank - lower_rank) / total
    result = np.where(lo_s >= up_s, 0.0, result)
    invalid = (total == 0) | np.isnan(lo_s) | np.isnan(up_s) | ~b.has_inf_last()
    result = np.where(invalid, np.nan, result)
    out_present = n > 0
    return np.where(out_present, result, np.nan), out_present
