"""The .test script runner: parsing the format and judging results as promqltest does."""

from __future__ import annotations

import math

import pytest

from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql.promqltest import Outcome, ScriptError, ScriptRunner, almost_equal
from watchkeeper.promql.promqltest.script import OMITTED, parse_sequence

SCRIPT = """
load 1m
    metric_total{job="a"} 0+10x5
    metric_total{job="b"} 1 _ 3 stale

eval instant at 2m metric_total
    metric_total{job="a"} 20
    metric_total{job="b"} 3

eval range from 0 to 2m step 1m metric_total{job="b"}
    metric_total{job="b"} 1 1 3

eval instant at 5m rate(metric_total{job="a"}[5m])
    expect no_warn
    {job="a"} 0.16666666

eval instant at 1m sum(metric_total)
    {} 999

eval_fail instant at 0m metric_total + on() metric_total
    expected_fail_regexp many-to-many matching not allowed

eval instant at 0m vector(1)
    expect warn
    {} 1

eval instant at 0m time()
    0

clear

load 1m
    h {{schema:0 sum:1 count:1}}

eval instant at 0m h
    h {{schema:0 sum:1 count:1}}
"""


def test_sequences_expand_as_prometheus_does() -> None:
    assert parse_sequence("0+10x3") == [0.0, 10.0, 20.0, 30.0]
    assert parse_sequence("1x2 _x2 -1-1x1") == [1.0, 1.0, 1.0, OMITTED, OMITTED, -1.0, -2.0]
    stale = parse_sequence("stale")[0]
    assert isinstance(stale, float)
    assert almost_equal(stale, STALE_NAN)
    assert parse_sequence("1m Inf") == [60.0, math.inf]


def test_float_comparison_follows_almost_equal() -> None:
    assert almost_equal(1.0, 1.0 + 1e-9)
    assert not almost_equal(1.0, 1.001)
    assert almost_equal(math.nan, math.nan)
    assert not almost_equal(math.nan, STALE_NAN)
    assert not almost_equal(0.0, 1e-300)


def test_runner_reports_each_eval_by_line() -> None:
    result = ScriptRunner().run_text(SCRIPT, "demo.test")
    outcomes = {c.line: c.outcome for c in result.cases}
    assert outcomes == {
        6: Outcome.PASSED,
        10: Outcome.PASSED,
        13: Outcome.PASSED,
        17: Outcome.FAILED,
        20: Outcome.PASSED,
        23: Outcome.FAILED,
        27: Outcome.PASSED,
        35: Outcome.SKIPPED,
    }
    failed = {c.line: c.message for c in result.cases if c.outcome is Outcome.FAILED}
    assert "expected 999.0 for {} but got 11.0" in failed[17]
    assert "expected warn annotations but got none" in failed[23]


def test_malformed_scripts_name_the_line() -> None:
    with pytest.raises(ScriptError, match="line 2"):
        ScriptRunner().run_text("load 1m\n    metric{ 1 2\n")
    with pytest.raises(ScriptError, match="line 1: unknown command"):
        ScriptRunner().run_text("frobnicate\n")
