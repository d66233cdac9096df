# ruff: noqa: E501 - tables of Go template text read best one case per line.
"""Prometheus's template functions and alert template expansion."""

from __future__ import annotations

import math
from typing import Any

import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.template import (
    ALERT_TEMPLATE_DEFS,
    TemplateError,
    TemplateSample,
    check_alert_template,
    expand_alert_template,
    expand_template,
    prometheus_funcs,
)

EXTERNAL_URL = "http://testhost:9090/path/prefix"


def run(text: str, data: Any = None, result: list[TemplateSample] | None = None) -> str:
    funcs = prometheus_funcs(lambda q: result or [], EXTERNAL_URL, timestamp_ms=1_500_000)
    return expand_template("test", text, data, funcs)


CASES: list[tuple[str, Any, str]] = [
    ("{{ humanize 1234567.0 }}", None, "1.235M"),
    ("{{ range . }}{{ humanize . }}:{{ end }}", [0.0, 1.0, 1234567.0, 0.12], "0:1:1.235M:120m:"),
    (
        "{{ range . }}{{ humanize . }}:{{ end }}",
        [0, -1, 1, 1234567, 2**63 - 1],
        "0:-1:1:1.235M:9.223E:",
    ),
    ("{{ range . }}{{ humanize1024 . }}:{{ end }}", [0.0, 1.0, 1048576.0, 0.12], "0:1:1Mi:0.12:"),
    (
        "{{ range . }}{{ humanize1024 . }}:{{ end }}",
        [0, -1, 1, 1234567, 2**63 - 1],
        "0:-1:1:1.177Mi:8Ei:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        [
            0.0,
            1.0,
            60.0,
            3600.0,
            86400.0,
            86400 + 3600.0,
            -(3 * 86400 - 3 * 3600 - 4 * 60 - 5.0) + 2 * 0,
            899.99,
        ],
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 20h 55m 55s:14m 59s:",
    ),
    (
        "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
        [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345],
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
    ),
    (
        "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
        [math.inf, -math.inf, math.nan],
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
    ),
    (
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
        None,
        "-22.22%:0%:12.35%:123.5%",
    ),
    ('{{ "0.1234567" | humanizePercentage }}', None, "12.35%"),
    (
        "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
        [0, -1, 1, 1234567, 9223372036],
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:"
        "1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
    ),
    ("{{ 1435065584.128 | humanizeTimestamp }}", None, "2015-06-23 13:19:44.128 +0000 UTC"),
    ('{{ (1435065584.128 | toTime).Format "2006" }}', None, "2015"),
    (
        '{{ (1435065584.128 | toTime).Format "2006-01-02T15:04:05.000Z07:00" }}',
        None,
        "2015-06-23T13:19:44.128Z",
    ),
    ('{{ "aa bb CC" | title }}', None, "Aa Bb CC"),
    ('{{ "aB" | toUpper }}{{ "aB" | toLower }}', None, "ABab"),
    ('{{ match "a+" "aa" }} {{ match "a+" "b" }}', None, "true false"),
    ('{{ reReplaceAll "(a)b" "x$1" "ab" }}', None, "xa"),
    (
        '{{ graphLink "up" }} {{ tableLink "rate(x[5m]) > 1" }}',
        None,
        "/graph?g0.expr=up&g0.tab=0 /graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1",
    ),
    ("{{ pathPrefix }} {{ externalURL }}", None, "/path/prefix http://testhost:9090/path/prefix"),
    ('{{ printf "%0.2f" (parseDuration "1h2m10ms") }}', None, "3720.01"),
    ('{{ "<b>" | safeHtml }}', None, "<b>"),
    ('{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}', None, "1 2"),
    ("{{ now }} {{ 90 | toDuration }}", None, "1500 1m30s"),
]

HOSTS = [
    ("foo.example.com", "foo.example.com", "foo"),
    ("foo.example.com:12345", "foo.example.com", "foo:12345"),
    ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
    ("192.0.2.1:12345", "192.0.2.1", "192.0.2.1:12345"),
    ("2001:0DB8::1", "2001:0DB8::1", "2001:0DB8::1"),
    ("[2001:0DB8::1]:12345", "2001:0DB8::1", "[2001:0DB8::1]:12345"),
    ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
]


@pytest.mark.parametrize(("text", "data", "expected"), CASES)
def test_prometheus_functions(text: str, data: Any, expected: str) -> None:
    assert run(text, data) == expected


