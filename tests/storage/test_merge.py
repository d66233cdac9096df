"""Merging series sets and queriers: union by label set, samples interleaved, duplicates once."""

from __future__ import annotations

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
