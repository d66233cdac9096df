"""info(): enriching series with the data labels of info series, as Prometheus 3.5 does."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql import ast
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import EvaluationError, ParseError
from watchkeeper.promql.parser import parse_expr
from watchkeeper.promql.value import Matrix, Vector
from watchkeeper.testing.storage import MemoryStorage

MIN = 60_000
NA = None
"""No sample at this minute."""

Series = Mapping[str, Sequence[float | None]]


def _labels(text: str) -> Labels:
    sel = parse_expr(text)
    assert isinstance(sel, ast.VectorSelector)
    return Labels((m.name, m.value) for m in sel.matchers)


def _engine(series: Series) -> Engine:
    """One sample a minute from t=0 for each series (None: no sample)."""
    db = MemoryStorage()
    for text, values in series.items():
        points = [(i * MIN, v) for i, v in enumerate(values) if v is not None]
        db.add_series(_labels(text), [t for t, _ in points], [v for _, v in points])
    return Engine(db, EngineOptions(enable_experimental_functions=True))


def _range(engine: Engine, query: str, end_min: int, start_min: int = 0) -> dict[str, list[float]]:
    """Each series' values by minute from start_min to end_min (NaN where absent)."""
    m = engine.range_query(query, start_min * MIN, end_min * MIN, MIN).value
    assert isinstance(m, Matrix)
    out: dict[str, list[float]] = {}
    for i in range(len(m)):
        lb, ts, vs = m.series(i)
        row = [math.nan] * (end_min - start_min + 1)
        for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
            row[t // MIN - start_min] = v
        out[str(lb)] = row
    return out


def _same(got: dict[str, list[float]], want: dict[str, list[float]]) -> None:
    assert got.keys() == want.keys()
    for key, row in want.items():
        assert [None if math.isnan(v) else v for v in got[key]] == [
            None if math.isnan(v) else v for v in row
        ], key


NAN = math.nan
BASIC: Series = {
    'up{instance="a", job="node"}': [1, 2, 3],
    'up{instance="b", job="node", region="base"}': [4, 5, 6],
    'up{instance="c", job="node"}': [7, 8, 9],
    'target_info{instance="a", job="node", region="eu", os="linux"}': [1, 1, 1],
    'target_info{instance="b", job="node", region="us", os="bsd"}': [1, 1, 1],
    'build_info{instance="a", job="node", version="1.2"}': [1, 1, 1],
    'build_info{instance="b", job="other", version="9"}': [1, 1, 1],
}


def test_info_adds_target_info_data_labels_and_keeps_labels_already_there() -> None:
    got = _range(_engine(BASIC), "info(up)", 2)
    _same(
        got,
        {
            'up{instance="a", job="node", os="linux", region="eu"}': [1, 2, 3],
            'up{instance="b", job="node", os="bsd", region="base"}': [4, 5, 6],
            'up{instance="c", job="node"}': [7, 8, 9],
        },
    )


def test_info_selector_restricts_the_data_labels_and_drops_series_without_a_match() -> None:
    got = _range(_engine(BASIC), 'info(up, {os=~".+"})', 2)
    _same(
        got,
        {
            'up{instance="a", job="node", os="linux"}': [1, 2, 3],
            'up{instance="b", job="node", os="bsd", region="base"}': [4, 5, 6],
        },
    )


def test_info_selector_matching_the_empty_value_keeps_series_without_a_match() -> None:
    got = _range(_engine(BASIC), 'info(up, {os!="bsd"})', 2)
    _same(
        got,
        {
            'up{instance="a", job="node", os="linux"}': [1, 2, 3],
            'up{instance="b", job="node", region="base"}': [4, 5, 6],
            'up{instance="c", job="node"}': [7, 8, 9],
        },
    )


def test_info_label_already_on_the_series_counts_as_no_match() -> None:
    # As in 3.5: the only selected data label is already there, so nothing is added.
    got = _range(_engine(BASIC), 'info(up, {region=~".+"})', 2)
    assert list(got) == ['up{instance="a", job="node", region="eu"}']


def test_info_reads_other_info_metrics_named_by_the_selector() -> None:
    engine = _engine(BASIC)
    _same(
        _range(engine, 'info(up, {__name__="build_info"})', 2),
        {
            'up{instance="a", job="node", version="1.2"}': [1, 2, 3],
            'up{instance="b", job="node", region="base"}': [4, 5, 6],
            'up{instance="c", job="node"}': [7, 8, 9],
        },
    )
    both = _range(engine, 'info(up{instance="a"}, {__name__=~".+_info"})', 2)
    assert list(both) == ['up{instance="a", job="node", os="linux", region="eu", version="1.2"}']


def test_info_leaves_the_info_series_themselves_alone() -> None:
    got = _range(_engine(BASIC), 'info({__name__=~"up|target_info", instance="a"})', 2)
    assert set(got) == {
        'up{instance="a", job="node", os="linux", region="eu"}',
        'target_info{instance="a", job="node", os="linux", region="eu"}',
    }


def test_info_series_without_identifying_labels_pass_unless_the_selector_names_a_metric() -> None:
    engine = _engine({"plain": [1, 2], 'target_info{instance="a", x="y"}': [1, 1]})
    assert list(_range(engine, "info(plain)", 1)) == ["plain"]
    # Prometheus 3.5 keeps the __name__ matcher as a data label matcher when nothing is
    # fetched, and it cannot match the missing label.
    assert _range(engine, 'info(plain, {__name__="target_info"})', 1) == {}


def test_info_matches_only_the_identifying_labels_the_series_has() -> None:
    engine = _engine(
        {
            'm{instance="a"}': [1, 2],
            'custom_info{instance="a", tier="gold"}': [1, 1],
            'custom_info{instance="a", job="j", tier="silver"}': [1, 1],
        }
    )
    got = _range(engine, 'info(m, {__name__="custom_info"})', 1)
    assert list(got) == ['m{instance="a", tier="gold"}']


def test_info_follows_changing_info_series_newest_sample_first() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [1, 2, 3, 4, 5],
            'target_info{instance="a", job="j", v="1"}': [1, 1, NA, NA, NA],
            'target_info{instance="a", job="j", v="2"}': [NA, NA, 1, 1, 1],
        }
    )
    # v="1" stays in the 5 minute lookback, but v="2" has the newer sample.
    _same(
        _range(engine, "info(m)", 4),
        {
            'm{instance="a", job="j", v="1"}': [1, 2, NAN, NAN, NAN],
            'm{instance="a", job="j", v="2"}': [NAN, NAN, 3, 4, 5],
        },
    )


