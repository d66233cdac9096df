"""`watchkeeper test rules`: promtool's unit-test format, messages and exit codes."""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import is_stale_nan
from watchkeeper.rules.unittest import (
    SeriesParseError,
    expand_values,
    parse_metric,
    run_rule_tests,
)
from watchkeeper.testing.peers import peer_binary

TESTDATA = Path(__file__).parent / "testdata"
CASES = [
    "pass.yml",
    "fail.yml",
    "broken.yml",
    "evalerror.yml",
    "fuzzy.yml",
    "badseries.yml",
    "templates_test.yml",
]


def _ours(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_rule_tests([str(path)], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_the_expanding_notation_gives_promtools_sequences() -> None:
    values = expand_values("1+2x3 _ stale 5-1x2 _x2 7x1")
    assert values[:4] == [1.0, 3.0, 5.0, 7.0]
    assert values[4] is None
    stale = values[5]
    assert stale is not None
    assert is_stale_nan(stale)
    assert values[6:] == [5.0, 4.0, 3.0, None, None, 7.0, 7.0]
    inf = expand_values("Inf -Inf NaN")
    assert inf[0] == math.inf
    assert inf[1] == -math.inf
    assert math.isnan(inf[2] or 0.0)


def test_bad_notation_is_a_parse_error() -> None:
    with pytest.raises(SeriesParseError, match='unexpected "x"'):
        expand_values("1 2 x")


def test_series_selectors_parse_into_labels() -> None:
    assert parse_metric("up{job=\"a\", instance='b'}") == Labels.from_strings(
        "__name__", "up", "job", "a", "instance", "b"
    )
    assert parse_metric('{__name__="x:y", a="\\"q\\""}') == Labels.from_strings(
        "__name__", "x:y", "a", '"q"'
    )
    assert parse_metric("{}") == Labels()


@pytest.mark.parametrize(
    ("name", "code"), [("pass.yml", 0), ("fail.yml", 1), ("broken.yml", 1), ("evalerror.yml", 1)]
)
def test_exit_codes_follow_promtool(name: str, code: int) -> None:
    assert _ours(TESTDATA / name)[0] == code


def test_a_failing_alert_test_shows_expected_and_got_alerts() -> None:
    _, out, err = _ours(TESTDATA / "fail.yml")
    assert err.startswith("  FAILED:\n    name: wrong-expectations,\n    alertname: InstanceDown")
    assert "        got:[]" in err
    assert '        exp: {__name__="job:up:sum", job="b"} 3E+00' in err
    assert out == "\n" * 6


@pytest.mark.integration
@pytest.mark.parametrize("name", CASES)
def test_output_matches_promtool_byte_for_byte(name: str) -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (run ../shared/peers/fetch-peers.sh)")
    proc = subprocess.run(
        [str(promtool), "test", "rules", name],
        cwd=TESTDATA,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    code, out, err = _ours(TESTDATA / name)
    assert (code, out, err) == (proc.returncode, proc.stdout, proc.stderr)
