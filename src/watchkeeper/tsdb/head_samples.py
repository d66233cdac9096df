"""The head's sample store: an open columnar segment, then series-major encoded runs.

Committed samples land in three preallocated columns (ref, timestamp, value bits) in commit
order. When the segment is full it is sorted by (ref, timestamp) into a raw run (plain
sorted columns); `fanout` raw runs are merged and encoded as a run (`head_runs.py`): a
per-series directory over delta-of-delta timestamps and XORed values, so a query decodes
only the series it selects. Encoded runs merge as they accumulate (`fanout` runs of one
level make one of the next) until they hold enough samples per series that the directory
costs little. Keeping the newest runs raw saves an encode and a decode of every sample.
No Python object exists per sample or per series here.
`Page` is a zstd-compressed column blob, used to park samples while blocks are cut.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np
import numpy.typing as npt

from watchkeeper.storage.merge import ragged_arange
from watchkeeper.tsdb.head_runs import (
    AnyRun,
    Parts,
    RawRun,
    Run,
    expand,
    filter_parts,
    finish_in_chunks,
    merge_runs,
    sort_order,
    sort_unique,
    union_refs,
)


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def release_memory() -> None:
    """Hands freed heap pages back to the OS.

    glibc keeps the large temporaries of a merge in its heap after they are freed, which
    would count as resident memory of the head until the next merge reuses them.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


PAGE_SAMPLES = 1 << 16
"""Samples per compressed page."""

_Columns = tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]
_INDEX_RATIO = 16
"""Selections of at most 1/16 as many refs as the open segment has rows use its index."""
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
    """Columns of committed samples for the head. Not thread-safe: the head locks around it.

    Merges run on a short-lived background thread (unless `background` is False), so a
    commit that fills the open segment only sorts it. The thread replaces a stretch of
    immutable runs by their merge under an internal lock; readers copy the run list under
    it, so they see each sample exactly once either way. Deleting, truncating and
    `freeze` first wait for the thread; so does a commit when raw runs pile up.

    Args:
        segment_samples: Size of the open segment; when full it becomes a raw level-0 run.
        fanout: How many runs of one level merge into one run of the next level.
        dense_samples: Runs with at least this many samples per series are not merged
            further (their per-series directory is cheap enough already).
        max_run_samples: Nor are runs that would grow beyond this by a merge (bounds the
            memory and the time of one merge).
        background: Merge on a background thread rather than inside the commit.
    """

    def __init__(
        self,
        segment_samples: int = 1 << 20,
        *,
        fanout: int = 4,
        dense_samples: int = 64,
        max_run_samples: int = 1 << 25,
        background: bool = True,
    ) -> None:
        self._cap = segment_samples
        self._refs = np.empty(segment_samples, dtype=np.uint32)
        self._ts = np.empty(segment_samples, dtype=np.int64)
        self._vals = np.empty(segment_samples, dtype=np.float64)
        self._n = 0
        self._ix_n = 0
        """Rows of the open segment covered by the per-ref index below (0: no index)."""
        self._ix_refs = np.zeros(0, dtype=np.uint32)
        """The first `_ix_n` refs of the open segment, sorted (stably)."""
        self._ix_rows = np.zeros(0, dtype=np.int64)
        """The rows of `_ix_refs`: a series' rows are ascending (in write order)."""
        self._runs: list[AnyRun] = []
        """Runs in write order; raw runs only at the end."""
        self._fanout = fanout
        self._dense = dense_samples
        self._max_run = max_run_samples
        self._background = background
        self._mu = threading.Lock()
        self._idle = threading.Condition(self._mu)
        self._working = False
        self._claimed: set[int] = set()
        self._error: BaseException | None = None

    def _run_list(self) -> list[AnyRun]:
        with self._mu:
            return list(self._runs)

    @property
    def num_samples(self) -> int:
        """Samples held, open and encoded."""
        return self._n + sum(r.n for r in self._run_list())

    @property
    def num_pages(self) -> int:
        """Runs held (raw and encoded)."""
        return len(self._run_list())

    @property
    def nbytes(self) -> int:
        """Bytes held by the open segment and the runs."""
        return self._cap * 20 + sum(r.nbytes for r in self._run_list())

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
                self._seal()

    def _final(self, run: AnyRun) -> bool:
        return run.n >= self._dense * run.num_series or run.n * self._fanout > self._max_run

    def _seal(self) -> None:
        """Turns the open segment into a raw run, then merges runs as the levels fill up."""
        n = self._n
        if n == 0:
            return
        raw = RawRun.of(*sort_unique(self._refs[:n], self._ts[:n], self._vals[:n]))
        self._n = 0
        self._drop_index()
        if self._final(raw):
            # NB: a run that merges no further must not stay raw (nor the raw ones before it).
            self.settle()
            self._encode_raw()
            enc = Run.encode(*raw.columns(), level=0)
            with self._mu:
                self._runs.append(enc)
        else:
            with self._mu:
                self._runs.append(raw)
                backlog = sum(isinstance(r, RawRun) for r in self._runs)
            if backlog > 2 * self._fanout:
                self.settle()
        del raw
        if self._background:
            self._kick()
        else:
            self._compact()
            release_memory()

    def _encode_raw(self) -> None:
        runs = self._runs
        k = 0
        while k < len(runs) and isinstance(runs[-1 - k], RawRun):
            k += 1
        if k == 0:
            return
        tail = runs[-k:]
        only = tail[0]
        if k == 1 and isinstance(only, RawRun):
            merged = Run.encode(*only.columns(), level=0)
        else:
            merged = merge_runs(tail, 1)
        with self._mu:
            runs[-k:] = [merged]

    def freeze(self) -> None:
        """Encodes the open segment and the raw runs (to lower memory), merging as levels fill."""
        self._seal()
        self.settle()
        self._encode_raw()
        self._compact()
        release_memory()

    def settle(self) -> None:
        """Waits until no background merge runs; raises the error of a failed one."""
        with self._mu:
            while self._working:
                self._idle.wait()
            err, self._error = self._error, None
        if err is not None:
            raise RuntimeError("a background merge of head runs failed") from err

    def _due(self) -> list[AnyRun] | None:
        """The oldest stretch of `fanout` unclaimed mergeable runs of one level (under _mu)."""
        group: list[AnyRun] = []
        for r in self._runs:
            if id(r) in self._claimed or self._final(r):
                group = []
                continue
            if group and r.level != group[0].level:
                group = []
            group.append(r)
            if len(group) == self._fanout:
                return group
        return None

    def _merge(self, group: list[AnyRun]) -> None:
        """Merges a claimed stretch, then swaps it in if it is still held unchanged."""
        merged = merge_runs(group, group[0].level + 1)
        with self._mu:
            self._claimed.difference_update(id(r) for r in group)
            runs = self._runs
            at = next((i for i, r in enumerate(runs) if r is group[0]), -1)
            k = len(group)
            if at >= 0 and all(a is b for a, b in zip(runs[at : at + k], group, strict=False)):
                runs[at : at + k] = [merged]

    def _compact(self) -> None:
        while True:
            with self._mu:
                group = self._due()
                if group is None:
                    return
                self._claimed.update(id(r) for r in group)
            self._merge(group)
            del group

    def _kick(self) -> None:
        with self._mu:
            if self._working or self._due() is None:
                return
            self._working = True
        threading.Thread(target=self._work, name="head-merge").start()

    def _work(self) -> None:
        try:
            while True:
                with self._mu:
                    group = self._due()
                    if group is None:
                        # NB: decided under the lock, so a later `_kick` starts a new thread.
                        self._working = False
                        self._idle.notify_all()
                        break
                    self._claimed.update(id(r) for r in group)
                self._merge(group)
                del group
                release_memory()
        except BaseException as exc:
            with self._mu:
                self._error = exc
                self._claimed.clear()
                self._working = False
                self._idle.notify_all()

    def _drop_index(self) -> None:
        self._ix_n = 0
        self._ix_refs = np.zeros(0, dtype=np.uint32)
        self._ix_rows = np.zeros(0, dtype=np.int64)

    def _open_index(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
        """The open segment's refs sorted stably, and their rows; built lazily.

        Rows appended since the last call are sorted on their own and merged in, so a
        query after a small commit costs one linear merge, not a sort of the segment.
        """
        n, k = self._n, self._ix_n
        if k == n:
            return self._ix_refs, self._ix_rows
        if k == 0 or n - k > k:
            order = np.argsort(self._refs[:n], kind="stable")
            self._ix_refs = self._refs[:n][order]
            self._ix_rows = order.astype(np.int64)
        else:
            order = np.argsort(self._refs[k:n], kind="stable")
            new_refs = self._refs[k:n][order]
            # NB: side="right" puts the new rows after the older rows of the same ref.
            at = np.searchsorted(self._ix_refs, new_refs, side="right")
            at += np.arange(n - k, dtype=at.dtype)
            old = np.ones(n, dtype=np.bool_)
            old[at] = False
            refs = np.empty(n, dtype=np.uint32)
            rows = np.empty(n, dtype=np.int64)
            refs[at] = new_refs
            refs[old] = self._ix_refs
            rows[at] = order + k
            rows[old] = self._ix_rows
            self._ix_refs, self._ix_rows = refs, rows
        self._ix_n = n
        return self._ix_refs, self._ix_rows

    def snapshot(
        self,
        sel: npt.NDArray[np.bool_],
        mint: int,
        maxt: int,
        sel_refs: npt.NDArray[Any] | None = None,
    ) -> tuple[list[AnyRun], Parts]:
        """Returns the runs, and the open segment's selected samples in range (grouped).

        Cheap: call it under the head lock, then `read_runs` without it (runs are
        immutable). `sel` is a boolean mask indexed by ref. `sel_refs`, the ascending
        refs set in `sel`, lets a small selection use a per-ref index of the open
        segment instead of a pass over all of it.
        """
        limit = len(sel)
        runs = [r for r in self._run_list() if r.t_max >= mint and r.t_min <= maxt]
        n = self._n
        if sel_refs is not None and n and len(sel_refs) * _INDEX_RATIO <= n:
            ix_refs, ix_rows = self._open_index()
            # NB: needles of the haystack's dtype; others would cast the whole haystack.
            want = sel_refs.astype(np.uint32)
            lo = np.searchsorted(ix_refs, want, side="left")
            hi = np.searchsorted(ix_refs, want, side="right")
            rows = ix_rows[ragged_arange(lo, hi - lo)]
            ts_o = self._ts[rows]
            keep = (ts_o >= mint) & (ts_o <= maxt)
            if not keep.all():
                rows, ts_o = rows[keep], ts_o[keep]
            return runs, _group_grouped(self._refs[rows], ts_o, self._vals[rows])
        refs_o, ts_o = self._refs[:n], self._ts[:n]
        keep = sel[np.minimum(refs_o, limit - 1)] & (refs_o < limit)
        keep &= (ts_o >= mint) & (ts_o <= maxt)
        return runs, group_columns(refs_o[keep], ts_o[keep], self._vals[:n][keep])

    def read_runs(
        self, runs: list[AnyRun], sel: npt.NDArray[np.bool_], mint: int, maxt: int
    ) -> list[Parts]:
        """Decodes the selected series of runs, keeping the samples in [mint, maxt]."""
        out: list[Parts] = []
        for run in runs:
            idx = run.series_for(sel, mint, maxt)
            if len(idx):
                out.append(filter_parts(run.decode(idx), mint, maxt))
        return out

    def gather(self, sel: npt.NDArray[np.bool_], mint: int, maxt: int) -> _Columns:
        """Returns copies of the samples of selected refs in [mint, maxt], oldest writes first.

        `sel` is a boolean mask indexed by ref.
        """
        runs, open_parts = self.snapshot(sel, mint, maxt)
        return concat_columns(
            [flat_columns(p) for p in [*self.read_runs(runs, sel, mint, maxt), open_parts]]
        )

    def remove(
        self,
        drop: _DropFn,
        *,
        mint: int = -(1 << 63),
        maxt: int = (1 << 63) - 1,
        sel: npt.NDArray[np.bool_] | None = None,
    ) -> int:
        """Removes the samples for which `drop(refs, ts)` is True; returns how many.

        Only runs that overlap [mint, maxt] (and hold a ref set in `sel`, when given) are
        decoded: `drop` must be False outside them.
        """
        self.settle()
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
                self._drop_index()
                removed += k
        runs: list[AnyRun] = []
        for run in self._runs:
            if run.t_max < mint or run.t_min > maxt:
                runs.append(run)
                continue
            if sel is not None and len(run.series_for(sel, mint, maxt)) == 0:
                runs.append(run)
                continue
            refs, ts, vals = flat_columns(run.decode())
            gone = drop(refs, ts)
            k = int(gone.sum())
            if k == 0:
                runs.append(run)
                continue
            removed += k
            if k < run.n:
                keep = ~gone
                cols = refs[keep], ts[keep], vals[keep]
                runs.append(
                    RawRun.of(*cols) if isinstance(run, RawRun) else Run.encode(*cols, run.level)
                )
        with self._mu:
            self._runs = runs
        return removed

    def drop_before(self, mint: int) -> int:
        """Removes every sample older than `mint`; returns how many."""
        self.settle()
        with self._mu:
            removed = sum(r.n for r in self._runs if r.t_max < mint)
            self._runs = [r for r in self._runs if r.t_max >= mint]
        return removed + self.remove(lambda _r, ts: ts < mint, maxt=mint - 1)

    def time_bounds(self) -> tuple[int, int] | None:
        """The lowest and highest timestamps held, or None when empty."""
        runs = self._run_list()
        lo: list[int] = [r.t_min for r in runs]
        hi: list[int] = [r.t_max for r in runs]
        if self._n:
            lo.append(int(self._ts[: self._n].min()))
            hi.append(int(self._ts[: self._n].max()))
        if not lo:
            return None
        return min(lo), max(hi)


def group_columns(
    refs: npt.NDArray[Any], ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]
) -> Parts:
    """Sorts samples in write order by (ref, timestamp), stably, into grouped form.

    Repeated (ref, timestamp) pairs are kept (the earliest first).
    """
    if len(refs) == 0:
        return (np.zeros(0, np.uint32), np.zeros(0, np.int64), ts[:0], vals[:0])
    order = sort_order(refs, ts)
    r = refs[order]
    first = np.ones(len(r), dtype=np.bool_)
    first[1:] = r[1:] != r[:-1]
    starts = np.flatnonzero(first)
    cnt = np.diff(np.append(starts, len(r))).astype(np.int64)
    return r[starts].astype(np.uint32), cnt, ts[order], vals[order]


