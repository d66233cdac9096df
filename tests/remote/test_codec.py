"""The remote write / read wire codec: round trips, exact float bits and bad input."""

from __future__ import annotations

import contextlib
import struct

import cramjam
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.model.value import STALE_NAN, STALE_NAN_BITS
from watchkeeper.remote.codec import (
    ReadHints,
    ReadQuery,
    ReadRequest,
    RemoteCodecError,
    RemoteExemplar,
    RemoteMetadata,
    WriteBatch,
    decode_read_request,
    decode_read_response,
    decode_write_request,
    encode_read_request,
    encode_read_response,
    encode_write_request,
)

_chars = st.characters(exclude_categories=["Cs"])
_labels = st.dictionaries(
    st.text(_chars, min_size=1, max_size=5), st.text(_chars, min_size=1, max_size=5), max_size=3
).map(lambda d: Labels.from_dict({**d, "__name__": "m"}))
_bits = st.integers(0, 2**64 - 1)


@st.composite
def batches(draw: st.DrawFn) -> WriteBatch:
    series = []
    for lbls in draw(st.lists(_labels, max_size=5)):
        n = draw(st.integers(0, 6))
        ts = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
        raw = draw(st.lists(_bits, min_size=n, max_size=n))
        vs = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in raw]
        series.append((lbls, ts, vs))
    return WriteBatch.from_series(series)


def _vbits(a: np.ndarray) -> list[int]:
    return [int(x) for x in a.view(np.uint64)]


@given(batches())
def test_write_request_round_trip_keeps_every_bit(batch: WriteBatch) -> None:
    got = decode_write_request(encode_write_request(batch))
    assert got.labels == batch.labels
    assert got.offsets.tolist() == batch.offsets.tolist()
    assert got.timestamps_ms.tolist() == batch.timestamps_ms.tolist()
    assert _vbits(got.values) == _vbits(batch.values)
    assert got.invalid_series == ()


def test_stale_markers_exemplars_and_metadata_survive() -> None:
    batch = WriteBatch.from_series(
        [(Labels.from_dict({"__name__": "up", "job": "a"}), [1000, 2000], [1.0, STALE_NAN])],
        metadata=[RemoteMetadata("up", "gauge", "Is it up.", "")],
        exemplars=[RemoteExemplar(0, Labels.from_dict({"trace_id": "t"}), 0.5, 1500)],
    )
    got = decode_write_request(encode_write_request(batch))
    assert int(got.values.view(np.uint64)[1]) == STALE_NAN_BITS
    assert got.metadata == [RemoteMetadata("up", "gauge", "Is it up.", "")]
    assert got.exemplars == batch.exemplars


def test_empty_request_decodes_to_an_empty_batch() -> None:
    got = decode_write_request(cramjam.snappy.compress_raw(b"").read())
    assert len(got) == 0
    assert got.offsets.tolist() == [0]


def test_series_without_name_or_with_repeated_labels_are_flagged() -> None:
    raw = bytes.fromhex(
        # timeseries { labels {name:"a" value:"1"} labels {name:"a" value:"2"} }
        "0a100a060a01611201 31".replace(" ", "") + "0a060a0161120132"
    )
    got = decode_write_request(raw, compressed=False)
    assert got.invalid_series == (0,)


def test_histograms_are_counted_not_decoded() -> None:
    # timeseries { labels {__name__=m} histograms {<empty>} }
    ts = b"\x0a\x0d\x0a\x08__name__\x12\x01m" + b"\x22\x00"
    raw = b"\x0a" + bytes([len(ts)]) + ts
    got = decode_write_request(raw, compressed=False)
    assert got.histograms_skipped == 1
    assert got.labels == [Labels.from_dict({"__name__": "m"})]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xff\xff\xff", "snappy"),
        (cramjam.snappy.compress_raw(b"\x0a\xff").read(), "proto"),
        (cramjam.snappy.compress_raw(b"\x0a\x02\x0a\x05").read(), "proto"),
    ],
)
def test_bad_bodies_raise_codec_errors(body: bytes, message: str) -> None:
    with pytest.raises(RemoteCodecError, match=message):
        decode_write_request(body)


