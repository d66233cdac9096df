"""Series-major runs of head samples, decodable one series at a time without Python loops.

A run holds samples sorted by (series ref, timestamp) and a per-series directory. Per
series, timestamps are its first timestamp, its first delta and then zigzag
delta-of-deltas; values are its first value's bits, then XORs with the previous value.
Each series stores every sample's word in the same byte span: the bytes that are not zero
in every sample of the series (a layout code: bytes skipped, width). The bytes of all
series with one code form one row matrix, so encoding and decoding are strided copies
and row gathers, with no per-sample header and no Python loop per series or sample (a
loop over the codes present only). A query decodes just the series it selects; a run
is immutable, so readers need no lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.storage.merge import ragged_arange

CHUNK_SAMPLES = 1 << 21
"""Samples decoded at once (bounds temporary memory)."""

Parts = tuple[
    npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]
"""(series refs, sample counts per series, timestamps, values), grouped by series."""


def expand(values: npt.NDArray[Any], counts: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """`np.repeat(values, counts)` for integers and positive counts, by one cumulative sum.

    Example:
        >>> expand(np.array([7, 3]), np.array([2, 1])).tolist()
        [7, 7, 3]
    """
    v = values.astype(np.int64)
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts.astype(np.int64))
    out = np.zeros(int(ends[-1]), dtype=np.int64)
    out[0] = v[0]
    out[ends[:-1]] = v[1:] - v[:-1]
    return np.cumsum(out, out=out)


def _block_cumsum(
    x: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """A running sum restarting at every block [start, end) from its `first` value.

    Blocks tile `x` exactly and may be listed in any order. Overwrites `x`.
    """
    c = np.cumsum(x)
    last = first + c[end - 1] - c[start]
    x[start] = first
    inner = end < len(x)
    x[end[inner]] -= last[inner]
    return np.cumsum(x, out=x)


def _block_xor(
    x: npt.NDArray[np.uint64], start: npt.NDArray[np.int64], end: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """A running XOR restarting at every block [start, end) (any order). Overwrites `x`."""
    p = np.bitwise_xor.accumulate(x)
    before = np.zeros(len(start), dtype=np.uint64)
    later = start > 0
    before[later] = p[start[later] - 1]
    last = p[end - 1] ^ before
    inner = end < len(x)
    x[end[inner]] ^= last[inner]
    return np.bitwise_xor.accumulate(x, out=x)


def finish_blocks(
    zig: npt.NDArray[np.uint64],
    x: npt.NDArray[np.uint64],
    *,
    start: npt.NDArray[np.int64],
    cnt: npt.NDArray[np.int64],
    t_first: npt.NDArray[np.int64],
    d_first: npt.NDArray[np.int64],
    v_first: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Turns unpacked words (see `Run.unpack_into`) into timestamps and values.

    Each block is one series' samples from one run, at [start, start + cnt); blocks tile
    the arrays in any order. Works in place: the results are views of `zig` and `x`.
    """
    end = start + cnt
    dod = (zig >> np.uint64(1)).view(np.int64) ^ -(zig & np.uint64(1)).view(np.int64)
    multi = cnt > 1
    dod[start[multi] + 1] += d_first[multi]
    d = _block_cumsum(dod, start, end, np.zeros(len(start), dtype=np.int64))
    ts = zig.view(np.int64)
    ts[:] = _block_cumsum(d, start, end, t_first)
    x[start] = v_first
    return ts, _block_xor(x, start, end).view(np.float64)


