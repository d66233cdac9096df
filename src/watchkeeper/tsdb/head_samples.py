"""The head's sample store: an open columnar segment, then sorted, compressed pages.

Committed samples land in three preallocated columns (ref, timestamp, value bits) in commit
order. When the segment is full it is sorted by (ref, timestamp) and cut into pages of
about 64 Ki samples, each compressed as one blob: refs delta-coded, timestamps
delta-of-delta, values XORed with their predecessor, every column byte-shuffled, then zstd.
Queries read the open segment and the pages that overlap their refs and time range.
No Python object exists per sample or per series here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import cramjam
import numpy as np
import numpy.typing as npt

PAGE_SAMPLES = 1 << 16
"""Samples per compressed page."""

_Columns = tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]
_DropFn = Callable[[npt.NDArray[np.uint32], npt.NDArray[np.int64]], npt.NDArray[np.bool_]]


def _shuffle(arr: npt.NDArray[np.generic]) -> bytes:
    width = arr.dtype.itemsize
    return arr.view(np.uint8).reshape(len(arr), width).T.tobytes()


def _unshuffle(buf: bytes, n: int, dtype: str, offset: int) -> npt.NDArray[np.generic]:
    width = np.dtype(dtype).itemsize
    raw = np.frombuffer(buf, dtype=np.uint8, count=n * width, offset=offset)
    return raw.reshape(width, n).T.copy().view(dtype).reshape(n)


@dataclass(frozen=True, slots=True, eq=False)
class Page:
    """A compressed run of samples sorted by (ref, timestamp)."""

    n: int
    ref_min: int
    ref_max: int
    t_min: int
    t_max: int
    blob: bytes

    @classmethod
    def encode(
        cls,
        refs: npt.NDArray[np.uint32],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> Page:
        """Compresses columns that are sorted by (ref, timestamp)."""
        n = len(refs)
        dref = np.diff(refs, prepend=np.uint32(0)).astype(np.uint32)
        d1 = np.diff(ts, prepend=np.int64(0))
        d2 = np.diff(d1, prepend=np.int64(0))
        bits = vals.view(np.uint64)
        xored = bits ^ np.concatenate((np.zeros(1, np.uint64), bits[:-1]))
        raw = _shuffle(dref) + _shuffle(d2) + _shuffle(xored)
        blob = bytes(cramjam.zstd.compress(raw, level=1))
        return cls(n, int(refs[0]), int(refs[-1]), int(ts.min()), int(ts.max()), blob)

    def decode(self) -> _Columns:
        """Decompresses the three columns."""
        raw = bytes(cramjam.zstd.decompress(self.blob))
        n = self.n
        dref = _unshuffle(raw, n, "<u4", 0).astype(np.uint32)
        d2 = _unshuffle(raw, n, "<i8", 4 * n).astype(np.int64)
        xored = _unshuffle(raw, n, "<u8", 12 * n).astype(np.uint64)
        refs = np.cumsum(dref, dtype=np.uint32)
        ts = np.cumsum(np.cumsum(d2, dtype=np.int64), dtype=np.int64)
        bits = np.bitwise_xor.accumulate(xored)
        return refs, ts, bits.view(np.float64)

    @property
    def nbytes(self) -> int:
        """The compressed size."""
        return len(self.blob)


class SampleStore:
    """Columns of committed samples for the head. Not thread-safe: the head locks around it."""

    def __init__(self, segment_samples: int = 1 << 20, *, cache_samples: int = 1 << 21) -> None:
        self._cap = segment_samples
        self._refs = np.empty(segment_samples, dtype=np.uint32)
        self._ts = np.empty(segment_samples, dtype=np.int64)
        self._vals = np.empty(segment_samples, dtype=np.float64)
        self._n = 0
        self._pages: list[Page] = []
        self._cache: OrderedDict[Page, _Columns] = OrderedDict()
        self._cache_samples = cache_samples
        self._cached = 0
        self._meta: tuple[npt.NDArray[np.int64], ...] | None = None
        self._cache_lock = threading.Lock()

    @property
    def num_samples(self) -> int:
        """Samples held, open and compressed."""
        return self._n + sum(p.n for p in self._pages)

    @property
    def num_pages(self) -> int:
        """Compressed pages held."""
        return len(self._pages)

    @property
    def nbytes(self) -> int:
        """Bytes held by the open segment and the pages."""
        return self._cap * 20 + sum(p.nbytes for p in self._pages)

    def append(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> None:
        """Adds samples (already validated) in commit order."""
        pos, total = 0, len(refs)
        while pos < total:
            take = min(self._cap - self._n, total - pos)
            end = self._n + take
            self._refs[self._n : end] = refs[pos : pos + take]
            self._ts[self._n : end] = ts[pos : pos + take]
            self._vals[self._n : end] = vals[pos : pos + take]
            self._n = end
            pos += take
            if self._n == self._cap:
                self.freeze()

    def freeze(self) -> None:
        """Sorts the open segment and compresses it into pages."""
        n = self._n
        if n == 0:
            return
        refs, ts, vals = self._refs[:n], self._ts[:n], self._vals[:n]
        order = np.lexsort((ts, refs))
        self._pages.extend(_paginate(refs[order], ts[order], vals[order]))
        self._meta = None
        self._n = 0

    def _page_meta(self) -> tuple[npt.NDArray[np.int64], ...]:
        """Ref and time bounds of every page as arrays (rebuilt after pages change)."""
        if self._meta is None or len(self._meta[0]) != len(self._pages):
            n = len(self._pages)
            self._meta = tuple(
                np.fromiter((getattr(p, f) for p in self._pages), dtype=np.int64, count=n)
                for f in ("ref_min", "ref_max", "t_min", "t_max")
            )
        return self._meta

    def _page_columns(self, page: Page) -> _Columns:
        with self._cache_lock:
            cols = self._cache.get(page)
            if cols is not None:
                self._cache.move_to_end(page)
                return cols
        cols = page.decode()
        with self._cache_lock:
            if page not in self._cache:
                self._cache[page] = cols
                self._cached += page.n
            while self._cached > self._cache_samples and len(self._cache) > 1:
                old, _ = self._cache.popitem(last=False)
                self._cached -= old.n
        return cols

    def snapshot(
        self, sel: npt.NDArray[np.bool_], mint: int, maxt: int
    ) -> tuple[list[Page], _Columns]:
        """Returns the pages that may hold selected samples, and the open segment's ones.

        Cheap: call it under the head lock, then `read_pages` without it (pages are
        immutable). `sel` is a boolean mask indexed by ref.
        """
        limit = len(sel)
        pages: list[Page] = []
        if self._pages:
            counts = np.zeros(limit + 1, dtype=np.int64)
            np.cumsum(sel, out=counts[1:])
            ref_min, ref_max, t_min, t_max = self._page_meta()
            lo = np.minimum(ref_min, limit)
            hi = np.minimum(ref_max + 1, limit)
            hit = (t_max >= mint) & (t_min <= maxt) & (counts[hi] > counts[lo])
            pages = [self._pages[i] for i in np.flatnonzero(hit).tolist()]
        n = self._n
        refs_o, ts_o = self._refs[:n], self._ts[:n]
        keep = sel[np.minimum(refs_o, limit - 1)] & (refs_o < limit)
        keep &= (ts_o >= mint) & (ts_o <= maxt)
        return pages, (refs_o[keep], ts_o[keep], self._vals[:n][keep])

    def read_pages(
        self, pages: list[Page], sel: npt.NDArray[np.bool_], mint: int, maxt: int
    ) -> list[_Columns]:
        """Decodes pages (through a small cache) and keeps the selected samples in range."""
        limit = len(sel)
        out: list[_Columns] = []
        for page in pages:
            refs, ts, vals = self._page_columns(page)
            first = int(np.argmax(sel[page.ref_min :])) + page.ref_min
            lo = int(np.searchsorted(refs, first))
            r, t = refs[lo:], ts[lo:]
            keep = sel[np.minimum(r, limit - 1)] & (r < limit) & (t >= mint) & (t <= maxt)
            out.append((r[keep], t[keep], vals[lo:][keep]))
        return out

    def gather(self, sel: npt.NDArray[np.bool_], mint: int, maxt: int) -> _Columns:
        """Returns copies of the samples of selected refs in [mint, maxt], oldest writes first.

        `sel` is a boolean mask indexed by ref.
        """
        pages, open_cols = self.snapshot(sel, mint, maxt)
        return concat_columns([*self.read_pages(pages, sel, mint, maxt), open_cols])

    def remove(
        self,
        drop: _DropFn,
        *,
        mint: int = -(1 << 63),
        maxt: int = (1 << 63) - 1,
        sel: npt.NDArray[np.bool_] | None = None,
    ) -> int:
        """Removes the samples for which `drop(refs, ts)` is True; returns how many.

        Only pages that overlap [mint, maxt] (and hold a ref set in `sel`, when given) are
        decoded: `drop` must be False outside them.
        """
        removed = 0
        n = self._n
        if n:
            gone = drop(self._refs[:n], self._ts[:n])
            k = int(gone.sum())
            if k:
                keep = ~gone
                m = n - k
                self._refs[:m] = self._refs[:n][keep]
                self._ts[:m] = self._ts[:n][keep]
                self._vals[:m] = self._vals[:n][keep]
                self._n = m
                removed += k
        pages: list[Page] = []
        counts: npt.NDArray[np.int64] | None = None
        if sel is not None:
            counts = np.zeros(len(sel) + 1, dtype=np.int64)
            np.cumsum(sel, out=counts[1:])
        for page in self._pages:
            if page.t_max < mint or page.t_min > maxt:
                pages.append(page)
                continue
            if counts is not None and sel is not None:
                lo, hi = min(page.ref_min, len(sel)), min(page.ref_max + 1, len(sel))
                if counts[hi] <= counts[lo]:
                    pages.append(page)
                    continue
            refs, ts, vals = self._page_columns(page)
            gone = drop(refs, ts)
            k = int(gone.sum())
            if k == 0:
                pages.append(page)
                continue
            removed += k
            if k < page.n:
                keep = ~gone
                pages.extend(_paginate(refs[keep], ts[keep], vals[keep]))
        self._pages = pages
        self._meta = None
        with self._cache_lock:
            self._cache.clear()
            self._cached = 0
        return removed

    def drop_before(self, mint: int) -> int:
        """Removes every sample older than `mint`; returns how many."""
        removed = 0
        survivors: list[Page] = []
        for page in self._pages:
            if page.t_max < mint:
                removed += page.n
            else:
                survivors.append(page)
        self._pages = survivors
        self._meta = None
        with self._cache_lock:
            self._cache.clear()
            self._cached = 0
        return removed + self.remove(lambda _r, ts: ts < mint, maxt=mint - 1)

    def time_bounds(self) -> tuple[int, int] | None:
        """The lowest and highest timestamps held, or None when empty."""
        lo: list[int] = [p.t_min for p in self._pages]
        hi: list[int] = [p.t_max for p in self._pages]
        if self._n:
            lo.append(int(self._ts[: self._n].min()))
            hi.append(int(self._ts[: self._n].max()))
        if not lo:
            return None
        return min(lo), max(hi)


def _paginate(
    refs: npt.NDArray[np.uint32], ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]
) -> list[Page]:
    return [
        Page.encode(
            refs[i : i + PAGE_SAMPLES], ts[i : i + PAGE_SAMPLES], vals[i : i + PAGE_SAMPLES]
        )
        for i in range(0, len(refs), PAGE_SAMPLES)
    ]


def concat_columns(parts: list[_Columns]) -> _Columns:
    """Concatenates (refs, timestamps, values) column triples."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.empty(0, np.uint32), np.empty(0, np.int64), np.empty(0, np.float64)
    if len(parts) == 1:
        return parts[0]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )
