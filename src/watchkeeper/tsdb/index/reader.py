"""Reads a block index through mmap: sections are numpy views, postings roaring bitmaps.

Nothing is loaded up front except the table of contents; symbols are decoded on first use.
A damaged file (bad footer, checksum, table of contents or section bounds) raises
`CorruptionError` when opened.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import mmap
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.tsdb.chunks.errors import CorruptionError
from watchkeeper.tsdb.head_index import FILTER_SERIES_BELOW
from watchkeeper.tsdb.index.writer import FOOTER, HEADER, INDEX_MAGIC, INDEX_VERSION, ChunkRefs

_SECTIONS = {
    "symbol_offsets": "u8",
    "symbol_data": "u1",
    "series_label_offsets": "u8",
    "series_labels": "u4",
    "series_chunk_offsets": "u8",
    "chunk_page": "u4",
    "chunk_start": "u4",
    "chunk_count": "u4",
    "chunk_mint": "i8",
    "chunk_maxt": "i8",
    "page_offset": "u8",
    "page_length": "u8",
    "label_names": "u4",
    "label_value_offsets": "u8",
    "label_values": "u4",
    "postings_offsets": "u8",
    "postings_data": "u1",
}


class IndexReader:
    """A memory-mapped block index. Close it to release the mapping."""

    def __init__(self, path: Path) -> None:
        """Maps and validates the index at `path`.

        Raises:
            CorruptionError: when the file is damaged.
            OSError: when it cannot be read.
        """
        self.path = path
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size < HEADER.size + FOOTER.size:
                raise CorruptionError(f"{path}: index too short ({size} bytes)")
            self._mm: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._a = self._load(size)
        except CorruptionError:
            self.close()
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self.close()
            raise CorruptionError(f"{path}: bad index table of contents: {exc}") from exc
        a = self._a
        self.num_series = len(a["series_chunk_offsets"]) - 1
        self.chunk_refs = ChunkRefs(
            a["series_chunk_offsets"],
            a["chunk_page"],
            a["chunk_start"],
            a["chunk_count"],
            a["chunk_mint"],
            a["chunk_maxt"],
            a["page_offset"],
            a["page_length"],
        )
        self._symbols: list[str] | None = None
        self._values_cache: dict[str, tuple[list[str], int]] = {}
        self._labels_cache: dict[int, Labels] = {}

    def _load(self, size: int) -> dict[str, npt.NDArray[Any]]:
        mm = self._mm
        if mm is None:  # pragma: no cover - only after close
            raise CorruptionError(f"{self.path}: closed")
        magic, version = HEADER.unpack_from(mm, 0)
        toc_off, toc_len, crc, magic2 = FOOTER.unpack_from(mm, size - FOOTER.size)
        if magic != INDEX_MAGIC or magic2 != INDEX_MAGIC or version != INDEX_VERSION:
            raise CorruptionError(f"{self.path}: not an index file (bad magic or version)")
        if zlib.crc32(memoryview(mm)[: size - FOOTER.size]) != crc:
            raise CorruptionError(f"{self.path}: index checksum mismatch")
        if toc_off + toc_len != size - FOOTER.size:
            raise CorruptionError(f"{self.path}: bad table of contents position")
        toc = json.loads(bytes(mm[toc_off : toc_off + toc_len]))["sections"]
        out: dict[str, npt.NDArray[Any]] = {}
        for name, dtype in _SECTIONS.items():
            off, stored_dtype, count = toc[name]
            if stored_dtype != dtype:
                raise CorruptionError(f"{self.path}: section {name} has dtype {stored_dtype}")
            dt = np.dtype("<" + dtype)
            if off < 0 or count < 0 or off + count * dt.itemsize > toc_off:
                raise CorruptionError(f"{self.path}: section {name} out of bounds")
            out[name] = np.frombuffer(mm, dtype=dt, count=count, offset=off)
        n_series = len(out["series_chunk_offsets"]) - 1
        if n_series < 0 or len(out["series_label_offsets"]) != n_series + 1:
            raise CorruptionError(f"{self.path}: series tables disagree")
        n_chunks = len(out["chunk_page"])
        for name in ("chunk_start", "chunk_count", "chunk_mint", "chunk_maxt"):
            if len(out[name]) != n_chunks:
                raise CorruptionError(f"{self.path}: chunk tables disagree")
        if n_series and int(out["series_chunk_offsets"][-1]) != n_chunks:
            raise CorruptionError(f"{self.path}: series reference missing chunks")
        if n_chunks and int(out["chunk_page"].max()) >= len(out["page_offset"]):
            raise CorruptionError(f"{self.path}: chunk refers to a missing page")
        return out

    @property
    def symbols(self) -> list[str]:
        """Every string in the index, sorted (decoded once, on first use)."""
        if self._symbols is None:
            offs = self._a["symbol_offsets"]
            blob = self._a["symbol_data"].tobytes()
            if blob.isascii():
                text = blob.decode("ascii")
                o = offs.tolist()
                self._symbols = [text[o[i] : o[i + 1]] for i in range(len(o) - 1)]
            else:
                o = offs.tolist()
                self._symbols = [blob[o[i] : o[i + 1]].decode() for i in range(len(o) - 1)]
        return self._symbols

    def label_names(self) -> list[str]:
        """Every label name in the block, sorted."""
        sym = self.symbols
        return [sym[i] for i in self._a["label_names"].tolist()]

    def _name_values(self, name: str) -> tuple[list[str], int]:
        """The sorted values of a label name and the position of its first value entry."""
        cached = self._values_cache.get(name)
        if cached is not None:
            return cached
        sym = self.symbols
        names = self._a["label_names"]
        i = bisect.bisect_left(sym, name)
        result: tuple[list[str], int] = ([], 0)
        if i < len(sym) and sym[i] == name:
            j = int(np.searchsorted(names, i))
            if j < len(names) and int(names[j]) == i:
                lo = int(self._a["label_value_offsets"][j])
                hi = int(self._a["label_value_offsets"][j + 1])
                vals = [sym[v] for v in self._a["label_values"][lo:hi].tolist()]
                result = (vals, lo)
        self._values_cache[name] = result
        return result

    def label_values(self, name: str) -> list[str]:
        """The sorted values of a label name over every series of the block."""
        return list(self._name_values(name)[0])

    def _postings_at(self, entry: int) -> BitMap:
        offs = self._a["postings_offsets"]
        lo, hi = int(offs[entry]), int(offs[entry + 1])
        return BitMap.deserialize(self._a["postings_data"][lo:hi].tobytes())

    def postings(self, name: str, value: str) -> BitMap:
        """The series ids that have label `name` set to `value`."""
        vals, first = self._name_values(name)
        i = bisect.bisect_left(vals, value)
        if i < len(vals) and vals[i] == value:
            return self._postings_at(first + i)
        return BitMap()

    def _union(self, name: str, matcher: Matcher, *, want: bool) -> BitMap:
        vals, first = self._name_values(name)
        if matcher.type is MatchType.EQUAL and want:
            return self.postings(name, matcher.value)
        out = BitMap()
        for i, v in enumerate(vals):
            if matcher.matches(v) == want:
                out |= self._postings_at(first + i)
        return out

    def select(self, matchers: Sequence[Matcher]) -> npt.NDArray[np.int64]:
        """Returns the sorted ids of series that satisfy every matcher (as Prometheus does).

        A matcher that matches the empty string also selects series without the label.
        """
        result: BitMap | None = None
        removals: list[BitMap] = []
        # NB: equality first; once they leave a few series, the other matchers are
        # checked on those series' labels rather than on every value of their label.
        ordered = sorted(matchers, key=lambda m: (m.matches_empty(), m.type is not MatchType.EQUAL))
        for m in ordered:
            if (
                result is not None
                and m.type is not MatchType.EQUAL
                and len(result) <= FILTER_SERIES_BELOW
            ):
                ids = np.frombuffer(result.to_array(), dtype=np.uint32).astype(np.int64)
                labels = self.series_labels(ids)
                # NB: every matcher, so that removals already collected apply too.
                ok = [all(x.matches(lb.get(x.name)) for x in ordered) for lb in labels]
                return ids[np.asarray(ok, dtype=np.bool_)] if len(ids) else ids
            if m.matches_empty():
                removals.append(self._union(m.name, m, want=False))
            else:
                hit = self._union(m.name, m, want=True)
                result = hit if result is None else result & hit
        if result is None:
            ids = np.arange(self.num_series, dtype=np.int64)
            if removals:
                drop = BitMap()
                for r in removals:
                    drop |= r
                keep = np.ones(self.num_series, dtype=np.bool_)
                keep[np.frombuffer(drop.to_array(), dtype=np.uint32).astype(np.int64)] = False
                ids = ids[keep]
            return ids
        for r in removals:
            result -= r
        return np.frombuffer(result.to_array(), dtype=np.uint32).astype(np.int64)

    def series_labels(self, ids: npt.NDArray[np.int64] | Sequence[int]) -> list[Labels]:
        """Returns the label sets of series ids."""
        sym = self.symbols
        offs = self._a["series_label_offsets"]
        flat = self._a["series_labels"]
        cache = self._labels_cache
        out: list[Labels] = []
        for i in np.asarray(ids, dtype=np.int64).tolist():
            lbls = cache.get(i)
            if lbls is None:
                codes = flat[int(offs[i]) : int(offs[i + 1])].tolist()
                pairs = tuple((sym[codes[j]], sym[codes[j + 1]]) for j in range(0, len(codes), 2))
                lbls = Labels.from_sorted_pairs(pairs)
                cache[i] = lbls
            out.append(lbls)
        return out

    def close(self) -> None:
        """Releases the mapping (arrays handed out earlier must not be used afterwards)."""
        self._a = {}
        self._symbols = None
        mm, self._mm = self._mm, None
        if mm is not None:
            with contextlib.suppress(BufferError):  # a view is alive; GC closes it
                mm.close()
