"""The remote write 1.0 and remote read wire codec: protobuf messages in snappy blocks.

Messages follow ../shared/conformance/remote-write/{remote,types}.proto (package prometheus).
Their descriptors are built here at runtime, so there is no generated code. The protobuf
runtime (upb, in C) parses the structure; samples stay raw bytes there and are decoded in
columns with numpy (`_decode_samples`). Native histograms are not decoded: they are counted
in `WriteBatch.histograms_skipped`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import cramjam
import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from watchkeeper.model import protobuild as pb
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import InvalidMatcherError, Matcher, MatchType

REMOTE_WRITE_VERSION: Final = "0.1.0"
"""The X-Prometheus-Remote-Write-Version header value of remote write 1.0."""

WRITE_HEADERS: Final = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": REMOTE_WRITE_VERSION,
}
"""The headers a remote write 1.0 request carries."""

READ_HEADERS: Final = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Read-Version": "0.1.0",
}
"""The headers of a remote read request and of its sampled response."""

METRIC_TYPE_NAMES: Final = (
    "unknown",
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
)
"""MetricMetadata.MetricType values by number."""

_MATCH_TYPES: Final = (MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX)


class RemoteCodecError(ValueError):
    """Raised when a remote write or read body is not valid snappy or protobuf."""


@dataclass(frozen=True, slots=True)
class RemoteExemplar:
    """An exemplar of one series in a write request."""

    series_index: int
    labels: Labels
    value: float
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class RemoteMetadata:
    """Metadata of one metric family in a write request."""

    family: str
    type: str
    help: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Series and samples in columns: the samples of series i are [offsets[i], offsets[i+1]).

    `values` keep their exact bits (staleness markers included). `invalid_series` lists the
    series whose labels have no metric name or repeat a name; receivers skip them as
    Prometheus does.
    """

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    exemplars: list[RemoteExemplar] = field(default_factory=list)
    metadata: list[RemoteMetadata] = field(default_factory=list)
    histograms_skipped: int = 0
    invalid_series: tuple[int, ...] = ()

    @classmethod
    def from_series(
        cls,
        series: Sequence[tuple[Labels, Sequence[int], Sequence[float]]],
        *,
        metadata: Sequence[RemoteMetadata] = (),
        exemplars: Sequence[RemoteExemplar] = (),
    ) -> WriteBatch:
        """Builds a batch from (labels, timestamps_ms, values) per series (tests, tools)."""
        counts = np.array([len(ts) for _, ts, _ in series], dtype=np.int64)
        offsets = np.zeros(len(series) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        ts_all = [t for _, ts, _ in series for t in ts]
        vs_all = [v for _, _, vs in series for v in vs]
        return cls(
            labels=[lbls for lbls, _, _ in series],
            offsets=offsets,
            timestamps_ms=np.array(ts_all, dtype=np.int64),
            values=np.array(vs_all, dtype=np.float64),
            exemplars=list(exemplars),
            metadata=list(metadata),
        )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, slots=True)
