"""WAL record payloads: whole batches of series, samples and tombstones as compact binary.

A record is one commit's worth of data. Sample records carry three numpy columns (refs,
timestamps, value bits) and decode bit for bit, NaN payloads and the staleness marker
included. The byte layout is documented in docs/formats/wal.md.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import cramjam
import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels


class RecordType(enum.IntEnum):
    """The kind of a WAL record (the first byte of its header)."""

    SERIES = 1
    SAMPLES = 2
    TOMBSTONES = 3
    OUT_OF_ORDER_SAMPLES = 4
    OUT_OF_ORDER_FLUSHED = 5


class RecordDecodeError(ValueError):
    """Raised when a record payload that passed its CRC still does not parse."""


_FLAG_REFS32 = 0x01
_FLAG_TS32 = 0x02
_FLAG_SNAPPY = 0x04

_U32_MAX = np.iinfo(np.uint32).max
_I32_MIN, _I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


@dataclass(frozen=True, slots=True)
class SeriesRecord:  # noqa: PLW1641 - arrays are not hashable
    """New series: refs[i] names labels[i]."""

    refs: npt.NDArray[np.uint64]
    labels: list[Labels]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeriesRecord):
            return NotImplemented
        return bool(np.array_equal(self.refs, other.refs)) and self.labels == other.labels


@dataclass(frozen=True, slots=True)
class SamplesRecord:  # noqa: PLW1641 - arrays are not hashable
    """A batch of float samples: refs[i] got (timestamps_ms[i], values[i]).

    `out_of_order` marks samples the head keeps apart until they are flushed into blocks of
    their own (the role of Prometheus's separate out-of-order log, the WBL).
    """

    refs: npt.NDArray[np.uint64]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    out_of_order: bool = False

    def __eq__(self, other: object) -> bool:
        """Compares bit for bit (NaNs with equal payloads are equal)."""
        if not isinstance(other, SamplesRecord):
            return NotImplemented
        return (
            self.out_of_order == other.out_of_order
            and bool(np.array_equal(self.refs, other.refs))
            and bool(np.array_equal(self.timestamps_ms, other.timestamps_ms))
            and bool(np.array_equal(self.values.view(np.uint64), other.values.view(np.uint64)))
        )


@dataclass(frozen=True, slots=True)
class TombstonesRecord:  # noqa: PLW1641 - arrays are not hashable
    """Deletes the samples of `refs` in the inclusive range [mint_ms, maxt_ms]."""

    refs: npt.NDArray[np.uint64]
    mint_ms: int
    maxt_ms: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TombstonesRecord):
            return NotImplemented
        return (
            bool(np.array_equal(self.refs, other.refs))
            and self.mint_ms == other.mint_ms
            and self.maxt_ms == other.maxt_ms
        )


@dataclass(frozen=True, slots=True)
class OutOfOrderFlushedRecord:
    """Every out-of-order sample logged before this record is in a block now.

    Replay and checkpoints forget those samples; the head logs the out-of-order samples
    it still holds right after this record, in the same write.
    """


Record = SeriesRecord | SamplesRecord | TombstonesRecord | OutOfOrderFlushedRecord


def encode(record: Record, *, compress: bool = False) -> tuple[RecordType, bytes]:
    """Returns the type and payload of a record."""
    if isinstance(record, SamplesRecord):
        rtype = RecordType.OUT_OF_ORDER_SAMPLES if record.out_of_order else RecordType.SAMPLES
        return rtype, _encode_samples(record, compress=compress)
    if isinstance(record, SeriesRecord):
        return RecordType.SERIES, _encode_series(record)
    if isinstance(record, OutOfOrderFlushedRecord):
        return RecordType.OUT_OF_ORDER_FLUSHED, b""
    return RecordType.TOMBSTONES, _encode_tombstones(record)


def decode(rtype: int, payload: bytes) -> Record:
    """Parses a payload of the given type.

    Raises:
        RecordDecodeError: when the type is unknown or the payload is malformed.
    """
    try:
        if rtype == RecordType.SAMPLES:
            return _decode_samples(payload)
        if rtype == RecordType.OUT_OF_ORDER_SAMPLES:
            return _decode_samples(payload, out_of_order=True)
        if rtype == RecordType.OUT_OF_ORDER_FLUSHED:
            if payload:
                raise ValueError("out-of-order flushed record has a payload")
            return OutOfOrderFlushedRecord()
        if rtype == RecordType.SERIES:
            return _decode_series(payload)
        if rtype == RecordType.TOMBSTONES:
            return _decode_tombstones(payload)
    except (ValueError, struct.error, cramjam.DecompressionError, UnicodeDecodeError) as exc:
        raise RecordDecodeError(f"malformed record of type {rtype}: {exc}") from exc
    raise RecordDecodeError(f"unknown record type {rtype}")


def _encode_samples(rec: SamplesRecord, *, compress: bool) -> bytes:
    n = len(rec.refs)
    flags = 0
    parts: list[bytes] = []
    refs = np.asarray(rec.refs, dtype=np.uint64)
    # NB: refs are stored as differences from their predecessor (wrapping), so the runs of
    # consecutive refs of a scrape compress to almost nothing.
    drefs = np.diff(refs, prepend=np.uint64(0))
    if n == 0 or int(refs.max()) <= _U32_MAX:
        flags |= _FLAG_REFS32
        parts.append(drefs.astype("<u4").tobytes())
    else:
        parts.append(drefs.astype("<u8").tobytes())
    ts = np.asarray(rec.timestamps_ms, dtype=np.int64)
    base = int(ts[0]) if n else 0
    delta = ts - np.int64(base)
    # NB: the subtraction may wrap for extreme timestamps; the range check is on the real values.
    if n == 0 or (int(ts.min()) - base >= _I32_MIN and int(ts.max()) - base <= _I32_MAX):
        flags |= _FLAG_TS32
        parts.append(delta.astype("<i4").tobytes())
    else:
        parts.append(ts.astype("<i8").tobytes())
    parts.append(np.asarray(rec.values, dtype=np.float64).view("<u8").tobytes())
    body = b"".join(parts)
    if compress and n:
        packed = bytes(cramjam.snappy.compress_raw(body))
        if len(packed) < len(body):
            flags |= _FLAG_SNAPPY
            body = packed
    return struct.pack("<BIq", flags, n, base) + body


def _decode_samples(payload: bytes, *, out_of_order: bool = False) -> SamplesRecord:
    flags, n, base = struct.unpack_from("<BIq", payload, 0)
    body: bytes | memoryview = memoryview(payload)[13:]
    if flags & _FLAG_SNAPPY:
        body = bytes(cramjam.snappy.decompress_raw(bytes(body)))
    ref_size = 4 if flags & _FLAG_REFS32 else 8
    ts_size = 4 if flags & _FLAG_TS32 else 8
    if len(body) != n * (ref_size + ts_size + 8):
        raise ValueError(f"samples record of {n} samples has {len(body)} body bytes")
    pos = 0
    drefs = np.frombuffer(body, dtype=f"<u{ref_size}", count=n, offset=pos)
    refs = np.cumsum(drefs, dtype=drefs.dtype).astype(np.uint64)
    pos += n * ref_size
    if flags & _FLAG_TS32:
        ts = np.frombuffer(body, dtype="<i4", count=n, offset=pos).astype(np.int64) + np.int64(base)
    else:
        ts = np.frombuffer(body, dtype="<i8", count=n, offset=pos).astype(np.int64)
    pos += n * ts_size
    vals = np.frombuffer(body, dtype="<u8", count=n, offset=pos).copy().view(np.float64)
    return SamplesRecord(refs, ts, vals, out_of_order)


def _encode_series(rec: SeriesRecord) -> bytes:
    n = len(rec.labels)
    counts = np.fromiter((len(lb) for lb in rec.labels), dtype="<u2", count=n)
    strings = [s.encode() for lb in rec.labels for pair in lb.pairs for s in pair]
    lengths = np.fromiter((len(s) for s in strings), dtype="<u4", count=len(strings))
    return b"".join(
        [
            struct.pack("<I", n),
            np.asarray(rec.refs, dtype="<u8").tobytes(),
            counts.tobytes(),
            lengths.tobytes(),
            *strings,
        ]
    )


def _decode_series(payload: bytes) -> SeriesRecord:
    (n,) = struct.unpack_from("<I", payload, 0)
    pos = 4
    refs = np.frombuffer(payload, dtype="<u8", count=n, offset=pos).astype(np.uint64)
    pos += 8 * n
    counts = np.frombuffer(payload, dtype="<u2", count=n, offset=pos).astype(np.int64)
    pos += 2 * n
    n_strings = int(counts.sum()) * 2
    lengths = np.frombuffer(payload, dtype="<u4", count=n_strings, offset=pos).tolist()
    pos += 4 * n_strings
    if pos + sum(lengths) != len(payload):
        raise ValueError("series record string data does not match its lengths")
    strings: list[str] = []
    for ln in lengths:
        strings.append(payload[pos : pos + ln].decode())
        pos += ln
    labels: list[Labels] = []
    k = 0
    for c in counts.tolist():
        pairs = tuple((strings[k + 2 * j], strings[k + 2 * j + 1]) for j in range(c))
        k += 2 * c
        labels.append(Labels.from_sorted_pairs(pairs))
    return SeriesRecord(refs, labels)


def _encode_tombstones(rec: TombstonesRecord) -> bytes:
    return (
        struct.pack("<Iqq", len(rec.refs), rec.mint_ms, rec.maxt_ms)
        + np.asarray(rec.refs, dtype="<u8").tobytes()
    )


def _decode_tombstones(payload: bytes) -> TombstonesRecord:
    n, mint, maxt = struct.unpack_from("<Iqq", payload, 0)
    if len(payload) != 20 + 8 * n:
        raise ValueError("tombstones record length does not match its count")
    refs = np.frombuffer(payload, dtype="<u8", count=n, offset=20).astype(np.uint64)
    return TombstonesRecord(refs, int(mint), int(maxt))
