"""Parsing of the text 0.0.4 and OpenMetrics 1.0 exposition formats."""

from __future__ import annotations

import contextlib
import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.exposition import (
    NO_TIMESTAMP,
    ExpositionParseError,
    MetricMetadata,
    media_type_for,
    parse_exposition,
    parse_series_text,
)
from watchkeeper.model.exposition.lines import parse_text_line
from watchkeeper.model.labels import Labels
from watchkeeper.model.value import NORMAL_NAN_BITS

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def test_text_format_example_parses_with_labels_values_and_timestamps() -> None:
    body = (
        b"# HELP http_requests_total The total number of HTTP requests.\n"
        b"# TYPE http_requests_total counter\n"
        b'http_requests_total{method="post",code="200"} 1027 1395066363000\n'
        b'http_requests_total{method="post",code="400"}    3 1395066363000\n'
        b"\n"
        b'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",'
        b'error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9\n'
        b"# A normal comment.\n"
        b"metric_without_timestamp_and_labels 12.47\n"
        b'something_weird{problem="division by zero"} +Inf 3982045\n'
    )
    r = parse_exposition(body, TEXT)
    assert r.series_text == [
        'http_requests_total{method="post",code="200"}',
        'http_requests_total{method="post",code="400"}',
        'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",'
        'error="Cannot find file:\\n\\"FILE.TXT\\""}',
        "metric_without_timestamp_and_labels",
        'something_weird{problem="division by zero"}',
    ]
    assert r.values.tolist() == [1027, 3, 1.458255915e9, 12.47, math.inf]
    assert r.timestamps_ms.tolist() == [
        1395066363000,
        1395066363000,
        NO_TIMESTAMP,
        NO_TIMESTAMP,
        3982045,
    ]
    assert r.metadata == {
        "http_requests_total": MetricMetadata("counter", "The total number of HTTP requests.", "")
    }
    labels = r.labels()
    assert labels[2].get("path") == "C:\\DIR\\FILE.TXT"
    assert labels[2].get("error") == 'Cannot find file:\n"FILE.TXT"'
    assert labels[0] == Labels.from_dict(
        {"__name__": "http_requests_total", "method": "post", "code": "200"}
    )


def test_indented_comments_metadata_and_blank_lines_are_not_samples() -> None:
    body = b"   \n  # TYPE m counter\n\t# just a comment\nm_total 1\n \t \n"
    r = parse_exposition(body, TEXT)
    assert r.series_text == ["m_total"]
    assert r.metadata["m"].type == "counter"


def test_identical_series_get_identical_text_whatever_the_whitespace() -> None:
    body = b'a{x="1",y="2"} 1\na { x = "1" , y="2" }\t2\n  a{x="1",y="2"} 3 \n'
    r = parse_exposition(body, TEXT)
    assert r.series_text == ['a{x="1",y="2"}'] * 3
    assert r.values.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("NaN", math.nan),
        ("nan", math.nan),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("Inf", math.inf),
        ("infinity", math.inf),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("-0", -0.0),
        ("0.1", 0.1),
    ],
)
def test_values_follow_go_float_syntax(token: str, expected: float) -> None:
    r = parse_exposition(f"m {token}\n".encode(), TEXT)
    got = float(r.values[0])
    if math.isnan(expected):
        assert bits(got) == NORMAL_NAN_BITS
    else:
        assert bits(got) == bits(expected)


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        (b"m 1_0\n", 1, "unsupported character in float"),
        (b"ok 1\nm 0x10\n", 2, 'strconv.ParseFloat: parsing "0x10": invalid syntax'),
        (b"m 1e400\n", 1, "value out of range"),
        (b"m +NaN\n", 1, "invalid syntax"),
        (b"m 1\r\n", 1, "invalid syntax"),
        (b"m\n", 1, "expected value after metric"),
        (b"m 1 -5\n", 1, "expected timestamp or new record"),
        (b"m 1 5 6\n", 1, "expected next entry after timestamp"),
        (b'm{a="1",b 1\n', 1, "expected equal"),
        (b"m{a=1} 1\n", 1, "expected label value"),
        (b'm{1a="x"} 1\n', 1, "expected label name"),
        (b"# TYPE m countr\n", 1, 'invalid metric type "countr"'),
        (b"# HELP 1m x\n", 1, "expected metric name after HELP"),
        (b'{a="b"} 1\n', 1, "metric name not set"),
        (b'm{"n"} 1\n', 1, "metric name already set"),
        (b"m 1 99999999999999999999\n", 1, "value out of range"),
        (b"a 1\nb 2\n\xff 3\n", 3, "invalid UTF-8"),
    ],
)
def test_malformed_text_is_an_error_naming_the_line(body: bytes, line: int, reason: str) -> None:
    with pytest.raises(ExpositionParseError) as info:
        parse_exposition(body, TEXT)
    assert info.value.line == line
    assert reason in info.value.reason
    assert f"(line {line})" in str(info.value)