class ReadHints:
    """Query hints of a remote read query (all optional)."""

    step_ms: int = 0
    func: str = ""
    start_ms: int = 0
    end_ms: int = 0
    grouping: tuple[str, ...] = ()
    by: bool = False
    range_ms: int = 0


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """One query of a remote read request."""

    start_timestamp_ms: int
    end_timestamp_ms: int
    matchers: tuple[Matcher, ...]
    hints: ReadHints | None = None


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A remote read request; response types 0 = SAMPLES, 1 = STREAMED_XOR_CHUNKS."""

    queries: tuple[ReadQuery, ...]
    accepted_response_types: tuple[int, ...] = ()


def _build_messages() -> dict[str, Any]:
    """Builds the message classes of the remote protocol from hand-written descriptors."""
    proto = pb.ProtoFile("watchkeeper_remote.proto", "prometheus")
    msg = proto.message
    opt, rep = pb.OPTIONAL, pb.REPEATED
    msg_t, str_t, i64, dbl, i32 = pb.MESSAGE, pb.STRING, pb.INT64, pb.DOUBLE, pb.INT32
    msg("Label", ("name", 1, opt, str_t, ""), ("value", 2, opt, str_t, ""))
    msg("Sample", ("value", 1, opt, dbl, ""), ("timestamp", 2, opt, i64, ""))
    msg(
        "Exemplar",
        ("labels", 1, rep, msg_t, "Label"),
        ("value", 2, opt, dbl, ""),
        ("timestamp", 3, opt, i64, ""),
    )
    msg(
        "TimeSeries",
        ("labels", 1, rep, msg_t, "Label"),
        ("samples", 2, rep, msg_t, "Sample"),
        ("exemplars", 3, rep, msg_t, "Exemplar"),
        # NB: histograms stay opaque bytes (wire-compatible): we count them, not decode them.
        ("histograms", 4, rep, pb.BYTES, ""),
    )
    msg(
        "MetricMetadata",
        ("type", 1, opt, i32, ""),
        ("metric_family_name", 2, opt, str_t, ""),
        ("help", 4, opt, str_t, ""),
        ("unit", 5, opt, str_t, ""),
    )
    msg(
        "WriteRequest",
        ("timeseries", 1, rep, msg_t, "TimeSeries"),
        ("metadata", 3, rep, msg_t, "MetricMetadata"),
    )
    msg(
        "LabelMatcher",
        ("type", 1, opt, i32, ""),
        ("name", 2, opt, str_t, ""),
        ("value", 3, opt, str_t, ""),
    )
    msg(
        "ReadHints",
        ("step_ms", 1, opt, i64, ""),
        ("func", 2, opt, str_t, ""),
        ("start_ms", 3, opt, i64, ""),
        ("end_ms", 4, opt, i64, ""),
        ("grouping", 5, rep, str_t, ""),
        ("by", 6, opt, pb.BOOL, ""),
        ("range_ms", 7, opt, i64, ""),
    )
    msg(
        "Query",
        ("start_timestamp_ms", 1, opt, i64, ""),
        ("end_timestamp_ms", 2, opt, i64, ""),
        ("matchers", 3, rep, msg_t, "LabelMatcher"),
        ("hints", 4, opt, msg_t, "ReadHints"),
    )
    msg(
        "ReadRequest",
        ("queries", 1, rep, msg_t, "Query"),
        ("accepted_response_types", 2, rep, i32, ""),
    )
    msg("QueryResult", ("timeseries", 1, rep, msg_t, "TimeSeries"))
    msg("ReadResponse", ("results", 1, rep, msg_t, "QueryResult"))
    # Decoding views: samples stay raw bytes (wire-compatible) and are decoded in columns.
    msg(
        "TimeSeriesRaw",
        ("labels", 1, rep, msg_t, "Label"),
        ("samples", 2, rep, pb.BYTES, ""),
        ("exemplars", 3, rep, msg_t, "Exemplar"),
        ("histograms", 4, rep, pb.BYTES, ""),
    )
    msg(
        "WriteRequestRaw",
        ("timeseries", 1, rep, msg_t, "TimeSeriesRaw"),
        ("metadata", 3, rep, msg_t, "MetricMetadata"),
    )
    msg("QueryResultRaw", ("timeseries", 1, rep, msg_t, "TimeSeriesRaw"))
    msg("ReadResponseRaw", ("results", 1, rep, msg_t, "QueryResultRaw"))
    return proto.classes()


_MESSAGES: Final = _build_messages()


def _uncompress(body: bytes) -> bytes:
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise RemoteCodecError(f"snappy: corrupt input: {exc}") from None


def _parse(name: str, data: bytes) -> Any:
    message = _MESSAGES[name]()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise RemoteCodecError(f"proto: cannot parse invalid wire-format data ({exc})") from None
    return message


def _labels_of(pb_labels: Any) -> tuple[Labels, bool]:
    """Returns the labels and whether they are valid (a name, no repeated label names)."""
    pairs = [(lb.name, lb.value) for lb in pb_labels]
    lbls = Labels(pairs)
    names = [n for n, _ in pairs]
    valid = len(set(names)) == len(names) and lbls.has(METRIC_NAME)
    return lbls, valid


def _decode_samples(
    chunks: list[bytes],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Decodes encoded Sample messages in columns.

    The usual encodings, `09 <double> 10 <varint>` and `10 <varint>` (a zero value is
    omitted), are decoded with numpy; anything else goes through the protobuf runtime.
    """
    n = len(chunks)
    values = np.zeros(n, dtype=np.float64)
    stamps = np.zeros(n, dtype=np.int64)
    if n == 0:
        return values, stamps
    lens = np.fromiter(map(len, chunks), dtype=np.int64, count=n)
    buf = np.frombuffer(b"".join(chunks) + bytes(20), dtype=np.uint8)
    starts = np.cumsum(lens) - lens
    first = buf[starts]
    shape_a = (first == 0x09) & (lens >= 11) & (buf[starts + 9] == 0x10)
    shape_b = (first == 0x10) & (lens >= 2)
    vstart = np.where(shape_a, starts + 10, starts + 1)
    vlen = starts + lens - vstart
    ok = (shape_a | shape_b) & (vlen >= 1) & (vlen <= 10)
    cols = np.arange(10)
    raw = buf[vstart[:, None] + cols].astype(np.uint64)
    inside = cols < vlen[:, None]
    cont = (raw & np.uint64(0x80)) != 0
    ok &= ((cont == (cols < (vlen - 1)[:, None])) | ~inside).all(axis=1)
    parts = np.where(inside, (raw & np.uint64(0x7F)) << (np.uint64(7) * cols.astype(np.uint64)), 0)
    stamps = np.bitwise_or.reduce(parts.astype(np.uint64), axis=1).view(np.int64)
    value_bytes = buf[(starts + 1)[:, None] + np.arange(8)]
    values = np.where(
        shape_a, np.ascontiguousarray(value_bytes).view("<f8").reshape(n), np.float64(0.0)
    )
    stamps = np.where(ok, stamps, 0).astype(np.int64)
    empty = lens == 0
    bad = np.flatnonzero(~ok & ~empty)
    if len(bad):
        sample_cls = _MESSAGES["Sample"]
        for i in bad.tolist():
            sample = sample_cls()
            try:
                sample.ParseFromString(chunks[i])
            except (DecodeError, RuntimeError, ValueError) as exc:
                raise RemoteCodecError(f"proto: bad sample ({exc})") from None
            values[i] = sample.value
            stamps[i] = sample.timestamp
    return values, stamps


