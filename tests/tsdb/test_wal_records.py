"""WAL record encoding: every record decodes to itself, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN_BITS
from watchkeeper.tsdb.wal import (
    RecordDecodeError,
    RecordType,
    SamplesRecord,
    SeriesRecord,
    TombstonesRecord,
    decode,
    encode,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SPECIAL_BITS = st.sampled_from(
    [
        STALE_NAN_BITS,
        0x7FF8000000000001,
        0xFFF8000000000000,
        0x7FF0000000000000,
        0xFFF0000000000000,
        0x7FEFFFFFFFFFFFFF,
        0x8000000000000000,
        0,
        1,
    ]
)
VALUE_BITS = st.one_of(SPECIAL_BITS, st.integers(min_value=0, max_value=2**64 - 1))


@st.composite
def samples_records(draw: st.DrawFn) -> SamplesRecord:
    n = draw(st.integers(min_value=0, max_value=60))
    big_refs = draw(st.booleans())
    ref_max = 2**64 - 1 if big_refs else 2**32 - 1
    refs = draw(st.lists(st.integers(0, ref_max), min_size=n, max_size=n))
    wide = draw(st.booleans())
    if wide:
        ts = draw(st.lists(INT64, min_size=n, max_size=n))
    else:
        base = draw(st.integers(-(2**40), 2**41))
        ts = [
            base + d for d in draw(st.lists(st.integers(-(10**6), 10**8), min_size=n, max_size=n))
        ]
    bits = draw(st.lists(VALUE_BITS, min_size=n, max_size=n))
    return SamplesRecord(
        np.array(refs, dtype=np.uint64),
        np.array(ts, dtype=np.int64),
        np.array(bits, dtype=np.uint64).view(np.float64),
    )


LABEL_TEXT = st.text(min_size=1, max_size=12)


@st.composite
def series_records(draw: st.DrawFn) -> SeriesRecord:
    n = draw(st.integers(0, 8))
    labels = [
        Labels(draw(st.dictionaries(LABEL_TEXT, LABEL_TEXT, min_size=1, max_size=5)).items())
        for _ in range(n)
    ]
    refs = draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n))
    return SeriesRecord(np.array(refs, dtype=np.uint64), labels)


@given(samples_records(), st.booleans())
def test_samples_records_decode_to_themselves_bit_for_bit(
    rec: SamplesRecord, compress: bool
) -> None:
    rtype, payload = encode(rec, compress=compress)
    assert rtype is RecordType.SAMPLES
    back = decode(rtype, payload)
    assert back == rec
    assert isinstance(back, SamplesRecord)
    assert back.values.view(np.uint64).tolist() == rec.values.view(np.uint64).tolist()


@given(series_records())
def test_series_records_decode_to_themselves(rec: SeriesRecord) -> None:
    rtype, payload = encode(rec)
    assert decode(rtype, payload) == rec


@given(st.lists(st.integers(0, 2**64 - 1), max_size=20), INT64, INT64)
def test_tombstone_records_decode_to_themselves(refs: list[int], mint: int, maxt: int) -> None:
    rec = TombstonesRecord(np.array(refs, dtype=np.uint64), mint, maxt)
    rtype, payload = encode(rec)
    assert decode(rtype, payload) == rec


def test_regular_scrape_batches_encode_compactly() -> None:
    n = 1000
    rec = SamplesRecord(
        np.arange(n, dtype=np.uint64),
        np.full(n, 1_700_000_000_000, dtype=np.int64),
        np.ones(n, dtype=np.float64),
    )
    _, payload = encode(rec, compress=True)
    assert len(payload) < n * 4


@pytest.mark.parametrize("rtype", [RecordType.SAMPLES, RecordType.SERIES, RecordType.TOMBSTONES, 9])
def test_truncated_payloads_are_decode_errors_not_crashes(rtype: int) -> None:
    with pytest.raises(RecordDecodeError):
        decode(rtype, b"\x01\x02")
