"""Tests of the selector helpers against brute-force per-series scans."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from watchkeeper.promql.eval_select import aligned_samples, latest_samples

I64 = npt.NDArray[np.int64]


def _brute_force(
    timestamps: I64, offsets: I64, times: I64, lookback: int
) -> tuple[list[list[int]], list[list[bool]]]:
    index: list[list[int]] = []
    present: list[list[bool]] = []
    for s in range(len(offsets) - 1):
        row_i, row_p = [], []
        for t in times.tolist():
            found = -1
            for j in range(int(offsets[s]), int(offsets[s + 1])):
                if timestamps[j] <= t:
                    found = j
            ok = found >= 0 and int(timestamps[found]) > t - lookback
            row_i.append(found)
            row_p.append(ok)
        index.append(row_i)
        present.append(row_p)
    return index, present


def _random_case(rng: np.random.Generator) -> tuple[I64, I64, I64, int]:
    n = int(rng.integers(0, 6))
    counts = rng.integers(0, 8, n)
    parts = [np.sort(rng.choice(np.arange(-50, 100), int(c), replace=False)) for c in counts]
    timestamps = np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    k = int(rng.integers(1, 8))
    kind = rng.integers(0, 3)
    if kind == 0:  # one `@` time repeated
        times = np.full(k, rng.integers(-60, 110), dtype=np.int64)
    elif kind == 1:  # evenly spaced steps
        step = int(rng.integers(1, 25))
        times = np.int64(rng.integers(-60, 60)) + step * np.arange(k, dtype=np.int64)
    else:
        times = np.sort(rng.integers(-60, 110, k)).astype(np.int64)
    return timestamps, offsets, times, int(rng.integers(1, 60))


@pytest.mark.parametrize("seed", range(4))
def test_latest_samples_finds_the_newest_sample_within_the_lookback(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        timestamps, offsets, times, lookback = _random_case(rng)
        index, present = latest_samples(timestamps, offsets, times, lookback)
        want_index, want_present = _brute_force(timestamps, offsets, times, lookback)
        n, k = len(offsets) - 1, len(times)
        assert index.shape == present.shape == (n, k)
        assert present.tolist() == want_present
        assert np.where(present, index, -1).tolist() == [
            [i if p else -1 for i, p in zip(ri, rp, strict=True)]
            for ri, rp in zip(want_index, want_present, strict=True)
        ]


def test_latest_samples_of_no_series_is_empty() -> None:
    empty = np.empty(0, dtype=np.int64)
    index, present = latest_samples(empty, np.zeros(1, np.int64), np.arange(3, dtype=np.int64), 5)
    assert index.shape == present.shape == (0, 3)


def test_aligned_samples_agree_with_the_brute_force_scan_and_refuse_what_is_not_aligned() -> None:
    """One sample per step in (previous step, step]: the grid is the samples themselves."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(400):
        n, k = int(rng.integers(1, 5)), int(rng.integers(1, 7))
        step = int(rng.integers(1, 20))
        times = np.arange(k, dtype=np.int64) * step + int(rng.integers(-30, 30))
        # Mostly inside each step's interval; sometimes on the edge or outside it.
        jitter = rng.integers(0, step + 1, (n, k)) - (rng.random((n, k)) < 0.05) * step
        timestamps = (times[None, :] - jitter).reshape(-1).astype(np.int64)
        offsets = np.arange(n + 1, dtype=np.int64) * k
        lookback = int(rng.integers(1, 3 * step + 1))
        grid = aligned_samples(timestamps, offsets, times, lookback)
        index, present = _brute_force(timestamps, offsets, times, lookback)
        expected_aligned = all(
            index[s][j] == s * k + j for s in range(n) for j in range(k)
        ) and bool(np.all(np.diff(timestamps.reshape(n, k), axis=1) > 0))
        if grid is None:
            assert not expected_aligned
            continue
        hits += 1
        assert expected_aligned
        assert grid.tolist() == present
    assert hits > 100