def _series_columns(timeseries: Any) -> WriteBatch:
    labels: list[Labels] = []
    invalid: list[int] = []
    counts = np.empty(len(timeseries), dtype=np.int64)
    chunks: list[bytes] = []
    exemplars: list[RemoteExemplar] = []
    histograms = 0
    for i, ts in enumerate(timeseries):
        lbls, valid = _labels_of(ts.labels)
        labels.append(lbls)
        if not valid:
            invalid.append(i)
        samples = ts.samples
        counts[i] = len(samples)
        chunks.extend(samples)
        exemplars.extend(
            RemoteExemplar(
                i, Labels((lb.name, lb.value) for lb in ex.labels), ex.value, ex.timestamp
            )
            for ex in ts.exemplars
        )
        histograms += len(ts.histograms)
    offsets = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values, stamps = _decode_samples(chunks)
    return WriteBatch(
        labels=labels,
        offsets=offsets,
        timestamps_ms=stamps,
        values=values,
        exemplars=exemplars,
        histograms_skipped=histograms,
        invalid_series=tuple(invalid),
    )


def decode_write_request(body: bytes, *, compressed: bool = True) -> WriteBatch:
    """Decodes a remote write 1.0 body (snappy block + prometheus.WriteRequest).

    Raises:
        RemoteCodecError: when the body is not valid snappy or protobuf.
    """
    req = _parse("WriteRequestRaw", _uncompress(body) if compressed else body)
    batch = _series_columns(req.timeseries)
    metadata = [
        RemoteMetadata(
            md.metric_family_name,
            METRIC_TYPE_NAMES[md.type] if 0 <= md.type < len(METRIC_TYPE_NAMES) else "unknown",
            md.help,
            md.unit,
        )
        for md in req.metadata
    ]
    if metadata:
        batch.metadata.extend(metadata)
    return batch


