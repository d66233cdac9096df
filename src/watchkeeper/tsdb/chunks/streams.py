"""Integer and float streams: zigzag, delta, byte-shuffle packing and zstd, all in numpy.

A stream is an array of uint64 words stored at the smallest byte width that holds its
largest word, transposed into byte planes (all first bytes, then all second bytes...) so
that zstd sees long runs of zeros, then compressed. Arithmetic wraps modulo 2**64, so every
int64 sequence (and every float bit pattern, through its uint64 view) round-trips exactly.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import cramjam
import numpy as np
import numpy.typing as npt

from watchkeeper.tsdb.chunks.errors import CorruptionError

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

STREAM_HEADER: Final = struct.Struct("<BBIII")
"""codec (0 raw, 1 zstd), byte width (0, 1, 2, 4, 8), word count, stored length, padding."""

_RAW: Final = 0
_ZSTD: Final = 1
_WIDTH_DTYPES: Final = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
MAX_STREAM_WORDS: Final = 1 << 23
"""The largest word count a reader accepts (bounds the memory a damaged header can claim)."""


def zigzag(x: I64) -> U64:
    """Maps signed to unsigned so that small magnitudes get small codes (wrapping)."""
    out: U64 = ((x << 1) ^ (x >> 63)).view(np.uint64)
    return out


def unzigzag(u: npt.NDArray[np.unsignedinteger[Any]]) -> I64:
    """Inverts `zigzag`; works on narrow words first (cheaper), then widens to int64."""
    signed = np.dtype(f"i{u.dtype.itemsize}")
    one = u.dtype.type(1)
    half = (u >> one).view(signed)
    neg = (u & one).view(signed)
    np.negative(neg, out=neg)
    np.bitwise_xor(half, neg, out=half)
    return half.astype(np.int64, copy=False)


def delta(u: U64) -> U64:
    """First differences modulo 2**64, the first word kept as is."""
    out = np.empty_like(u)
    if len(u):
        out[0] = u[0]
        np.subtract(u[1:], u[:-1], out=out[1:])
    return out


def undelta(u: U64) -> U64:
    """Inverts `delta` (a wrapping cumulative sum)."""
    out: U64 = np.cumsum(u, dtype=np.uint64)
    return out


def encode_stream(words: U64, *, level: int) -> bytes:
    """Packs uint64 words at their smallest byte width, byte-shuffled, zstd-compressed."""
    n = len(words)
    top = int(words.max()) if n else 0
    width = (
        0 if top == 0 else 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    )
    if width == 0:
        return STREAM_HEADER.pack(_RAW, 0, n, 0, 0)
    packed = words.astype(_WIDTH_DTYPES[width]).view(np.uint8).reshape(n, width)
    planes = np.empty((width, n), dtype=np.uint8)
    for j in range(width):
        planes[j] = packed[:, j]
    raw = planes.tobytes()
    compressed = bytes(cramjam.zstd.compress(raw, level=level))
    if len(compressed) < len(raw):
        return STREAM_HEADER.pack(_ZSTD, width, n, len(compressed), 0) + compressed
    return STREAM_HEADER.pack(_RAW, width, n, len(raw), 0) + raw


def decode_stream(
    buf: bytes | memoryview, pos: int, what: str
) -> tuple[npt.NDArray[np.unsignedinteger[Any]], int]:
    """Reads one stream at `pos`; returns its words (at their stored width) and the end.

    Raises:
        CorruptionError: when the stream is truncated or inconsistent.
    """
    end = pos + STREAM_HEADER.size
    if end > len(buf):
        raise CorruptionError(f"{what}: stream header truncated")
    codec, width, n, stored, _ = STREAM_HEADER.unpack_from(buf, pos)
    if n > MAX_STREAM_WORDS:
        raise CorruptionError(f"{what}: implausible word count {n}")
    if width == 0:
        if codec != _RAW or stored != 0:
            raise CorruptionError(f"{what}: bad empty-stream header")
        return np.zeros(n, dtype=np.uint8), end
    dtype = _WIDTH_DTYPES.get(width)
    if dtype is None:
        raise CorruptionError(f"{what}: bad byte width {width}")
    if end + stored > len(buf):
        raise CorruptionError(f"{what}: stream data truncated")
    data = buf[end : end + stored]
    raw_len = n * width
    if codec == _ZSTD:
        try:
            raw: bytes | memoryview = memoryview(
                cramjam.zstd.decompress(bytes(data), output_len=raw_len)
            )
        except Exception as exc:  # cramjam raises its own DecompressionError and others
            raise CorruptionError(f"{what}: zstd: {exc}") from exc
    elif codec == _RAW:
        raw = data
    else:
        raise CorruptionError(f"{what}: unknown codec {codec}")
    if len(raw) != raw_len:
        raise CorruptionError(f"{what}: expected {raw_len} bytes, found {len(raw)}")
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(width, n)
    if width == 1:
        return planes[0], end + stored
    # Little-endian words from byte planes: shifting and or-ing whole planes is several
    # times faster than interleaving them with strided copies.
    words = planes[width - 1].astype(dtype)
    for j in range(width - 2, -1, -1):
        np.left_shift(words, 8, out=words)
        np.bitwise_or(words, planes[j], out=words)
    return words, end + stored
