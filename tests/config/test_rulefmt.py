"""Rule file parsing: structure, Prometheus's messages, and the same verdicts as promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from watchkeeper.config.rulefmt import (
    DurationSyntaxError,
    RuleCheckers,
    parse_go_duration,
    parse_rule_text,
)
from watchkeeper.rules.files import check_rule_files_streams
from watchkeeper.testing.peers import peer_binary

GOOD = """\
groups:
  - name: node
    interval: 30s
    query_offset: 1m
    limit: 10
    labels:
      team: infra
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} down"
"""

BAD_FILES = {
    "unknown_fields.yml": "groups:\n  - name: a\n    foo: 1\n    rules:\n"
    "      - alert: X\n        expr: up\n        bar: 2\n",
    "bad_duration.yml": "groups:\n- name: x\n  rules:\n  - alert: a\n    expr: up\n    for: 5x\n",
    "empty_duration.yml": 'groups:\n- name: x\n  rules:\n  - alert: a\n    expr: up\n    for: ""\n',
    "out_of_order_duration.yml": "groups:\n- name: x\n  rules:\n  - alert: a\n"
    "    expr: up\n    for: 1m5h\n",
    "type_errors.yml": "groups:\n- name: x\n  rules:\n  - alert: a\n    expr: up\n"
    "    labels:\n      b: [1]\n      c: {x: 1}\n",
    "top_level_seq.yml": "[1, 2]\n",
    "top_level_unknown.yml": "foo: 1\n",
    "duplicates.yml": "groups:\n- name: x\n  rules:\n  - record: a\n    expr: up\n"
    "    labels: {z: '1', b: '2'}\n  - record: a\n    expr: up\n    labels: {z: '1', b: '2'}\n"
    "- name: y\n  rules:\n  - alert: q\n    expr: up\n  - alert: q\n    expr: up\n",
    "templates_and_promql.yml": """\
groups:
- name: t
  rules:
  - alert: A
    expr: up
    annotations:
      a: "{{ nosuchfunc 1 }}"
      b: "{{ $undefined }}"
      c: "{{ if }}"
      d: "{{ .Labels.x | humanize }} ok"
  - alert: B
    expr: sum(up
""",
    "semantic.yml": """\
groups:
  - name: ""
    rules:
      - expr: up
      - record: "bad{x}"
        expr: up
        for: 1m
        annotations:
          x: y
        keep_firing_for: 1m
      - alert: Z
        expr: ""
        labels:
          __name__: x
      - alert: Both
        record: both
        expr: up
  - name: ""
    rules: []
""",
}


def test_a_complete_rule_file_parses_into_groups_and_rules() -> None:
    parsed = parse_rule_text(GOOD, "good.yml")
    assert parsed.errors == []
    assert parsed.groups is not None
    group = parsed.groups.groups[0]
    assert (group.name, group.interval_ms, group.query_offset_ms, group.limit) == (
        "node",
        30_000,
        60_000,
        10,
    )
    assert group.labels == {"team": "infra"}
    rec, alert = group.rules
    assert rec.record == "job:up:sum"
    assert (alert.alert, alert.for_ms, alert.keep_firing_for_ms) == (
        "InstanceDown",
        300_000,
        60_000,
    )
    assert alert.annotations["summary"] == "{{ $labels.instance }} down"


def test_semantic_errors_carry_line_column_group_and_rule() -> None:
    parsed = parse_rule_text(BAD_FILES["semantic.yml"], "s.yml")
    assert parsed.errors[:3] == [
        "s.yml: 0:0: Groupname must not be empty",
        "s.yml: 0:0: 0:0: group \"\", rule 1, \"\": one of 'record' or 'alert' must be set",
        's.yml: 5:17: group "", rule 2, "bad{x}": invalid field \'annotations\' in recording rule',
    ]
    assert (
        's.yml: 12:15: group "", rule 3, "Z": field \'expr\' must be set in rule' in parsed.errors
    )
    assert 's.yml: group "", rule 3, "Z": invalid label name: __name__' in parsed.errors
    assert 's.yml: 0:0: groupname: "" is repeated in the same file' in parsed.errors


def test_checkers_report_bad_promql_and_bad_templates() -> None:
    checkers = RuleCheckers(
        expr=lambda text: "1:1: parse error: nope" if "(" in text else None,
        template=lambda name, text: (
            f"template: {name}:1: unclosed action" if "{{" in text else None
        ),
    )
    text = (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(up\n"
        "    annotations:\n      s: '{{ x'\n"
    )
    errors = parse_rule_text(text, "f.yml", checkers).errors
    assert errors == [
        'f.yml: 5:11: group "g", rule 1, "A": could not parse expression: 1:1: parse error: nope',
        'f.yml: group "g", rule 1, "A": annotation "s": template: __alert_A:1: unclosed action',
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5x", 'unknown unit "x" in duration "5x"'),
        ("", "empty duration string"),
        ("5", 'not a valid duration string: "5"'),
        ("1m5h", 'not a valid duration string: "1m5h"'),
        ("1.5m", 'unknown unit "." in duration "1.5m"'),
        ("-1m", 'not a valid duration string: "-1m"'),
    ],
)
def test_durations_are_refused_with_go_messages(text: str, message: str) -> None:
    with pytest.raises(DurationSyntaxError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


def test_durations_accept_every_unit_in_order() -> None:
    assert parse_go_duration("1y2w3d4h5m6s7ms") == (
        365 * 86_400_000 + 14 * 86_400_000 + 3 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000 + 6_007
    )
    assert parse_go_duration("0") == 0


def _promtool(binary: Path, path: Path) -> tuple[int, str, str]:
    proc = subprocess.run(
        [str(binary), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.integration
@pytest.mark.parametrize("name", [*sorted(BAD_FILES), "good.yml"])
def test_check_rules_output_matches_promtool(tmp_path: Path, name: str) -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (run ../shared/peers/fetch-peers.sh)")
    path = tmp_path / name
    path.write_text(BAD_FILES.get(name, GOOD))
    code, lines = check_rule_files_streams([str(path)])
    out = "".join(line + "\n" for stream, line in lines if stream == "out")
    err = "".join(line + "\n" for stream, line in lines if stream == "err")
    their_code, their_out, their_err = _promtool(promtool, path)
    # Go iterates label and annotation maps in random order: compare error lines as sets.
    assert (code, out) == (their_code, their_out)
    assert sorted(err.splitlines()) == sorted(their_err.splitlines())


def test_an_empty_file_is_valid_with_zero_rules() -> None:
    code, lines = check_rule_files_streams(["/dev/null"])
    assert code == 0
    assert lines == [
        ("out", "Checking /dev/null"),
        ("out", "  SUCCESS: 0 rules found"),
        ("out", ""),
    ]