def finish_in_chunks(
    zig: npt.NDArray[np.uint64],
    x: npt.NDArray[np.uint64],
    offsets: npt.NDArray[np.int64],
    *,
    start: npt.NDArray[np.int64],
    cnt: npt.NDArray[np.int64],
    t_first: npt.NDArray[np.int64],
    d_first: npt.NDArray[np.int64],
    v_first: npt.NDArray[np.uint64],
) -> None:
    """`finish_blocks` over stretches of about CHUNK_SAMPLES that end at series bounds.

    `offsets` are the series bounds (no block crosses one); bounds the temporary memory.
    """
    m = int(offsets[-1])
    bounds = np.unique(
        np.append(offsets[np.searchsorted(offsets, np.arange(0, m, CHUNK_SAMPLES))], m)
    )
    if len(bounds) <= 2:
        finish_blocks(
            zig, x, start=start, cnt=cnt, t_first=t_first, d_first=d_first, v_first=v_first
        )
        return
    chunk = np.searchsorted(bounds, start, side="right") - 1
    by_chunk = np.argsort(chunk, kind="stable")
    cuts = np.searchsorted(chunk[by_chunk], np.arange(len(bounds))).tolist()
    for j in range(len(bounds) - 1):
        b = by_chunk[cuts[j] : cuts[j + 1]]
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        finish_blocks(
            zig[lo:hi],
            x[lo:hi],
            start=start[b] - lo,
            cnt=cnt[b],
            t_first=t_first[b],
            d_first=d_first[b],
            v_first=v_first[b],
        )


def union_refs(lists: list[npt.NDArray[np.uint32]]) -> npt.NDArray[np.uint32]:
    """The sorted union of arrays of series refs (a bitmap pass, cheaper than a sort)."""
    if len(lists) == 1:
        return lists[0]
    top = max(int(a.max()) for a in lists if len(a)) if any(len(a) for a in lists) else -1
    seen = np.zeros(top + 1, dtype=np.bool_)
    for a in lists:
        seen[a] = True
    return np.flatnonzero(seen).astype(np.uint32)


