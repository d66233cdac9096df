"""JSON encoding of values and parameter parsing, checked against Prometheus's own text."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.exposition.floats import format_go_positional
from watchkeeper.model.labels import Labels
from watchkeeper.promql.value import Matrix
from watchkeeper.web.api.v1.encoding import (
    _points_slow,
    encode_points,
    format_sample_value,
    format_timestamp,
    iter_result_chunks,
    labels_json,
)
from watchkeeper.web.api.v1.errors import ApiError
from watchkeeper.web.api.v1.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    limit_param,
    parse_duration_param_ms,
    parse_time_ms,
    unescape_label_name,
)

# Answers of Prometheus 3.5 to vector(<x>) queries.
PROMETHEUS_VECTOR_VALUES = [
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (1.5e-7, "1.5e-07"),
    (1e-6, "0.000001"),
    (-1.5e-7, "-1.5e-07"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (5e-324, "5e-324"),
    (0.1, "0.1"),
    (-0.0, "-0"),
    (123456789012345680000.0, "123456789012345680000"),
    (1e-5, "0.00001"),
    (math.nan, "NaN"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
]


@pytest.mark.parametrize(("value", "text"), PROMETHEUS_VECTOR_VALUES)
def test_sample_values_are_formatted_as_prometheus_does(value: float, text: str) -> None:
    assert format_sample_value(value) == text


def test_scalar_values_never_use_exponents() -> None:
    assert format_go_positional(1e22) == "10000000000000000000000"
    assert format_go_positional(1e-7) == "0.0000001"


def test_timestamps_keep_three_fraction_digits() -> None:
    assert [format_timestamp(t) for t in (1050, 500, 0, -1500, 1000)] == [
        "1.050",
        "0.500",
        "0",
        "-1.500",
        "1",
    ]


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-5, 9.99e-6, 1e15, 1e16, 1e21]),
    st.integers(-(10**6), 10**6).map(float),
)


@given(
    st.lists(st.tuples(st.integers(-(10**14), 10**14), values), min_size=1, max_size=40),
    st.booleans(),
)
def test_fast_point_encoding_matches_the_per_point_reference(
    points: list[tuple[int, float]], whole_seconds: bool
) -> None:
    ts = np.array(sorted(t for t, _ in points), dtype=np.int64)
    if whole_seconds:
        ts -= ts % 1000
    vals = np.array([v for _, v in points], dtype=np.float64)
    fast = encode_points(ts, vals)
    assert fast == _points_slow(ts, vals)
    decoded = orjson.loads(fast)
    assert len(decoded) == len(ts)


def test_time_parameters_accept_unix_and_rfc3339() -> None:
    assert parse_time_ms("1.5") == 1500
    assert parse_time_ms("1e3") == 1_000_000
    assert parse_time_ms("2020-01-01T00:00:00.5Z") == 1577836800500
    assert parse_time_ms("2020-01-01T01:00:00+01:00") == 1577836800000
    assert parse_time_ms("-292273086-05-16T16:47:06Z") == MIN_TIME_MS
    assert parse_time_ms("292277025-08-18T07:12:54.999999999Z") == MAX_TIME_MS
    with pytest.raises(ValueError, match='cannot parse "1_0" to a valid timestamp'):
        parse_time_ms("1_0")


def test_durations_accept_float_seconds_and_prometheus_units() -> None:
    assert parse_duration_param_ms("0.5") == 500
    assert parse_duration_param_ms("1m30s") == 90_000
    with pytest.raises(ValueError, match='cannot parse "1ns" to a valid duration'):
        parse_duration_param_ms("1ns")


def test_limit_parameter_follows_go_atoi() -> None:
    assert limit_param("+5") == 5
    with pytest.raises(ApiError, match="invalid syntax"):
        limit_param(" 5")


def test_label_names_are_unescaped_from_u_encoding() -> None:
    assert unescape_label_name("U__a_2e_b") == "a.b"
    assert unescape_label_name("U__a__b") == "a_b"
    assert unescape_label_name("U__bad_zz_") == "U__bad_zz_"
    assert unescape_label_name("plain") == "plain"


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 10**13), values), max_size=20),
        min_size=1,
        max_size=6,
    )
)
def test_matrix_encoding_matches_the_per_point_reference(
    series: list[list[tuple[int, float]]],
) -> None:
    ts_parts = [np.array(sorted(t for t, _ in s), dtype=np.int64) for s in series]
    val_parts = [np.array([v for _, v in s], dtype=np.float64) for s in series]
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in series], out=offsets[1:])
    labels = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in range(len(series))]
    matrix = Matrix(
        labels,
        offsets,
        np.concatenate([*ts_parts, np.empty(0, dtype=np.int64)]),
        np.concatenate([*val_parts, np.empty(0, dtype=np.float64)]),
    )
    got = b"".join(iter_result_chunks(matrix))
    want = (
        b"["
        + b",".join(
            b'{"metric":' + labels_json(lbl) + b',"values":' + _points_slow(t, v) + b"}"
            for lbl, t, v in zip(labels, ts_parts, val_parts, strict=True)
        )
        + b"]"
    )
    assert got == want
