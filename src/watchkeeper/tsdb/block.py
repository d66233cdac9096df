"""Immutable TSDB blocks: a directory with meta.json, chunks/000001, index and tombstones.

`write_block` (or `BlockWriter` for streaming) writes a block atomically: into
`<ULID>.tmp-for-creation`, fsynced, then renamed, so a crash or a full disk leaves no
loadable half block. `Block.open` maps a block and serves a `Querier` over it. A damaged
chunk page is reported, counted and skipped; the rest of the block is still served.
Formats: docs/formats/block.md, chunks.md and index.md.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import mmap
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import ClosedOnExit, Querier, SelectHints, SeriesSet
from watchkeeper.storage.merge import ragged_arange
from watchkeeper.tsdb.chunks.errors import CorruptionError
from watchkeeper.tsdb.chunks.page import (
    MAX_CHUNK_SAMPLES,
    PAGE_TARGET_SAMPLES,
    DecodedPage,
    decode_page,
    encode_page,
)
from watchkeeper.tsdb.index.reader import IndexReader
from watchkeeper.tsdb.index.writer import ChunkRefs, write_index
from watchkeeper.tsdb.tombstones import Tombstones

log = logging.getLogger(__name__)

META_FILENAME: Final = "meta.json"
INDEX_FILENAME: Final = "index"
CHUNKS_DIRNAME: Final = "chunks"
CHUNKS_FILENAME: Final = "000001"
TMP_SUFFIX: Final = ".tmp-for-creation"
FORMAT_KEY: Final = "watchkeeperFormat"
FORMAT_VERSION: Final = 1
_READ_BATCH_SERIES: Final = 4096
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]

_WORKERS: Final = max(1, min(4, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _decode_pool() -> ThreadPoolExecutor:
    """The process-wide pool that decodes chunk pages (created on first use)."""
    global _POOL  # noqa: PLW0603 - one lazily created pool per process
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_WORKERS, thread_name_prefix="tsdb-decode")
        return _POOL


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_last_ulid = 0
_ulid_lock = threading.Lock()


def new_ulid(timestamp_ms: int | None = None) -> str:
    """Returns a new ULID: 48 bits of milliseconds then 80 random bits, Crockford base32.

    Without `timestamp_ms`, ULIDs made by this process increase strictly (within one
    millisecond too), so a newer block always sorts after an older one.
    """
    global _last_ulid  # noqa: PLW0603 - the process-wide monotonic ULID source
    ms = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    value = (ms & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    if timestamp_ms is None:
        with _ulid_lock:
            if value <= _last_ulid:
                value = _last_ulid + 1
            _last_ulid = value
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def is_ulid(name: str) -> bool:
    """Tells whether a directory name is a ULID (a block directory)."""
    return len(name) == 26 and all(c in _CROCKFORD for c in name.upper())


@dataclass(frozen=True, slots=True)
class BlockStats:
    """Counts written in meta.json."""

    num_samples: int = 0
    num_series: int = 0
    num_chunks: int = 0
    num_tombstones: int = 0


@dataclass(frozen=True, slots=True)
class BlockDesc:
    """Identifies a parent block of a compacted block."""

    ulid: str
    min_time_ms: int
    max_time_ms: int


@dataclass(frozen=True, slots=True)
class CompactionMeta:
    """A block's compaction history, as in Prometheus: level, source ULIDs, parents."""

    level: int = 1
    sources: tuple[str, ...] = ()
    parents: tuple[BlockDesc, ...] = ()
    failed: bool = False
    deletable: bool = False