@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_raise_only_codec_errors(body: bytes, compressed: bool) -> None:
    with contextlib.suppress(RemoteCodecError):
        decode_write_request(body, compressed=compressed)
    with contextlib.suppress(RemoteCodecError):
        decode_read_request(body)


def test_read_request_round_trip() -> None:
    req = ReadRequest(
        (
            ReadQuery(
                1000,
                2000,
                (
                    Matcher(MatchType.EQUAL, "__name__", "up"),
                    Matcher(MatchType.REGEX, "job", "a.*"),
                ),
                ReadHints(
                    step_ms=15000,
                    func="rate",
                    start_ms=1000,
                    end_ms=2000,
                    grouping=("job",),
                    by=True,
                    range_ms=60000,
                ),
            ),
            ReadQuery(0, 5, (Matcher(MatchType.NOT_REGEX, "x", "y"),)),
        ),
        (0,),
    )
    assert decode_read_request(encode_read_request(req)) == req


def test_read_request_with_a_bad_regex_is_an_error() -> None:
    matcher = b"\x08\x02\x12\x01a\x1a\x01("  # LabelMatcher{type: RE, name: "a", value: "("}
    query = b"\x1a" + bytes([len(matcher)]) + matcher
    raw = b"\x0a" + bytes([len(query)]) + query
    with pytest.raises(RemoteCodecError, match="invalid regular expression"):
        decode_read_request(cramjam.snappy.compress_raw(raw).read())


def test_read_response_round_trip() -> None:
    a = WriteBatch.from_series([(Labels.from_dict({"__name__": "up"}), [1, 2], [1.0, 0.0])])
    b = WriteBatch.from_series([])
    got = decode_read_response(encode_read_response([a, b]))
    assert len(got) == 2
    assert got[0].labels == a.labels
    assert got[0].values.tolist() == [1.0, 0.0]
    assert len(got[1]) == 0


def test_samples_in_unusual_field_order_decode_too() -> None:
    value = struct.pack("<d", 2.5)
    samples = [
        b"\x10\x05\x09" + value,  # timestamp before value
        b"\x09" + value,  # timestamp 0 omitted
        b"",  # both zero
        b"\x10\x07",  # value 0 omitted
        b"\x09" + value + b"\x10\x08\x18\x01",  # an unknown field 3
    ]
    name = b"\x0a\x0d\x0a\x08__name__\x12\x01m"
    ts = name + b"".join(b"\x12" + bytes([len(s)]) + s for s in samples)
    raw = b"\x0a" + bytes([len(ts)]) + ts
    got = decode_write_request(raw, compressed=False)
    assert got.values.tolist() == [2.5, 2.5, 0.0, 0.0, 2.5]
    assert got.timestamps_ms.tolist() == [5, 0, 0, 7, 8]


@given(
    batches(),
    st.lists(
        st.tuples(_labels, st.floats(allow_nan=False), st.integers(-(2**63), 2**63 - 1)),
        max_size=3,
    ),
    st.lists(
        st.tuples(
            st.text(_chars, max_size=5),
            st.sampled_from(["unknown", "counter", "gauge", "histogram", "summary", "info"]),
            st.text(_chars, max_size=8),
            st.text(_chars, max_size=4),
        ),
        max_size=3,
    ),
)
def test_exemplars_and_metadata_round_trip(
    batch: WriteBatch,
    exemplars: list[tuple[Labels, float, int]],
    metadata: list[tuple[str, str, str, str]],
) -> None:
    if not len(batch):
        return
    full = WriteBatch(
        labels=batch.labels,
        offsets=batch.offsets,
        timestamps_ms=batch.timestamps_ms,
        values=batch.values,
        exemplars=[
            RemoteExemplar(i % len(batch), lbls, v, t) for i, (lbls, v, t) in enumerate(exemplars)
        ],
        metadata=[RemoteMetadata(*m) for m in metadata],
    )
    got = decode_write_request(encode_write_request(full))
    assert sorted(got.exemplars, key=lambda e: e.series_index) == sorted(
        full.exemplars, key=lambda e: e.series_index
    )
    assert got.metadata == full.metadata
    assert _vbits(got.values) == _vbits(full.values)
    resp = decode_read_response(encode_read_response([full, full]))
    assert [r.labels for r in resp] == [full.labels, full.labels]
    assert _vbits(resp[1].values) == _vbits(full.values)
