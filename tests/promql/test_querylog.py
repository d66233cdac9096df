"""The query log: the lines the engine writes to a real file, as Prometheus 3.5 writes them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.timefmt import format_date_ms, format_rfc3339_ns
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import EvaluationError, ParseError
from watchkeeper.promql.querylog import (
    LoggedQuery,
    QueryLogFile,
    QueryLogOpenError,
    format_line,
    http_request_origin,
    query_origin,
    rule_group_origin,
)
from watchkeeper.promql.value import QueryStats
from watchkeeper.rules.manager import EngineQueryFunc
from watchkeeper.storage.memory import MemoryStorage

NOW_NS = 1_700_000_000_123_456_700
T0_MS = 1_700_000_000_000


def _engine(**options: Any) -> Engine:
    db = MemoryStorage()
    with db.appender() as app:
        labels = [Labels.from_strings("__name__", "up", "job", j) for j in ("a", "a2")]
        app.append_series(labels, [T0_MS, T0_MS], [1.0, 0.0])
    return Engine(db, EngineOptions(**options), registry=Registry())


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Engine, Path]:
    engine = _engine()
    path = tmp_path / "queries.log"
    engine.set_query_log(QueryLogFile.open(str(path), now_ns=lambda: NOW_NS))
    return engine, path


def test_an_instant_query_writes_one_line_in_prometheus_shape(logged: tuple[Engine, Path]) -> None:
    engine, path = logged
    with query_origin(http_request_origin("127.0.0.1", "GET", "/api/v1/query")):
        engine.instant_query("sum(up)", 1_700_000_000_123)
    [line] = _lines(path)
    assert list(line) == [
        "time",
        "level",
        "source",
        "msg",
        "params",
        "stats",
        "spanID",
        "httpRequest",
    ]
    assert line["time"] == "2023-11-14T22:13:20.1234567Z"
    assert (line["level"], line["msg"]) == ("INFO", "promql query logged")
    assert line["params"] == {
        "end": "2023-11-14T22:13:20.123Z",
        "query": "sum(up)",
        "start": "2023-11-14T22:13:20.123Z",
        "step": 0,
    }
    assert list(line["stats"]["timings"]) == [
        "evalTotalTime",
        "resultSortTime",
        "queryPreparationTime",
        "innerEvalTime",
        "execQueueTime",
        "execTotalTime",
    ]
    assert line["stats"]["samples"] == {"totalQueryableSamples": 2, "peakSamples": 2}
    assert line["spanID"] == "0000000000000000"
    assert line["httpRequest"] == {
        "clientIP": "127.0.0.1",
        "method": "GET",
        "path": "/api/v1/query",
    }


def test_a_range_query_logs_its_step_in_whole_seconds(logged: tuple[Engine, Path]) -> None:
    engine, path = logged
    engine.range_query("up", 0, 60_500, 15_700)
    [line] = _lines(path)
    assert line["params"] == {
        "end": "1970-01-01T00:01:00.500Z",
        "query": "up",
        "start": "1970-01-01T00:00:00.000Z",
        "step": 15,
    }
    assert "httpRequest" not in line
    assert "ruleGroup" not in line


def test_a_failed_query_is_logged_with_its_error_but_a_parse_error_is_not(
    logged: tuple[Engine, Path],
) -> None:
    engine, path = logged
    with pytest.raises(ParseError):
        engine.instant_query("up(", 0)
    with pytest.raises(EvaluationError) as failure:
        engine.instant_query('label_replace(up, "job", "a", "", "")', T0_MS)
    [line] = _lines(path)
    assert list(line)[4:7] == ["params", "error", "stats"]
    assert line["error"] == str(failure.value)


def test_a_parsed_expression_is_logged_with_the_text_given_or_its_printed_form(
    logged: tuple[Engine, Path],
) -> None:
    engine, path = logged
    with query_origin(rule_group_origin("rules.yml", "g1")):
        engine.eval_expr(engine.parse("sum   by(job)(up)"), 1000)
        engine.eval_expr(engine.parse("up"), 1000, query="up  ")
    lines = _lines(path)
    assert [line["params"]["query"] for line in lines] == ["sum by (job) (up)", "up  "]
    assert lines[0]["ruleGroup"] == {"file": "rules.yml", "name": "g1"}


def test_the_enabled_gauge_follows_the_log_and_swapping_closes_the_old_file(
    tmp_path: Path,
) -> None:
    engine = _engine()
    assert engine.metrics.query_log_enabled.value == 0
    first = QueryLogFile.open(str(tmp_path / "a.log"))
    engine.set_query_log(first)
    assert engine.metrics.query_log_enabled.value == 1
    engine.set_query_log(QueryLogFile.open(str(tmp_path / "b.log")))
    engine.instant_query("1", 0)
    assert (tmp_path / "a.log").read_text() == ""
    assert len(_lines(tmp_path / "b.log")) == 1
    first.write(LoggedQuery("1", 0, 0, 0, QueryStats()))  # closed: dropped
    assert (tmp_path / "a.log").read_text() == ""
    engine.set_query_log(None)
    assert engine.metrics.query_log_enabled.value == 0
    engine.instant_query("1", 0)
    assert len(_lines(tmp_path / "b.log")) == 1


def test_a_write_failure_is_counted_and_the_query_still_answers() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to make writes fail")
    engine = _engine()
    engine.set_query_log(QueryLogFile.open("/dev/full"))
    assert engine.instant_query("1 + 1", 0).value.value == 2.0  # type: ignore[union-attr]
    assert engine.metrics.query_log_failures.value == 1


def test_a_file_that_cannot_be_opened_is_refused_with_prometheus_message(tmp_path: Path) -> None:
    with pytest.raises(QueryLogOpenError) as missing:
        QueryLogFile.open(str(tmp_path / "no/such/dir.log"))
    assert str(missing.value) == (
        f"can't create json log file: open {tmp_path}/no/such/dir.log: no such file or directory"
    )
    with pytest.raises(QueryLogOpenError, match=r": is a directory$"):
        QueryLogFile.open(str(tmp_path))


def test_the_log_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "q.log"
    path.write_text("earlier\n")
    log = QueryLogFile.open(str(path))
    log.write(LoggedQuery("1", 0, 0, 0, QueryStats()))
    log.close()
    assert path.read_text().splitlines()[0] == "earlier"
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0"),
        (0.000023255, "0.000023255"),
        (8.21e-7, "8.21e-7"),
        (1.5, "1.5"),
        (3.0, "3"),
        (0.0000123456789012, "0.000012346"),
    ],
)
def test_timings_are_written_as_go_writes_durations_in_seconds(seconds: float, text: str) -> None:
    line = format_line(LoggedQuery("q", 0, 0, 0, QueryStats(inner_eval_time_s=seconds)), 0)
    assert f'"innerEvalTime":{text},' in line


def test_strings_are_escaped_as_go_escapes_them() -> None:
    line = format_line(LoggedQuery('x{a="<&>\u2028\t"}', 0, 0, 0, QueryStats()), 0)
    assert '"query":"x{a=\\"<&>\\u2028\\t\\"}"' in line
    assert json.loads(line)["params"]["query"] == 'x{a="<&>\u2028\t"}'


def test_times_outside_python_datetime_range_are_formatted_as_go_does() -> None:
    assert format_date_ms(1_000_000_000_000_000) == "33658-09-27T01:46:40.000Z"
    assert format_rfc3339_ns(0) == "1970-01-01T00:00:00Z"


def test_a_batch_of_same_shaped_rules_is_logged_once_as_the_query_evaluated(
    logged: tuple[Engine, Path],
) -> None:
    engine, path = logged
    rules = EngineQueryFunc(engine)
    [batch] = rules.plan(['sum by (job) (up{job="a"})', 'sum by (job) (up{job="a2"})'])
    with query_origin(rule_group_origin("rules.yml", "g1")):
        rules.run(batch, T0_MS)
    [line] = _lines(path)
    assert line["params"]["query"] == 'sum by (job) (up{job=~"a|a2"})'
    assert line["ruleGroup"] == {"file": "rules.yml", "name": "g1"}