def _group_grouped(
    refs: npt.NDArray[np.uint32], ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]
) -> Parts:
    """Like `group_columns`, for samples already grouped by ascending ref in write order.

    Skips the sort when every series' timestamps already ascend (the common case).
    """
    if len(refs) == 0:
        return group_columns(refs, ts, vals)
    same = refs[1:] == refs[:-1]
    if (same & (ts[1:] < ts[:-1])).any():
        return group_columns(refs, ts, vals)
    first = np.ones(len(refs), dtype=np.bool_)
    np.logical_not(same, out=first[1:])
    starts = np.flatnonzero(first)
    cnt = np.diff(np.append(starts, len(refs))).astype(np.int64)
    return refs[starts], cnt, ts, vals


def flat_columns(parts: Parts) -> _Columns:
    """Turns grouped samples into (refs, timestamps, values) columns."""
    refs, cnt, ts, vals = parts
    return expand(refs, cnt).astype(np.uint32), ts, vals


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


LabelOrder = Callable[[npt.NDArray[np.uint32]], npt.NDArray[np.intp]]
"""Maps ascending series refs to the permutation that puts them in label order."""


def read_selection(
    runs: list[AnyRun],
    open_parts: Parts,
    *,
    sel: npt.NDArray[np.bool_],
    mint: int,
    maxt: int,
    label_order: LabelOrder,
    sel_refs: npt.NDArray[Any] | None = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Reads the selected series in range straight into label order.

    Returns (refs in label order, offsets, timestamps, values): each run's selected series
    are unpacked directly to their final place, then one pass per output chunk turns the
    words into samples. A series' samples are in write order of the runs (then the open
    segment), each run's sorted by time; the caller sorts when these overlap.
    `sel_refs` (the ascending refs set in `sel`) speeds up small selections.
    """
    picks = []
    for run in runs:
        idx = run.series_for(sel, mint, maxt, sel_refs)
        if len(idx):
            picks.append((run, idx, run.refs[idx], run.counts(idx)))
    o_refs, o_cnt, o_ts, o_vals = open_parts
    ref_lists = [p[2] for p in picks]
    cnt_lists = [p[3] for p in picks]
    if len(o_refs):
        ref_lists.append(o_refs)
        cnt_lists.append(o_cnt)
    if not ref_lists:
        return (np.zeros(0, np.uint32), np.zeros(1, np.int64), o_ts[:0], o_vals[:0])
    if not picks:
        return _open_only(open_parts, label_order)
    uniq = union_refs(ref_lists)
    order = label_order(uniq)
    locs = [np.searchsorted(uniq, r) for r in ref_lists]
    total = np.zeros(len(uniq), dtype=np.int64)
    for k, c in zip(locs, cnt_lists, strict=True):
        total[k] += c
    offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(total[order], out=offsets[1:])
    fill = np.empty(len(uniq), dtype=np.int64)
    fill[order] = offsets[:-1]
    m = int(offsets[-1])
    zig = np.zeros(m, dtype=np.uint64)
    x = np.zeros(m, dtype=np.uint64)
    starts, counts, firsts, d_firsts, v_firsts = [], [], [], [], []
    raw: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], RawRun, npt.NDArray[np.intp]]]
    raw = []
    for (run, idx, _, c), k in zip(picks, locs, strict=False):
        dst = fill[k]
        fill[k] += c
        starts.append(dst)
        counts.append(c)
        if isinstance(run, RawRun):
            # NB: zero words finish as zeros; the samples are put in place afterwards.
            raw.append((dst, c, run, idx))
            firsts.append(np.zeros(len(c), dtype=np.int64))
            d_firsts.append(np.zeros(len(c), dtype=np.int64))
            v_firsts.append(np.zeros(len(c), dtype=np.uint64))
            continue
        run.unpack_into(idx, dst, zig, x)
        firsts.append(run.t_first[idx])
        d_firsts.append(run.d_first[idx])
        v_firsts.append(run.v_first[idx])
    o_dst = np.zeros(0, dtype=np.int64)
    if len(o_refs):
        o_dst = fill[locs[-1]]
        starts.append(o_dst)
        counts.append(o_cnt)
        firsts.append(np.zeros(len(o_cnt), dtype=np.int64))
        d_firsts.append(np.zeros(len(o_cnt), dtype=np.int64))
        v_firsts.append(np.zeros(len(o_cnt), dtype=np.uint64))
    start, cnt = np.concatenate(starts), np.concatenate(counts)
    t_first, d_first = np.concatenate(firsts), np.concatenate(d_firsts)
    v_first = np.concatenate(v_firsts)
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
    for dst, c, run, idx in raw:
        pos = ragged_arange(dst, c)
        ts[pos], vals[pos] = run.samples(idx)
    if len(o_refs):
        pos = ragged_arange(o_dst, o_cnt)
        ts[pos] = o_ts
        vals[pos] = o_vals
    refs = uniq[order].astype(np.uint32)
    keep = (ts >= mint) & (ts <= maxt)
    if not keep.all():
        kept = np.add.reduceat(keep, offsets[:-1], dtype=np.int64)
        has = kept > 0
        refs, ts, vals = refs[has], ts[keep], vals[keep]
        offsets = np.zeros(len(refs) + 1, dtype=np.int64)
        np.cumsum(kept[has], out=offsets[1:])
    return refs, offsets, ts, vals


def _open_only(
    open_parts: Parts, label_order: LabelOrder
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
    """`read_selection` when only the open segment holds selected samples (in range)."""
    o_refs, o_cnt, o_ts, o_vals = open_parts
    order = label_order(o_refs)
    cnt = o_cnt[order]
    offsets = np.zeros(len(cnt) + 1, dtype=np.int64)
    np.cumsum(cnt, out=offsets[1:])
    if (order[1:] > order[:-1]).all():
        return o_refs.astype(np.uint32), offsets, o_ts, o_vals
    src = np.cumsum(o_cnt) - o_cnt
    pos = ragged_arange(src[order], cnt)
    return o_refs[order].astype(np.uint32), offsets, o_ts[pos], o_vals[pos]