def _byte_len(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Bytes needed to hold each value (0 for 0); may overshoot by one byte above 2**53."""
    _, e = np.frexp(x.astype(np.float64))
    out: npt.NDArray[np.int64] = np.minimum((e.astype(np.int64) + 7) >> 3, 8)
    return out


def _low_zero_bytes(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Trailing zero bytes of each value (8 for 0)."""
    low = x & (~x + np.uint64(1))
    _, e = np.frexp(low.astype(np.float64))
    return np.where(x == 0, 8, (e.astype(np.int64) - 1) >> 3)


_PIECES: list[list[tuple[int, str]]] = [[]]
"""How a word of w bytes splits into 4-, 2- and 1-byte pieces: (byte offset, dtype)."""
for _w in range(1, 9):
    _at, _ps = 0, []
    for _size, _dt in ((8, "<u8"), (4, "<u4"), (2, "<u2"), (1, "u1")):
        if _w - _at >= _size:
            _ps.append((_at, _dt))
            _at += _size
    _PIECES.append(_ps)


def _strided(buf: npt.NDArray[np.uint8], w: int, at: int, dtype: str) -> npt.NDArray[Any]:
    """Column `at` of a row matrix of `w`-byte rows, read (or written) as `dtype`."""
    return np.ndarray(shape=(len(buf) // w,), dtype=dtype, buffer=buf, offset=at, strides=(w,))


def _index_dtype(limit: int) -> type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]]:
    return np.uint32 if limit < (1 << 32) else np.int64


_CODES = 81
"""A layout code is 9 * skip + width: the word's bytes [skip, skip + width) are stored."""


def _word_bytes(words: npt.NDArray[np.uint64], at: int, dtype: str) -> npt.NDArray[Any]:
    """Byte `at` on of every word, read (or written) as `dtype` (a strided view)."""
    return np.ndarray(shape=(len(words),), dtype=dtype, buffer=words, offset=at, strides=(8,))


def _pack(
    words: npt.NDArray[np.uint64], code: npt.NDArray[np.int64], cnt: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Stores the bytes each series' layout code names: one row matrix per code.

    Returns the bytes, where each code's matrix starts (82 bounds), and the first row of
    each series within its code's matrix.
    """
    bounds = np.zeros(_CODES + 1, dtype=np.int64)
    row = np.zeros(len(code), dtype=np.int64)
    parts: list[npt.NDArray[np.uint8]] = []
    starts = np.cumsum(cnt) - cnt
    by_code = np.argsort(code, kind="stable")
    cuts = np.searchsorted(code[by_code], np.arange(_CODES + 1)).tolist()
    pos = 0
    for k in range(_CODES):
        bounds[k] = pos
        skip, w = divmod(k, 9)
        if w == 0 or cuts[k] == cuts[k + 1]:
            continue
        series = by_code[cuts[k] : cuts[k + 1]]
        c = cnt[series]
        row[series] = np.cumsum(c) - c
        rows = words if len(series) == len(code) else words[ragged_arange(starts[series], c)]
        packed = np.empty(len(rows) * w, dtype=np.uint8)
        for at, dt in _PIECES[w]:
            _strided(packed, w, at, dt)[:] = _word_bytes(rows, skip + at, dt)
        parts.append(packed)
        pos += len(rows) * w
    bounds[_CODES] = pos
    data = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    return data, bounds, row.astype(_index_dtype(max(1, len(words))))


def _unpack_into(
    data: npt.NDArray[np.uint8],
    bounds: npt.NDArray[np.int64],
    *,
    code: npt.NDArray[Any],
    row: npt.NDArray[Any],
    cnt: npt.NDArray[np.int64],
    dst: npt.NDArray[np.int64],
    out: npt.NDArray[np.uint64],
) -> None:
    """Writes the words of the given series (see `_pack`) to `out` from `dst` on."""
    code = code.astype(np.int64)
    present = np.bincount(code, minlength=_CODES)
    for k in np.flatnonzero(present).tolist():
        skip, w = divmod(k, 9)
        if w == 0:
            continue
        sm = code == k
        region = data[bounds[k] : bounds[k + 1]]
        c = cnt[sm]
        # NB: when every row of this code is wanted, they are wanted in stored order.
        rows = None if int(c.sum()) == len(region) // w else ragged_arange(row[sm], c)
        words = np.zeros(len(region) // w if rows is None else len(rows), dtype=np.uint64)
        for at, dt in _PIECES[w]:
            piece = _strided(region, w, at, dt)
            _word_bytes(words, skip + at, dt)[:] = piece if rows is None else piece[rows]
        d = dst[sm]
        if len(words) == len(out) and np.array_equal(d, np.cumsum(c) - c):
            out[:] = words
        else:
            out[ragged_arange(d, c)] = words


class _RunExtent:
    """What encoded and raw runs report alike: time extent, series count, bytes held."""

    __slots__ = ()
    refs: npt.NDArray[Any]
    t_first: npt.NDArray[np.int64]
    t_last: npt.NDArray[np.int64]

    @property
    def t_min(self) -> int:
        """The lowest timestamp held."""
        return int(self.t_first.min())

    @property
    def t_max(self) -> int:
        """The highest timestamp held."""
        return int(self.t_last.max())

    @property
    def num_series(self) -> int:
        """Series with samples in the run."""
        return len(self.refs)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        names: tuple[str, ...] = getattr(type(self), "__slots__", ())
        arrays = (getattr(self, name) for name in names)
        return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


@dataclass(frozen=True, slots=True, eq=False)
class Run(_RunExtent):
    """An immutable, series-major run of samples (see the module docstring)."""

    n: int
    level: int
    refs: npt.NDArray[np.uint32]
    offsets: npt.NDArray[Any]
    t_first: npt.NDArray[np.int64]
    t_last: npt.NDArray[np.int64]
    d_first: npt.NDArray[np.int64]
    v_first: npt.NDArray[np.uint64]
    t_code: npt.NDArray[np.uint8]
    t_row: npt.NDArray[Any]
    t_bounds: npt.NDArray[np.int64]
    t_bytes: npt.NDArray[np.uint8]
    v_code: npt.NDArray[np.uint8]
    v_row: npt.NDArray[Any]
    v_bounds: npt.NDArray[np.int64]
    v_bytes: npt.NDArray[np.uint8]

    @classmethod
    def encode(
        cls,
        refs: npt.NDArray[Any],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
        level: int = 0,
    ) -> Run:
        """Encodes non-empty columns sorted by (ref, timestamp) with no repeated pair."""
        n = len(refs)
        first = np.ones(n, dtype=np.bool_)
        np.not_equal(refs[1:], refs[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        offsets = np.append(starts, n)
        cnt = np.diff(offsets)
        d = np.empty(n, dtype=np.int64)
        d[0] = 0
        np.subtract(ts[1:], ts[:-1], out=d[1:])
        d[first] = 0
        second = starts[cnt > 1] + 1
        d_first = np.zeros(len(starts), dtype=np.int64)
        d_first[cnt > 1] = d[second]
        dod = np.empty(n, dtype=np.int64)
        dod[0] = 0
        np.subtract(d[1:], d[:-1], out=dod[1:])
        dod[first] = 0
        dod[second] = 0
        zig = ((dod << 1) ^ (dod >> 63)).view(np.uint64)
        t_code = _byte_len(np.maximum.reduceat(zig, starts))
        t_bytes, t_bounds, t_row = _pack(zig, t_code, cnt)
        bits = np.ascontiguousarray(vals, dtype=np.float64).view(np.uint64)
        x = np.empty(n, dtype=np.uint64)
        x[0] = bits[0]
        np.bitwise_xor(bits[1:], bits[:-1], out=x[1:])
        x[starts] = 0
        # NB: the OR of a series' words has its lowest and highest set bytes.
        ored = np.bitwise_or.reduceat(x, starts)
        shift = _low_zero_bytes(ored)
        top = _byte_len(ored)
        v_width = np.maximum(top - shift, 0)
        v_code = np.where(v_width == 0, 0, shift * 9 + v_width)
        v_bytes, v_bounds, v_row = _pack(x, v_code, cnt)
        return cls(
            n=n,
            level=level,
            refs=refs[starts].astype(np.uint32),
            offsets=offsets.astype(_index_dtype(n)),
            t_first=ts[starts].astype(np.int64),
            t_last=ts[offsets[1:] - 1].astype(np.int64),
            d_first=d_first,
            v_first=bits[starts].copy(),
            t_code=t_code.astype(np.uint8),
            t_row=t_row,
            t_bounds=t_bounds,
            t_bytes=t_bytes,
            v_code=v_code.astype(np.uint8),
            v_row=v_row,
            v_bounds=v_bounds,
            v_bytes=v_bytes,
        )

    def series_for(
        self,
        sel: npt.NDArray[np.bool_],
        mint: int,
        maxt: int,
        sel_refs: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[np.intp]:
        """Indexes (into `refs`) of the series set in the ref mask `sel` that overlap the range.

        `sel_refs`, the ascending refs set in `sel`, lets a small selection be looked up
        by binary search instead of a pass over every series of the run.
        """
        return _series_for(
            self.refs, self.t_first, self.t_last, sel, mint=mint, maxt=maxt, sel_refs=sel_refs
        )

    def counts(self, idx: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        """Sample counts of the series at `idx`."""
        out: npt.NDArray[np.int64] = self.offsets[idx + 1].astype(np.int64) - self.offsets[idx]
        return out

    def unpack_into(
        self,
        idx: npt.NDArray[np.intp],
        dst: npt.NDArray[np.int64],
        zig: npt.NDArray[np.uint64],
        x: npt.NDArray[np.uint64],
    ) -> None:
        """Writes the raw words of the series at `idx` from positions `dst` on.

        `zig` and `x` must be zeroed; `finish_blocks` turns them into samples.
        """
        cnt = self.counts(idx)
        cum = np.cumsum(cnt)
        cuts = [0, len(idx)]
        if len(cum) and int(cum[-1]) > CHUNK_SAMPLES:
            marks = np.arange(CHUNK_SAMPLES, int(cum[-1]), CHUNK_SAMPLES)
            cuts = sorted({0, len(idx), *np.searchsorted(cum, marks, side="right").tolist()})
        for lo, hi in itertools.pairwise(cuts):
            i, c, d = idx[lo:hi], cnt[lo:hi], dst[lo:hi]
            _unpack_into(
                self.t_bytes,
                self.t_bounds,
                code=self.t_code[i],
                row=self.t_row[i],
                cnt=c,
                dst=d,
                out=zig,
            )
            _unpack_into(
                self.v_bytes,
                self.v_bounds,
                code=self.v_code[i],
                row=self.v_row[i],
                cnt=c,
                dst=d,
                out=x,
            )

    def decode(self, idx: npt.NDArray[np.intp] | None = None) -> Parts:
        """Decodes the series at `idx` (ascending indexes into `refs`; every series when None)."""
        if idx is None:
            idx = np.arange(len(self.refs), dtype=np.intp)
        cnt = self.counts(idx)
        dst = np.cumsum(cnt) - cnt
        m = int(cnt.sum())
        zig = np.zeros(m, dtype=np.uint64)
        x = np.zeros(m, dtype=np.uint64)
        self.unpack_into(idx, dst, zig, x)
        ts, vals = finish_blocks(
            zig,
            x,
            start=dst,
            cnt=cnt,
            t_first=self.t_first[idx],
            d_first=self.d_first[idx],
            v_first=self.v_first[idx],
        )
        return self.refs[idx], cnt, ts, vals


def _series_for(
    refs: npt.NDArray[np.uint32],
    t_first: npt.NDArray[np.int64],
    t_last: npt.NDArray[np.int64],
    sel: npt.NDArray[np.bool_],
    *,
    mint: int,
    maxt: int,
    sel_refs: npt.NDArray[Any] | None,
) -> npt.NDArray[np.intp]:
    """Indexes into a run's `refs` of the series selected by `sel` that overlap the range."""
    idx: npt.NDArray[np.intp]
    if sel_refs is not None and len(sel_refs) * 32 < len(refs):
        # NB: needles of the haystack's dtype; others would cast the whole haystack.
        want = sel_refs.astype(refs.dtype)
        pos = np.searchsorted(refs, want)
        inside = pos < len(refs)
        pos = pos[inside]
        idx = pos[refs[pos] == want[inside]].astype(np.intp)
    else:
        limit = len(sel)
        idx = np.flatnonzero(sel[np.minimum(refs, limit - 1)] & (refs < limit))
    keep = (t_last[idx] >= mint) & (t_first[idx] <= maxt)
    return idx if keep.all() else idx[keep]


@dataclass(frozen=True, slots=True, eq=False)
class RawRun(_RunExtent):
    """An immutable run kept as plain columns sorted by (ref, timestamp).

    The newest runs stay raw until `fanout` of them merge into an encoded `Run`: that
    saves an encode and a decode of every sample, for about 16 bytes a sample held.
    """

    n: int
    level: int
    refs: npt.NDArray[np.uint32]
    offsets: npt.NDArray[np.int64]
    t_first: npt.NDArray[np.int64]
    t_last: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    vals: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls, refs: npt.NDArray[Any], ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]
    ) -> RawRun:
        """Wraps non-empty columns sorted by (ref, timestamp) with no repeated pair."""
        n = len(refs)
        first = np.ones(n, dtype=np.bool_)
        np.not_equal(refs[1:], refs[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        offsets = np.append(starts, n).astype(np.int64)
        return cls(
            n=n,
            level=0,
            refs=refs[starts].astype(np.uint32),
            offsets=offsets,
            t_first=ts[starts].astype(np.int64),
            t_last=ts[offsets[1:] - 1].astype(np.int64),
            ts=ts,
            vals=vals,
        )

    def columns(
        self,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The (refs, timestamps, values) columns."""
        return expand(self.refs, np.diff(self.offsets)).astype(np.uint32), self.ts, self.vals

    def series_for(
        self,
        sel: npt.NDArray[np.bool_],
        mint: int,
        maxt: int,
        sel_refs: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[np.intp]:
        """Indexes (into `refs`) of the series set in the ref mask `sel` that overlap the range."""
        return _series_for(
            self.refs, self.t_first, self.t_last, sel, mint=mint, maxt=maxt, sel_refs=sel_refs
        )

    def counts(self, idx: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        """Sample counts of the series at `idx`."""
        out: npt.NDArray[np.int64] = self.offsets[idx + 1] - self.offsets[idx]
        return out

    def samples(
        self, idx: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The timestamps and values of the series at `idx`, one after another."""
        if len(idx) == len(self.refs):
            return self.ts, self.vals
        pos = ragged_arange(self.offsets[idx], self.counts(idx))
        return self.ts[pos], self.vals[pos]

    def decode(self, idx: npt.NDArray[np.intp] | None = None) -> Parts:
        """The series at `idx` (ascending indexes into `refs`; every series when None)."""
        if idx is None:
            return self.refs, np.diff(self.offsets), self.ts, self.vals
        ts, vals = self.samples(idx)
        return self.refs[idx], self.counts(idx), ts, vals


AnyRun = Run | RawRun
"""An encoded or a raw run."""


def merge_runs(runs: Sequence[AnyRun], level: int) -> Run:
    """Merges runs written in this order into one (of two samples at one time, the earlier wins).

    Raw runs are sorted together (the sort finds their sorted stretches); encoded runs have
    each series' pieces unpacked straight behind each other, and only when they overlap
    in time (out-of-order samples) is the result sorted.
    """
    if all(isinstance(r, RawRun) for r in runs):
        cols = [r.columns() for r in runs if isinstance(r, RawRun)]
        merged = sort_unique(
            np.concatenate([c[0] for c in cols]),
            np.concatenate([c[1] for c in cols]),
            np.concatenate([c[2] for c in cols]),
        )
        del cols
        return Run.encode(*merged, level=level)
    enc = [r if isinstance(r, Run) else Run.encode(*r.columns(), level=r.level) for r in runs]
    uniq = union_refs([r.refs for r in enc])
    fill = np.zeros(len(uniq), dtype=np.int64)
    locs = [np.searchsorted(uniq, r.refs) for r in enc]
    every = [np.arange(len(r.refs), dtype=np.intp) for r in enc]
    for r, k, idx in zip(enc, locs, every, strict=True):
        fill[k] += r.counts(idx)
    total = fill.copy()
    np.cumsum(total, out=fill)
    fill -= total
    n = int(total.sum())
    zig = np.zeros(n, dtype=np.uint64)
    x = np.zeros(n, dtype=np.uint64)
    blocks: list[tuple[npt.NDArray[Any], ...]] = []
    for r, k, idx in zip(enc, locs, every, strict=True):
        cnt = r.counts(idx)
        dst = fill[k]
        fill[k] += cnt
        r.unpack_into(idx, dst, zig, x)
        blocks.append((dst, cnt, r.t_first, r.d_first, r.v_first))
    start, cnt, t_first, d_first, v_first = (np.concatenate(b) for b in zip(*blocks, strict=True))
    offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(total, out=offsets[1:])
    finish_in_chunks(
        zig,
        x,
        offsets,
        start=start,
        cnt=cnt,
        t_first=t_first,
        d_first=d_first,
        v_first=v_first,
    )
    ts, vals = zig.view(np.int64), x.view(np.float64)
    refs = expand(uniq, total).astype(np.uint32)
    bad = (ts[1:] <= ts[:-1]) & (refs[1:] == refs[:-1])
    if bad.any():
        refs, ts, vals = sort_unique(refs, ts, vals)
    return Run.encode(refs, ts, vals, level)


def sort_order(refs: npt.NDArray[Any], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """A stable order by (ref, timestamp): one sort on a combined key when it fits."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.intp)
    t_min, t_max = int(ts.min()), int(ts.max())
    span = t_max - t_min + 1
    if span * (int(refs.max()) + 1) < (1 << 62):
        key = refs.astype(np.int64) * span + (ts - t_min)
        return np.argsort(key, kind="stable")
    return np.lexsort((ts, refs))


def sort_unique(
    refs: npt.NDArray[Any], ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sorts columns by (ref, timestamp), stably, keeping the first of repeated pairs."""
    order = sort_order(refs, ts)
    r, t, v = refs[order].astype(np.uint32), ts[order], vals[order]
    dup = np.zeros(len(r), dtype=np.bool_)
    dup[1:] = (r[1:] == r[:-1]) & (t[1:] == t[:-1])
    if dup.any():
        keep = ~dup
        r, t, v = r[keep], t[keep], v[keep]
    return r, t, v


def filter_parts(parts: Parts, mint: int, maxt: int) -> Parts:
    """Keeps the grouped samples in [mint, maxt] (and the series left with any)."""
    refs, cnt, ts, vals = parts
    keep = (ts >= mint) & (ts <= maxt)
    if keep.all():
        return parts
    kept = np.add.reduceat(keep, np.cumsum(cnt) - cnt, dtype=np.int64) if len(cnt) else cnt
    has = kept > 0
    return refs[has], kept[has], ts[keep], vals[keep]
