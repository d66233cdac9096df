"""Chunk pages: many chunks' samples, encoded column by column and compressed together.

A page holds the chunks of consecutive series (a chunk is up to `MAX_CHUNK_SAMPLES` samples
of one series). Timestamps are delta-of-delta coded across the page. Each chunk's values are
either decimal integers (value = m / 10**k for a per-chunk k, m delta or delta-of-delta coded,
with the few values that do not fit stored raw as exceptions) or XOR-with-previous float
bits. Every stream is byte-shuffled and zstd-compressed (see `streams`); a CRC32 closes the
page. The format is specified in docs/formats/chunks.md.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from watchkeeper.tsdb.chunks.errors import CorruptionError
from watchkeeper.tsdb.chunks.streams import (
    MAX_STREAM_WORDS,
    decode_stream,
    delta,
    encode_stream,
    undelta,
    unzigzag,
    zigzag,
)

PAGE_MAGIC: Final = b"WKPG"
PAGE_VERSION: Final = 1
PAGE_HEADER: Final = struct.Struct("<4sBBHII")
"""magic, version, flags, reserved, chunk count, sample count."""
CRC: Final = struct.Struct("<I")

FLAG_INT_DOD: Final = 1
"""The integer value stream is delta-of-delta coded (else delta coded)."""

XOR_MODE: Final = 0xFF
"""The per-chunk mode byte of chunks whose values are XOR-coded float bits."""
MAX_SCALE: Final = 12
"""The largest decimal exponent k tried for integer-coded chunks."""
MAX_CHUNK_SAMPLES: Final = 4096
"""The most samples one chunk holds; longer series are split into several chunks."""
PAGE_TARGET_SAMPLES: Final = 1 << 18
"""A page is closed once it holds this many samples."""
MAX_PAGE_SAMPLES: Final = MAX_STREAM_WORDS
"""The most samples a reader accepts in one page."""

_INT_MIN_FRACTION: Final = 7 / 8
_EXACT_LIMIT: Final = 2.0**53


@dataclass(frozen=True, slots=True)
class DecodedPage:
    """The samples of one page: chunk i owns samples offsets[i] up to offsets[i+1]."""

    offsets: npt.NDArray[np.int64]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


def _choose_scales(
    values: npt.NDArray[np.float64], chunk_of: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Picks each chunk's decimal exponent (or XOR) and the integer mantissas it implies."""
    n, nc = len(values), len(counts)
    bits = values.view(np.uint64)
    modes = np.full(nc, XOR_MODE, dtype=np.uint8)
    best = np.zeros(nc, dtype=np.float64)
    mantissas = np.zeros(n, dtype=np.int64)
    exact = np.zeros(n, dtype=np.bool_)
    active = counts > 0
    safe_counts = np.maximum(counts, 1)
    with np.errstate(all="ignore"):
        for k in range(MAX_SCALE + 1):
            if not active.any():
                break
            sel = np.flatnonzero(active[chunk_of])
            v = values[sel]
            scale = 10.0**k
            r = np.rint(v * scale)
            fits = np.abs(r) < _EXACT_LIMIT
            m = np.where(fits, r, 0.0).astype(np.int64)
            ok = fits & ((m.astype(np.float64) / scale).view(np.uint64) == bits[sel])
            owner = chunk_of[sel]
            frac = np.bincount(owner, weights=ok, minlength=nc) / safe_counts
            improved = active & (frac > best)
            take = improved[owner]
            mantissas[sel[take]] = m[take]
            exact[sel[take]] = ok[take]
            modes[improved] = k
            best[improved] = frac[improved]
            active &= frac < 1.0
    modes[best < _INT_MIN_FRACTION] = XOR_MODE
    return modes, mantissas, exact