@dataclass(frozen=True, slots=True)
class BlockMeta:
    """The contents of meta.json, plus the block's directory (not stored).

    Times are milliseconds; `max_time_ms` is exclusive, as in Prometheus.
    """

    ulid: str
    min_time_ms: int
    max_time_ms: int
    stats: BlockStats = field(default_factory=BlockStats)
    compaction: CompactionMeta = field(default_factory=CompactionMeta)
    version: int = 1
    dir: Path | None = None

    @property
    def newest_source(self) -> str:
        """The ULID of the newest head block whose samples this block holds.

        Where blocks overlap, the one with the newer source holds the later write of a
        timestamp (an out-of-order sample persisted after the in-order one): it wins.
        """
        return max(self.compaction.sources, default=self.ulid)

    def as_json(self) -> dict[str, Any]:
        """Returns the meta.json document, in Prometheus's shape."""
        stats: dict[str, int] = {
            "numSamples": self.stats.num_samples,
            "numSeries": self.stats.num_series,
            "numChunks": self.stats.num_chunks,
        }
        if self.stats.num_tombstones:
            stats["numTombstones"] = self.stats.num_tombstones
        comp: dict[str, Any] = {"level": self.compaction.level}
        if self.compaction.sources:
            comp["sources"] = list(self.compaction.sources)
        if self.compaction.parents:
            comp["parents"] = [
                {"ulid": p.ulid, "minTime": p.min_time_ms, "maxTime": p.max_time_ms}
                for p in self.compaction.parents
            ]
        if self.compaction.failed:
            comp["failed"] = True
        if self.compaction.deletable:
            comp["deletable"] = True
        return {
            "ulid": self.ulid,
            "minTime": self.min_time_ms,
            "maxTime": self.max_time_ms,
            "stats": stats,
            "compaction": comp,
            "version": self.version,
            FORMAT_KEY: FORMAT_VERSION,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], block_dir: Path | None = None) -> BlockMeta:
        """Parses a meta.json document.

        Raises:
            CorruptionError: when fields are missing or of the wrong type.
        """
        try:
            st = doc.get("stats", {})
            comp = doc.get("compaction", {})
            meta = cls(
                ulid=str(doc["ulid"]),
                min_time_ms=int(doc["minTime"]),
                max_time_ms=int(doc["maxTime"]),
                stats=BlockStats(
                    int(st.get("numSamples", 0)),
                    int(st.get("numSeries", 0)),
                    int(st.get("numChunks", 0)),
                    int(st.get("numTombstones", 0)),
                ),
                compaction=CompactionMeta(
                    level=int(comp.get("level", 1)),
                    sources=tuple(str(s) for s in comp.get("sources", [])),
                    parents=tuple(
                        BlockDesc(str(p["ulid"]), int(p["minTime"]), int(p["maxTime"]))
                        for p in comp.get("parents", [])
                    ),
                    failed=bool(comp.get("failed", False)),
                    deletable=bool(comp.get("deletable", False)),
                ),
                version=int(doc.get("version", 1)),
                dir=block_dir,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptionError(f"{block_dir}: bad {META_FILENAME}: {exc!r}") from exc
        return meta

    def with_dir(self, block_dir: Path) -> BlockMeta:
        """Returns a copy that remembers its directory."""
        return replace(self, dir=block_dir)


def read_meta(block_dir: Path) -> BlockMeta:
    """Reads a block's meta.json.

    Raises:
        CorruptionError: when it is missing, not JSON, or not a Watchkeeper block.
    """
    path = block_dir / META_FILENAME
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise CorruptionError(f"{block_dir}: no {META_FILENAME}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptionError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CorruptionError(f"{path}: not a JSON object")
    if doc.get(FORMAT_KEY) != FORMAT_VERSION:
        raise CorruptionError(
            f"{block_dir}: not a Watchkeeper block (a Prometheus block? import its data with "
            "`watchkeeper tsdb import openmetrics` from `promtool tsdb dump-openmetrics`)"
        )
    return BlockMeta.from_json(doc, block_dir)


def _write_meta(block_dir: Path, meta: BlockMeta) -> None:
    tmp = block_dir / (META_FILENAME + ".tmp")
    with tmp.open("wb") as f:
        f.write(json.dumps(meta.as_json(), indent="\t").encode())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(block_dir / META_FILENAME)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SEARCH_CHUNKS_ALONE: Final = 16
"""Up to this many chunks, one searchsorted per chunk beats the vector bisection."""


def _bisect_chunks(ts: _I64, starts: _I64, counts: _I64, bound: int, *, right: bool) -> _I64:
    """Per chunk, the first position whose timestamp is >= `bound` (> with `right`).

    Chunk i is the sorted slice ts[starts[i] : starts[i] + counts[i]]. A few chunks are
    searched one by one; many are bisected together (~13 vector steps whatever their number).
    """
    side: Literal["left", "right"] = "right" if right else "left"
    if len(starts) <= _SEARCH_CHUNKS_ALONE:
        return np.array(
            [
                s + int(np.searchsorted(ts[s : s + c], bound, side=side))
                for s, c in zip(starts.tolist(), counts.tolist(), strict=True)
            ],
            dtype=np.int64,
        )
    lo = starts.copy()
    hi = starts + counts
    last = len(ts) - 1
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) >> 1
        at = ts[np.minimum(mid, last)]
        below = (at <= bound) if right else (at < bound)
        below &= active
        lo = np.where(below, mid + 1, lo)
        hi = np.where(below | ~active, hi, mid)


class BlockWriter:
    """Writes one block from batches of series given in label order.

    Use it as a context manager, or call `commit` (and `abort` on failure). Memory stays
    bounded: pages are written as they fill; only labels and chunk references are kept.
    """

    def __init__(
        self,
        parent_dir: Path,
        *,
        mint_ms: int,
        maxt_ms: int,
        compaction: CompactionMeta | None = None,
        level: int = 3,
    ) -> None:
        """Starts a block covering [mint_ms, maxt_ms) in a temporary directory."""
        self.ulid = new_ulid()
        self.parent_dir = parent_dir
        self._mint, self._maxt = mint_ms, maxt_ms
        self._compaction = compaction or CompactionMeta(level=1, sources=(self.ulid,))
        self._level = level
        parent_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = parent_dir / (self.ulid + TMP_SUFFIX)
        self.tmp_dir.mkdir()
        (self.tmp_dir / CHUNKS_DIRNAME).mkdir()
        self._chunks = (self.tmp_dir / CHUNKS_DIRNAME / CHUNKS_FILENAME).open("wb")
        self._pos = 0
        self._labels: list[Labels] = []
        self._series_nchunks: list[_I64] = []
        self._refs: dict[str, list[npt.NDArray[Any]]] = {
            k: [] for k in ("page", "start", "count", "mint", "maxt")
        }
        self._page_offset: list[int] = []
        self._page_length: list[int] = []
        self._pending: list[tuple[_I64, _F64, _I64]] = []
        self._pending_samples = 0
        self._samples = 0
        self._data_min: int | None = None
        self._data_max: int | None = None
        self._done = False

    def add(self, series: SeriesSet) -> None:
        """Adds series (sorted, each after every series added before; no empty check needed).

        Series without samples are skipped. Timestamps must ascend within a series.

        Raises:
            ValueError: when label order is broken.
        """
        lens = np.diff(series.offsets)
        keep = np.flatnonzero(lens > 0)
        if not len(keep):
            return
        labels = [series.labels[i] for i in keep.tolist()]
        last = self._labels[-1] if self._labels else None
        for lbls in labels:
            if last is not None and not last < lbls:
                raise ValueError(f"series out of order or duplicated: {lbls} after {last}")
            last = lbls
        self._labels.extend(labels)
        starts = series.offsets[keep].astype(np.int64)
        lens_k = lens[keep].astype(np.int64)
        nchunks = -(-lens_k // MAX_CHUNK_SAMPLES)
        self._series_nchunks.append(nchunks)
        owner = np.repeat(np.arange(len(keep)), nchunks)
        first_chunk = np.zeros(len(keep), dtype=np.int64)
        np.cumsum(nchunks[:-1], out=first_chunk[1:])
        within = np.arange(len(owner)) - first_chunk[owner]
        c_start = starts[owner] + within * MAX_CHUNK_SAMPLES
        c_count = np.minimum(MAX_CHUNK_SAMPLES, starts[owner] + lens_k[owner] - c_start)
        lo, hi = int(starts[0]), int(starts[-1] + lens_k[-1])
        if int(keep[-1]) - int(keep[0]) + 1 == len(keep):
            ts = series.timestamps_ms[lo:hi]
            vals = series.values[lo:hi]
        else:
            take = ragged_arange(starts, lens_k)
            ts = series.timestamps_ms[take]
            vals = series.values[take]
        tmin, tmax = int(ts.min()), int(ts.max())
        self._data_min = tmin if self._data_min is None else min(self._data_min, tmin)
        self._data_max = tmax if self._data_max is None else max(self._data_max, tmax)
        self._samples += len(ts)
        # Chunks of this batch, as (timestamps, values, counts) of consecutive samples.
        # NB: copies, so that callers may reuse their buffers once add() returns.
        self._pending.append((np.array(ts, np.int64), np.array(vals, np.float64), c_count))
        self._pending_samples += len(ts)
        if self._pending_samples >= PAGE_TARGET_SAMPLES:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        ts = np.concatenate([p[0] for p in self._pending])
        vals = np.concatenate([p[1] for p in self._pending])
        counts = np.concatenate([p[2] for p in self._pending])
        self._pending = []
        chunk_start = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=chunk_start[1:])
        page_of = chunk_start // PAGE_TARGET_SAMPLES
        n_pages = int(page_of[-1]) + 1
        full = n_pages if final else n_pages - 1
        bounds = np.searchsorted(page_of, np.arange(n_pages + 1))
        for p in range(full):
            a, b = int(bounds[p]), int(bounds[p + 1])
            s0 = int(chunk_start[a])
            s1 = int(chunk_start[b - 1] + counts[b - 1])
            self._write_page(ts[s0:s1], vals[s0:s1], counts[a:b])
        if full < n_pages:
            a = int(bounds[full])
            s0 = int(chunk_start[a])
            self._pending = [(ts[s0:], vals[s0:], counts[a:])]
            self._pending_samples = len(ts) - s0
        else:
            self._pending_samples = 0

    def _write_page(self, ts: _I64, vals: _F64, counts: _I64) -> None:
        data = encode_page(counts, ts, vals, level=self._level)
        page_id = len(self._page_offset)
        self._page_offset.append(self._pos)
        self._page_length.append(len(data))
        self._chunks.write(data)
        self._pos += len(data)
        start = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=start[1:])
        ends = start + counts - 1
        self._refs["page"].append(np.full(len(counts), page_id, dtype=np.uint32))
        self._refs["start"].append(start.astype(np.uint32))
        self._refs["count"].append(counts.astype(np.uint32))
        self._refs["mint"].append(ts[start])
        self._refs["maxt"].append(ts[ends])

    def commit(self) -> Path | None:
        """Finishes the block and moves it into place; returns its directory.

        Returns None (and leaves nothing behind) when no sample was added.
        """
        if self._done:
            raise RuntimeError("block writer already finished")
        try:
            if self._data_min is None or self._data_max is None:
                self.abort()
                return None
            if self._pending:
                self._flush(final=True)
            self._chunks.flush()
            os.fsync(self._chunks.fileno())
            self._chunks.close()
            _fsync_dir(self.tmp_dir / CHUNKS_DIRNAME)
            nchunks = np.concatenate(self._series_nchunks)
            series_offsets = np.zeros(len(nchunks) + 1, dtype=np.uint64)
            np.cumsum(nchunks, out=series_offsets[1:])

            def cat(key: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
                return np.concatenate(self._refs[key]).astype(dtype)

            refs = ChunkRefs(
                series_offsets,
                cat("page", np.uint32),
                cat("start", np.uint32),
                cat("count", np.uint32),
                cat("mint", np.int64),
                cat("maxt", np.int64),
                np.asarray(self._page_offset, dtype=np.uint64),
                np.asarray(self._page_length, dtype=np.uint64),
            )
            write_index(self.tmp_dir / INDEX_FILENAME, self._labels, refs)
            Tombstones().write(self.tmp_dir)
            meta = BlockMeta(
                ulid=self.ulid,
                min_time_ms=min(self._mint, self._data_min),
                max_time_ms=max(self._maxt, self._data_max + 1),
                stats=BlockStats(self._samples, len(self._labels), len(refs.page)),
                compaction=self._compaction,
            )
            _write_meta(self.tmp_dir, meta)
            _fsync_dir(self.tmp_dir)
            final = self.parent_dir / self.ulid
            self.tmp_dir.rename(final)
            _fsync_dir(self.parent_dir)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return final

    def abort(self) -> None:
        """Discards the temporary directory."""
        self._done = True
        try:
            self._chunks.close()
        finally:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._done:
            self.abort()


def write_block(
    parent_dir: Path,
    series: SeriesSet,
    *,
    mint_ms: int,
    maxt_ms: int,
    compaction: CompactionMeta | None = None,
) -> Path | None:
    """Writes series as a new block under `parent_dir`; returns its directory.

    The block covers [mint_ms, maxt_ms) (widened if samples fall outside, so nothing is
    lost). Returns None when there are no samples. On any error (a full disk included) the
    temporary directory is removed and the error propagates.
    """
    order = sorted(range(len(series)), key=series.labels.__getitem__)
    if order != list(range(len(series))):
        lens = np.diff(series.offsets)
        take = ragged_arange(series.offsets[order].astype(np.int64), lens[order])
        offsets = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(lens[order], out=offsets[1:])
        series = SeriesSet(
            [series.labels[i] for i in order],
            offsets,
            series.timestamps_ms[take],
            series.values[take],
        )
    with BlockWriter(parent_dir, mint_ms=mint_ms, maxt_ms=maxt_ms, compaction=compaction) as w:
        w.add(series)
        return w.commit()


@dataclass(slots=True)
class SeriesSamples:
    """Samples of series ids read from a block: ids[i] owns offsets[i]..offsets[i+1]."""

    ids: _I64
    offsets: _I64
    timestamps_ms: _I64
    values: _F64
    warnings: list[str]


class Block(ClosedOnExit):
    """An open, immutable block. Thread-safe for reading; close it when done."""

    def __init__(self, path: Path, meta: BlockMeta, index: IndexReader) -> None:
        """Use `Block.open`."""
        self.path = path
        self.meta = meta
        self.index = index
        self.tombstones = Tombstones.read(path)
        chunks_path = path / CHUNKS_DIRNAME / CHUNKS_FILENAME
        self._mm: mmap.mmap | None = None
        self._chunks_size = chunks_path.stat().st_size if chunks_path.exists() else 0
        if self._chunks_size:
            with chunks_path.open("rb") as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        refs = index.chunk_refs
        ends = refs.page_offset + refs.page_length
        self.corrupt_pages: dict[int, str] = {}
        for p in np.flatnonzero(ends > self._chunks_size).tolist():
            self.corrupt_pages[p] = f"page {p} lies beyond the end of the chunks file"
        for msg in self.corrupt_pages.values():
            log.error("Damaged block chunks", extra={"kv": {"block": str(path), "err": msg}})
        self._cache: OrderedDict[int, DecodedPage] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Block:
        """Opens and validates a block directory.

        Raises:
            CorruptionError: when meta.json, the index or the tombstones are damaged.
        """
        meta = read_meta(path)
        index = IndexReader(path / INDEX_FILENAME) if (path / INDEX_FILENAME).exists() else None
        if index is None:
            raise CorruptionError(f"{path}: no {INDEX_FILENAME}")
        try:
            return cls(path, meta, index)
        except BaseException:
            index.close()
            raise

    @property
    def num_corrupt_chunks(self) -> int:
        """How many chunks lie in pages found damaged so far."""
        if not self.corrupt_pages:
            return 0
        bad = np.fromiter(self.corrupt_pages, dtype=np.int64)
        return int(np.isin(self.index.chunk_refs.page, bad).sum())

    def verify(self) -> list[str]:
        """Decodes every page and returns one message per damaged page (empty when sound)."""
        for p in range(len(self.index.chunk_refs.page_offset)):
            self._page(p)
        return [f"{self.path}: {msg}" for _, msg in sorted(self.corrupt_pages.items())]

    def _page(self, p: int) -> DecodedPage | None:
        with self._lock:
            hit = self._cache.get(p)
            if hit is not None:
                self._cache.move_to_end(p)
                return hit
            if p in self.corrupt_pages or self._mm is None:
                return None
            refs = self.index.chunk_refs
            off, length = int(refs.page_offset[p]), int(refs.page_length[p])
            view = memoryview(self._mm)[off : off + length]
        try:
            page = decode_page(view, f"page {p} at offset {off}")
        except CorruptionError as exc:
            with self._lock:
                self.corrupt_pages[p] = str(exc)
            log.error("Damaged block chunks", extra={"kv": {"block": str(self.path), "err": exc}})
            return None
        finally:
            view.release()
        with self._lock:
            self._cache[p] = page
            while len(self._cache) > 4:
                self._cache.popitem(last=False)
        return page

    def read(self, ids: _I64, mint_ms: int, maxt_ms: int) -> SeriesSamples:
        """Reads the samples in [mint_ms, maxt_ms] of sorted series ids, tombstones applied.

        Pages are decoded on a small thread pool (numpy and zstd release the GIL).
        """
        ids = np.asarray(ids, dtype=np.int64)
        refs = self.index.chunk_refs
        so = refs.series_offsets.astype(np.int64)
        lo = so[ids]
        nch = so[ids + 1] - lo
        chunk = ragged_arange(lo, nch)
        owner = np.repeat(np.arange(len(ids), dtype=np.int64), nch)
        cmint = refs.mint[chunk]
        cmaxt = refs.maxt[chunk]
        hit = (cmint <= maxt_ms) & (cmaxt >= mint_ms)
        if not hit.all():
            chunk, owner, cmint, cmaxt = chunk[hit], owner[hit], cmint[hit], cmaxt[hit]
        partial = (cmint < mint_ms) | (cmaxt > maxt_ms)
        pages = refs.page[chunk].astype(np.int64)
        starts = refs.start[chunk].astype(np.int64)
        counts = refs.count[chunk].astype(np.int64)
        per_chunk = counts.copy()
        cuts = np.flatnonzero(np.diff(pages)) + 1
        bounds = [0, *cuts.tolist(), len(pages)] if len(pages) else [0]
        groups = list(itertools.pairwise(bounds))
        warnings: list[str] = []
        ts_parts: list[_I64] = []
        val_parts: list[npt.NDArray[np.float64]] = []
        for (a, b), page in zip(
            groups, self._pages([int(pages[a]) for a, _ in groups]), strict=True
        ):
            if page is None:
                p = int(pages[a])
                warnings.append(
                    f"block {self.meta.ulid}: skipped damaged chunks: {self.corrupt_pages.get(p)}"
                )
                per_chunk[a:b] = 0
                continue
            st, ct = starts[a:b], counts[a:b]
            if partial[a:b].any():
                # Only the samples in range are copied: a short query over long chunks
                # touches a few samples per chunk, not all of them.
                first = _bisect_chunks(page.timestamps_ms, st, ct, mint_ms, right=False)
                end = _bisect_chunks(page.timestamps_ms, st, ct, maxt_ms, right=True)
                st, ct = first, end - first
                per_chunk[a:b] = ct
            if int(ct.sum()) == len(page.timestamps_ms):
                ts_parts.append(page.timestamps_ms)
                val_parts.append(page.values)
            else:
                take = ragged_arange(st, ct)
                ts_parts.append(page.timestamps_ms[take])
                val_parts.append(page.values[take])
        # NB: concatenate copies, so cached pages are never handed out to be modified.
        ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(val_parts) if val_parts else np.zeros(0, dtype=np.float64)
        if len(self.tombstones):
            sample_series = np.repeat(ids[owner], per_chunk)
            keep = ~self.tombstones.deleted_mask(sample_series, ts)
            if not keep.all():
                kept = np.zeros(len(ts) + 1, dtype=np.int64)
                np.cumsum(keep, out=kept[1:])
                chunk_end = np.cumsum(per_chunk)
                per_chunk = kept[chunk_end] - kept[chunk_end - per_chunk]
                ts, vals = ts[keep], vals[keep]
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, weights=per_chunk, minlength=len(ids)), out=offsets[1:])
        return SeriesSamples(ids, offsets, ts, vals, warnings)

    def _pages(self, pages: list[int]) -> Iterator[DecodedPage | None]:
        """Decodes pages in order, a few ahead on the shared thread pool."""
        if len(pages) < 4:
            for p in pages:
                yield self._page(p)
            return
        pool = _decode_pool()
        window: deque[Future[DecodedPage | None]] = deque()
        it = iter(pages)
        for p in itertools.islice(it, 2 * _WORKERS):
            window.append(pool.submit(self._page, p))
        while window:
            done = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(self._page, nxt))
            yield done

    def iter_all(self, batch_series: int = _READ_BATCH_SERIES) -> Iterator[SeriesSet]:
        """Yields every series of the block with all its samples, in batches, tombstones applied."""
        n = self.index.num_series
        for a in range(0, n, batch_series):
            ids = np.arange(a, min(n, a + batch_series), dtype=np.int64)
            yield self._as_series_set(self.read(ids, -(1 << 63), (1 << 63) - 1))

    def _as_series_set(self, got: SeriesSamples) -> SeriesSet:
        lens = np.diff(got.offsets)
        nonempty = np.flatnonzero(lens > 0)
        offsets = np.zeros(len(nonempty) + 1, dtype=np.int64)
        np.cumsum(lens[nonempty], out=offsets[1:])
        return SeriesSet(
            self.index.series_labels(got.ids[nonempty]),
            offsets,
            got.timestamps_ms,
            got.values,
            got.warnings,
        )

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        """Returns a querier over the inclusive range [mint_ms, maxt_ms]."""
        return BlockQuerier(self, mint_ms, maxt_ms)

    def size_bytes(self) -> int:
        """The bytes the block's files take on disk."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def _series_in_range(self, ids: _I64, mint_ms: int, maxt_ms: int) -> _I64:
        refs = self.index.chunk_refs
        so = refs.series_offsets.astype(np.int64)
        lo = so[ids]
        nch = so[ids + 1] - lo
        chunk = ragged_arange(lo, nch)
        owner = np.repeat(np.arange(len(ids)), nch)
        hit = (refs.mint[chunk] <= maxt_ms) & (refs.maxt[chunk] >= mint_ms)
        return ids[np.unique(owner[hit])]

    def delete(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> None:
        """Deletes the samples in [mint_ms, maxt_ms] of matching series (writes tombstones)."""
        ids = self._series_in_range(self.index.select(matchers), mint_ms, maxt_ms)
        if not len(ids):
            return
        stones = self.tombstones.with_intervals(ids, mint_ms, maxt_ms)
        stones.write(self.path)
        meta = replace(self.meta, stats=replace(self.meta.stats, num_tombstones=len(stones)))
        _write_meta(self.path, meta)
        self.tombstones = stones
        self.meta = meta
        with self._lock:
            self._cache.clear()

    def clean_tombstones(self, parent_dir: Path) -> Path | None:
        """Rewrites the block without its deleted samples; returns the new block's directory.

        Returns None when there is nothing to clean (no tombstones), or when nothing is left
        after deletion (then no block is written). The new block names this one as its parent;
        deleting this block is the caller's job.
        """
        if not len(self.tombstones):
            return None
        comp = CompactionMeta(
            level=self.meta.compaction.level,
            sources=self.meta.compaction.sources,
            parents=(BlockDesc(self.meta.ulid, self.meta.min_time_ms, self.meta.max_time_ms),),
        )
        with BlockWriter(
            parent_dir,
            mint_ms=self.meta.min_time_ms,
            maxt_ms=self.meta.max_time_ms,
            compaction=comp,
        ) as w:
            for batch in self.iter_all():
                w.add(batch)
            return w.commit()

    def close(self) -> None:
        """Releases the mappings."""
        with self._lock:
            self._cache.clear()
        self.index.close()
        mm, self._mm = self._mm, None
        if mm is not None:
            with contextlib.suppress(BufferError):  # a view is alive; GC closes it
                mm.close()


def block_dirs(parent_dir: Path) -> list[Path]:
    """Returns the block directories (ULID names with a meta.json) under `parent_dir`, sorted."""
    if not parent_dir.is_dir():
        return []
    return sorted(
        p
        for p in parent_dir.iterdir()
        if p.is_dir() and is_ulid(p.name) and (p / META_FILENAME).exists()
    )


def open_blocks(parent_dir: Path) -> list[Block]:
    """Opens every block under `parent_dir`, sorted by min time.

    Raises:
        CorruptionError: when a block cannot be opened (the ones opened so far are closed).
    """
    blocks: list[Block] = []
    try:
        for d in block_dirs(parent_dir):
            blocks.append(Block.open(d))  # noqa: PERF401 - close the opened ones on error
    except BaseException:
        for b in blocks:
            b.close()
        raise
    return sorted(blocks, key=lambda b: (b.meta.min_time_ms, b.meta.ulid))


class BlockQuerier(Querier):
    """Reads one block over an inclusive time range."""

    def __init__(self, block: Block, mint_ms: int, maxt_ms: int) -> None:
        self._block = block
        self._mint = mint_ms
        self._maxt = maxt_ms

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        """Returns matching series with their samples in range, sorted by label set."""
        b = self._block
        ids = b.index.select(matchers)
        if self._maxt < b.meta.min_time_ms or self._mint >= b.meta.max_time_ms or not len(ids):
            return SeriesSet.empty()
        if hints is not None and hints.func == "series":
            ids = b._series_in_range(ids, self._mint, self._maxt)
            return SeriesSet(
                b.index.series_labels(ids),
                np.zeros(len(ids) + 1, dtype=np.int64),
                np.zeros(0, np.int64),
                np.zeros(0, np.float64),
            )
        return b._as_series_set(b.read(ids, self._mint, self._maxt))

    def _matching_labels(self, matchers: Sequence[Matcher]) -> list[Labels]:
        b = self._block
        ids = b._series_in_range(b.index.select(matchers), self._mint, self._maxt)
        return b.index.series_labels(ids)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted label names of series in the block (that satisfy the matchers)."""
        if not matchers:
            return self._block.index.label_names()
        names: set[str] = set()
        for lbls in self._matching_labels(matchers):
            names.update(lbls.names())
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted values of a label (over series that satisfy the matchers)."""
        if not matchers:
            return self._block.index.label_values(name)
        values = {lbls.get(name) for lbls in self._matching_labels(matchers)}
        values.discard("")
        return sorted(values)
