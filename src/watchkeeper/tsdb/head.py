"""The head block: the in-memory, writable part of the TSDB, backed by the WAL.

Series live in a postings index (`head_index.py`); samples live in numpy columns
(`head_samples.py`); per-series state (last timestamp and value bits) lives in arrays
indexed by series ref. Appends are validated a whole batch at a time, as Prometheus
validates one sample: older than the series' newest sample is out of order, the same
timestamp with other value bits is a duplicate, the same bits are dropped silently.
With an out-of-order window, older samples back to (newest sample - window) are kept in a
store of their own, even behind persisted blocks, until `begin_ooo_flush` hands them to
the database to become blocks of their own; reads prefer them at equal timestamps.
One lock guards every head operation, so one writer per appender and any number of
readers on other threads are safe. The database (`db.py`) cuts blocks from the head.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import (
    Appender,
    AppendResult,
    Querier,
    SelectHints,
    SeriesSet,
    StorageError,
)
from watchkeeper.storage.merge import group_ranked_samples, merge_series_sets
from watchkeeper.tsdb.head_index import PostingsIndex
from watchkeeper.tsdb.head_runs import expand
from watchkeeper.tsdb.head_samples import (
    Page,
    SampleStore,
    concat_columns,
    flat_columns,
    read_selection,
)
from watchkeeper.tsdb.metrics import SAMPLE_TYPE_FLOAT, TsdbMetrics
from watchkeeper.tsdb.wal import (
    OutOfOrderFlushedRecord,
    Record,
    ReplayStatus,
    SamplesRecord,
    SeriesRecord,
    TombstonesRecord,
    WriteAheadLog,
    read_records,
    write_checkpoint,
)
from watchkeeper.tsdb.wal.log import Corruption, read_checkpoint_and_segments

log = logging.getLogger(__name__)

INT64_MIN: Final = int(np.iinfo(np.int64).min)
INT64_MAX: Final = int(np.iinfo(np.int64).max)

# Classification codes of appended samples.
ACCEPT: Final = 0
ACCEPT_OOO: Final = 1
DUPLICATE_OK: Final = 2
DUPLICATE: Final = 3
OUT_OF_ORDER: Final = 4
OUT_OF_BOUNDS: Final = 5
TOO_OLD: Final = 6

_REPLAY_BATCH = 1 << 22
_OOO_SEGMENT_SAMPLES = 1 << 16


def _prev_in_batch(
    tss: npt.NDArray[np.int64],
    bs: npt.NDArray[np.uint64],
    prev_t: npt.NDArray[np.int64],
    prev_bits: npt.NDArray[np.uint64],
    starts: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """The newest earlier timestamp (and its bits) per sample of batches sorted by series.

    A segmented running maximum: timestamps are ranked (ties: the earliest sample ranks
    highest), each series' ranks are offset past the previous series', then accumulated.
    """
    n = len(tss)
    gid = np.cumsum(starts) - 1
    pos = np.arange(n, dtype=np.int64)
    by_t = np.lexsort((-pos, tss))
    rank = np.empty(n, dtype=np.int64)
    rank[by_t] = pos
    key = gid * n + rank
    best = by_t[np.maximum.accumulate(key) - gid * n]
    prev_pos = np.empty(n, dtype=np.int64)
    prev_pos[0] = 0
    prev_pos[1:] = best[:-1]
    has_prev = ~starts
    in_t = np.where(has_prev, tss[prev_pos], INT64_MIN)
    use_in = in_t > prev_t
    return np.where(use_in, in_t, prev_t), np.where(use_in, bs[prev_pos], prev_bits)


def classify(
    refs: npt.NDArray[np.uint64],
    ts: npt.NDArray[np.int64],
    bits: npt.NDArray[np.uint64],
    base_ts: npt.NDArray[np.int64],
    base_bits: npt.NDArray[np.uint64],
    *,
    min_valid_ms: int,
    ooo_min_ms: int | None,
) -> npt.NDArray[np.int8]:
    """Classifies a batch of samples as if appended one by one, in order.

    `base_ts[i]`/`base_bits[i]` are the newest committed timestamp and value bits of the
    series of sample i (INT64_MIN when it has none). In-order samples older than
    `min_valid_ms` are out of bounds. `ooo_min_ms` is the oldest timestamp out-of-order
    support accepts (for samples out of order or out of bounds), or None when it is off.
    Returns one code per sample.
    """
    n = len(refs)
    order: npt.NDArray[np.intp] | None = None
    if n < 2 or bool((refs[1:] > refs[:-1]).all()):
        # NB: the common scrape batch: one sample per series, refs ascending.
        rs, tss, bs, prev_t, prev_bits = refs, ts, bits, base_ts, base_bits
    else:
        order = np.argsort(refs, kind="stable")
        rs, tss, bs = refs[order], ts[order], bits[order]
        prev_t, prev_bits = base_ts[order], base_bits[order]
        starts = np.ones(n, dtype=np.bool_)
        starts[1:] = rs[1:] != rs[:-1]
        if not starts.all():
            prev_t, prev_bits = _prev_in_batch(tss, bs, prev_t, prev_bits, starts)
    gt = tss > prev_t
    eq = tss == prev_t
    same = bs == prev_bits
    codes_s = np.full(n, OUT_OF_ORDER, dtype=np.int8)
    if ooo_min_ms is None:
        codes_s[gt] = ACCEPT
        codes_s[eq & ~same] = DUPLICATE
        codes_s[eq & same] = DUPLICATE_OK
        codes_s[tss < min_valid_ms] = OUT_OF_BOUNDS
    else:
        floor = ooo_min_ms
        in_order = gt & (tss >= min_valid_ms)
        older = ~in_order & ~eq
        codes_s[older & (tss >= floor)] = ACCEPT_OOO
        codes_s[older & (tss < floor)] = TOO_OLD
        codes_s[in_order] = ACCEPT
        codes_s[eq & ~same] = DUPLICATE
        codes_s[eq & same] = DUPLICATE_OK
    if order is None:
        return codes_s
    codes = np.empty(n, dtype=np.int8)
    codes[order] = codes_s
    return codes


@dataclass(slots=True)
class HeadStats:
    """Head statistics as /api/v1/status/tsdb reports them."""

    num_series: int
    num_label_pairs: int
    chunk_count: int
    min_time_ms: int
    max_time_ms: int
    series_count_by_metric_name: list[tuple[str, int]]
    label_value_count_by_label_name: list[tuple[str, int]]
    memory_in_bytes_by_label_name: list[tuple[str, int]]
    series_count_by_label_value_pair: list[tuple[str, int]]

    def as_api(self) -> dict[str, Any]:
        """Returns the JSON shape of Prometheus's TSDB status endpoint."""

        def pairs(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
            return [{"name": k, "value": v} for k, v in items]

        return {
            "headStats": {
                "numSeries": self.num_series,
                "numLabelPairs": self.num_label_pairs,
                "chunkCount": self.chunk_count,
                "minTime": self.min_time_ms,
                "maxTime": self.max_time_ms,
            },
            "seriesCountByMetricName": pairs(self.series_count_by_metric_name),
            "labelValueCountByLabelName": pairs(self.label_value_count_by_label_name),
            "memoryInBytesByLabelName": pairs(self.memory_in_bytes_by_label_name),
            "seriesCountByLabelValuePair": pairs(self.series_count_by_label_value_pair),
        }


class Head:
    """Series and samples not yet in a block.

    Args:
        metrics: Where to count appends, rejections and series.
        wal: The log commits are written to before they become visible; None for a head
            that is not durable (tests, snapshots).
        out_of_order_time_window_ms: See `TsdbOptions.out_of_order_time_window_ms`.
        chunk_range_ms: The block range; samples older than half of it behind the newest
            sample are out of bounds, as in Prometheus.
        segment_samples: Size of the uncompressed open segment of the sample store.
    """

    def __init__(
        self,
        *,
        metrics: TsdbMetrics | None = None,
        wal: WriteAheadLog | None = None,
        out_of_order_time_window_ms: int = 0,
        chunk_range_ms: int = 2 * 3_600_000,
        segment_samples: int = 1 << 20,
    ) -> None:
        self.metrics = metrics if metrics is not None else TsdbMetrics()
        self.wal = wal
        self.ooo_window_ms = out_of_order_time_window_ms
        self.chunk_range_ms = chunk_range_ms
        self._lock = threading.RLock()
        self._index = PostingsIndex()
        self._store = SampleStore(segment_samples)
        self._ooo_segment = min(segment_samples, _OOO_SEGMENT_SAMPLES)
        self._ooo = SampleStore(self._ooo_segment)
        """Out-of-order samples, as Prometheus's OOO head: they never move `_last_ts`."""
        self._ooo_flushing: SampleStore | None = None
        """Out-of-order samples being written into blocks (still read until they are)."""
        self._labels: list[Labels | None] = []
        self._by_labels: dict[Labels, int] = {}
        cap = 1024
        self._last_ts = np.full(cap, INT64_MIN, dtype=np.int64)
        self._last_bits = np.zeros(cap, dtype=np.uint64)
        self._alive = np.zeros(cap, dtype=np.bool_)
        self._logged = np.zeros(cap, dtype=np.bool_)
        self._alias = np.arange(cap, dtype=np.uint64)
        self.min_valid_time_ms = INT64_MIN
        self._mint = INT64_MAX
        self._maxt = INT64_MIN
        self.replay_status = ReplayStatus()
        self._labels_version = 0
        self._rank_version = -1
        self._rank = np.zeros(0, dtype=np.int64)
        self._rank_sorted: list[int] = []
        self._closed = False
        self.generation = 0
        """Bumped by every change of committed state (lets an appender skip re-validation)."""
        m = self.metrics
        self._appended = m.samples_appended.labels(SAMPLE_TYPE_FLOAT)
        self._ooo_appended = m.ooo_samples_appended.labels(SAMPLE_TYPE_FLOAT)
        self._c_ooo = m.out_of_order_samples.labels(SAMPLE_TYPE_FLOAT)
        self._c_oob = m.out_of_bound_samples.labels(SAMPLE_TYPE_FLOAT)
        self._c_old = m.too_old_samples.labels(SAMPLE_TYPE_FLOAT)

    # Series.

    @property
    def num_series(self) -> int:
        """Series currently in the head."""
        return len(self._by_labels)

    @property
    def min_time_ms(self) -> int:
        """The lowest timestamp in the head (INT64_MAX when empty)."""
        return self._mint

    @property
    def max_time_ms(self) -> int:
        """The highest timestamp in the head (INT64_MIN when empty)."""
        return self._maxt

    @property
    def num_samples(self) -> int:
        """Samples held in memory (out-of-order ones included)."""
        flushing = self._ooo_flushing
        extra = flushing.num_samples if flushing is not None else 0
        return self._store.num_samples + self._ooo.num_samples + extra

    @property
    def num_ooo_samples(self) -> int:
        """Out-of-order samples held in memory (not yet in a block)."""
        flushing = self._ooo_flushing
        return self._ooo.num_samples + (flushing.num_samples if flushing is not None else 0)

    def _ooo_stores(self) -> list[SampleStore]:
        """The out-of-order stores, the later writes first."""
        stores = [self._ooo]
        if self._ooo_flushing is not None:
            stores.append(self._ooo_flushing)
        return [st for st in stores if st.num_samples]

    def time_bounds(self) -> tuple[int, int] | None:
        """The lowest and highest timestamps held, out-of-order samples included."""
        with self._lock:
            bounds = [b for st in self._ooo_stores() if (b := st.time_bounds()) is not None]
            if self._mint != INT64_MAX:
                bounds.append((self._mint, self._maxt))
        if not bounds:
            return None
        return min(b[0] for b in bounds), max(b[1] for b in bounds)

    def _grow(self, need: int) -> None:
        cap = len(self._last_ts)
        if need <= cap:
            return
        new = max(need, cap * 2)

        def grown(arr: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
            out = np.full(new, fill, dtype=arr.dtype)
            out[:cap] = arr
            return out

        self._last_ts = grown(self._last_ts, INT64_MIN)
        self._last_bits = grown(self._last_bits, 0)
        self._alive = grown(self._alive, False)
        self._logged = grown(self._logged, False)
        alias = np.arange(new, dtype=np.uint64)
        alias[:cap] = self._alias
        self._alias = alias

    def _add_series(self, ref: int, labels: Labels) -> None:
        self._grow(ref + 1)
        while len(self._labels) <= ref:
            self._labels.append(None)
        self._labels[ref] = labels
        self._labels_version += 1
        self._by_labels[labels] = ref
        self._index.add(ref, labels)
        self._alive[ref] = True
        self._alias[ref] = ref
        self.metrics.head_series_created.inc()
        self.metrics.head_series.set(len(self._by_labels))

    def get_or_create(self, series: Sequence[Labels]) -> npt.NDArray[np.uint64]:
        """Returns the refs of label sets, creating the series that are missing.

        Raises:
            StorageError: for an empty label set or duplicate label names.
        """
        out = np.empty(len(series), dtype=np.uint64)
        with self._lock:
            by_labels = self._by_labels
            for i, lbls in enumerate(series):
                ref = by_labels.get(lbls)
                if ref is None:
                    if not len(lbls):
                        raise StorageError("empty labelset")
                    names = lbls.names()
                    if len(set(names)) != len(names):
                        raise StorageError(f"label set has duplicate label names: {lbls}")
                    ref = len(self._labels)
                    self._add_series(ref, lbls)
                out[i] = ref
        return out

    def labels_of(self, ref: int) -> Labels | None:
        """Returns the label set of a series ref, or None for an unknown ref."""
        if 0 <= ref < len(self._labels):
            return self._labels[ref]
        return None

    def _resolve(self, refs: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """Maps refs to live refs, bringing series removed by truncation back to life."""
        if len(refs) and int(refs.max()) >= len(self._labels):
            bad = int(refs[refs >= len(self._labels)][0])
            raise StorageError(f"unknown series ref {bad}")
        refs = self._alias[refs]
        dead = ~self._alive[refs]
        if dead.any():
            for ref in np.unique(refs[dead]).tolist():
                lbls = self._labels[ref]
                if lbls is None:  # pragma: no cover - refs below len(_labels) have labels
                    raise StorageError(f"unknown series ref {ref}")
                live = self._by_labels.get(lbls)
                if live is None:
                    self._add_series(ref, lbls)
                    self._logged[ref] = False
                else:
                    self._alias[ref] = live
            refs = self._alias[refs]
        return refs

    # Appends.

    def appender(self) -> HeadAppender:
        """Returns a new write transaction."""
        if self._closed:
            raise StorageError("head is closed")
        return HeadAppender(self)

    def _ooo_min(self, first_ts: int) -> int | None:
        """The oldest out-of-order sample accepted, or None when that support is off.

        As in Prometheus: the head's newest sample minus the window, even behind blocks
        already written. An empty head measures from the first sample appended to it
        (`first_ts`), as Prometheus's head takes its time range from that sample.
        """
        if self.ooo_window_ms <= 0:
            return None
        newest = first_ts if self._maxt == INT64_MIN else self._maxt
        return max(newest - self.ooo_window_ms, INT64_MIN)

    def appendable_min_valid_time(self) -> int:
        """The oldest timestamp an in-order append may have (as Prometheus computes it)."""
        if self._maxt == INT64_MIN:
            return self.min_valid_time_ms
        return max(self.min_valid_time_ms, self._maxt - self.chunk_range_ms // 2)

    def _count_rejections(self, codes: npt.NDArray[np.int8], result: AppendResult) -> None:
        counts = np.bincount(codes, minlength=7)
        result.out_of_order += int(counts[OUT_OF_ORDER])
        result.duplicate += int(counts[DUPLICATE])
        result.out_of_bounds += int(counts[OUT_OF_BOUNDS])
        result.too_old += int(counts[TOO_OLD])
        if counts[OUT_OF_ORDER]:
            # NB: as in Prometheus, duplicates are not counted here (scrape counts them).
            self._c_ooo.inc(float(counts[OUT_OF_ORDER]))
        if counts[OUT_OF_BOUNDS]:
            self._c_oob.inc(float(counts[OUT_OF_BOUNDS]))
        if counts[TOO_OLD]:
            self._c_old.inc(float(counts[TOO_OLD]))

    def _commit(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
        *,
        validated_at: int,
        in_order: npt.NDArray[np.bool_],
    ) -> int:
        """Logs to the WAL and applies; returns how many samples were accepted.

        Samples are validated again when other commits changed the head since `append`
        validated them (generation `validated_at`).
        """
        with self._lock:
            if self._closed:
                raise StorageError("head is closed")
            if validated_at == self.generation:
                codes = np.where(in_order, ACCEPT, ACCEPT_OOO).astype(np.int8)
            else:
                refs = self._resolve(refs)
                codes = classify(
                    refs,
                    ts,
                    vals.view(np.uint64),
                    self._last_ts[refs],
                    self._last_bits[refs],
                    min_valid_ms=self.appendable_min_valid_time(),
                    ooo_min_ms=self._ooo_min(int(ts[0])),
                )
                keep = codes <= ACCEPT_OOO
                if not keep.all():
                    self._count_rejections(codes, AppendResult(keep))
                    refs, ts, vals, codes = refs[keep], ts[keep], vals[keep], codes[keep]
            if len(refs) == 0:
                return 0
            in_order = codes == ACCEPT
            n_ooo = int(len(codes) - np.count_nonzero(in_order))
            o_refs, o_ts, o_vals = refs[:0], ts[:0], vals[:0]
            if n_ooo:
                ooo = ~in_order
                o_refs, o_ts, o_vals = refs[ooo], ts[ooo], vals[ooo]
                if n_ooo < len(refs):
                    refs, ts, vals = refs[in_order], ts[in_order], vals[in_order]
                else:
                    refs, ts, vals = refs[:0], ts[:0], vals[:0]
            if self.wal is not None:
                records: list[Record] = []
                every = np.concatenate((refs, o_refs)) if n_ooo else refs
                unlogged = ~self._logged[every]
                if unlogged.any():
                    new = np.unique(every[unlogged])
                    records.append(
                        SeriesRecord(new, [self._labels[r] or Labels() for r in new.tolist()])
                    )
                if len(refs):
                    records.append(SamplesRecord(refs, ts, vals))
                if n_ooo:
                    records.append(SamplesRecord(o_refs, o_ts, o_vals, out_of_order=True))
                try:
                    self.wal.log(records)
                except OSError as exc:
                    self.metrics.wal_writes_failed.inc()
                    raise StorageError(f"write to WAL failed: {exc}") from exc
                if unlogged.any():
                    self._logged[every[unlogged]] = True
            if len(refs):
                self._apply(refs, ts, vals)
            if n_ooo:
                self._apply_ooo(o_refs, o_ts, o_vals)
                self._ooo_appended.inc(float(n_ooo))
            self._appended.inc(float(len(refs) + n_ooo))
            return len(refs) + n_ooo

    def _apply(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> None:
        """Stores validated in-order samples and moves per-series state forward."""
        self._store.append(refs, ts, vals)
        np.maximum.at(self._last_ts, refs, ts)
        at_last = ts == self._last_ts[refs]
        self._last_bits[refs[at_last]] = vals.view(np.uint64)[at_last]
        lo, hi = int(ts.min()), int(ts.max())
        if lo < self._mint:
            self._mint = lo
            self.metrics.head_min_time.set(lo)
            self.metrics.head_min_time_seconds.set(lo / 1000.0)
        if hi > self._maxt:
            self._maxt = hi
            self.metrics.head_max_time.set(hi)
            self.metrics.head_max_time_seconds.set(hi / 1000.0)
        # NB: bumped last, so an appender that sees the new generation sees the new state.
        self.generation += 1

    def _apply_ooo(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> None:
        """Stores validated out-of-order samples; series state and head bounds stay."""
        self._ooo.append(refs, ts, vals)

    # Flushing out-of-order samples into blocks.

    def begin_ooo_flush(
        self, before_ms: int
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
        """Sets aside the out-of-order samples older than `before_ms` for writing as blocks.

        Returns their columns (in write order), or None when there are none (or a flush
        is under way). They stay readable until `finish_ooo_flush`.
        """
        with self._lock:
            if self._ooo_flushing is not None or self._ooo.num_samples == 0:
                return None
            everything = np.ones(len(self._labels), dtype=np.bool_)
            refs, ts, vals = self._ooo.gather(everything, INT64_MIN, INT64_MAX)
            old = ts < before_ms
            if not old.any():
                return None
            flushing = SampleStore(self._ooo_segment)
            flushing.append(refs[old].astype(np.uint64), ts[old], vals[old])
            rest = SampleStore(self._ooo_segment)
            keep = ~old
            if keep.any():
                rest.append(refs[keep].astype(np.uint64), ts[keep], vals[keep])
            self._ooo, self._ooo_flushing = rest, flushing
            return refs[old].astype(np.uint64), ts[old], vals[old]

    def finish_ooo_flush(self, *, written: bool) -> None:
        """Ends a flush: forgets the samples set aside when their blocks are `written`.

        The WAL then gets a record saying so, followed by the out-of-order samples the
        head still holds (some may have been logged before it); when the blocks were not
        written, the samples go back to the out-of-order store.
        """
        with self._lock:
            flushing, self._ooo_flushing = self._ooo_flushing, None
            if flushing is None:
                return
            everything = np.ones(len(self._labels), dtype=np.bool_)
            refs32, ts, vals = self._ooo.gather(everything, INT64_MIN, INT64_MAX)
            refs = refs32.astype(np.uint64)
            if not written:
                # NB: the later writes first, so reads still prefer them (as during the flush).
                back = SampleStore(self._ooo_segment)
                back.append(refs, ts, vals)
                f_refs, f_ts, f_vals = flushing.gather(everything, INT64_MIN, INT64_MAX)
                back.append(f_refs.astype(np.uint64), f_ts, f_vals)
                self._ooo = back
                return
            if self.wal is None:
                return
            records: list[Record] = [OutOfOrderFlushedRecord()]
            if len(refs):
                records.append(SamplesRecord(refs, ts, vals, out_of_order=True))
            try:
                self.wal.log(records)
            except OSError as exc:
                # NB: replay then loads the flushed samples again; they are written twice.
                self.metrics.wal_writes_failed.inc()
                log.error("Cannot log the out-of-order flush to the WAL: %s", exc)

    # Reads.

    def querier(self, mint_ms: int, maxt_ms: int) -> HeadQuerier:
        """Returns a querier over the inclusive range [mint_ms, maxt_ms]."""
        return HeadQuerier(self, mint_ms, maxt_ms)

    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> SeriesSet:
        """Returns the series that satisfy the matchers with their samples in range.

        The lock is held only to pick runs and copy the open segment; encoded runs
        are decoded without it, so long reads do not stall commits.
        """
        with self._lock:
            bm = self._index.select(matchers, self.labels_of)
            if not bm:
                return SeriesSet.empty()
            refs_in = np.asarray(bm.to_array(), dtype=np.int64)
        return self._select_refs(refs_in, mint_ms, maxt_ms)

    def _select_refs(self, refs_in: npt.NDArray[np.int64], mint_ms: int, maxt_ms: int) -> SeriesSet:
        with self._lock:
            sel = np.zeros(len(self._labels), dtype=np.bool_)
            sel[refs_in] = True
            runs, open_parts = self._store.snapshot(sel, mint_ms, maxt_ms, refs_in)
            ooo = [
                self._series_set_of(st.gather(sel, mint_ms, maxt_ms)) for st in self._ooo_stores()
            ]
        in_order = self._series_set(
            *read_selection(
                runs,
                open_parts,
                sel=sel,
                mint=mint_ms,
                maxt=maxt_ms,
                label_order=self._label_order,
                sel_refs=refs_in,
            )
        )
        if not any(len(o) for o in ooo):
            return in_order
        # NB: the first set wins a timestamp: out-of-order samples are the later writes.
        return merge_series_sets([*ooo, in_order])

    def ooo_series_set(self, mint_ms: int, maxt_ms: int) -> SeriesSet:
        """Returns the out-of-order samples in [mint_ms, maxt_ms] (for snapshots)."""
        with self._lock:
            sel = np.ones(len(self._labels), dtype=np.bool_)
            sets = [
                self._series_set_of(st.gather(sel, mint_ms, maxt_ms)) for st in self._ooo_stores()
            ]
        return merge_series_sets(sets)

    def series_set_of_columns(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> SeriesSet:
        """Groups samples of head series (in write order) into a SeriesSet in label order."""
        return self._series_set_of((refs, ts, vals))

    def iter_label_batches(
        self, mint_ms: int, maxt_ms: int, *, batch_samples: int = 1 << 23
    ) -> Iterator[SeriesSet]:
        """Yields every series with samples in [mint_ms, maxt_ms], in label order, in batches.

        For cutting blocks with bounded memory; each batch holds about `batch_samples`.
        Every head run is decoded once: its samples are routed to their batch and kept
        compressed until that batch is built.
        """
        with self._lock:
            n = len(self._labels)
            alive = np.nonzero(self._alive[:n])[0]
            pairs = [(self._labels[r] or Labels(), r) for r in alive.tolist()]
            sel = np.zeros(n, dtype=np.bool_)
            sel[alive] = True
            runs, open_parts = self._store.snapshot(sel, mint_ms, maxt_ms)
            per_series = max(1, self._store.num_samples // max(1, len(pairs)))
        if not pairs:
            return
        pairs.sort(key=lambda p: p[0])
        step = max(1024, batch_samples // per_series)
        n_batches = -(-len(pairs) // step)
        ordered = np.fromiter((r for _, r in pairs), dtype=np.int64, count=len(pairs))
        batch_of = np.zeros(n, dtype=np.int32)
        batch_of[ordered] = np.arange(len(pairs), dtype=np.int32) // step
        buckets: list[list[Page]] = [[] for _ in range(n_batches)]

        def route(
            cols: tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.float64]],
        ) -> None:
            r, t, v = cols
            if not len(r):
                return
            b = batch_of[r]
            order = np.argsort(b, kind="stable")
            b, r, t, v = b[order], r[order], t[order], v[order]
            cuts = np.searchsorted(b, np.arange(n_batches + 1, dtype=np.int32)).tolist()
            for k in range(n_batches):
                lo, hi = cuts[k], cuts[k + 1]
                if hi > lo:
                    buckets[k].append(Page.encode(r[lo:hi], t[lo:hi], v[lo:hi]))

        if n_batches == 1:
            yield self._series_set(
                *read_selection(
                    runs,
                    open_parts,
                    sel=sel,
                    mint=mint_ms,
                    maxt=maxt_ms,
                    label_order=self._label_order,
                )
            )
            return
        for run in runs:
            for part in self._store.read_runs([run], sel, mint_ms, maxt_ms):
                route(flat_columns(part))
        route(flat_columns(open_parts))
        for k in range(n_batches):
            cols = concat_columns([pg.decode() for pg in buckets[k]])
            buckets[k] = []
            batch = self._series_set_of(cols)
            if len(batch):
                yield batch

    def _label_order(self, uniq: npt.NDArray[np.uint32]) -> npt.NDArray[np.intp]:
        """The permutation that puts the series `uniq` (ascending refs) in label order."""
        labels = self._labels
        if len(uniq) <= 2048:
            keys = [labels[r] or Labels() for r in uniq.tolist()]
            return np.asarray(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
        with self._lock:
            if self._rank_version != self._labels_version:
                n = len(labels)
                covered = np.zeros(n, dtype=np.bool_)
                covered[self._rank_sorted] = True
                new = [r for r in np.flatnonzero(~covered).tolist() if labels[r] is not None]
                # NB: the previous order is one sorted run, so this sort is about linear.
                refs = [r for r in self._rank_sorted if labels[r] is not None] + new
                refs.sort(key=lambda r: labels[r] or Labels())
                rank = np.zeros(n, dtype=np.int64)
                rank[refs] = np.arange(len(refs), dtype=np.int64)
                self._rank, self._rank_sorted = rank, refs
                self._rank_version = self._labels_version
            rank = self._rank
        return np.argsort(rank[uniq], kind="stable")

    def _series_set(
        self,
        refs: npt.NDArray[np.uint32],
        offsets: npt.NDArray[np.int64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> SeriesSet:
        """Wraps `read_selection`'s output; sorts series whose parts overlap in time.

        Of several samples of a series at one time, the earliest written is kept.
        """
        n_series = len(refs)
        if n_series == 0:
            return SeriesSet.empty()
        bad = ts[1:] <= ts[:-1]
        bad[offsets[1:-1] - 1] = False
        if bad.any():
            rank = expand(np.arange(n_series, dtype=np.int64), np.diff(offsets))
            ts, vals, offsets = group_ranked_samples(rank, ts, vals, n_series)
        # NB: selected refs are alive, so they have labels; `or` would cost a __len__ each.
        labels = cast("list[Labels]", self._labels)
        return SeriesSet([labels[r] for r in refs.tolist()], offsets, ts, vals)

    def _series_set_of(
        self, cols: tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.float64]]
    ) -> SeriesSet:
        refs, ts, vals = cols
        if len(refs) == 0:
            return SeriesSet.empty()
        uniq = np.unique(refs)
        labels = self._labels
        return build_series_set(
            refs, ts, vals, uniq, [labels[r] or Labels() for r in uniq.tolist()]
        )

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns sorted label names of head series (that satisfy the matchers)."""
        with self._lock:
            if not matchers:
                return self._index.label_names()
            bm = self._index.select(matchers, self.labels_of)
            if len(bm) < 256:
                names = {n for r in bm for n in (self._labels[r] or Labels()).names()}
                return sorted(names)
            return self._index.label_names(bm)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns sorted values of a label over head series (that satisfy the matchers)."""
        with self._lock:
            if not matchers:
                return self._index.label_values(name)
            bm = self._index.select(matchers, self.labels_of)
            if len(bm) < 256:
                values = {(self._labels[r] or Labels()).get(name) for r in bm}
                values.discard("")
                return sorted(values)
            return self._index.label_values(name, bm)

    def series_set(self, mint_ms: int, maxt_ms: int) -> SeriesSet:
        """Returns every series with samples in [mint_ms, maxt_ms] (for cutting blocks)."""
        return self.select((), mint_ms, maxt_ms)

    # Maintenance.

    def delete(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> int:
        """Deletes the samples of matching series in [mint_ms, maxt_ms]; returns how many.

        The deletion is logged to the WAL first, so it survives a restart.
        """
        with self._lock:
            bm = self._index.select(matchers, self.labels_of)
            if not bm:
                return 0
            refs = np.asarray(bm.to_array(), dtype=np.uint64)
            if self.wal is not None:
                try:
                    self.wal.log([TombstonesRecord(refs, mint_ms, maxt_ms)])
                except OSError as exc:
                    raise StorageError(f"write to WAL failed: {exc}") from exc
            return self._delete_refs(refs, mint_ms, maxt_ms)

    def _delete_refs(self, refs: npt.NDArray[np.uint64], mint_ms: int, maxt_ms: int) -> int:
        sel = np.zeros(max(len(self._labels), 1), dtype=np.bool_)
        refs = refs[refs < len(sel)]
        sel[refs.astype(np.int64)] = True
        limit = len(sel)

        def drop(r: npt.NDArray[np.uint32], t: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            hit: npt.NDArray[np.bool_] = sel[np.minimum(r, limit - 1)] & (r < limit)
            return hit & (t >= mint_ms) & (t <= maxt_ms)

        removed = self._store.remove(drop, mint=mint_ms, maxt=maxt_ms, sel=sel)
        for store in self._ooo_stores():
            removed += store.remove(drop, mint=mint_ms, maxt=maxt_ms, sel=sel)
        self.generation += 1
        return removed

    def truncate(self, mint_ms: int) -> int:
        """Drops samples older than `mint_ms` and the series left without samples.

        Returns the number of series removed. Called after a block up to `mint_ms` is cut.
        """
        start = time.monotonic()
        self.metrics.head_truncations.inc()
        with self._lock:
            self.min_valid_time_ms = max(self.min_valid_time_ms, mint_ms)
            self._store.drop_before(mint_ms)
            n = len(self._labels)
            stale = self._alive[:n] & (self._last_ts[:n] < mint_ms)
            if stale.any():
                # NB: a series whose only samples are out-of-order ones stays.
                everything = np.ones(n, dtype=np.bool_)
                for store in self._ooo_stores():
                    held = store.gather(everything, INT64_MIN, INT64_MAX)[0]
                    stale[held[held < n].astype(np.int64)] = False
            gone = np.nonzero(stale)[0]
            for ref in gone.tolist():
                lbls = self._labels[ref]
                if lbls is None:  # pragma: no cover - alive refs have labels
                    continue
                self._index.remove(ref, lbls)
                self._by_labels.pop(lbls, None)
            self._alive[gone] = False
            self._logged[gone] = False
            self.generation += 1
            bounds = self._store.time_bounds()
            if bounds is None:
                self._mint, self._maxt = INT64_MAX, max(self._maxt, INT64_MIN)
            else:
                self._mint = bounds[0]
            self._update_chunk_gauge()
            self.metrics.head_series_removed.inc(float(len(gone)))
            self.metrics.head_series.set(len(self._by_labels))
            self.metrics.head_min_time.set(self._mint if bounds else 0)
            self.metrics.head_min_time_seconds.set((self._mint if bounds else 0) / 1000.0)
        self.metrics.head_gc_duration.observe(time.monotonic() - start)
        return len(gone)

    def truncate_wal(self, mint_ms: int) -> None:
        """Checkpoints the WAL: closed segments shrink to what the head still needs.

        Keeps the series that are alive and the samples at or after `mint_ms` (with
        deletions applied), then removes the segments the checkpoint replaces.
        """
        wal = self.wal
        if wal is None:
            return
        self.metrics.wal_truncations.inc()
        self.metrics.checkpoint_creations.inc()
        try:
            through = wal.next_segment()
            if through < 0:
                return
            with self._lock:
                logged = np.nonzero(self._alive & self._logged)[0]
                series = SeriesRecord(
                    logged.astype(np.uint64),
                    [self._labels[r] or Labels() for r in logged.tolist()],
                )
                alive = self._alive.copy()
                alias = self._alias.copy()
            records = _checkpoint_records(
                read_checkpoint_and_segments(wal.dir, through), series, alive, alias, mint_ms
            )
            write_checkpoint(wal.dir, through, records)
            self.metrics.checkpoint_deletions.inc()
        except OSError:
            self.metrics.wal_truncations_failed.inc()
            self.metrics.checkpoint_creations_failed.inc()
            log.exception("WAL checkpoint failed")
            raise

    def replay(self, wal_dir: Path, *, repair: bool = True) -> ReplayStatus:
        """Loads the WAL (checkpoint, then segments) into the head; damage is cut off.

        With `repair` off, replay stops at damage and leaves the files as they are.
        """
        start = time.monotonic()
        status = self.replay_status

        def corrupted(_c: Corruption) -> None:
            self.metrics.wal_corruptions.inc()

        pending: list[SamplesRecord] = []
        pending_n = 0
        unknown = 0

        def flush() -> None:
            nonlocal pending_n, unknown
            if not pending:
                return
            ooo = pending[0].out_of_order
            refs = np.concatenate([p.refs for p in pending])
            ts = np.concatenate([p.timestamps_ms for p in pending])
            vals = np.concatenate([p.values for p in pending])
            pending.clear()
            pending_n = 0
            known = refs < len(self._labels)
            if known.all():
                refs = self._alias[refs]
                known = self._alive[refs]
            else:
                refs = np.where(known, refs, 0).astype(np.uint64)
                refs = self._alias[refs]
                known &= self._alive[refs]
            # NB: out-of-order samples may be older than every block: they are not in one yet.
            keep = known if ooo else known & (ts >= self.min_valid_time_ms)
            unknown += int((~known).sum())
            if not keep.all():
                refs, ts, vals = refs[keep], ts[keep], vals[keep]
            if len(refs) and ooo:
                self._apply_ooo(refs, ts, vals)
            elif len(refs):
                self._apply(refs, ts, vals)

        with self._lock:
            for rec in read_records(wal_dir, status, on_corruption=corrupted, repair=repair):
                if isinstance(rec, SamplesRecord):
                    if pending and pending[0].out_of_order != rec.out_of_order:
                        flush()
                    pending.append(rec)
                    pending_n += len(rec.refs)
                    if pending_n >= _REPLAY_BATCH:
                        flush()
                elif isinstance(rec, SeriesRecord):
                    self._replay_series(rec)
                elif isinstance(rec, OutOfOrderFlushedRecord):
                    flush()
                    self._ooo = SampleStore(self._ooo_segment)
                else:
                    flush()
                    self._delete_refs(
                        self._alias[rec.refs[rec.refs < len(self._labels)]],
                        rec.mint_ms,
                        rec.maxt_ms,
                    )
            flush()
        if unknown:
            log.warning("WAL replay dropped %d samples of unknown series", unknown)
        self.metrics.data_replay_duration.set(time.monotonic() - start)
        return status

    def _replay_series(self, rec: SeriesRecord) -> None:
        for ref, lbls in zip(rec.refs.tolist(), rec.labels, strict=True):
            live = self._by_labels.get(lbls)
            if live is not None and live != ref:
                self._grow(ref + 1)
                while len(self._labels) <= ref:
                    self._labels.append(None)
                if self._labels[ref] is None:
                    self._labels[ref] = lbls
                    self._labels_version += 1
                self._alias[ref] = live
                continue
            if live is None:
                self._add_series(ref, lbls)
            self._logged[ref] = True

    def stats(self, limit: int = 10) -> HeadStats:
        """Returns statistics for /api/v1/status/tsdb."""
        with self._lock:
            idx = self._index.stats(limit)
            n_series = len(self._by_labels)
            empty = self._mint == INT64_MAX
            return HeadStats(
                num_series=n_series,
                num_label_pairs=self._index.num_label_pairs(),
                chunk_count=n_series + self._store.num_samples // 120,
                min_time_ms=0 if empty else self._mint,
                max_time_ms=0 if empty else self._maxt,
                series_count_by_metric_name=idx["seriesCountByMetricName"],
                label_value_count_by_label_name=idx["labelValueCountByLabelName"],
                memory_in_bytes_by_label_name=idx["memoryInBytesByLabelName"],
                series_count_by_label_value_pair=idx["seriesCountByLabelValuePair"],
            )

    def compact_memory(self) -> None:
        """Encodes the open segment into a run (lowers memory; done on cut and close)."""
        with self._lock:
            self._store.freeze()
            self._update_chunk_gauge()

    def _update_chunk_gauge(self) -> None:
        # NB: an estimate in Prometheus's unit (chunks of up to 120 samples per series).
        self.metrics.head_chunks.set(len(self._by_labels) + self._store.num_samples // 120)

    def close(self) -> None:
        """Stops accepting appends and closes the WAL."""
        with self._lock:
            self._closed = True
            if self.wal is not None:
                self.wal.close()


def _checkpoint_records(
    source: Iterator[Record],
    series: SeriesRecord,
    alive: npt.NDArray[np.bool_],
    alias: npt.NDArray[np.uint64],
    mint_ms: int,
) -> Iterator[Record]:
    yield series
    kept: list[SamplesRecord] = []
    for rec in source:
        if isinstance(rec, SamplesRecord):
            refs = rec.refs
            ok = refs < len(alias)
            refs = alias[np.where(ok, refs, 0)]
            ok &= alive[refs]
            if not rec.out_of_order:
                ok &= rec.timestamps_ms >= mint_ms
            if ok.any():
                kept.append(
                    SamplesRecord(refs[ok], rec.timestamps_ms[ok], rec.values[ok], rec.out_of_order)
                )
        elif isinstance(rec, OutOfOrderFlushedRecord):
            kept = [k for k in kept if not k.out_of_order]
        elif isinstance(rec, TombstonesRecord):
            refs = rec.refs[rec.refs < len(alias)]
            dead = np.unique(alias[refs])
            filtered = []
            for k in kept:
                gone = (
                    np.isin(k.refs, dead)
                    & (k.timestamps_ms >= rec.mint_ms)
                    & (k.timestamps_ms <= rec.maxt_ms)
                )
                if not gone.all():
                    keep = ~gone
                    filtered.append(
                        SamplesRecord(
                            k.refs[keep], k.timestamps_ms[keep], k.values[keep], k.out_of_order
                        )
                    )
            kept = filtered
    yield from kept


def build_series_set(
    refs: npt.NDArray[np.uint32] | npt.NDArray[np.uint64],
    ts: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float64],
    uniq: npt.NDArray[Any],
    uniq_labels: list[Labels],
) -> SeriesSet:
    """Groups samples (in write order) into a SeriesSet sorted by labels, one sample per time.

    `uniq` is the sorted array of distinct refs in `refs`, `uniq_labels` their label sets.
    Of several samples with the same series and timestamp, the earliest written wins.
    """
    if len(refs) == 0:
        return SeriesSet.empty()
    order_l = sorted(range(len(uniq_labels)), key=uniq_labels.__getitem__)
    rank_of_uniq = np.empty(len(uniq), dtype=np.int64)
    rank_of_uniq[np.asarray(order_l, dtype=np.int64)] = np.arange(len(uniq), dtype=np.int64)
    lookup = np.zeros(int(uniq[-1]) + 1, dtype=np.int64)
    lookup[uniq.astype(np.int64)] = rank_of_uniq
    ts, vals, offsets = group_ranked_samples(lookup[refs], ts, vals, len(uniq))
    labels = [uniq_labels[i] for i in order_l]
    return SeriesSet(labels, offsets, ts, vals)


class HeadAppender(Appender):
    """A transaction on the head: validated on append, logged and applied on commit."""

    def __init__(self, head: Head) -> None:
        self._head = head
        self._refs: list[npt.NDArray[np.uint64]] = []
        self._ts: list[npt.NDArray[np.int64]] = []
        self._vals: list[npt.NDArray[np.float64]] = []
        self._p_refs = np.empty(0, dtype=np.uint64)
        self._p_ts = np.empty(0, dtype=np.int64)
        self._p_bits = np.empty(0, dtype=np.uint64)
        self._in_order: list[npt.NDArray[np.bool_]] = []
        self._generation = -1
        self._done = False
        head.metrics.head_active_appenders.inc()

    def refs(self, series: Sequence[Labels]) -> npt.NDArray[np.uint64]:
        """Returns the refs of label sets, creating missing series."""
        return self._head.get_or_create(series)

    def append(
        self,
        refs: npt.NDArray[np.uint64],
        timestamps_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> AppendResult:
        """Validates a batch against committed and pending samples and keeps the good ones."""
        if self._done:
            raise StorageError("appender already committed or rolled back")
        head = self._head
        refs = np.asarray(refs, dtype=np.uint64)
        ts = np.asarray(timestamps_ms, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        if not len(refs) == len(ts) == len(vals):
            raise ValueError("refs, timestamps_ms and values must have the same length")
        if len(refs) == 0:
            return AppendResult(np.zeros(0, dtype=np.bool_))
        if int(refs.max()) >= len(head._labels):
            bad = int(refs[refs >= len(head._labels)][0])
            head.metrics.head_series_not_found.inc()
            raise StorageError(f"unknown series ref {bad}")
        generation = head.generation
        if not self._refs:
            self._generation = generation
        elif generation != self._generation:
            self._generation = -1
        live = head._alias[refs]
        base_ts = head._last_ts[live]
        base_bits = head._last_bits[live]
        if len(self._p_refs):
            idx = np.minimum(np.searchsorted(self._p_refs, live), len(self._p_refs) - 1)
            hit = (self._p_refs[idx] == live) & (self._p_ts[idx] > base_ts)
            base_ts = np.where(hit, self._p_ts[idx], base_ts)
            base_bits = np.where(hit, self._p_bits[idx], base_bits)
        bits = vals.view(np.uint64)
        codes = classify(
            live,
            ts,
            bits,
            base_ts,
            base_bits,
            min_valid_ms=head.appendable_min_valid_time(),
            ooo_min_ms=head._ooo_min(int(ts[0])),
        )
        accepted = codes <= ACCEPT_OOO
        result = AppendResult(accepted)
        if not accepted.all():
            head._count_rejections(codes, result)
        if accepted.any():
            a_refs = live[accepted]
            a_ts = ts[accepted]
            a_vals = vals[accepted]
            self._refs.append(a_refs)
            self._ts.append(a_ts)
            self._vals.append(a_vals)
            in_order = codes[accepted] == ACCEPT
            self._in_order.append(in_order)
            self._remember(a_refs, a_ts, a_vals.view(np.uint64), in_order)
        return result

    def _remember(
        self,
        refs: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        bits: npt.NDArray[np.uint64],
        in_order: npt.NDArray[np.bool_],
    ) -> None:
        """Keeps the newest pending (timestamp, bits) per series for later appends."""
        r = np.concatenate((self._p_refs, refs[in_order]))
        t = np.concatenate((self._p_ts, ts[in_order]))
        b = np.concatenate((self._p_bits, bits[in_order]))
        order = np.lexsort((t, r))
        r, t, b = r[order], t[order], b[order]
        last = np.ones(len(r), dtype=np.bool_)
        last[:-1] = r[1:] != r[:-1]
        self._p_refs, self._p_ts, self._p_bits = r[last], t[last], b[last]

    def commit(self) -> None:
        """Logs the samples to the WAL and makes them visible.

        Raises:
            StorageError: when the WAL write fails; then nothing was applied.
        """
        if self._done:
            return
        self._done = True
        self._head.metrics.head_active_appenders.dec()
        if not self._refs:
            return
        if len(self._refs) == 1:
            refs, ts, vals = self._refs[0], self._ts[0], self._vals[0]
            in_order = self._in_order[0]
        else:
            refs = np.concatenate(self._refs)
            ts = np.concatenate(self._ts)
            vals = np.concatenate(self._vals)
            in_order = np.concatenate(self._in_order)
        self._refs, self._ts, self._vals, self._in_order = [], [], [], []
        self._head._commit(refs, ts, vals, validated_at=self._generation, in_order=in_order)

    def rollback(self) -> None:
        """Discards the pending samples."""
        if self._done:
            return
        self._done = True
        self._head.metrics.head_active_appenders.dec()
        self._refs, self._ts, self._vals, self._in_order = [], [], [], []


class HeadQuerier(Querier):
    """Reads the head over [mint_ms, maxt_ms]; sees samples committed before each call."""

    def __init__(self, head: Head, mint_ms: int, maxt_ms: int) -> None:
        self._head = head
        self.mint_ms = mint_ms
        self.maxt_ms = maxt_ms

    def _overlaps(self) -> bool:
        head = self._head
        bounds = head.time_bounds()
        return (
            head.num_series > 0
            and bounds is not None
            and not (bounds[1] < self.mint_ms or bounds[0] > self.maxt_ms)
        )

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        """Returns matching series with their samples in range, sorted by labels."""
        if self.mint_ms > self.maxt_ms:
            return SeriesSet.empty()
        return self._head.select(matchers, self.mint_ms, self.maxt_ms)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns sorted label names of head series."""
        if not self._overlaps():
            return []
        return self._head.label_names(matchers)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns sorted values of a label over head series."""
        if not self._overlaps():
            return []
        return self._head.label_values(name, matchers)