@pytest.mark.parametrize(("host", "no_port", "no_domain"), HOSTS)
def test_strip_port_and_domain(host: str, no_port: str, no_domain: str) -> None:
    assert run("{{ . | stripPort }}", host) == no_port
    assert run("{{ . | stripDomain }}", host) == no_domain


def test_query_results_are_samples_with_labels_and_value() -> None:
    result = [
        TemplateSample({"instance": "b", "__value__": "x"}, 21.0),
        TemplateSample({"instance": "a"}, 11.0),
    ]
    text = '{{ range query "metric" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{end}}'
    assert run(text, result=result) == "a:11: b:21: "
    assert run('{{ query "m" | first | value }}', result=result) == "21"
    assert run('{{ query "m" | first | label "instance" }}', result=result) == "b"
    assert run('{{ query "m" | first | label "foo" }}', result=result) == ""
    assert run('{{ query "m" | first | strvalue }}', result=result) == "x"
    assert run('{{ $x := query "m" | first }}{{ $x.Labels.foo }}', result=result) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{{ query "missing" | first }}',
            'error executing template test: template: test:1:21: executing "test" at <first>: '
            "error calling first: first() called on vector with no elements",
        ),
        (
            '{{ humanize "one" }}',
            'error executing template test: template: test:1:3: executing "test" at <humanize "one">: '
            'error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax',
        ),
        (
            '{{ "one" | humanizePercentage }}',
            'error executing template test: template: test:1:11: executing "test" at <humanizePercentage>: '
            'error calling humanizePercentage: strconv.ParseFloat: parsing "one": invalid syntax',
        ),
        (
            '{{ (query "missing").banana }}',
            'error executing template test: template: test:1:10: executing "test" at <"missing">: '
            "can't evaluate field banana in type []interface {}",
        ),
        (
            "{{ nope }}",
            'error parsing template test: template: test:1: function "nope" not defined',
        ),
    ],
)
def test_errors_read_like_prometheus(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        run(text)
    assert str(info.value) == message


def test_timestamp_overflow_is_an_error() -> None:
    with pytest.raises(TemplateError, match="cannot be represented as a nanoseconds timestamp"):
        run("{{ range . }}{{ humanizeTimestamp . }}:{{ end }}", [-9.223372036854776e18 * 2])


def test_alert_template_defines_labels_value_and_external_labels() -> None:
    text = (
        "{{ $labels.instance }} of {{ $externalLabels.cluster }} at {{ $externalURL }}: "
        "{{ $value | humanize }} {{ .Value }} {{ $labels.missing }}|"
    )
    out = expand_alert_template(
        text,
        Labels.from_dict({"instance": "db:9100"}),
        {"cluster": "eu1"},
        "http://prom",
        1234.5,
    )
    assert out == "db:9100 of eu1 at http://prom: 1.234k 1234.5 |"


def test_alert_template_errors_become_prometheus_error_text() -> None:
    out = expand_alert_template("{{ .Nope }}", {}, {}, "", 1.0, name="__alert_HighLoad")
    col = len(ALERT_TEMPLATE_DEFS) + 3
    assert out == (
        "<error expanding template: error executing template __alert_HighLoad: template: "
        f'__alert_HighLoad:1:{col}: executing "__alert_HighLoad" at <.Nope>: can\'t evaluate '
        "field Nope in type struct { Labels map[string]string; ExternalLabels map[string]string; "
        "ExternalURL string; Value interface {} }>"
    )
    bad = expand_alert_template("{{ if }}", {}, {}, "", 1.0, name="__alert_X")
    assert bad == (
        "<error expanding template: error parsing template __alert_X: template: __alert_X:1: "
        "missing value for if>"
    )


def test_alert_template_query_accepts_column_results() -> None:
    class Vector:
        labels = (Labels.from_dict({"job": "a"}),)
        values = (3.0,)

    out = expand_alert_template(
        '{{ with query "up" }}{{ (first .).Labels.job }}={{ . | first | value }}{{ end }}',
        {},
        {},
        "",
        0.0,
        lambda q: Vector(),
    )
    assert out == "a=3"


def test_check_alert_template_reports_parse_errors_only() -> None:
    assert check_alert_template("__alert_A", "{{ $labels.x }} {{ .Anything }}") is None
    assert check_alert_template("__alert_A", "{{ nope }}") == (
        'template: __alert_A:1: function "nope" not defined'
    )
