"""Chunk pages: exact round trips for every bit pattern, and robust decoding of bad bytes."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.value import STALE_NAN_BITS
from watchkeeper.tsdb.chunks import CorruptionError, decode_page, encode_page
from watchkeeper.tsdb.chunks.streams import decode_stream, encode_stream, unzigzag, zigzag

SPECIAL_BITS = [
    STALE_NAN_BITS,
    0x7FF8000000000001,
    0x7FF8000000000000,
    0xFFF0000000000001,
    0x7FF0000000000000,
    0xFFF0000000000000,
    0x8000000000000000,
    0,
    0x7FEFFFFFFFFFFFFF,
    1,
]


def _bits(values: npt.NDArray[np.float64]) -> npt.NDArray[np.uint64]:
    return values.view(np.uint64)


float_bits = st.one_of(
    st.sampled_from(SPECIAL_BITS),
    st.integers(min_value=0, max_value=(1 << 64) - 1),
    st.floats(allow_nan=False, width=64).map(
        lambda f: struct.unpack("<Q", struct.pack("<d", f))[0]
    ),
    st.integers(-(10**9), 10**9).map(lambda i: struct.unpack("<Q", struct.pack("<d", float(i)))[0]),
    st.decimals(-(10**6), 10**6, places=3, allow_nan=False, allow_infinity=False).map(
        lambda d: struct.unpack("<Q", struct.pack("<d", float(d)))[0]
    ),
)


@st.composite
def pages(
    draw: st.DrawFn,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    counts = draw(st.lists(st.integers(0, 40), min_size=0, max_size=8))
    n = sum(counts)
    ts = draw(
        st.one_of(
            st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=n, max_size=n),
            st.lists(st.integers(0, 30_000), min_size=n, max_size=n).map(
                lambda d: np.cumsum([1_700_000_000_000, *d])[1:].tolist()
            ),
        )
    )
    bits = draw(st.lists(float_bits, min_size=n, max_size=n))
    return (
        np.asarray(counts, dtype=np.int64),
        np.asarray(ts, dtype=np.int64),
        np.asarray(bits, dtype=np.uint64).view(np.float64),
    )


@given(pages())
def test_pages_round_trip_bit_for_bit(
    page: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
) -> None:
    counts, ts, values = page
    decoded = decode_page(encode_page(counts, ts, values))
    assert decoded.offsets.tolist() == [0, *np.cumsum(counts).tolist()]
    assert np.array_equal(decoded.timestamps_ms, ts)
    assert np.array_equal(_bits(decoded.values), _bits(values))


def test_counter_like_chunks_compress_below_one_byte_per_sample() -> None:
    rng = np.random.default_rng(0)
    per = 4096
    ts = np.tile(1_700_000_000_000 + np.arange(per, dtype=np.int64) * 15_000, 8)
    values = rng.poisson(40, size=(8, per)).cumsum(axis=1).astype(np.float64).ravel()
    values[5000] = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
    data = encode_page(np.full(8, per, dtype=np.int64), ts, values)
    assert len(data) / len(ts) < 1.0
    assert np.array_equal(_bits(decode_page(data).values), _bits(values))


def test_single_sample_and_empty_chunks_round_trip() -> None:
    counts = np.array([0, 1, 0, 1], dtype=np.int64)
    ts = np.array([5, -7], dtype=np.int64)
    values = np.array([np.inf, -0.0])
    decoded = decode_page(encode_page(counts, ts, values))
    assert decoded.timestamps_ms.tolist() == [5, -7]
    assert np.array_equal(_bits(decoded.values), _bits(values))


@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=50))
def test_zigzag_inverts(xs: list[int]) -> None:
    a = np.asarray(xs, dtype=np.int64)
    assert np.array_equal(unzigzag(zigzag(a)), a)


@given(st.lists(st.integers(0, (1 << 64) - 1), max_size=60))
def test_streams_round_trip(words: list[int]) -> None:
    a = np.asarray(words, dtype=np.uint64)
    data = encode_stream(a, level=1)
    out, end = decode_stream(data, 0, "test")
    assert end == len(data)
    assert np.array_equal(out.astype(np.uint64), a)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_corruption_errors(data: bytes) -> None:
    with contextlib.suppress(CorruptionError):
        decode_page(data)


@given(st.data())
def test_damaged_pages_raise_only_corruption_errors(data: st.DataObject) -> None:
    counts = np.array([3, 2], dtype=np.int64)
    page = bytearray(
        encode_page(counts, np.arange(5, dtype=np.int64) * 1000, np.array([1.5, 2, 3, 4, 5.0]))
    )
    pos = data.draw(st.integers(0, len(page) - 1))
    page[pos] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(page)))
    with pytest.raises(CorruptionError):
        decode_page(bytes(page[:cut]) if cut < len(page) else bytes(page))


@given(st.binary(max_size=200))
def test_stream_decoder_raises_only_corruption_errors(data: bytes) -> None:
    with contextlib.suppress(CorruptionError):
        decode_stream(data, 0, "fuzz")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 300),
            st.integers(-(2**62), 2**62),
            st.integers(-(2**40), 2**40),
            st.integers(-(2**50), 2**50),
        ),
        max_size=6,
    )
)
def test_evenly_spaced_timestamps_and_constant_rates_round_trip(
    chunks: list[tuple[int, int, int, int]],
) -> None:
    counts = np.array([c for c, *_ in chunks], dtype=np.int64)
    ts = np.concatenate(
        [np.zeros(0, np.int64)]
        + [t0 + np.arange(c, dtype=np.int64) * step for c, t0, step, _ in chunks]
    )
    values = np.concatenate(
        [np.zeros(0)] + [float(v) + np.arange(c, dtype=np.float64) for c, _, _, v in chunks]
    )
    decoded = decode_page(encode_page(counts, ts, values))
    assert np.array_equal(decoded.timestamps_ms, ts)
    assert np.array_equal(_bits(decoded.values), _bits(values))
