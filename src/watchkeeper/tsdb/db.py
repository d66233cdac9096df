"""The TSDB: a head with its WAL plus the blocks on disk, kept in shape by `maintenance`.

Layout of the data directory (as Prometheus's): `wal/` (segments and a checkpoint), one
directory per block named by its ULID, and a `lock` file. Appends go to the head; a
querier merges the head with every block that overlaps its range. `maintenance` (called
periodically by the server, directly by tests) cuts the head into blocks, truncates the
head and checkpoints the WAL, compacts blocks, and applies retention by time and size.
A block is never loaded half-written: blocks are written in a temporary directory and
renamed into place; leftovers are removed on open. `TSDB.open_read_only` reads a directory
(even one a running server holds) without changing anything in it, as promtool does.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.clock import SYSTEM_CLOCK, Clock
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import Appender, Querier, SelectHints, SeriesSet, StorageError
from watchkeeper.storage.merge import merge_series_sets
from watchkeeper.tsdb.block import (
    TMP_SUFFIX,
    Block,
    BlockMeta,
    BlockWriter,
    is_ulid,
)
from watchkeeper.tsdb.compact import compact, exponential_ranges, plan_compaction
from watchkeeper.tsdb.head import INT64_MAX, INT64_MIN, Head, HeadStats
from watchkeeper.tsdb.lifecycle_metrics import TsdbLifecycleMetrics, lockfile_state
from watchkeeper.tsdb.metrics import TsdbMetrics
from watchkeeper.tsdb.options import TsdbOptions
from watchkeeper.tsdb.wal import WriteAheadLog

log = logging.getLogger(__name__)

WAL_DIRNAME = "wal"
LOCK_FILENAME = "lock"
DELETION_SUFFIX = ".tmp-for-deletion"


@dataclass(slots=True)
class MaintenanceReport:
    """What one `TSDB.maintenance` run did (errors are also logged and counted)."""

    head_blocks: list[Path] = field(default_factory=list)
    compacted_blocks: list[Path] = field(default_factory=list)
    deleted_blocks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _LoadedBlock:
    """A block and the queriers reading it; closed when deleted and no longer read."""

    __slots__ = ("block", "deleted", "readers")

    def __init__(self, block: Block) -> None:
        self.block = block
        self.readers = 0
        self.deleted = False


class _DbQuerier(Querier):
    """Merges the head with the blocks that overlap the range.

    The blocks loaded at creation are held until `close` (a snapshot: compaction and
    retention cannot take them away). Each call reads the head first and then adds blocks
    loaded since: a block is loaded before the head is truncated, so every sample is in
    one or the other (samples in both are merged once).
    """

    def __init__(self, db: TSDB, mint_ms: int, maxt_ms: int) -> None:
        self._db = db
        self._mint = mint_ms
        self._maxt = maxt_ms
        self._held = db._acquire(mint_ms, maxt_ms)
        self._closed = False

    def _each_block(self, read: Callable[[BlockMeta, Querier], None]) -> None:
        if self._closed:
            raise StorageError("querier is closed")
        fresh = self._db._acquire(self._mint, self._maxt)
        try:
            seen = {id(lb) for lb in self._held}
            for lb in [*self._held, *(lb for lb in fresh if id(lb) not in seen)]:
                read(lb.block.meta, lb.block.querier(self._mint, self._maxt))
        finally:
            self._db._release(fresh)

    def _head(self) -> Querier:
        return self._db.head.querier(self._mint, self._maxt)

    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        head = self._head().select(matchers, hints=hints)
        sets: list[tuple[str, SeriesSet]] = []
        self._each_block(
            lambda meta, q: sets.append((meta.newest_source, q.select(matchers, hints=hints)))
        )
        # NB: the first set wins a timestamp: the head, then the blocks with newer writes.
        sets.sort(key=lambda pair: pair[0], reverse=True)
        return merge_series_sets([head, *(got for _, got in sets)])

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names = set(self._head().label_names(matchers))
        self._each_block(lambda _meta, q: names.update(q.label_names(matchers)))
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        values = set(self._head().label_values(name, matchers))
        self._each_block(lambda _meta, q: values.update(q.label_values(name, matchers)))
        return sorted(values)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db._release(self._held)


class TSDB:
    """A local time-series database implementing the storage interfaces.

    Thread-safe: appenders and queriers may be used from any thread, `maintenance` runs
    on one thread at a time.
    """

    def __init__(
        self,
        path: Path,
        options: TsdbOptions,
        *,
        metrics: TsdbMetrics,
        head: Head,
        clock: Clock,
        lock_fd: int | None,
        read_only: bool = False,
    ) -> None:
        """Use `TSDB.open` or `TSDB.open_read_only`."""
        self.dir = path
        self.read_only = read_only
        self.options = options
        self.metrics = metrics
        self.lifecycle_metrics = TsdbLifecycleMetrics(metrics.registry)
        self.head = head
        self.clock = clock
        self._lock_fd = lock_fd
        self._lock = threading.RLock()
        self._maintenance_lock = threading.Lock()
        self._blocks: list[_LoadedBlock] = []
        self._closed = False

    @classmethod
    def open(
        cls,
        path: Path,
        options: TsdbOptions | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> TSDB:
        """Opens (or creates) a data directory: loads blocks, replays the WAL.

        Raises:
            StorageError: when another process holds the directory's lock file.
            OSError: when the directory cannot be created or read.
        """
        options = options or TsdbOptions()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        clean_start = lockfile_state(options.no_lockfile, path / LOCK_FILENAME)
        lock_fd = None if options.no_lockfile else _take_lock(path)
        metrics = TsdbMetrics(registry)
        metrics.retention_limit_bytes.set(options.retention_bytes)
        metrics.retention_limit_seconds.set(options.retention_ms / 1000.0)
        head = _new_head(options, metrics)
        db = cls(path, options, metrics=metrics, head=head, clock=clock, lock_fd=lock_fd)
        db.lifecycle_metrics.clean_start.set(clean_start)
        try:
            _remove_leftovers(path)
            db._load_blocks()
            newest = max((lb.block.meta.max_time_ms for lb in db._blocks), default=INT64_MIN)
            head.min_valid_time_ms = newest
            wal_dir = path / WAL_DIRNAME
            head.replay(wal_dir)
            head.wal = WriteAheadLog(
                wal_dir,
                segment_size_bytes=options.wal_segment_size_bytes,
                compress=options.wal_compression,
                fsync_interval_ms=options.wal_fsync_interval_ms,
                on_fsync=metrics.wal_fsync_duration.observe,
            )
            metrics.wal_segment_current.set(head.wal.current)
        except BaseException:
            db._close_blocks()
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        metrics.lowest_timestamp_gauges(lambda: float(db.start_time_ms()))
        return db

    @classmethod
    def open_read_only(
        cls,
        path: Path,
        options: TsdbOptions | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> TSDB:
        """Opens an existing data directory for reading only; nothing on disk changes.

        No lock is taken (a running server may hold the directory), leftovers and blocks
        replaced by compaction stay in place (replaced blocks are not read), the WAL is
        replayed without repairing damage (`head.replay_status.corruptions` says where it
        stopped). Appends, maintenance and deletions are refused with `StorageError`.

        Raises:
            FileNotFoundError: when the directory does not exist.
            StorageError: when a block cannot be opened (`CorruptionError`).
        """
        options = options or TsdbOptions()
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such directory")
        metrics = TsdbMetrics(None)
        head = _new_head(options, metrics)
        db = cls(
            path, options, metrics=metrics, head=head, clock=clock, lock_fd=None, read_only=True
        )
        try:
            db._load_blocks()
            newest = max((lb.block.meta.max_time_ms for lb in db._blocks), default=INT64_MIN)
            head.min_valid_time_ms = newest
            head.replay(path / WAL_DIRNAME, repair=False)
        except BaseException:
            db._close_blocks()
            raise
        return db

    # Blocks.

    def _load_blocks(self) -> None:
        """Opens every block directory not yet loaded; drops blocks replaced by compaction."""
        with self._lock:
            known = {lb.block.meta.ulid for lb in self._blocks}
            loaded = list(self._blocks)
            for p in sorted(self.dir.iterdir()):
                if not p.is_dir() or not is_ulid(p.name) or p.name in known:
                    continue
                try:
                    loaded.append(_LoadedBlock(Block.open(p)))
                except (StorageError, OSError, ValueError) as exc:
                    if self.read_only:
                        for lb in loaded:
                            lb.block.close()
                        if isinstance(exc, StorageError):
                            raise
                        raise StorageError(f"cannot open block {p}: {exc}") from exc
                    self.metrics.reloads_failed.inc()
                    log.error("Cannot open block %s, skipping it: %s", p, exc)
            parents = {d.ulid for lb in loaded for d in lb.block.meta.compaction.parents}
            keep: list[_LoadedBlock] = []
            for lb in loaded:
                if lb.block.meta.ulid in parents and self.read_only:
                    lb.block.close()
                elif lb.block.meta.ulid in parents:
                    self._delete_block_locked(lb)
                else:
                    keep.append(lb)
            keep.sort(key=lambda lb: (lb.block.meta.min_time_ms, lb.block.meta.ulid))
            self._blocks = keep
            self.metrics.reloads.inc()
            self._update_block_metrics_locked()

    def _update_block_metrics_locked(self) -> None:
        self.metrics.blocks_loaded.set(len(self._blocks))
        total = 0
        for lb in self._blocks:
            with contextlib.suppress(OSError):
                total += lb.block.size_bytes()
        self.metrics.storage_blocks_bytes.set(total)

    def _delete_block_locked(self, lb: _LoadedBlock) -> None:
        """Removes a block from disk now; closes it once no querier reads it."""
        lb.deleted = True
        path = lb.block.path
        doomed = path.with_name(path.name + DELETION_SUFFIX)
        try:
            path.rename(doomed)
            # NB: open mappings stay readable after unlinking, so in-flight reads finish.
            shutil.rmtree(doomed, ignore_errors=True)
        except OSError as exc:
            log.error("Cannot delete block %s: %s", path, exc)
        if lb.readers == 0:
            lb.block.close()

    def _release(self, held: list[_LoadedBlock]) -> None:
        with self._lock:
            for lb in held:
                lb.readers -= 1
                if lb.deleted and lb.readers == 0:
                    lb.block.close()

    def blocks(self) -> list[BlockMeta]:
        """The metas of the loaded blocks, oldest first."""
        with self._lock:
            return [lb.block.meta for lb in self._blocks]

    @contextlib.contextmanager
    def blocks_in_range(self, mint_ms: int, maxt_ms: int) -> Iterator[list[Block]]:
        """Yields the loaded blocks that overlap [mint_ms, maxt_ms], oldest first.

        They stay open (compaction and retention cannot close them) until the `with` exits.
        """
        held = self._acquire(mint_ms, maxt_ms)
        try:
            yield [lb.block for lb in held]
        finally:
            self._release(held)

    # Storage interface.

    def appender(self) -> Appender:
        """Returns a write transaction on the head."""
        if self._closed:
            raise StorageError("TSDB is closed")
        self._refuse_if_read_only("append")
        return self.head.appender()

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        """Returns a querier merging the head and the blocks that overlap [mint_ms, maxt_ms]."""
        if self._closed:
            raise StorageError("TSDB is closed")
        return _DbQuerier(self, mint_ms, maxt_ms)

    def _acquire(self, mint_ms: int, maxt_ms: int) -> list[_LoadedBlock]:
        """Returns the loaded blocks that overlap the range, held until `_release`."""
        with self._lock:
            held = [
                lb
                for lb in self._blocks
                if lb.block.meta.min_time_ms <= maxt_ms and lb.block.meta.max_time_ms > mint_ms
            ]
            for lb in held:
                lb.readers += 1
        return held

    def close(self) -> None:
        """Closes the head (fsyncing the WAL), the blocks and the lock file."""
        if self._closed:
            return
        self._closed = True
        with self._maintenance_lock:
            self.head.close()
            self._close_blocks()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
                with contextlib.suppress(OSError):
                    (self.dir / LOCK_FILENAME).unlink()

    def _close_blocks(self) -> None:
        with self._lock:
            for lb in self._blocks:
                lb.block.close()
            self._blocks = []

    # Maintenance.

    def maintenance(self) -> MaintenanceReport:
        """Cuts head blocks, compacts, applies retention; errors are reported, not raised."""
        report = MaintenanceReport()
        with self._maintenance_lock:
            if self._closed or self.read_only:
                return report
            self._compact_head(report)
            self._compact_blocks(report)
            self._apply_retention(report)
            if self.head.wal is not None:
                self.metrics.wal_storage_size.set(self.head.wal.size_bytes())
                self.metrics.wal_segment_current.set(self.head.wal.current)
        return report

    def _head_compactable(self) -> bool:
        head = self.head
        if head.min_time_ms == INT64_MAX or head.max_time_ms == INT64_MIN:
            return False
        rng = self.options.min_block_duration_ms
        return head.max_time_ms - head.min_time_ms > rng // 2 * 3

    def _compact_head(self, report: MaintenanceReport) -> None:
        rng = self.options.min_block_duration_ms
        cut = False
        while self._head_compactable():
            mint = self.head.min_time_ms
            maxt = (mint // rng) * rng + rng
            self.metrics.compactions_triggered.inc()
            start = time.monotonic()
            try:
                path = self._write_head_block(self.dir, mint, maxt)
            except (OSError, StorageError) as exc:
                self.metrics.compactions_failed.inc()
                msg = f"head compaction of [{mint}, {maxt}) failed: {exc}"
                log.error("%s", msg)
                report.errors.append(msg)
                return
            self.metrics.compactions.inc()
            self.metrics.compaction_duration.observe(time.monotonic() - start)
            if path is not None:
                report.head_blocks.append(path)
                self._load_blocks()
            self.head.truncate(maxt)
            cut = True
            try:
                with self.lifecycle_metrics.truncating_wal():
                    self.head.truncate_wal(maxt)
            except OSError as exc:
                msg = f"WAL checkpoint failed: {exc}"
                report.errors.append(msg)
            self.head.compact_memory()
        if cut:
            # NB: as in Prometheus, out-of-order samples become blocks after a head compaction.
            self._flush_ooo(report, before_ms=self.head.min_valid_time_ms)

    def _flush_ooo(self, report: MaintenanceReport, *, before_ms: int) -> None:
        """Writes the head's out-of-order samples older than `before_ms` as blocks.

        One block per aligned block range that holds such samples, as Prometheus's
        out-of-order compaction writes them; they may overlap blocks already on disk.
        """
        cols = self.head.begin_ooo_flush(before_ms)
        if cols is None:
            return
        refs, ts, vals = cols
        rng = self.options.min_block_duration_ms
        slot = ts // rng
        written = False
        self.metrics.compactions_triggered.inc()
        start = time.monotonic()
        try:
            for k in np.unique(slot).tolist():
                part = slot == k
                batch = self.head.series_set_of_columns(refs[part], ts[part], vals[part])
                with (
                    self.lifecycle_metrics.writing_block(),
                    BlockWriter(self.dir, mint_ms=k * rng, maxt_ms=(k + 1) * rng) as writer,
                ):
                    writer.add(batch)
                    path = writer.commit()
                if path is not None:
                    report.head_blocks.append(path)
            written = True
            self.metrics.compactions.inc()
            self.metrics.compaction_duration.observe(time.monotonic() - start)
        except (OSError, StorageError) as exc:
            self.metrics.compactions_failed.inc()
            msg = f"out-of-order head compaction failed: {exc}"
            log.error("%s", msg)
            report.errors.append(msg)
        finally:
            # NB: blocks are loaded before the head forgets the samples, so reads see them.
            self._load_blocks()
            self.head.finish_ooo_flush(written=written)

    def _write_head_block(self, parent: Path, mint: int, maxt: int) -> Path | None:
        """Writes head samples in [mint, maxt) as a block; returns None when there are none."""
        with (
            self.lifecycle_metrics.writing_block(),
            BlockWriter(parent, mint_ms=mint, maxt_ms=maxt) as writer,
        ):
            for batch in self.head.iter_label_batches(mint, maxt - 1):
                writer.add(batch)
            return writer.commit()

    def _ranges(self) -> list[int]:
        limit = self.options.effective_max_block_duration_ms
        return [
            r for r in exponential_ranges(self.options.min_block_duration_ms, 10, 3) if r <= limit
        ]

    def _compact_blocks(self, report: MaintenanceReport) -> None:
        ranges = self._ranges()
        for _ in range(64):
            metas = self.blocks()
            try:
                plan = plan_compaction(metas, ranges)
            except ValueError as exc:
                report.errors.append(f"compaction planning failed: {exc}")
                return
            if not plan:
                return
            group = {p.name for p in plan[0]}
            with self._lock:
                chosen = [lb for lb in self._blocks if lb.block.meta.ulid in group]
                for lb in chosen:
                    lb.readers += 1
            self.metrics.compactions_triggered.inc()
            start = time.monotonic()
            try:
                with self.lifecycle_metrics.writing_block():
                    path = compact([lb.block for lb in chosen], self.dir)
            except (OSError, StorageError) as exc:
                self.metrics.compactions_failed.inc()
                msg = f"compaction of {sorted(group)} failed: {exc}"
                log.error("%s", msg)
                report.errors.append(msg)
                return
            finally:
                self._release(chosen)
            self.metrics.compactions.inc()
            self.metrics.compaction_duration.observe(time.monotonic() - start)
            self.lifecycle_metrics.compacted(
                [(lb.block.meta.min_time_ms, lb.block.meta.max_time_ms) for lb in chosen]
            )
            with self._lock:
                if path is not None:
                    report.compacted_blocks.append(path)
                self._load_blocks()
                for lb in chosen:
                    if lb in self._blocks:
                        # Compaction left nothing (everything deleted): drop the inputs.
                        self._blocks.remove(lb)
                        self._delete_block_locked(lb)
                report.deleted_blocks.extend(sorted(group))
                self._update_block_metrics_locked()

    def _apply_retention(self, report: MaintenanceReport) -> None:
        with self._lock:
            if not self._blocks:
                return
            newest_first = sorted(self._blocks, key=lambda lb: -lb.block.meta.max_time_ms)
            doomed: dict[str, _LoadedBlock] = {}
            retention = self.options.retention_ms
            if retention > 0:
                top = newest_first[0].block.meta.max_time_ms
                timed = [
                    lb for lb in newest_first[1:] if top - lb.block.meta.max_time_ms >= retention
                ]
                if timed:
                    self.metrics.time_retentions.inc()
                    doomed.update((lb.block.meta.ulid, lb) for lb in timed)
            limit = self.options.retention_bytes
            if limit > 0:
                total = self.head.wal.size_bytes() if self.head.wal is not None else 0
                sized: list[_LoadedBlock] = []
                for lb in newest_first:
                    total += lb.block.size_bytes()
                    if total > limit:
                        sized.append(lb)
                if sized:
                    self.metrics.size_retentions.inc()
                    doomed.update((lb.block.meta.ulid, lb) for lb in sized)
            if not doomed:
                return
            for ulid, lb in doomed.items():
                self._blocks.remove(lb)
                self._delete_block_locked(lb)
                report.deleted_blocks.append(ulid)
            self._update_block_metrics_locked()

    # Admin operations.

    def delete_series(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> None:
        """Deletes the samples of matching series in [mint_ms, maxt_ms] (head and blocks)."""
        self._refuse_if_read_only("delete series")
        with self._lock:
            blocks = [
                lb.block
                for lb in self._blocks
                if lb.block.meta.min_time_ms <= maxt_ms and lb.block.meta.max_time_ms > mint_ms
            ]
        for block in blocks:
            block.delete(matchers, mint_ms, maxt_ms)
        self.head.delete(matchers, mint_ms, maxt_ms)

    def clean_tombstones(self) -> None:
        """Rewrites blocks that have tombstones without the deleted samples."""
        self._refuse_if_read_only("clean tombstones")
        start = time.monotonic()
        with self._maintenance_lock:
            with self._lock:
                dirty = [lb for lb in self._blocks if len(lb.block.tombstones)]
            for lb in dirty:
                new = lb.block.clean_tombstones(self.dir)
                with self._lock:
                    if new is not None:
                        self._load_blocks()
                    if lb in self._blocks:
                        self._blocks.remove(lb)
                        self._delete_block_locked(lb)
                    self._update_block_metrics_locked()
        self.metrics.tombstone_cleanup.observe(time.monotonic() - start)

    def snapshot(self, target: Path, *, with_head: bool = True) -> Path:
        """Writes a consistent copy of the data (hard links to blocks) under `target`."""
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        with self._lock:
            blocks = [lb.block.path for lb in self._blocks]
        for src in blocks:
            dst = target / src.name
            shutil.copytree(src, dst, copy_function=_link_or_copy)
        if with_head and self.head.min_time_ms != INT64_MAX:
            self._write_head_block(target, self.head.min_time_ms, self.head.max_time_ms + 1)
        bounds = self.head.time_bounds() if with_head else None
        if bounds is not None and self.head.num_ooo_samples:
            ooo = self.head.ooo_series_set(bounds[0], bounds[1])
            with BlockWriter(target, mint_ms=bounds[0], maxt_ms=bounds[1] + 1) as writer:
                writer.add(ooo)
                writer.commit()
        return target

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise StorageError(f"{self.dir}: cannot {what}: the TSDB is open read-only")

    # Status.

    def head_stats(self, limit: int = 10) -> HeadStats:
        """Head cardinality statistics for /api/v1/status/tsdb."""
        return self.head.stats(limit)

    def tsdb_status(self, limit: int = 10) -> dict[str, Any]:
        """The JSON `data` of /api/v1/status/tsdb."""
        return self.head.stats(limit).as_api()

    def wal_replay_status(self) -> dict[str, int]:
        """The JSON `data` of /api/v1/status/walreplay."""
        st = self.head.replay_status
        return {"min": st.min, "max": st.max, "current": st.current}

    def start_time_ms(self) -> int:
        """The lowest timestamp stored (head or blocks); the current time when empty."""
        with self._lock:
            if self._blocks:
                return self._blocks[0].block.meta.min_time_ms
        bounds = self.head.time_bounds()
        if bounds is not None:
            return bounds[0]
        return self.clock.now_ms()


def _new_head(options: TsdbOptions, metrics: TsdbMetrics) -> Head:
    return Head(
        metrics=metrics,
        out_of_order_time_window_ms=options.out_of_order_time_window_ms,
        chunk_range_ms=options.min_block_duration_ms,
        segment_samples=options.head_segment_samples,
    )


def _take_lock(path: Path) -> int:
    fd = os.open(path / LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"{path}: data directory is locked by another process") from exc
    return fd


def _remove_leftovers(path: Path) -> None:
    """Removes half-written and half-deleted blocks left by a crash."""
    for p in path.iterdir():
        if p.is_dir() and (p.name.endswith(TMP_SUFFIX) or p.name.endswith(DELETION_SUFFIX)):
            log.info("Removing leftover directory %s", p)
            shutil.rmtree(p, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