def _heads_mask(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Marks each chunk's first two samples, whose differences span chunk boundaries."""
    n = int(counts.sum())
    mask = np.zeros(n, dtype=np.bool_)
    starts = (np.cumsum(counts) - counts)[counts > 0]
    mask[starts] = True
    second = starts + 1
    mask[second[second < n]] = True
    return mask


def _bit_cost(words: npt.NDArray[np.uint64]) -> float:
    """Estimates the bits needed for a stream (on a sample of at most 4096 words)."""
    step = max(1, len(words) // 4096)
    return float(np.log2(words[::step].astype(np.float64) + 1.0).sum())


def encode_page(
    counts: npt.NDArray[np.int64],
    timestamps_ms: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    *,
    level: int = 3,
) -> bytes:
    """Encodes chunks (counts[i] samples each, concatenated in order) as one page.

    Every float bit pattern (NaN payloads, the staleness marker, -0.0, ±Inf) and every int64
    timestamp round-trips exactly through `decode_page`.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n, nc = len(timestamps_ms), len(counts)
    if int(counts.sum()) != n or len(values) != n or n > MAX_PAGE_SAMPLES:
        raise ValueError("chunk counts do not match the samples, or the page is too large")
    ts = np.ascontiguousarray(timestamps_ms, dtype=np.int64)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    chunk_of = np.repeat(np.arange(nc, dtype=np.int64), counts)
    modes, mantissas, exact = _choose_scales(vals, chunk_of, counts)
    is_int = modes[chunk_of] != XOR_MODE

    int_pos = np.flatnonzero(is_int)
    m = mantissas[int_pos]
    ok = exact[int_pos]
    exc_pos = int_pos[~ok]
    if len(exc_pos):
        fill = np.where(ok, np.arange(len(m)), 0)
        m[~ok] = 0
        m = m[np.maximum.accumulate(fill)]
    int_counts = counts[modes != XOR_MODE]
    d1 = delta(m.view(np.uint64))
    d2 = delta(d1)
    z1, z2 = zigzag(d1.view(np.int64)), zigzag(d2.view(np.int64))
    int_heads_at = _heads_mask(int_counts)
    flags = 0
    int_words = z1
    if _bit_cost(z2[~int_heads_at]) < _bit_cost(z1[~int_heads_at]):
        flags |= FLAG_INT_DOD
        int_words = z2
    int_heads = int_words[int_heads_at]
    int_words[int_heads_at] = 0

    xor_bits = vals.view(np.uint64)[~is_int]
    xor_words = xor_bits.copy()
    if len(xor_words) > 1:
        np.bitwise_xor(xor_bits[1:], xor_bits[:-1], out=xor_words[1:])

    ts_words = zigzag(delta(delta(ts.view(np.uint64))).view(np.int64))
    ts_heads_at = _heads_mask(counts)
    ts_heads = ts_words[ts_heads_at]
    ts_words[ts_heads_at] = 0
    parts = [
        PAGE_HEADER.pack(PAGE_MAGIC, PAGE_VERSION, flags, 0, nc, n),
        encode_stream(counts.view(np.uint64), level=level),
        encode_stream(modes.astype(np.uint64), level=level),
        encode_stream(ts_heads, level=level),
        encode_stream(ts_words, level=level),
        encode_stream(int_heads, level=level),
        encode_stream(int_words, level=level),
        encode_stream(delta(exc_pos.astype(np.uint64)), level=level),
        encode_stream(vals.view(np.uint64)[exc_pos], level=level),
        encode_stream(xor_words, level=level),
    ]
    body = b"".join(parts)
    return body + CRC.pack(zlib.crc32(body))


def decode_page(buf: bytes | memoryview, what: str = "page") -> DecodedPage:
    """Decodes a page written by `encode_page`.

    Raises:
        CorruptionError: for any damage (bad checksum, truncation, inconsistent streams);
            `what` names the page in the message.
    """
    mv = memoryview(buf)
    if len(mv) < PAGE_HEADER.size + CRC.size:
        raise CorruptionError(f"{what}: truncated ({len(mv)} bytes)")
    (stored_crc,) = CRC.unpack_from(mv, len(mv) - CRC.size)
    body = mv[: len(mv) - CRC.size]
    if zlib.crc32(body) != stored_crc:
        raise CorruptionError(f"{what}: checksum mismatch")
    magic, version, flags, _, nc, n = PAGE_HEADER.unpack_from(body, 0)
    if magic != PAGE_MAGIC or version != PAGE_VERSION:
        raise CorruptionError(f"{what}: bad magic or version")
    if n > MAX_PAGE_SAMPLES or nc > MAX_PAGE_SAMPLES:
        raise CorruptionError(f"{what}: implausible sizes ({nc} chunks, {n} samples)")
    pos = PAGE_HEADER.size
    counts_w, pos = decode_stream(body, pos, f"{what} chunk counts")
    modes_w, pos = decode_stream(body, pos, f"{what} chunk modes")
    ts_heads, pos = decode_stream(body, pos, f"{what} timestamp heads")
    ts_w, pos = decode_stream(body, pos, f"{what} timestamps")
    int_heads, pos = decode_stream(body, pos, f"{what} integer heads")
    int_w, pos = decode_stream(body, pos, f"{what} integer values")
    exc_pos_w, pos = decode_stream(body, pos, f"{what} exception positions")
    exc_bits, pos = decode_stream(body, pos, f"{what} exception values")
    xor_w, pos = decode_stream(body, pos, f"{what} float values")
    if pos != len(body):
        raise CorruptionError(f"{what}: {len(body) - pos} unexpected trailing bytes")
    if len(counts_w) != nc or len(modes_w) != nc or len(ts_w) != n:
        raise CorruptionError(f"{what}: stream lengths do not match the header")
    if nc and int(counts_w.max()) > n:
        raise CorruptionError(f"{what}: chunk larger than the page")
    counts = counts_w.astype(np.int64)
    if int(counts.sum()) != n:
        raise CorruptionError(f"{what}: chunk counts do not add up to {n} samples")
    if nc and bool(((modes_w > MAX_SCALE) & (modes_w != XOR_MODE)).any()):
        raise CorruptionError(f"{what}: bad chunk mode")
    modes = modes_w.astype(np.uint8)
    offsets = np.zeros(nc + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])

    heads_at = _head_positions(counts)
    ts = _undelta_body(ts_w, ts_heads, heads_at, n, twice=True, what=what).view(np.int64)

    int_chunks = modes != XOR_MODE
    n_int = int(counts[int_chunks].sum())
    if len(int_w) != n_int or len(xor_w) != n - n_int:
        raise CorruptionError(f"{what}: value stream lengths do not match the chunk modes")
    if len(exc_pos_w) != len(exc_bits):
        raise CorruptionError(f"{what}: exception streams differ in length")

    ints = np.zeros(0, dtype=np.int64)
    if n_int:
        int_at = heads_at if n_int == n else _head_positions(counts[int_chunks])
        dod = bool(flags & FLAG_INT_DOD)
        ints = _undelta_body(int_w, int_heads, int_at, n_int, twice=dod, what=what).view(np.int64)
    if n_int == n:
        values = _decode_ints(ints, modes, counts)
    elif n_int == 0:
        values = np.bitwise_xor.accumulate(xor_w.astype(np.uint64)).view(np.float64)
    else:
        is_int = np.repeat(int_chunks, counts)
        values = np.empty(n, dtype=np.float64)
        values[is_int] = _decode_ints(ints, modes[int_chunks], counts[int_chunks])
        values[~is_int] = np.bitwise_xor.accumulate(xor_w.astype(np.uint64)).view(np.float64)
    if len(exc_pos_w):
        exc = undelta(exc_pos_w.astype(np.uint64))
        if int(exc[-1]) >= n or bool((exc[1:] <= exc[:-1]).any()):
            raise CorruptionError(f"{what}: exception positions out of order or range")
        values.view(np.uint64)[exc.astype(np.int64)] = exc_bits.astype(np.uint64)
    return DecodedPage(offsets, ts, values)


def _head_positions(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The positions `_heads_mask` marks, ascending (without a mask as long as the page)."""
    n = int(counts.sum())
    starts = (np.cumsum(counts) - counts)[counts > 0]
    second = starts + 1
    return np.unique(np.concatenate([starts, second[second < n]]))


def _undelta_body(
    body_w: npt.NDArray[np.unsignedinteger[Any]],
    heads_w: npt.NDArray[np.unsignedinteger[Any]],
    heads_at: npt.NDArray[np.int64],
    n: int,
    *,
    twice: bool,
    what: str,
) -> npt.NDArray[np.uint64]:
    """Puts the chunk heads into a zigzag-coded difference stream and sums it up (mod 2**64).

    Works in place on one array: fresh page-sized temporaries cost more than the sums. An
    all-zero body (evenly spaced timestamps, constant rates) skips the zigzag decode.
    """
    if len(body_w) != n or len(heads_at) != len(heads_w):
        raise CorruptionError(f"{what}: chunk heads do not match the chunk counts")
    heads = unzigzag(heads_w).view(np.uint64)
    d = unzigzag(body_w).view(np.uint64) if body_w.any() else np.zeros(n, dtype=np.uint64)
    d[heads_at] = heads
    np.cumsum(d, out=d)
    if twice:
        np.cumsum(d, out=d)
    return d


def _decode_ints(
    d: npt.NDArray[np.int64],
    modes: npt.NDArray[np.uint8],
    counts: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    m = d.astype(np.float64)
    present = modes[counts > 0]
    if len(present) == 0:
        return m
    if bool((present == present[0]).all()):
        k = int(present[0])
        if k:
            m /= 10.0**k
        return m
    scales = np.repeat((10.0 ** modes.astype(np.float64)), counts)
    m /= scales
    return m
