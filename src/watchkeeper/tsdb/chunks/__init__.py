"""TSDB chunks: column-by-column encodings of samples in compressed pages.

`encode_page` / `decode_page` turn many chunks' (timestamps, values) into bytes and back,
bit for bit; `CorruptionError` is the only error a reader raises for damaged bytes.
"""

from __future__ import annotations

from watchkeeper.tsdb.chunks.errors import CorruptionError
from watchkeeper.tsdb.chunks.page import (
    MAX_CHUNK_SAMPLES,
    PAGE_TARGET_SAMPLES,
    DecodedPage,
    decode_page,
    encode_page,
)

__all__ = [
    "MAX_CHUNK_SAMPLES",
    "PAGE_TARGET_SAMPLES",
    "CorruptionError",
    "DecodedPage",
    "decode_page",
    "encode_page",
]
