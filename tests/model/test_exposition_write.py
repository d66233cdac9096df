"""Writing exposition formats, content negotiation and the scrape Accept header."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.exposition import (
    NO_TIMESTAMP,
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Exemplar,
    MetricFamily,
    Sample,
    negotiate,
    parse_exposition,
    scrape_accept_header,
    write_openmetrics,
    write_text,
)
from watchkeeper.model.exposition.floats import format_go_float, parse_go_float
from watchkeeper.model.labels import Labels
from watchkeeper.model.value import NORMAL_NAN_BITS


def bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


_chars = st.characters(exclude_categories=["Cs"])
_legacy_name = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True)
_utf8_name = st.text(_chars, min_size=1, max_size=6)
_metric_name = st.one_of(_legacy_name, _legacy_name, _utf8_name).filter(
    lambda n: not n.endswith("_created")
)
_label_name = st.one_of(
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True), _utf8_name
).filter(lambda n: n not in ("__name__", "le", "quantile"))
_label_value = st.text(_chars, max_size=8)
_float = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1e6, 1234567.0]),
)
_labels = st.dictionaries(_label_name, _label_value, max_size=4)


@st.composite
def families(draw: st.DrawFn, *, om: bool) -> list[MetricFamily]:
    out = []
    names = draw(st.lists(_metric_name, max_size=4, unique=True))
    for name in names:
        types = ["counter", "gauge", "histogram", "summary", "unknown"]
        if om:
            types += ["gaugehistogram", "info", "stateset"]
        unit = ""
        if om and draw(st.booleans()) and name.isidentifier():
            unit = draw(st.sampled_from(["seconds", "bytes"]))
        fam_name = f"{name}_{unit}" if unit else name
        samples = []
        for lbls in draw(st.lists(_labels, max_size=4)):
            ts = draw(st.one_of(st.none(), st.integers(-(2**50), 2**50)))
            if not om and ts is not None:
                ts = abs(ts)
            exemplar = None
            if om and draw(st.booleans()):
                exemplar = Exemplar(
                    Labels.from_dict(draw(st.dictionaries(_label_name, _label_value, max_size=2))),
                    draw(_float),
                    draw(st.one_of(st.none(), st.integers(-(2**40), 2**40))),
                )
            samples.append(
                Sample(
                    Labels.from_dict({**lbls, "__name__": fam_name}),
                    draw(_float),
                    ts,
                    exemplar,
                )
            )
        out.append(
            MetricFamily(
                fam_name,
                draw(st.sampled_from(types)),
                draw(st.text(_chars, max_size=10)),
                unit,
                tuple(samples),
            )
        )
    return out


def _check_round_trip(fams: list[MetricFamily], body: bytes, content_type: str) -> None:
    r = parse_exposition(body, content_type)
    samples = [s for f in fams for s in f.samples]
    assert len(r) == len(samples)
    for i, (got, want) in enumerate(zip(r.labels(), samples, strict=True)):
        assert got == want.labels
        v = float(r.values[i])
        if math.isnan(want.value):
            assert bits(v) == NORMAL_NAN_BITS
        else:
            assert bits(v) == bits(want.value)
        want_ts = NO_TIMESTAMP if want.timestamp_ms is None else want.timestamp_ms
        assert r.timestamps_ms[i] == want_ts
        ex = r.exemplars.get(i)
        if want.exemplar is None:
            assert ex is None
        else:
            assert ex is not None
            assert ex.labels == want.exemplar.labels
            assert ex.timestamp_ms == want.exemplar.timestamp_ms
            if not math.isnan(want.exemplar.value):
                assert bits(ex.value) == bits(want.exemplar.value)
    for fam in fams:
        meta = r.metadata[fam.name]
        assert meta.help == fam.help
        assert meta.unit == fam.unit


@given(families(om=False))
def test_text_round_trip_is_exact(fams: list[MetricFamily]) -> None:
    _check_round_trip(fams, write_text(fams), TEXT_CONTENT_TYPE)


@given(families(om=True))
def test_openmetrics_round_trip_is_exact(fams: list[MetricFamily]) -> None:
    body = write_openmetrics(fams)
    assert body.endswith(b"# EOF\n")
    _check_round_trip(fams, body, OPENMETRICS_CONTENT_TYPE)
    r = parse_exposition(body, OPENMETRICS_CONTENT_TYPE)
    for fam in fams:
        assert r.metadata[fam.name].type == fam.type


def test_text_writer_output_looks_like_client_golang() -> None:
    fam = MetricFamily(
        "http_requests_total",
        "counter",
        "Requests.\nSecond line \\ end",
        "",
        (
            Sample(
                Labels.from_dict({"__name__": "http_requests_total", "code": "200", "m": 'a"b'}),
                1027.0,
                1395066363000,
            ),
            Sample(Labels.from_dict({"__name__": "http_requests_total"}), 1e6),
        ),
    )
    assert write_text([fam]).decode() == (
        "# HELP http_requests_total Requests.\\nSecond line \\\\ end\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{code="200",m="a\\"b"} 1027 1395066363000\n'
        "http_requests_total 1e+06\n"
    )


def test_utf8_names_are_quoted() -> None:
    fam = MetricFamily(
        "my.metric",
        "gauge",
        "",
        "",
        (Sample(Labels.from_dict({"__name__": "my.metric", "a.b": "x"}), 1.5),),
    )
    assert write_text([fam]) == b'# TYPE "my.metric" gauge\n{"my.metric","a.b"="x"} 1.5\n'


def test_openmetrics_writer_adds_units_exemplars_and_eof() -> None:
    fam = MetricFamily(
        "rt_seconds",
        "histogram",
        "Latency.",
        "seconds",
        (
            Sample(
                Labels.from_dict({"__name__": "rt_seconds_bucket", "le": "+Inf"}),
                5.0,
                1500,
                Exemplar(Labels.from_dict({"trace_id": "abc"}), 0.25, 1000),
            ),
        ),
    )
    assert write_openmetrics([fam]).decode() == (
        "# TYPE rt_seconds histogram\n"
        "# UNIT rt_seconds seconds\n"
        "# HELP rt_seconds Latency.\n"
        'rt_seconds_bucket{le="+Inf"} 5.0 1.5 # {trace_id="abc"} 0.25 1.0\n'
        "# EOF\n"
    )


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", TEXT_CONTENT_TYPE),
        ("*/*", TEXT_CONTENT_TYPE),
        ("text/plain;version=0.0.4", TEXT_CONTENT_TYPE),
        ("application/openmetrics-text;version=1.0.0", OPENMETRICS_CONTENT_TYPE),
        (scrape_accept_header(), OPENMETRICS_CONTENT_TYPE),
        (
            "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.5",
            TEXT_CONTENT_TYPE,
        ),
        ("application/openmetrics-text;version=9.9.9", TEXT_CONTENT_TYPE),
        (
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily",
            TEXT_CONTENT_TYPE,
        ),
    ],
)
def test_negotiate_picks_the_best_supported_format(accept: str, content_type: str) -> None:
    got, writer = negotiate(accept)
    assert got == content_type
    body = writer(
        [MetricFamily("up", "gauge", "", "", (Sample(Labels.from_dict({"__name__": "up"}), 1.0),))]
    )
    assert body.startswith(b"# TYPE up gauge\n")


def test_default_accept_header_is_prometheus_3_5s() -> None:
    assert scrape_accept_header() == (
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
        "application/openmetrics-text;version=0.0.1;q=0.5,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
        "text/plain;version=0.0.4;q=0.3,"
        "*/*;q=0.2"
    )
    assert (
        scrape_accept_header(["PrometheusText0.0.4"]) == "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    )
    with pytest.raises(ValueError, match="unknown scrape protocol Foo"):
        scrape_accept_header(["Foo"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e300, "1.5e+300"),
        (5e-324, "5e-324"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_floats_are_formatted_as_go_does(value: float, text: str) -> None:
    assert format_go_float(value) == text


@given(st.floats(allow_nan=False))
def test_go_float_format_round_trips(value: float) -> None:
    assert bits(parse_go_float(format_go_float(value))) == bits(value)
