# ruff: noqa: E501 - tables of Go template text read best one case per line.
"""Alert annotation templates expanded by us and by the real Prometheus (promtool test rules)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from watchkeeper.template import TemplateSample, expand_alert_template
from watchkeeper.testing.peers import peer_binary

pytestmark = pytest.mark.integration

VALUE = 1234567.891
SERIES = [
    ({"__name__": "m", "job": "node", "instance": "db-2.example.com:9100"}, VALUE),
    ({"__name__": "m", "job": "node", "instance": "db-1.example.com:9100"}, 0.25),
]
EXTERNAL_URL = "http://prom.example.com:9090/prefix"
EXTERNAL_LABELS = {"cluster": "eu-1"}

TEMPLATES = {
    "labels": "{{ $labels.instance }} of {{ $labels.job }} in {{ $externalLabels.cluster }} {{ $labels.nope }}|",
    "value": "{{ $value }} {{ .Value }} {{ $value | humanize }} {{ humanize1024 $value }}",
    "durations": "{{ humanizeDuration $value }} {{ humanizeDuration 0.00123 }} {{ 0.1234 | humanizePercentage }}",
    "timestamp": '{{ humanizeTimestamp $value }} {{ (toTime 1435065584.128).Format "2006-01-02" }}',
    "printf": '{{ printf "%.2f|%5.1f|%d|%q|%x|%-6s|%v|%s|%e|%g" $value 3.14159 42 "q" 255 "ab" true .Labels 1234.5 0.00001 }}',
    "strings": '{{ "hello wide world" | title }} {{ toUpper "aB" }} {{ reReplaceAll "([a-z]+)-(\\\\d+)" "$2_$1" $labels.instance }} {{ match "^db" $labels.instance }}',
    "hosts": '{{ $labels.instance | stripPort }} {{ $labels.instance | stripDomain }} {{ "[::1]:80" | stripPort }}',
    "links": '{{ graphLink "rate(m[5m]) > 1" }} {{ tableLink "m" }} {{ $externalURL }}',
    "query": '{{ range query "m" | sortByLabel "instance" }}{{ .Labels.instance }}={{ .Value | humanize }};{{ end }} {{ query "m" | len }}',
    "control": '{{ if gt $value 1000.0 }}big{{ else if gt $value 1.0 }}mid{{ else }}small{{ end }} {{ with $labels.nope }}x{{ else }}none{{ end }} {{ range $i, $e := (args "a" "b") }}{{ $i }}{{ $e }}{{ end }}',
    "escapes": '{{ html "<b>&</b>" }} {{ js "it\'s" }} {{ urlquery "a b&c" }} {{ print 1 2 "x" }} {{ len "héllo" }} {{ index $labels "job" }} {{ slice "abcdef" 1 3 }}',
    "compare": '{{ eq $labels.job "node" "x" }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ and 1 "" }} {{ or 0 "z" }} {{ not false }} {{ parseDuration "1h30m" }}',
    "floats": "{{ 1e6 }} {{ 0.5 }} {{ -0.0 }} {{ 1e21 }} {{ 123456789.0 }} {{ 100000.0 }} {{ 1.5e-7 }} {{ 0x10 }} {{ 'a' }}",
    "printf2": '{{ printf "%5.2f%%|%+d|%05d|%x|%X|%o|%b|%c|%U|%8.3e|%-8s|%t|%v|%q" 12.345 5 42 "hi" 3054 8 5 65 65 1234.5678 "x" false nil 65 }}',
    "printf3": '{{ printf "%s %d" "a" }} {{ printf "%d" "s" }} {{ printf "x" 1 }} {{ printf "%.3s|%10.4f|%-10d|" "abcdef" 3.14159 7 }}',
    "define": '{{ define "row" }}<{{ . }}>{{ end }}{{ template "row" $labels.job }}{{ block "b" 5 }}[{{ . }}]{{ end }}',
    "loops": "{{ range $i, $x := (args 1 2 3 4) }}{{ if eq $x 2 }}{{ continue }}{{ end }}{{ if eq $x 4 }}{{ break }}{{ end }}{{ $i }}:{{ $x }} {{ end }}|{{ range 3 }}{{ . }}{{ end }}",
    "vars": "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }} {{ $ := 5 }}{{ $ }}",
    "maps": '{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }} {{ index $labels "nope" | printf "%q" }} {{ len $labels }}',
    "println": '{{ println "a" 1 }}{{ print "a" "b" 1 2 true }}',
    "trim": 'a  {{- " b " -}}  c {{/* comment */}}d',
    "error": 'before {{ humanize "abc" }} after',
    "error2": "{{ .Nope }}",
    "error3": "{{ eq 1 1.5 }}",
}


def _query(q: str) -> list[TemplateSample]:
    assert q == "m"
    return [TemplateSample(dict(lbls), v) for lbls, v in SERIES]


def _yaml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_promtool_expands_alert_annotations_exactly_as_we_do(tmp_path: Path) -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("the reference promtool binary is not installed (../shared/peers)")
    rules = [
        "groups:",
        "  - name: g",
        "    rules:",
        "      - alert: Big",
        "        expr: m > 1000",
        "        annotations:",
    ]
    rules += [f"          {k}: {_yaml(v)}" for k, v in TEMPLATES.items()]
    (tmp_path / "rules.yml").write_text("\n".join(rules) + "\n")
    big = SERIES[0][0]
    labels = {k: v for k, v in big.items() if k != "__name__"}
    expected = {
        k: expand_alert_template(
            v, big, EXTERNAL_LABELS, EXTERNAL_URL, VALUE, _query, name="__alert_Big",
            timestamp_ms=120_000,
        )
        for k, v in TEMPLATES.items()
    }  # fmt: skip
    series = [
        f"      - series: {_yaml('m{' + ','.join(f'{k}={json.dumps(v)}' for k, v in s.items() if k != '__name__') + '}')}\n"
        f"        values: {_yaml(f'{v} {v} {v}')}"
        for s, v in SERIES
    ]
    test = [
        "rule_files: [rules.yml]",
        "tests:",
        "  - interval: 1m",
        f"    external_labels: {_yaml(EXTERNAL_LABELS)}",
        f"    external_url: {_yaml(EXTERNAL_URL)}",
        "    input_series:",
        *series,
        "    alert_rule_test:",
        "      - eval_time: 2m",
        "        alertname: Big",
        "        exp_alerts:",
        f"          - exp_labels: {_yaml(labels)}",
        f"            exp_annotations: {_yaml(expected)}",
    ]
    (tmp_path / "test.yml").write_text("\n".join(test) + "\n")
    proc = subprocess.run(
        [str(promtool), "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
