"""Parsing the Prometheus protobuf exposition format into the same columns as the text parsers.

A body is a stream of `io.prometheus.client.MetricFamily` messages, each preceded by its
length as a uvarint ("encoding=delimited"). The message classes are built here at runtime
from hand-written descriptors (field numbers of client_model's metrics.proto), so there is
no generated code. Samples come out as Prometheus 3.5's ProtobufParser emits them: a
summary as `_count`, `_sum`, then one series per quantile; a classic histogram as `_count`,
`_sum`, then cumulative `_bucket` series up to `le="+Inf"` (added when the body has none).
Native histograms are not ingested: a histogram carrying native data is only counted
(`ParsedExposition.skipped_native_histograms`); its classic buckets are parsed only when
asked (`always_scrape_classic_histograms`). A timestamp_ms of 0 means "no timestamp".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError

from watchkeeper.model import protobuild as pb
from watchkeeper.model.exposition.floats import format_openmetrics_float, go_quote
from watchkeeper.model.exposition.types import (
    NO_TIMESTAMP,
    Exemplar,
    ExpositionParseError,
    MetricMetadata,
    ParsedExposition,
)
from watchkeeper.model.labels import Labels, is_valid_legacy_label_name, is_valid_legacy_metric_name

PROTOBUF_CONTENT_TYPE: Final = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)
"""The Content-Type of a delimited MetricFamily stream."""

COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)
"""io.prometheus.client.MetricType values."""

_TYPE_NAMES: Final = ("counter", "gauge", "summary", "unknown", "histogram", "gaugehistogram")
_MAX_LENGTH_BYTES: Final = 5  # NB: Go's binary.MaxVarintLen32: longer length prefixes fail.


def _build_messages() -> dict[str, Any]:
    """Builds the io.prometheus.client message classes (proto2, as client_model's)."""
    proto = pb.ProtoFile(
        "watchkeeper_client_metrics.proto",
        "io.prometheus.client",
        syntax="proto2",
        dependencies=(timestamp_pb2.DESCRIPTOR,),
    )
    msg = proto.message
    opt, rep = pb.OPTIONAL, pb.REPEATED
    msg_t, str_t, dbl, u64 = pb.MESSAGE, pb.STRING, pb.DOUBLE, pb.UINT64
    ts_t = ".google.protobuf.Timestamp"

    msg("LabelPair", ("name", 1, opt, str_t, ""), ("value", 2, opt, str_t, ""))
    msg("Gauge", ("value", 1, opt, dbl, ""))
    msg(
        "Counter",
        ("value", 1, opt, dbl, ""),
        ("exemplar", 2, opt, msg_t, "Exemplar"),
        ("created_timestamp", 3, opt, msg_t, ts_t),
    )
    msg("Quantile", ("quantile", 1, opt, dbl, ""), ("value", 2, opt, dbl, ""))
    msg(
        "Summary",
        ("sample_count", 1, opt, u64, ""),
        ("sample_sum", 2, opt, dbl, ""),
        ("quantile", 3, rep, msg_t, "Quantile"),
        ("created_timestamp", 4, opt, msg_t, ts_t),
    )
    msg("Untyped", ("value", 1, opt, dbl, ""))
    msg(
        "Histogram",
        ("sample_count", 1, opt, u64, ""),
        ("sample_sum", 2, opt, dbl, ""),
        ("bucket", 3, rep, msg_t, "Bucket"),
        ("sample_count_float", 4, opt, dbl, ""),
        ("schema", 5, opt, pb.SINT32, ""),
        ("zero_threshold", 6, opt, dbl, ""),
        ("zero_count", 7, opt, u64, ""),
        ("zero_count_float", 8, opt, dbl, ""),
        ("negative_span", 9, rep, msg_t, "BucketSpan"),
        ("negative_delta", 10, rep, pb.SINT64, ""),
        ("negative_count", 11, rep, dbl, ""),
        ("positive_span", 12, rep, msg_t, "BucketSpan"),
        ("positive_delta", 13, rep, pb.SINT64, ""),
        ("positive_count", 14, rep, dbl, ""),
        ("created_timestamp", 15, opt, msg_t, ts_t),
        ("exemplars", 16, rep, msg_t, "Exemplar"),
    )
    msg(
        "Bucket",
        ("cumulative_count", 1, opt, u64, ""),
        ("upper_bound", 2, opt, dbl, ""),
        ("exemplar", 3, opt, msg_t, "Exemplar"),
        ("cumulative_count_float", 4, opt, dbl, ""),
    )
    msg("BucketSpan", ("offset", 1, opt, pb.SINT32, ""), ("length", 2, opt, pb.UINT32, ""))
    msg(
        "Exemplar",
        ("label", 1, rep, msg_t, "LabelPair"),
        ("value", 2, opt, dbl, ""),
        ("timestamp", 3, opt, msg_t, ts_t),
    )
    msg(
        "Metric",
        ("label", 1, rep, msg_t, "LabelPair"),
        ("gauge", 2, opt, msg_t, "Gauge"),
        ("counter", 3, opt, msg_t, "Counter"),
        ("summary", 4, opt, msg_t, "Summary"),
        ("untyped", 5, opt, msg_t, "Untyped"),
        ("timestamp_ms", 6, opt, pb.INT64, ""),
        ("histogram", 7, opt, msg_t, "Histogram"),
    )
    msg(
        "MetricFamily",
        ("name", 1, opt, str_t, ""),
        ("help", 2, opt, str_t, ""),
        # NB: the MetricType enum as a plain varint (the same wire format), so an unknown
        # type reaches us as its number and fails as in Prometheus instead of reading as 0.
        ("type", 3, opt, pb.INT32, ""),
        ("metric", 4, rep, msg_t, "Metric"),
        ("unit", 5, opt, str_t, ""),
    )
    return proto.classes()


MESSAGES: Final = _build_messages()
"""The io.prometheus.client message classes by name (MetricFamily, Metric, ...)."""


def encode_delimited(families: Iterable[Any]) -> bytes:
    """Writes MetricFamily messages as one delimited body (targets in tests, tools)."""
    out = bytearray()
    for family in families:
        data = family.SerializeToString()
        size = len(data)
        while size >= 0x80:
            out.append((size & 0x7F) | 0x80)
            size >>= 7
        out.append(size)
        out += data
    return bytes(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_name(name: str) -> str:
    return name if is_valid_legacy_label_name(name) else f'"{_escape(name)}"'


def _series_text(name: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The text-format series of a name and label pairs (what `parse_series_text` reads)."""
    parts = [f'{_label_name(n)}="{_escape(v)}"' for n, v in pairs]
    if is_valid_legacy_metric_name(name):
        return f"{name}{{{','.join(parts)}}}" if parts else name
    return "{" + ",".join([f'"{_escape(name)}"', *parts]) + "}"


def _text(value: str | bytes, what: str) -> str:
    """A string field as str; upb hands proto2 strings that are not UTF-8 over as bytes."""
    if isinstance(value, bytes):
        raise ExpositionParseError(f"{what}: {value.decode('utf-8', 'replace')}")
    return value


def _trunc_div(value: int, divisor: int) -> int:
    """Integer division rounding toward zero, as Go's."""
    q = abs(value) // divisor
    return q if value >= 0 else -q


def _timestamp_ms(ts: Any) -> int:
    return int(ts.seconds) * 1000 + _trunc_div(int(ts.nanos), 1_000_000)


def _exemplar(ex: Any) -> Exemplar:
    labels = Labels(
        (_text(lp.name, "invalid label name"), _text(lp.value, "invalid label value"))
        for lp in ex.label
    )
    stamp = _timestamp_ms(ex.timestamp) if ex.HasField("timestamp") else None
    return Exemplar(labels, float(ex.value), stamp)


def _is_native(h: Any) -> bool:
    """Prometheus's isNativeHistogram: any span, a zero threshold or a zero count."""
    return bool(
        len(h.positive_span) or len(h.negative_span) or h.zero_threshold > 0 or h.zero_count > 0
    )


def _check_family(name: str, mtype: int, unit: str) -> None:
    if not name:
        raise ExpositionParseError(f"invalid metric name: {name}")
    if not 0 <= mtype < len(_TYPE_NAMES):
        raise ExpositionParseError(f"unknown metric type for metric {go_quote(name)}: {mtype}")
    if not unit:
        return
    base = name
    if mtype == COUNTER and name.endswith("_total"):
        base = name[: -len("_total")]
        if not base.endswith("_" + unit):
            raise ExpositionParseError(
                f"unit {go_quote(unit)} not a suffix of counter {go_quote(name)}"
            )
    elif not base.endswith("_" + unit):
        raise ExpositionParseError(f"unit {go_quote(unit)} not a suffix of metric {go_quote(name)}")


class _Columns:
    """The growing columns of one parse."""

    def __init__(self) -> None:
        self.series: list[str] = []
        self.values: list[float] = []
        self.stamps: list[int] = []
        self.created: list[int] = []
        self.exemplars: dict[int, Exemplar] = {}
        self.has_created = False

    def add(
        self, name: str, pairs: list[tuple[str, str]], value: float, stamp: int, created: int
    ) -> int:
        self.series.append(_series_text(name, pairs))
        self.values.append(value)
        self.stamps.append(stamp)
        self.created.append(created)
        return len(self.series) - 1


def _family_samples(
    cols: _Columns, name: str, mtype: int, metric: Any, *, classic_histograms: bool
) -> int:
    """Adds the samples of one Metric; returns 1 when it was a skipped native histogram."""
    pairs = []
    for lp in metric.label:
        lname = _text(lp.name, "invalid label name")
        if not lname:
            raise ExpositionParseError(f"invalid label name: {lname}")
        pairs.append((lname, _text(lp.value, "invalid label value")))
    stamp = int(metric.timestamp_ms) or NO_TIMESTAMP
    if mtype == GAUGE:
        cols.add(name, pairs, metric.gauge.value, stamp, NO_TIMESTAMP)
        return 0
    if mtype == UNTYPED:
        cols.add(name, pairs, metric.untyped.value, stamp, NO_TIMESTAMP)
        return 0
    created = NO_TIMESTAMP
    if mtype == COUNTER:
        counter = metric.counter
        if counter.HasField("created_timestamp"):
            created = _timestamp_ms(counter.created_timestamp) or NO_TIMESTAMP
        i = cols.add(name, pairs, counter.value, stamp, created)
        if counter.HasField("exemplar"):
            cols.exemplars[i] = _exemplar(counter.exemplar)
    elif mtype == SUMMARY:
        s = metric.summary
        if s.HasField("created_timestamp"):
            created = _timestamp_ms(s.created_timestamp) or NO_TIMESTAMP
        cols.add(name + "_count", pairs, float(s.sample_count), stamp, created)
        cols.add(name + "_sum", pairs, s.sample_sum, stamp, created)
        for q in s.quantile:
            quantile = ("quantile", format_openmetrics_float(q.quantile))
            cols.add(name, [*pairs, quantile], q.value, stamp, created)
    else:
        h = metric.histogram
        skipped = 0
        if _is_native(h):
            skipped = 1
            if not (classic_histograms and len(h.bucket)):
                return 1
        if h.HasField("created_timestamp"):
            created = _timestamp_ms(h.created_timestamp) or NO_TIMESTAMP
        count = h.sample_count_float or float(h.sample_count)
        cols.add(name + "_count", pairs, count, stamp, created)
        cols.add(name + "_sum", pairs, h.sample_sum, stamp, created)
        bucket_name = name + "_bucket"
        for b in h.bucket:
            le = ("le", format_openmetrics_float(b.upper_bound))
            value = b.cumulative_count_float or float(b.cumulative_count)
            i = cols.add(bucket_name, [*pairs, le], value, stamp, created)
            if b.HasField("exemplar"):
                cols.exemplars[i] = _exemplar(b.exemplar)
            if math.isinf(b.upper_bound) and b.upper_bound > 0:
                break
        else:
            cols.add(bucket_name, [*pairs, ("le", "+Inf")], count, stamp, created)
        cols.has_created |= created != NO_TIMESTAMP
        return skipped
    cols.has_created |= created != NO_TIMESTAMP
    return 0


def _frames(body: bytes) -> Iterable[memoryview]:
    """Splits a delimited body into its messages."""
    view = memoryview(body)
    pos, end = 0, len(body)
    while pos < end:
        size = shift = 0
        start = pos
        while True:
            if pos >= end or pos - start >= _MAX_LENGTH_BYTES:
                raise ExpositionParseError("clientpb: invalid varint encountered")
            byte = body[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if pos + size > end:
            raise ExpositionParseError(
                "clientpb: insufficient length of buffer, expected at least "
                f"{pos - start + size} bytes, got {end - start} bytes"
            )
        yield view[pos : pos + size]
        pos += size


def parse_protobuf(body: bytes, *, classic_histograms: bool = False) -> ParsedExposition:
    """Parses a delimited MetricFamily body as Prometheus 3.5 does without native histograms.

    Args:
        body: the (decompressed) body.
        classic_histograms: also parse the classic buckets of histograms that carry native
            data (`always_scrape_classic_histograms`); else such histograms are only counted.

    Raises:
        ExpositionParseError: when the body is not a valid delimited stream, or a family has
            an invalid name, type, unit, help or label (line is 0: there are no lines).
    """
    family_cls = MESSAGES["MetricFamily"]
    cols = _Columns()
    metadata: dict[str, MetricMetadata] = {}
    skipped = 0
    for frame in _frames(body):
        family = family_cls()
        try:
            family.ParseFromString(frame)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise ExpositionParseError(f"proto: cannot parse MetricFamily ({exc})") from None
        if not len(family.metric):
            continue  # NB: Prometheus skips empty families, metadata included.
        name = _text(family.name, "invalid metric name")
        mtype = int(family.type)
        unit = _text(family.unit, "invalid unit")
        help_text = _text(family.help, f"invalid help for metric {go_quote(name)}")
        _check_family(name, mtype, unit)
        metadata[name] = MetricMetadata(_TYPE_NAMES[mtype], help_text, unit)
        for metric in family.metric:
            skipped += _family_samples(
                cols, name, mtype, metric, classic_histograms=classic_histograms
            )
    return ParsedExposition(
        series_text=cols.series,
        values=np.array(cols.values, dtype=np.float64),
        timestamps_ms=np.array(cols.stamps, dtype=np.int64),
        metadata=metadata,
        exemplars=cols.exemplars,
        created_timestamps_ms=np.array(cols.created, dtype=np.int64) if cols.has_created else None,
        content_type="application/vnd.google.protobuf",
        skipped_native_histograms=skipped,
    )
