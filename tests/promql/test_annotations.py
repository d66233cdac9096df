"""Annotation positions: nodes record where they start, the API text appends " (line:col)"."""

from __future__ import annotations

import numpy as np

from watchkeeper.model.labels import Labels
from watchkeeper.promql import ast
from watchkeeper.promql.engine import Engine
from watchkeeper.promql.parser import format_expr, parse_expr
from watchkeeper.promql.value import QueryResult, Scalar, position_text
from watchkeeper.testing.storage import MemoryStorage

NOT_COUNTER = (
    "PromQL info: metric might not be a counter, name does not end in "
    '_total/_sum/_count/_bucket: "{}"'
)


def _engine() -> Engine:
    db = MemoryStorage()
    t = np.arange(0, 600_000, 15_000, dtype=np.int64)
    with db.appender() as app:
        for name in ("temp", "heat"):
            lb = Labels.from_dict({"__name__": name})
            app.append_series([lb] * len(t), t, np.arange(len(t), dtype=np.float64))
    return Engine(db)


def test_nodes_record_their_start_but_compare_without_it() -> None:
    e = parse_expr("1 + rate(temp[5m])")
    assert isinstance(e, ast.BinaryExpr)
    assert isinstance(e.rhs, ast.Call)
    assert (e.pos, e.rhs.pos, e.rhs.args[0].pos) == (0, 4, 9)
    again = parse_expr("  " + format_expr(e))
    assert again == e
    assert hash(again) == hash(e)
    assert again.pos == 2


def test_a_negative_number_starts_at_its_minus_sign() -> None:
    e = parse_expr("quantile(-0.5, temp)")
    assert isinstance(e, ast.AggregateExpr)
    assert e.param is not None
    assert e.param.pos == 9


def test_positions_count_lines_and_utf8_bytes_as_prometheus_does() -> None:
    assert position_text("rate(x[5m])", 5) == "1:6"
    assert position_text("1 +\n  rate(x[5m])", 6) == "2:3"
    assert position_text('"é" + x', 6) == "1:8"
    assert position_text("x", 5) == "invalid position"


def test_api_strings_carry_the_offending_nodes_position() -> None:
    query = "sum(rate(temp[5m]))\n+ on() rate(heat[5m])"
    res = _engine().instant_query(query, 300_000)
    assert res.infos == [NOT_COUNTER.format("temp"), NOT_COUNTER.format("heat")]
    warnings, infos = res.annotation_strings(query)
    assert warnings == []
    assert infos == [NOT_COUNTER.format("temp") + " (1:10)", NOT_COUNTER.format("heat") + " (2:13)"]


def test_a_subquery_argument_points_at_the_query_start() -> None:
    query = "rate(temp[5m:1m])"
    _, infos = _engine().instant_query(query, 300_000).annotation_strings(query)
    assert infos == [NOT_COUNTER.format("temp") + " (1:1)"]


def test_parameter_warnings_point_inside_the_parentheses() -> None:
    query = "quantile((2), temp)"
    warnings, _ = _engine().instant_query(query, 300_000).annotation_strings(query)
    assert warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2 (1:11)"]


def test_beyond_the_limit_annotations_are_counted_not_listed() -> None:
    res = QueryResult(
        Scalar(0, 0.0),
        warnings=[f"PromQL warning: w{i}" for i in range(12)] + ["storage said no"],
        infos=["PromQL info: i"],
        positions={"PromQL warning: w0": 0, "PromQL info: i": 2},
    )
    warnings, infos = res.annotation_strings("a\nbc", max_warnings=10, max_infos=10)
    assert warnings[0] == "PromQL warning: w0 (1:1)"
    assert warnings[1:10] == [f"PromQL warning: w{i}" for i in range(1, 10)]
    assert warnings[10:] == ["3 more warning annotations omitted"]
    assert infos == ["PromQL info: i (2:1)"]
    assert res.annotation_strings("", 0, 0)[0][0] == "PromQL warning: w0"
    assert len(res.annotation_strings("q", 0, 0)[0]) == 13
