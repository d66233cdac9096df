"""Merging series sets and queriers: union by label set, samples interleaved, duplicates once."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.storage.merge import MergeQuerier, merge_series_sets
from watchkeeper.testing.storage import MemoryStorage

ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)


def store(data: dict[str, list[tuple[int, float]]]) -> MemoryStorage:
    s = MemoryStorage()
    with s.appender() as app:
        for name, points in data.items():
            for t, v in points:
                app.append_series([Labels.from_strings("__name__", name)], [t], [v])
    return s


def as_dict(ss: SeriesSet) -> dict[str, list[tuple[int, float]]]:
    return {
        str(ss.labels[i]): list(zip(*(a.tolist() for a in ss.series(i)[1:]), strict=True))
        for i in range(len(ss))
    }


def test_series_from_several_sources_are_unioned_and_interleaved_by_time() -> None:
    a = store({"x": [(1, 1.0), (3, 3.0)], "z": [(1, 9.0)]})
    b = store({"x": [(2, 2.0), (3, 3.0)], "y": [(5, 5.0)]})
    q = MergeQuerier([a.querier(0, 10), b.querier(0, 10)])
    ss = q.select(ALL)
    assert as_dict(ss) == {
        "x": [(1, 1.0), (2, 2.0), (3, 3.0)],
        "y": [(5, 5.0)],
        "z": [(1, 9.0)],
    }
    assert q.label_values("__name__") == ["x", "y", "z"]
    assert q.label_names() == ["__name__"]


def test_warnings_of_every_set_are_kept() -> None:
    one = SeriesSet.empty()
    one.warnings.append("w1")
    two = SeriesSet.empty()
    two.warnings.append("w2")
    assert merge_series_sets([one, two]).warnings == ["w1", "w2"]


POINTS = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.lists(st.integers(0, 50), max_size=15, unique=True),
    max_size=3,
)


@given(st.lists(POINTS, min_size=1, max_size=4))
def test_merging_equals_storing_everything_in_one_place(parts: list[dict[str, list[int]]]) -> None:
    sets = [
        store({k: [(t, float(t)) for t in sorted(v)] for k, v in p.items()})
        .querier(0, 100)
        .select(ALL)
        for p in parts
    ]
    union: dict[str, set[int]] = {}
    for p in parts:
        for k, v in p.items():
            union.setdefault(k, set()).update(v)
    want = store({k: [(t, float(t)) for t in sorted(v)] for k, v in union.items()})
    got = merge_series_sets(sets)
    assert as_dict(got) == as_dict(want.querier(0, 100).select(ALL))
    assert np.all(np.diff(got.offsets) >= 0)


def series_set(data: dict[str, list[tuple[int, float]]]) -> SeriesSet:
    names = sorted(data)
    lens = [len(data[n]) for n in names]
    return SeriesSet(
        [Labels.from_strings("__name__", n) for n in names],
        np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        np.array([t for n in names for t, _ in data[n]], dtype=np.int64),
        np.array([v for n in names for _, v in data[n]], dtype=np.float64),
    )


def reference_merge(parts: list[dict[str, list[tuple[int, float]]]]) -> dict[str, list[Any]]:
    union: dict[str, dict[int, float]] = {}
    for p in parts:
        for k, points in p.items():
            seen = union.setdefault(k, {})
            for t, v in points:
                seen.setdefault(t, v)
    return {k: sorted(v.items()) for k, v in sorted(union.items())}


RUNS = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.tuples(st.integers(0, 300), st.integers(0, 150), st.sampled_from([1, 2, 7])),
    max_size=4,
)


@given(st.lists(RUNS, min_size=2, max_size=4))
def test_merging_keeps_the_first_sources_sample_and_sorts_only_what_overlaps(
    parts: list[dict[str, tuple[int, int, int]]],
) -> None:
    data = [
        {
            k: [(t, float(i * 10_000 + t)) for t in range(start, start + n * step, step)]
            for k, (start, n, step) in p.items()
        }
        for i, p in enumerate(parts)
    ]
    got = merge_series_sets([series_set(d) for d in data])
    assert as_dict(got) == reference_merge(data)
    assert got.offsets[-1] == len(got.timestamps_ms) == len(got.values)


def test_series_without_samples_survive_a_merge_of_disjoint_sources() -> None:
    a = series_set({"a": [], "b": [(1, 1.0), (2, 2.0)]})
    b = series_set({"a": [(5, 5.0)], "c": []})
    got = merge_series_sets([a, b])
    assert [str(x) for x in got.labels] == ["a", "b", "c"]
    assert got.offsets.tolist() == [0, 1, 3, 3]
    assert got.timestamps_ms.tolist() == [5, 1, 2]


def test_long_disjoint_pieces_are_concatenated_in_time_order() -> None:
    late = series_set({"x": [(t, 2.0) for t in range(1000, 1100)]})
    early = series_set({"x": [(t, 1.0) for t in range(100)], "y": [(3, 3.0)]})
    got = merge_series_sets([late, early])
    assert got.timestamps_ms.tolist() == [*range(100), *range(1000, 1100), 3]
    assert got.values.tolist() == [1.0] * 100 + [2.0] * 100 + [3.0]
