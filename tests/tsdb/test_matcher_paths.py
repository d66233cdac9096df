"""Few candidate series are filtered on their labels: the same answer as the postings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType, matches_all
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.tsdb.block import Block, write_block
from watchkeeper.tsdb.head_index import FILTER_SERIES_BELOW, PostingsIndex

VALUES = ["", "x", "y", "z1", "z2"]

label_sets = st.lists(
    st.fixed_dictionaries(
        {"__name__": st.sampled_from(["m", "n"]), "a": st.sampled_from(VALUES)},
        optional={"b": st.sampled_from(VALUES), "c": st.sampled_from(VALUES)},
    ),
    min_size=1,
    max_size=3 * FILTER_SERIES_BELOW,
    unique_by=lambda d: tuple(sorted(d.items())),
)
matcher = st.builds(
    Matcher,
    st.sampled_from(list(MatchType)),
    st.sampled_from(["__name__", "a", "b", "c"]),
    st.sampled_from([*VALUES, "z.*", ".*", "x|y", "n|", ".+"]),
)


@settings(max_examples=300)
@given(label_sets, st.lists(matcher, min_size=1, max_size=4))
def test_head_index_filters_few_series_on_labels_exactly_as_postings_do(
    sets: list[dict[str, str]], matchers: list[Matcher]
) -> None:
    index = PostingsIndex()
    labels = [Labels.from_dict(d) for d in sets]
    for ref, lbls in enumerate(labels):
        index.add(ref, lbls)
    want = {ref for ref, lbls in enumerate(labels) if matches_all(matchers, lbls)}
    assert set(index.select(matchers)) == want
    assert set(index.select(matchers, labels.__getitem__)) == want


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label_sets, st.lists(matcher, min_size=1, max_size=4))
def test_block_index_filters_few_series_on_labels_exactly_as_postings_do(
    tmp_path: Path, sets: list[dict[str, str]], matchers: list[Matcher]
) -> None:
    labels = sorted({Labels.from_dict(d) for d in sets})
    n = len(labels)
    series = SeriesSet(
        labels,
        np.arange(n + 1, dtype=np.int64),
        np.full(n, 1_000, dtype=np.int64),
        np.arange(n, dtype=np.float64),
    )
    out = tmp_path / f"b{abs(hash(tuple(labels)))}"
    path = write_block(out, series, mint_ms=0, maxt_ms=2_000)
    assert path is not None
    with Block.open(path) as block:
        got = block.index.select(matchers).tolist()
    assert got == [i for i, lbls in enumerate(labels) if matches_all(matchers, lbls)]