def test_error_message_reads_like_prometheus() -> None:
    with pytest.raises(ExpositionParseError) as info:
        parse_exposition(b"m\n", TEXT)
    assert info.value.reason == 'expected value after metric, got "\\n" while parsing: "m\\n"'


def test_duplicate_label_names_are_rejected_when_labels_are_read() -> None:
    r = parse_exposition(b'm{a="1",a="2"} 1\n', TEXT)
    with pytest.raises(ExpositionParseError, match='label name "a" is not unique'):
        r.labels()
    with pytest.raises(ExpositionParseError, match="not unique"):
        parse_series_text('m{__name__="x"}')


def test_histogram_le_and_summary_quantile_values_are_normalised() -> None:
    body = (
        b"# TYPE h histogram\n"
        b'h_bucket{le="1"} 1\nh_bucket{le="0.50"} 1\nh_bucket{le="+Inf"} 2\n'
        b"# TYPE s summary\n"
        b's{quantile="1"} 3\n'
        b"# TYPE g gauge\n"
        b'g{le="1"} 3\n'
    )
    r = parse_exposition(body, TEXT)
    assert r.series_text == [
        'h_bucket{le="1.0"}',
        'h_bucket{le="0.5"}',
        'h_bucket{le="+Inf"}',
        's{quantile="1.0"}',
        'g{le="1"}',
    ]


def test_quoted_utf8_names_parse_as_in_prometheus_3() -> None:
    body = '{"my.metric","ünï.label"="x",b="y"} 1\n# HELP "my.metric" dotted\n'.encode()
    r = parse_exposition(body, TEXT)
    assert r.labels()[0] == Labels.from_dict({"__name__": "my.metric", "ünï.label": "x", "b": "y"})
    assert r.metadata["my.metric"].help == "dotted"


def test_help_escapes_follow_each_format() -> None:
    text = parse_exposition(b'# HELP m a\\\\b\\nc\\"d\n', TEXT)
    assert text.metadata["m"].help == 'a\\b\nc\\"d'
    om = parse_exposition(b'# HELP m a\\\\b\\nc\\"d\n# EOF\n', OM)
    assert om.metadata["m"].help == 'a\\b\nc"d'


def test_openmetrics_body_with_exemplars_units_and_created() -> None:
    body = (
        b"# TYPE foo_seconds counter\n"
        b"# UNIT foo_seconds seconds\n"
        b"# HELP foo_seconds Help.\n"
        b'foo_seconds_total{a="b"} 1.5 1.25 # {trace_id="x"} 1.0 123.5\n'
        b'foo_seconds_created{a="b"} 1000.5\n'
        b'foo_seconds_total{a="c"} 2 # {span="y"} 3\n'
        b"# TYPE i info\n"
        b'i_info{v="1"} 1\n'
        b"# TYPE s stateset\n"
        b's{s="a"} 1\n'
        b"# TYPE gh gaugehistogram\n"
        b'gh_bucket{le="1"} 1\n'
        b"# EOF\n"
    )
    r = parse_exposition(body, OM)
    assert r.content_type == "application/openmetrics-text"
    assert r.metadata["foo_seconds"] == MetricMetadata("counter", "Help.", "seconds")
    assert r.metadata["gh"].type == "gaugehistogram"
    assert r.timestamps_ms[0] == 1250
    assert r.exemplars[0].labels == Labels.from_dict({"trace_id": "x"})
    assert r.exemplars[0].timestamp_ms == 123500
    assert r.exemplars[2].value == 3.0
    assert r.exemplars[2].timestamp_ms is None
    assert r.created_timestamps_ms is not None
    assert r.created_timestamps_ms[0] == 1000500
    assert r.created_timestamps_ms[2] == NO_TIMESTAMP
    assert r.series_text[1] == 'foo_seconds_created{a="b"}'
    skipped = parse_exposition(body, OM, skip_created_series=True)
    assert "foo_seconds_created" not in "".join(skipped.series_text)
    assert len(skipped) == len(r) - 1
    assert skipped.exemplars[1].labels == Labels.from_dict({"span": "y"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"m 1\n", "data does not end with # EOF"),
        (b"m 1\n# EOF\nm 2\n", "unexpected data after # EOF"),
        (b"m 1\n\n# EOF\n", "expected a valid start token"),
        (b"# random comment\n# EOF\n", "expected a valid start token"),
        (b"m  1\n# EOF\n", "expected value after metric"),
        (b'm{a="b", c="d"} 1\n# EOF\n', "expected label name"),
        (b"# UNIT foo_bytes seconds\n# EOF\n", 'unit "seconds" not a suffix of metric'),
        (b"# TYPE m untyped\n# EOF\n", 'invalid metric type "untyped"'),
        (b"m 1 NaN\n# EOF\n", "invalid timestamp"),
        (b"m 1 # {a} 1\n# EOF\n", "expected equal"),
        (b'm 1 # {a="b"}\n# EOF\n', "expected value after exemplar labels"),
        (b"# HELP m\n# EOF\n", "expected text in HELP"),
    ],
)
def test_malformed_openmetrics_is_an_error(body: bytes, reason: str) -> None:
    with pytest.raises(ExpositionParseError) as info:
        parse_exposition(body, OM)
    assert reason in info.value.reason


def test_openmetrics_eof_without_newline_is_accepted() -> None:
    r = parse_exposition(b"m 1\n# EOF", OM)
    assert r.values.tolist() == [1.0]


@pytest.mark.parametrize(
    ("content_type", "fallback", "media", "warns"),
    [
        ("text/plain; version=0.0.4", None, "text/plain", False),
        ("TEXT/PLAIN", None, "text/plain", False),
        ("text/plain;version=1.0.0;escaping=allow-utf-8", None, "text/plain", False),
        (
            "application/openmetrics-text; version=1.0.0",
            None,
            "application/openmetrics-text",
            False,
        ),
        ("", "PrometheusText0.0.4", "text/plain", True),
        ("application/json", "OpenMetricsText1.0.0", "application/openmetrics-text", True),
        ("garbage;;;=", "PrometheusText0.0.4", "text/plain", True),
    ],
)
def test_content_type_chooses_the_parser_as_prometheus_does(
    content_type: str, fallback: str | None, media: str, warns: bool
) -> None:
    got, warning = media_type_for(content_type, fallback)
    assert got == media
    assert (warning is not None) == warns


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("", "non-compliant scrape target sending blank Content-Type and no"),
        ("application/json", 'received unsupported Content-Type "application/json" and no'),
        ("garbage", 'cannot parse Content-Type "garbage" and no fallback_scrape_protocol'),
    ],
)
def test_unknown_content_type_without_fallback_fails_the_scrape(
    content_type: str, message: str
) -> None:
    with pytest.raises(ExpositionParseError, match=message):
        parse_exposition(b"m 1\n", content_type)


