"""Parse errors match Prometheus's word for word: checked against `promtool check rules`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.parser import parse_expr
from watchkeeper.testing.peers import peer_binary

pytestmark = [pytest.mark.integration, pytest.mark.peers]

BAD_QUERIES = [
    "sum(",
    "foo{",
    "foo[5m",
    "foo)",
    "1 +",
    "foo bar",
    "sum(foo bar",
    "rate(foo bar",
    "rate(foo)",
    'foo{a=~"a)"}',
    "sum by (a) foo",
    "topk(x)",
    "a + on(b) group_left(b) c",
    "foo offset",
    "foo @ bar",
    "1 < 2",
    "nope(1)",
    "abs(1,2)",
    '"a" + 1',
    'foo{a="b" c="d"}',
    "foo{a}",
    "foo{a=b}",
    "sum(foo) by",
    "foo[5x]",
    "foo[]",
    "* foo",
    "(foo)[5m]",
    "foo[5m] offset 1m[2m]",
    "foo[5m][1m:]",
    '{a=""}',
    'foo{__name__="bar"}',
    "sum(x[5m])",
    "-foo[5m]",
    "x offset 1m offset 2m",
    "label_join(x)",
    'foo{a!~"["}',
    "count_values(x, y)",
    'quantile("a", x)',
    "topk(1, x, y)",
    "x @ 1e20",
    "foo[1y2y]",
    "foo[-5m]",
    "foo[0s]",
    "rate(foo[5m:0s])",
    "foo and 1",
    "foo + on(a) 1",
    "foo and on(a) group_left bar",
    '-"a"',
    "time(1)",
    "round(x, 1, 2)",
    "sum(x",
    '{a=~".*"}',
    '"unterminated',
    "foo offset (1m + 1m)",
    "mad_over_time(x[5m])",
    "limitk(1, x)",
    "x unless bool y",
    "foo offset 5m offset 5m",
    "(foo) offset 5m",
    "sum(foo) @ 5",
    "foo{,}",
    "sum(,)",
    "sum(x,)",
    "abs(x,)",
]


def _promtool_errors(tmp_path: Path, queries: list[str]) -> list[str]:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not found (run ../shared/peers/fetch-peers.sh)")
    rules = [{"record": f"r{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "g", "rules": rules}]}), encoding="utf-8")
    out = subprocess.run(
        [str(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found: dict[int, str] = {}
    for line in (out.stdout + out.stderr).splitlines():
        m = re.search(r'rule (\d+), "r\d+": could not parse expression: (.*)$', line)
        if m:
            found[int(m.group(1)) - 1] = m.group(2)
    return [found.get(i, "") for i in range(len(queries))]


def test_parse_errors_match_promtool(tmp_path: Path) -> None:
    expected = _promtool_errors(tmp_path, BAD_QUERIES)
    mismatches = []
    for query, want in zip(BAD_QUERIES, expected, strict=True):
        try:
            parse_expr(
                query, enable_experimental_functions=False, enable_duration_expressions=False
            )
            got = "<no error>"
        except ParseError as exc:
            got = str(exc)
        if got != want:
            mismatches.append(f"{query!r}:\n  promtool: {want}\n  ours:     {got}")
    assert not mismatches, "\n".join(mismatches)