def test_info_series_marked_stale_stop_enriching() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [1, 2, 3],
            'target_info{instance="a", job="j", v="1"}': [1, STALE_NAN, NA],
        }
    )
    _same(
        _range(engine, "info(m)", 2),
        {'m{instance="a", job="j", v="1"}': [1, NAN, NAN], 'm{instance="a", job="j"}': [NAN, 2, 3]},
    )


def test_info_two_info_series_with_the_same_sample_time_fail() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [1, 2],
            'target_info{instance="a", job="j", v="1"}': [1, 1],
            'target_info{instance="a", job="j", v="2"}': [NA, 1],
        }
    )
    assert list(_range(engine, "info(m)", 0)) == ['m{instance="a", job="j", v="1"}']
    with pytest.raises(
        EvaluationError, match=r"^found duplicate series for info metric target_info$"
    ):
        engine.range_query("info(m)", 0, MIN, MIN)


def test_info_conflicting_data_labels_of_two_info_metrics_fail() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [1],
            'target_info{instance="a", job="j", zone="x"}': [1],
            'node_info{instance="a", job="j", zone="y"}': [1],
        }
    )
    with pytest.raises(EvaluationError, match=r"^conflicting label: zone$"):
        engine.instant_query('info(m, {__name__=~".+_info"})', 0)


def test_info_two_series_ending_with_equal_labels_fail() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [1],
            'm{instance="a", job="j", v="1"}': [2],
            'target_info{instance="a", job="j", v="1"}': [1],
        }
    )
    with pytest.raises(EvaluationError, match="same labelset"):
        engine.instant_query("info(m)", 0)


def test_info_with_several_name_matchers_fails_as_prometheus_3_5_does() -> None:
    engine = _engine(BASIC)
    with pytest.raises(EvaluationError, match="nil pointer dereference"):
        engine.instant_query('info(up, {__name__=~"target_.+", __name__=~".+_info"})', 0)
    # Unless every series has a name one of them matches: then nothing is fetched.
    got = engine.instant_query('info(up, {__name__=~".+_info", __name__!="x"})', 0).value
    assert isinstance(got, Vector)
    assert len(got.labels) == 3


def test_info_at_modifier_reads_info_series_at_the_first_step_only() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [1, 2, 3] + [4] * 9,
            'target_info{instance="a", job="j", v="1"}': [1, 1],
        }
    )
    # Step-invariant: evaluated once at the first step and repeated.
    assert list(_range(engine, "info(m @ 60)", 11)) == ['m{instance="a", job="j", v="1"}']
    # With a selector it is not: info series are looked up at each step, after the
    # lookback window around the @ time ends nothing matches.
    got = _range(engine, 'info(m @ 60, {v=~".+"})', 11)
    _same(got, {'m{instance="a", job="j", v="1"}': [2.0] * 6 + [NAN] * 6})


def test_info_offset_shifts_the_window_info_series_are_read_from() -> None:
    engine = _engine(
        {
            'm{instance="a", job="j"}': [10, 11, 12, 13, 14, 15, 16, 17, 18],
            'target_info{instance="a", job="j", v="1"}': [1] * 9,
        }
    )
    # As in 3.5: info samples are read up to 6m before the last step, but looked up at
    # each step with the 5m lookback, so only the first step still sees one.
    got = _range(engine, 'info(m offset 6m, {v=~".+"})', 8, start_min=6)
    _same(got, {'m{instance="a", job="j", v="1"}': [10, NAN, NAN]})
    assert set(_range(engine, "info(m offset 6m)", 8, start_min=6)) == {
        'm{instance="a", job="j", v="1"}',
        'm{instance="a", job="j"}',
    }


def test_info_second_argument_must_be_a_label_selector() -> None:
    with pytest.raises(ParseError, match="expected label selectors only, got vector selector"):
        parse_expr('info(up, target_info{a="b"})')
    # It alone may consist of matchers that match the empty value.
    assert isinstance(parse_expr('info(up, {a=~".*"})'), ast.Call)
    with pytest.raises(ParseError, match="at least one non-empty matcher"):
        parse_expr('info({a=~".*"})')