def test_fallback_warning_is_reported_with_the_result() -> None:
    r = parse_exposition(b"m 1\n", "", fallback="PrometheusText0.0.4")
    assert r.warnings
    assert "fallback_scrape_protocol" in r.warnings[0]


def test_empty_body_has_no_samples() -> None:
    r = parse_exposition(b"", TEXT)
    assert len(r) == 0
    assert r.values.dtype == np.float64
    assert r.timestamps_ms.dtype == np.int64


# --- The fast path agrees with the careful line parser. ---

_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,6}", fullmatch=True)
_lnames = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,5}", fullmatch=True)
_lvalues = st.text(alphabet=st.sampled_from('ab1 .{}=,"\\\n#é'), max_size=6)
_values = st.sampled_from(["1", "-2.5", "NaN", "+Inf", "-Inf", "1e3", "0", "3.25e-7", ".5"])


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@st.composite
def _text_lines(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(["sample", "sample", "sample", "comment", "type", "blank", "indented"])
    )
    name = draw(_names)
    if kind == "comment":
        return "# " + draw(st.text(alphabet="abc #", max_size=8))
    if kind == "type":
        return f"# TYPE {name} " + draw(st.sampled_from(["counter", "histogram", "summary"]))
    if kind == "blank":
        return ""
    if kind == "indented":
        return draw(st.sampled_from([" ", "\t", "  "])) + draw(st.sampled_from(["", "# c", "x 1"]))
    pairs = draw(st.dictionaries(_lnames, _lvalues, max_size=3))
    sep = draw(st.sampled_from([" ", " ", "\t", "  "]))
    lbl = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    braces: bool = draw(st.booleans())
    series = f"{name}{{{lbl}}}" if pairs or braces else name
    ts = draw(st.one_of(st.none(), st.integers(0, 2**62)))
    return f"{series}{sep}{draw(_values)}" + ("" if ts is None else f" {ts}")


@given(st.lists(_text_lines(), max_size=12), st.booleans())
def test_fast_path_matches_the_line_parser(lines: list[str], validate: bool) -> None:
    body = "\n".join(lines) + "\n"
    r = parse_exposition(body.encode(), TEXT, validate_series=validate)
    expected = [p for p in map(parse_text_line, lines) if p.kind == "sample"]
    assert len(r) == len(expected)
    for i, p in enumerate(expected):
        assert parse_series_text(r.series_text[i]) == parse_series_text(p.series) or (
            'le="' in p.series or 'quantile="' in p.series
        )
        assert bits(float(r.values[i])) == bits(p.value) or math.isnan(p.value)
        want_ts = NO_TIMESTAMP if p.timestamp_ms is None else p.timestamp_ms
        assert r.timestamps_ms[i] == want_ts


@given(st.binary(max_size=200), st.sampled_from([TEXT, OM]))
def test_arbitrary_bytes_raise_only_parse_errors(body: bytes, content_type: str) -> None:
    try:
        r = parse_exposition(body, content_type)
        r.labels()
    except ExpositionParseError:
        pass


@given(
    st.lists(
        st.text(alphabet=st.sampled_from('m{}="a,\\ 1.#\nE\tOFe+-_'), max_size=30), max_size=6
    ),
    st.sampled_from([TEXT, OM]),
    st.booleans(),
)
def test_arbitrary_text_raises_only_parse_errors(
    lines: list[str], content_type: str, validate: bool
) -> None:
    body = "\n".join(lines).encode()
    try:
        r = parse_exposition(body, content_type, validate_series=validate)
        r.labels()
    except ExpositionParseError:
        pass


@given(st.text(max_size=40))
def test_arbitrary_series_text_raises_only_parse_errors(text: str) -> None:
    with contextlib.suppress(ExpositionParseError):
        parse_series_text(text)
