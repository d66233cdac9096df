"""Writes a block index: sorted symbols, series, chunk references, postings, one TOC.

Every section is a little-endian numpy array at an 8-byte aligned offset, so a reader can
map it without parsing. A JSON table of contents, then a fixed footer with a CRC32 of the
whole file, close it.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from watchkeeper.model.labels import Labels

INDEX_MAGIC: Final = b"WKIX"
INDEX_VERSION: Final = 1
HEADER: Final = struct.Struct("<4sI")
FOOTER: Final = struct.Struct("<QII4s")
"""TOC offset, TOC length, CRC32 of every byte before the footer, magic."""


@dataclass(slots=True)
class ChunkRefs:
    """Where each series' chunks are: series i owns chunks series_offsets[i]..[i+1].

    Chunk j has `count[j]` samples starting at sample `start[j]` of page `page[j]`, and
    covers [mint[j], maxt[j]] (inclusive milliseconds). Page p is `page_length[p]` bytes at
    `page_offset[p]` of the chunks file.
    """

    series_offsets: npt.NDArray[np.uint64]
    page: npt.NDArray[np.uint32]
    start: npt.NDArray[np.uint32]
    count: npt.NDArray[np.uint32]
    mint: npt.NDArray[np.int64]
    maxt: npt.NDArray[np.int64]
    page_offset: npt.NDArray[np.uint64]
    page_length: npt.NDArray[np.uint64]


class _SectionWriter:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.pos = 0
        self.toc: dict[str, list[object]] = {}
        self.crc = 0

    def raw(self, data: bytes) -> None:
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.pos += len(data)

    def section(self, name: str, arr: npt.NDArray[np.generic]) -> None:
        pad = -self.pos % 8
        if pad:
            self.raw(b"\0" * pad)
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        self.toc[name] = [self.pos, arr.dtype.str.lstrip("<|>="), len(arr)]
        self.raw(data)


def _offsets(lengths: Sequence[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    out = np.zeros(len(lengths) + 1, dtype=np.uint64)
    np.cumsum(lengths, out=out[1:])
    return out


def write_index(path: Path, labels: Sequence[Labels], refs: ChunkRefs) -> None:
    """Writes the index of a block whose series (sorted by label set) are `labels`.

    The file is fsynced before returning.
    """
    symbol_set: set[str] = set()
    for lbls in labels:
        for n, v in lbls.pairs:
            symbol_set.add(n)
            symbol_set.add(v)
    symbols = sorted(symbol_set)
    sym_id = {s: i for i, s in enumerate(symbols)}
    encoded = [s.encode() for s in symbols]

    flat: list[int] = []
    lengths: list[int] = []
    for lbls in labels:
        pairs = lbls.pairs
        lengths.append(2 * len(pairs))
        for n, v in pairs:
            flat.append(sym_id[n])
            flat.append(sym_id[v])
    pairs_arr = np.asarray(flat, dtype=np.uint32)
    label_offsets = _offsets(lengths)
    owner = np.repeat(
        np.arange(len(labels), dtype=np.uint32), np.asarray(lengths, dtype=np.int64) // 2
    )
    names = pairs_arr[0::2]
    values = pairs_arr[1::2]
    order = np.lexsort((owner, values, names))
    names_s, values_s, owner_s = names[order], values[order], owner[order]
    if len(order):
        starts = np.flatnonzero(
            np.concatenate(
                ([True], (names_s[1:] != names_s[:-1]) | (values_s[1:] != values_s[:-1]))
            )
        )
    else:
        starts = np.zeros(0, dtype=np.int64)
    bounds = np.append(starts, len(order))
    postings: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        bm = BitMap(owner_s[a:b])
        bm.run_optimize()
        postings.append(bm.serialize())
    lv_name = names_s[starts]
    lv_value = values_s[starts]
    if len(lv_name):
        name_starts = np.flatnonzero(np.concatenate(([True], lv_name[1:] != lv_name[:-1])))
    else:
        name_starts = np.zeros(0, dtype=np.int64)
    label_names = lv_name[name_starts]
    name_value_offsets = np.append(name_starts, len(lv_name)).astype(np.uint64)

    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        w = _SectionWriter(f)
        w.raw(HEADER.pack(INDEX_MAGIC, INDEX_VERSION))
        w.section("symbol_offsets", _offsets([len(e) for e in encoded]))
        w.section("symbol_data", np.frombuffer(b"".join(encoded), dtype=np.uint8))
        w.section("series_label_offsets", label_offsets)
        w.section("series_labels", pairs_arr)
        w.section("series_chunk_offsets", refs.series_offsets.astype(np.uint64))
        w.section("chunk_page", refs.page.astype(np.uint32))
        w.section("chunk_start", refs.start.astype(np.uint32))
        w.section("chunk_count", refs.count.astype(np.uint32))
        w.section("chunk_mint", refs.mint.astype(np.int64))
        w.section("chunk_maxt", refs.maxt.astype(np.int64))
        w.section("page_offset", refs.page_offset.astype(np.uint64))
        w.section("page_length", refs.page_length.astype(np.uint64))
        w.section("label_names", label_names.astype(np.uint32))
        w.section("label_value_offsets", name_value_offsets)
        w.section("label_values", lv_value.astype(np.uint32))
        w.section("postings_offsets", _offsets([len(p) for p in postings]))
        w.section("postings_data", np.frombuffer(b"".join(postings), dtype=np.uint8))
        toc = json.dumps({"version": INDEX_VERSION, "sections": w.toc}).encode()
        toc_offset = w.pos
        w.raw(toc)
        f.write(FOOTER.pack(toc_offset, len(toc), w.crc, INDEX_MAGIC))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
