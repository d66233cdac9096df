"""Parsing the protobuf exposition format: the same samples as the equivalent text."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.exposition import (
    NO_TIMESTAMP,
    PROTOBUF_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ExpositionParseError,
    MetricFamily,
    MetricMetadata,
    ParsedExposition,
    Sample,
    encode_delimited,
    parse_exposition,
    write_text,
)
from watchkeeper.model.exposition.floats import format_go_float
from watchkeeper.model.exposition.protobuf import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    MESSAGES,
    SUMMARY,
    UNTYPED,
)
from watchkeeper.model.labels import Labels

Family = MESSAGES["MetricFamily"]


def samples(r: ParsedExposition) -> dict[str, tuple[str, int]]:
    """series -> (value as text, timestamp): NaN compares equal whatever its payload."""
    out = {}
    for lbls, v, t in zip(r.labels(), r.values.tolist(), r.timestamps_ms.tolist(), strict=True):
        out[str(lbls)] = ("NaN" if math.isnan(v) else repr(v), t)
    return out


def family(name: str, mtype: int, **kw: Any) -> Any:
    return Family(name=name, type=mtype, **kw)


def test_counters_gauges_and_untyped_keep_labels_values_and_timestamps() -> None:
    c = family("http_requests_total", COUNTER, help="Requests.")
    m = c.metric.add(timestamp_ms=1395066363000)
    m.label.add(name="code", value="200")
    m.label.add(name="path", value='C:\\dir "x"\nnext')
    m.counter.value = 1027
    g = family("temp", GAUGE)
    g.metric.add().gauge.value = -1.5
    u = family("my.dotted", UNTYPED)
    m = u.metric.add()
    m.label.add(name="ünï label", value="ÿes")
    m.untyped.value = math.inf
    r = parse_exposition(encode_delimited([c, g, u]), PROTOBUF_CONTENT_TYPE)
    assert [str(lbls) for lbls in r.labels()] == [
        'http_requests_total{code="200", path="C:\\\\dir \\"x\\"\\nnext"}',
        "temp",
        '{__name__="my.dotted", "ünï label"="ÿes"}',
    ]
    assert r.values.tolist() == [1027, -1.5, math.inf]
    assert r.timestamps_ms.tolist() == [1395066363000, NO_TIMESTAMP, NO_TIMESTAMP]
    assert r.metadata == {
        "http_requests_total": MetricMetadata("counter", "Requests."),
        "temp": MetricMetadata("gauge"),
        "my.dotted": MetricMetadata("unknown"),
    }
    assert r.content_type == "application/vnd.google.protobuf"


def test_summaries_give_count_sum_and_one_series_per_quantile() -> None:
    s = family("rpc_seconds", SUMMARY)
    m = s.metric.add()
    m.summary.sample_count = 9
    m.summary.sample_sum = 1.25
    m.summary.quantile.add(quantile=0.5, value=0.1)
    m.summary.quantile.add(quantile=1, value=math.nan)
    r = parse_exposition(encode_delimited([s]), PROTOBUF_CONTENT_TYPE)
    assert r.series_text == [
        "rpc_seconds_count",
        "rpc_seconds_sum",
        'rpc_seconds{quantile="0.5"}',
        'rpc_seconds{quantile="1.0"}',
    ]
    assert r.values[:3].tolist() == [9, 1.25, 0.1]
    assert math.isnan(r.values[3])


def test_classic_histograms_give_cumulative_buckets_and_add_the_inf_bucket() -> None:
    h = family("lat", HISTOGRAM)
    m = h.metric.add()
    m.label.add(name="path", value="/")
    m.histogram.sample_count = 5
    m.histogram.sample_sum = 2.5
    m.histogram.bucket.add(upper_bound=0.5, cumulative_count=1)
    m.histogram.bucket.add(upper_bound=1, cumulative_count_float=3.5)
    r = parse_exposition(encode_delimited([h]), PROTOBUF_CONTENT_TYPE)
    assert dict(zip(r.series_text, r.values.tolist(), strict=True)) == {
        'lat_count{path="/"}': 5,
        'lat_sum{path="/"}': 2.5,
        'lat_bucket{path="/",le="0.5"}': 1,
        'lat_bucket{path="/",le="1.0"}': 3.5,
        'lat_bucket{path="/",le="+Inf"}': 5,
    }


def test_buckets_after_the_inf_bucket_are_ignored_and_no_buckets_still_give_inf() -> None:
    h = family("h", HISTOGRAM)
    m = h.metric.add()
    m.histogram.sample_count = 2
    m.histogram.bucket.add(upper_bound=math.inf, cumulative_count=2)
    m.histogram.bucket.add(upper_bound=7, cumulative_count=9)
    empty = family("e", HISTOGRAM)
    empty.metric.add().histogram.sample_count_float = 4.0
    r = parse_exposition(encode_delimited([h, empty]), PROTOBUF_CONTENT_TYPE)
    assert r.series_text == [
        "h_count",
        "h_sum",
        'h_bucket{le="+Inf"}',
        "e_count",
        "e_sum",
        'e_bucket{le="+Inf"}',
    ]
    assert r.values.tolist() == [2, 0, 2, 4, 0, 4]


def _native(name: str, *, with_buckets: bool) -> Any:
    h = family(name, HISTOGRAM)
    m = h.metric.add()
    m.histogram.sample_count = 3
    m.histogram.schema = 3
    m.histogram.zero_threshold = 1e-128
    m.histogram.positive_span.add(offset=0, length=1)
    m.histogram.positive_delta.append(3)
    if with_buckets:
        m.histogram.bucket.add(upper_bound=1, cumulative_count=3)
    return h


def test_native_histograms_are_counted_but_give_no_series_by_default() -> None:
    body = encode_delimited([_native("n", with_buckets=False), _native("both", with_buckets=True)])
    r = parse_exposition(body, PROTOBUF_CONTENT_TYPE)
    assert r.series_text == []
    assert r.skipped_native_histograms == 2
    assert set(r.metadata) == {"n", "both"}


def test_always_scrape_classic_histograms_parses_the_classic_buckets_of_native_ones() -> None:
    body = encode_delimited([_native("n", with_buckets=False), _native("both", with_buckets=True)])
    r = parse_exposition(body, PROTOBUF_CONTENT_TYPE, classic_histograms=True)
    assert r.series_text == [
        "both_count",
        "both_sum",
        'both_bucket{le="1.0"}',
        'both_bucket{le="+Inf"}',
    ]
    assert r.skipped_native_histograms == 2


def test_exemplars_of_counters_and_buckets_keep_labels_value_and_timestamp() -> None:
    c = family("c_total", COUNTER)
    m = c.metric.add()
    m.counter.value = 3
    m.counter.exemplar.value = 1
    m.counter.exemplar.label.add(name="trace_id", value="abc")
    m.counter.exemplar.timestamp.seconds = 1700000000
    m.counter.exemplar.timestamp.nanos = 512_999_999
    h = family("h", HISTOGRAM)
    m = h.metric.add()
    m.histogram.sample_count = 1
    b = m.histogram.bucket.add(upper_bound=1, cumulative_count=1)
    b.exemplar.value = 0.3
    r = parse_exposition(encode_delimited([c, h]), PROTOBUF_CONTENT_TYPE)
    ex = {r.series_text[i]: e for i, e in r.exemplars.items()}
    assert set(ex) == {"c_total", 'h_bucket{le="1.0"}'}
    assert ex["c_total"].labels == Labels([("trace_id", "abc")])
    assert ex["c_total"].timestamp_ms == 1700000000512
    assert ex['h_bucket{le="1.0"}'].value == 0.3
    assert ex['h_bucket{le="1.0"}'].timestamp_ms is None


def test_created_timestamps_fill_every_series_of_their_metric() -> None:
    c = family("c_total", COUNTER)
    m = c.metric.add()
    m.counter.created_timestamp.seconds = 1700000000
    m.counter.created_timestamp.nanos = 250_000_000
    s = family("s", SUMMARY)
    m = s.metric.add()
    m.summary.created_timestamp.seconds = 5
    g = family("g", GAUGE)
    g.metric.add()
    r = parse_exposition(encode_delimited([c, s, g]), PROTOBUF_CONTENT_TYPE)
    assert r.created_timestamps_ms is not None
    assert r.created_timestamps_ms.tolist() == [1700000000250, 5000, 5000, NO_TIMESTAMP]
    plain = parse_exposition(encode_delimited([g]), PROTOBUF_CONTENT_TYPE)
    assert plain.created_timestamps_ms is None


def test_a_zero_timestamp_means_none_and_empty_families_are_skipped() -> None:
    g = family("g", GAUGE)
    g.metric.add(timestamp_ms=0).gauge.value = 1
    empty = family("nothing", GAUGE, help="no metrics")
    r = parse_exposition(encode_delimited([empty, g]), PROTOBUF_CONTENT_TYPE)
    assert r.timestamps_ms.tolist() == [NO_TIMESTAMP]
    assert set(r.metadata) == {"g"}


@pytest.mark.parametrize(
    ("fam", "reason"),
    [
        (family("", GAUGE), "invalid metric name: "),
        (family("x", 7), 'unknown metric type for metric "x": 7'),
        (family("x_seconds", GAUGE, unit="bytes"), 'unit "bytes" not a suffix of metric'),
        (
            family("x_seconds_total", COUNTER, unit="bytes"),
            'unit "bytes" not a suffix of counter "x_seconds_total"',
        ),
    ],
)
def test_invalid_families_fail_with_prometheus_reasons(fam: Any, reason: str) -> None:
    fam.metric.add()
    with pytest.raises(ExpositionParseError, match=reason):
        parse_exposition(encode_delimited([fam]), PROTOBUF_CONTENT_TYPE)


def test_a_unit_that_is_the_suffix_is_accepted() -> None:
    fam = family("x_seconds_total", COUNTER, unit="seconds")
    fam.metric.add().counter.value = 1
    r = parse_exposition(encode_delimited([fam]), PROTOBUF_CONTENT_TYPE)
    assert r.metadata["x_seconds_total"] == MetricMetadata("counter", "", "seconds")


def test_truncated_bodies_fail() -> None:
    g = family("g", GAUGE)
    g.metric.add().gauge.value = 1
    body = encode_delimited([g])
    with pytest.raises(ExpositionParseError, match="insufficient length of buffer"):
        parse_exposition(body[:-1], PROTOBUF_CONTENT_TYPE)
    with pytest.raises(ExpositionParseError, match="invalid varint"):
        parse_exposition(b"\xff\xff\xff\xff\xff\xff", PROTOBUF_CONTENT_TYPE)
    bad = family("g", GAUGE)
    bad.metric.add().label.add(name="a", value="x")
    not_utf8 = encode_delimited([bad]).replace(b"\x01x", b"\x01\xff")
    with pytest.raises(ExpositionParseError, match="invalid label value"):
        parse_exposition(not_utf8, PROTOBUF_CONTENT_TYPE)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_parse_errors(body: bytes) -> None:
    with contextlib.suppress(ExpositionParseError):
        parse_exposition(body, PROTOBUF_CONTENT_TYPE)


# Round trip: a MetricFamily message against the text exposition of the same samples.

LABEL_NAMES = ["a", "code", "path_x", "ünï label", "dotted.name"]
values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 10**6).map(float)
label_values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
timestamps = st.none() | st.integers(1, 2**53)


@dataclass
class Case:
    message: Any
    text: MetricFamily


@st.composite
def metric_labels(draw: st.DrawFn) -> list[tuple[str, str]]:
    names = draw(st.lists(st.sampled_from(LABEL_NAMES), unique=True, max_size=3))
    return [(n, draw(label_values)) for n in names]


@st.composite
def cases(draw: st.DrawFn, index: int) -> Case:
    """One family as a protobuf message and as the families the text writer prints."""
    mtype = draw(st.sampled_from([COUNTER, GAUGE, UNTYPED, SUMMARY, HISTOGRAM]))
    name = f"m{index}_" + draw(st.sampled_from(["x", "y_total", "z.dots"]))
    fam = family(name, mtype, help=draw(st.text(max_size=10)))
    text: list[Sample] = []

    def add(sample_name: str, pairs: list[tuple[str, str]], value: float, ts: int | None) -> None:
        text.append(Sample(Labels([("__name__", sample_name), *pairs]), value, ts))

    seen: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        pairs = draw(metric_labels())
        key = str(sorted(p for p in pairs if p[1]))
        if key in seen:
            continue
        seen.add(key)
        ts = draw(timestamps)
        m = fam.metric.add(timestamp_ms=ts or 0)
        for n, v in pairs:
            m.label.add(name=n, value=v)
        if mtype in (COUNTER, GAUGE, UNTYPED):
            value = draw(values)
            {COUNTER: m.counter, GAUGE: m.gauge, UNTYPED: m.untyped}[mtype].value = value
            add(name, pairs, value, ts)
        elif mtype == SUMMARY:
            m.summary.sample_count = draw(st.integers(0, 2**53))
            m.summary.sample_sum = draw(values)
            add(name + "_count", pairs, float(m.summary.sample_count), ts)
            add(name + "_sum", pairs, m.summary.sample_sum, ts)
            for q in draw(st.lists(st.floats(0, 1), unique=True, max_size=3)):
                qv = draw(values)
                m.summary.quantile.add(quantile=q, value=qv)
                add(name, [*pairs, ("quantile", format_go_float(q))], qv, ts)
        else:
            bounds = sorted(draw(st.lists(st.floats(-1e9, 1e9), unique=True, max_size=4)))
            if draw(st.booleans()):
                bounds.append(math.inf)
            counts = sorted(draw(st.lists(st.integers(0, 10**9), min_size=len(bounds))))
            total = draw(st.integers(counts[-1] if counts else 0, 10**10))
            m.histogram.sample_count = total
            m.histogram.sample_sum = draw(values)
            add(name + "_count", pairs, float(total), ts)
            add(name + "_sum", pairs, m.histogram.sample_sum, ts)
            for le, count in zip(bounds, counts, strict=False):
                m.histogram.bucket.add(upper_bound=le, cumulative_count=count)
                add(name + "_bucket", [*pairs, ("le", format_go_float(le))], float(count), ts)
            if not bounds or not math.isinf(bounds[-1]):
                add(name + "_bucket", [*pairs, ("le", "+Inf")], float(total), ts)
    text_type = {COUNTER: "counter", GAUGE: "gauge", UNTYPED: "untyped"}.get(mtype, "")
    text_type = text_type or ("summary" if mtype == SUMMARY else "histogram")
    return Case(fam, MetricFamily(name, text_type, fam.help, samples=tuple(text)))


@st.composite
def bodies(draw: st.DrawFn) -> list[Case]:
    return [draw(cases(i)) for i in range(draw(st.integers(1, 4)))]


@given(bodies())
def test_protobuf_gives_the_samples_of_the_equivalent_text(families: list[Case]) -> None:
    proto = parse_exposition(encode_delimited(c.message for c in families), PROTOBUF_CONTENT_TYPE)
    text = parse_exposition(write_text([c.text for c in families]), TEXT_CONTENT_TYPE)
    assert samples(proto) == samples(text)
    assert len(proto) == len(text)
    for c in families:
        assert proto.metadata[c.text.name].help == text.metadata[c.text.name].help