def _varint(value: int) -> bytes:
    """Protobuf varint of a non-negative int (or an int64 as two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_bytes(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(data)) + data


def _label_bytes(tag: int, lbls: Labels) -> bytes:
    return b"".join(
        _field_bytes(tag, _field_bytes(0x0A, n.encode()) + _field_bytes(0x12, v.encode()))
        for n, v in lbls.pairs
    )


def _sample_records(
    values: npt.NDArray[np.float64], stamps: npt.NDArray[np.int64]
) -> tuple[bytes, npt.NDArray[np.int64]]:
    """Encodes every sample as a `samples` field entry at once; returns bytes and end offsets.

    Each record is `12 <len> 09 <double> 10 <varint ts>`: both fields are always written,
    which every protobuf reader accepts.
    """
    n = len(values)
    if n == 0:
        return b"", np.zeros(0, dtype=np.int64)
    ts = stamps.astype(np.int64).view(np.uint64)
    cols = np.arange(10, dtype=np.uint64)
    groups = (ts[:, None] >> (np.uint64(7) * cols)) & np.uint64(0x7F)
    bitlen = np.zeros(n, dtype=np.int64)
    nonzero = ts != 0
    bitlen[nonzero] = np.floor(np.log2(ts[nonzero].astype(np.float64))).astype(np.int64) + 1
    # NB: float log2 can be off by one near powers of two; fix with exact shifts.
    hi = (bitlen < 64) & ((ts >> np.minimum(bitlen, 63).astype(np.uint64)) != 0)
    bitlen[hi] += 1
    lo = (bitlen > 0) & ((ts >> (bitlen - 1).clip(0).astype(np.uint64)) == 0)
    bitlen[lo] -= 1
    nbytes = np.maximum(1, (bitlen + 6) // 7)
    cont = cols[None, :].astype(np.int64) < (nbytes - 1)[:, None]
    varint = (groups | np.where(cont, np.uint64(0x80), np.uint64(0))).astype(np.uint8)
    width = 12 + 10
    rec = np.zeros((n, width), dtype=np.uint8)
    rec[:, 0] = 0x12
    rec[:, 1] = (10 + nbytes).astype(np.uint8)
    rec[:, 2] = 0x09
    rec[:, 3:11] = np.ascontiguousarray(values.astype("<f8")).view(np.uint8).reshape(n, 8)
    rec[:, 11] = 0x10
    rec[:, 12:22] = varint
    lengths = 12 + nbytes
    mask = np.arange(width)[None, :] < lengths[:, None]
    return rec[mask].tobytes(), np.cumsum(lengths)


def _exemplar_bytes(ex: RemoteExemplar) -> bytes:
    body = (
        _label_bytes(0x0A, ex.labels)
        + b"\x11"
        + struct.pack("<d", ex.value)
        + b"\x18"
        + _varint(ex.timestamp_ms)
    )
    return _field_bytes(0x1A, body)


def _metadata_bytes(md: RemoteMetadata) -> bytes:
    mtype = METRIC_TYPE_NAMES.index(md.type) if md.type in METRIC_TYPE_NAMES else 0
    body = (
        b"\x08"
        + _varint(mtype)
        + _field_bytes(0x12, md.family.encode())
        + _field_bytes(0x22, md.help.encode())
        + _field_bytes(0x2A, md.unit.encode())
    )
    return _field_bytes(0x1A, body)


def _timeseries_bytes(batch: WriteBatch) -> list[bytes]:
    """The `timeseries` field entries (tag 1) of a batch, as in WriteRequest and QueryResult."""
    records, ends = _sample_records(batch.values, batch.timestamps_ms)
    offsets = batch.offsets.tolist()
    byte_ends = [0, *ends.tolist()]
    ex_by_series: dict[int, list[RemoteExemplar]] = {}
    for ex in batch.exemplars:
        ex_by_series.setdefault(ex.series_index, []).append(ex)
    parts: list[bytes] = []
    for i, lbls in enumerate(batch.labels):
        body = _label_bytes(0x0A, lbls) + records[byte_ends[offsets[i]] : byte_ends[offsets[i + 1]]]
        if ex_by_series:
            body += b"".join(_exemplar_bytes(ex) for ex in ex_by_series.get(i, ()))
        parts.append(b"\x0a" + _varint(len(body)) + body)
    return parts


def encode_write_request(batch: WriteBatch, *, compress: bool = True) -> bytes:
    """Encodes a batch as a remote write 1.0 body (snappy-compressed unless told not to).

    Samples are encoded in columns with numpy; labels, exemplars and metadata per item.
    """
    parts = _timeseries_bytes(batch)
    parts.extend(_metadata_bytes(md) for md in batch.metadata)
    data = b"".join(parts)
    return bytes(cramjam.snappy.compress_raw(data)) if compress else data


def decode_read_request(body: bytes) -> ReadRequest:
    """Decodes a remote read request (snappy block + prometheus.ReadRequest).

    Raises:
        RemoteCodecError: on bad snappy or protobuf, an unknown matcher type or a bad regex.
    """
    req = _parse("ReadRequest", _uncompress(body))
    queries = []
    for q in req.queries:
        matchers = []
        for m in q.matchers:
            if not 0 <= m.type < len(_MATCH_TYPES):
                raise RemoteCodecError(f"invalid matcher type {m.type}")
            try:
                matcher = Matcher(_MATCH_TYPES[m.type], m.name, m.value)
            except InvalidMatcherError as exc:
                raise RemoteCodecError(str(exc)) from None
            matchers.append(matcher)
        hints = None
        if q.HasField("hints"):
            h = q.hints
            hints = ReadHints(
                h.step_ms, h.func, h.start_ms, h.end_ms, tuple(h.grouping), h.by, h.range_ms
            )
        queries.append(ReadQuery(q.start_timestamp_ms, q.end_timestamp_ms, tuple(matchers), hints))
    return ReadRequest(tuple(queries), tuple(req.accepted_response_types))


def encode_read_request(request: ReadRequest) -> bytes:
    """Encodes a remote read request (snappy-compressed)."""
    req = _MESSAGES["ReadRequest"]()
    for q in request.queries:
        pq = req.queries.add(
            start_timestamp_ms=q.start_timestamp_ms, end_timestamp_ms=q.end_timestamp_ms
        )
        for m in q.matchers:
            pq.matchers.add(type=_MATCH_TYPES.index(m.type), name=m.name, value=m.value)
        if q.hints is not None:
            h = q.hints
            pq.hints.step_ms = h.step_ms
            pq.hints.func = h.func
            pq.hints.start_ms = h.start_ms
            pq.hints.end_ms = h.end_ms
            pq.hints.grouping.extend(h.grouping)
            pq.hints.by = h.by
            pq.hints.range_ms = h.range_ms
    req.accepted_response_types.extend(request.accepted_response_types)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def encode_read_response(results: Sequence[WriteBatch]) -> bytes:
    """Encodes a SAMPLES read response: one result (series with samples) per query."""
    data = b"".join(_field_bytes(0x0A, b"".join(_timeseries_bytes(b))) for b in results)
    return bytes(cramjam.snappy.compress_raw(data))


def decode_read_response(body: bytes) -> list[WriteBatch]:
    """Decodes a SAMPLES read response into one batch per query.

    Raises:
        RemoteCodecError: when the body is not valid snappy or protobuf.
    """
    resp = _parse("ReadResponseRaw", _uncompress(body))
    return [_series_columns(r.timeseries) for r in resp.results]
