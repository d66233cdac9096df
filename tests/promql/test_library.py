"""The library entry points: PromQL over numpy arrays, mappings and DataFrames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.library import (
    SeriesData,
    duration_to_ms,
    from_frame,
    query,
    query_range,
    query_result,
    to_frame,
    to_ms,
)
from watchkeeper.promql.value import Matrix, Scalar, Vector
from watchkeeper.testing.storage import MemoryStorage

T = np.arange(0, 10 * 60_000, 60_000)


def test_times_accept_ms_seconds_datetimes_and_numpy() -> None:
    assert to_ms(1500) == 1500
    assert to_ms(1.5) == 1500
    assert to_ms(dt.datetime(1970, 1, 1, 0, 0, 2, tzinfo=dt.UTC)) == 2000
    assert to_ms(np.datetime64("1970-01-01T00:00:03")) == 3000
    with pytest.raises(TypeError):
        to_ms("soon")


def test_steps_accept_duration_strings_and_timedeltas() -> None:
    assert duration_to_ms("1m30s") == 90_000
    assert duration_to_ms(dt.timedelta(seconds=2)) == 2000
    assert duration_to_ms(15) == 15


def test_query_over_a_mapping_of_arrays() -> None:
    data = {'up{job="a"}': (T, np.ones(10)), 'up{job="b"}': (T, np.zeros(10))}
    v = query("sum(up)", data, time=9 * 60_000)
    assert isinstance(v, Vector)
    assert v.values.tolist() == [1.0]


def test_query_range_over_series_data() -> None:
    sd = SeriesData()
    sd.add({"__name__": "c_total"}, T, np.arange(10) * 60.0)
    m = query_range("rate(c_total[2m])", sd, start=120_000, end=240_000, step="1m")
    assert isinstance(m, Matrix)
    assert np.allclose(m.values, 1.0)


def test_query_over_storage_and_scalar_results() -> None:
    db = MemoryStorage()
    with db.appender() as app:
        app.append_series([Labels.from_strings("__name__", "x")], [0], [4.0])
    assert query("scalar(x) * 2", db, time=0) == Scalar(0, 8.0)


def test_query_result_carries_annotations() -> None:
    data = {"gauge": (T, np.arange(10.0))}
    res = query_result("rate(gauge[5m])", data, time=9 * 60_000)
    assert res.infos
    assert "might not be a counter" in res.infos[0]


def test_bad_queries_raise_promql_errors() -> None:
    with pytest.raises(ParseError):
        query("sum(", {}, time=0)


def test_bad_data_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="equal length"):
        SeriesData().add("up", [1, 2], [1.0])
    with pytest.raises(TypeError, match="data must be"):
        query("up", 42, time=0)


def test_dataframes_in_and_out() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "timestamp": pd.to_datetime([0, 60_000, 0, 60_000], unit="ms"),
            "value": [1.0, 2.0, 3.0, 4.0],
            "__name__": ["m"] * 4,
            "host": ["a", "a", "b", "b"],
        }
    )
    m = query_range("m + 1", df, start=0, end=60_000, step=60_000)
    out = to_frame(m)
    assert list(out.columns) == ["timestamp", "value", "host"]
    assert out["value"].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert len(from_frame(df)) == 2
    with pytest.raises(ValueError, match="'value' column"):
        from_frame(df.drop(columns=["value"]))
