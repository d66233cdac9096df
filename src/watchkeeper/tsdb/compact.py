"""Compaction: plans which blocks to merge (Prometheus's leveled planner) and merges them.

Blocks start at the smallest range (2h); `plan_compaction` picks overlapping blocks first,
then adjacent blocks that fill the next range (×3 each step, up to the largest range), then
big blocks with many tombstones. `compact` merges series in label order, batch by batch
(memory stays bounded), drops deleted samples and de-duplicates equal timestamps. Blocks
overlap when out-of-order samples were persisted behind existing blocks; merging them is
Prometheus's vertical compaction, and the later write of a timestamp wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.tsdb.block import Block, BlockDesc, BlockMeta, BlockWriter, CompactionMeta
from watchkeeper.tsdb.chunks.errors import CorruptionError

_BATCH_SERIES: Final = 2048


def exponential_ranges(min_block_ms: int, steps: int = 3, factor: int = 3) -> list[int]:
    """Returns the block ranges [min, min*factor, min*factor**2, ...] (`steps` of them).

    Example:
        >>> exponential_ranges(2 * 3600 * 1000)
        [7200000, 21600000, 64800000]
    """
    return [min_block_ms * factor**i for i in range(steps)]


def _split_by_range(metas: Sequence[BlockMeta], tr: int) -> list[list[BlockMeta]]:
    """Groups sorted blocks into aligned windows of `tr` (blocks that do not fit are skipped)."""
    out: list[list[BlockMeta]] = []
    i = 0
    while i < len(metas):
        m = metas[i]
        t0 = tr * (m.min_time_ms // tr)
        if m.max_time_ms > t0 + tr:
            i += 1
            continue
        group: list[BlockMeta] = []
        while i < len(metas) and metas[i].max_time_ms <= t0 + tr:
            group.append(metas[i])
            i += 1
        if group:
            out.append(group)
    return out


def _select_dirs(metas: Sequence[BlockMeta], ranges_ms: Sequence[int]) -> list[BlockMeta]:
    if len(ranges_ms) < 2 or not metas:
        return []
    high_time = metas[-1].min_time_ms
    for tr in ranges_ms[1:]:
        for part in _split_by_range(metas, tr):
            if any(m.compaction.failed for m in part):
                continue
            mint, maxt = part[0].min_time_ms, part[-1].max_time_ms
            if (maxt - mint == tr or maxt <= high_time) and len(part) > 1:
                return part
    return []


def _select_overlapping(metas: Sequence[BlockMeta]) -> list[BlockMeta]:
    if len(metas) < 2:
        return []
    out: list[BlockMeta] = []
    global_maxt = metas[0].max_time_ms
    for i, m in enumerate(metas[1:]):
        if m.min_time_ms < global_maxt:
            if not out:
                out.append(metas[i])
            out.append(m)
        elif out:
            break
        global_maxt = max(global_maxt, m.max_time_ms)
    return out


def plan_compaction(metas: Sequence[BlockMeta], ranges_ms: Sequence[int]) -> list[list[Path]]:
    """Returns the next group of block directories to compact together, as Prometheus plans.

    The result holds at most one group (call again after compacting it); it is empty when
    nothing should be compacted. The newest block is left alone unless it overlaps another,
    so a fresh block stays as it is for a full block range. Every meta needs its `dir`.
    """
    ordered = sorted(metas, key=lambda m: m.min_time_ms)
    chosen = _select_overlapping(ordered)
    if not chosen and ordered:
        rest = ordered[:-1]
        chosen = _select_dirs(rest, ranges_ms)
        if not chosen and ranges_ms:
            for m in reversed(rest):
                if m.max_time_ms - m.min_time_ms < ranges_ms[len(ranges_ms) // 2]:
                    break
                if m.stats.num_tombstones / (m.stats.num_series + 1) > 0.05:
                    chosen = [m]
                    break
    if not chosen:
        return []
    dirs = [m.dir for m in chosen]
    if any(d is None for d in dirs):
        raise ValueError("plan_compaction needs metas that know their directory")
    return [[d for d in dirs if d is not None]]


def _merge_batch(
    labels: list[Labels], parts: list[tuple[npt.NDArray[np.int64], SeriesSet]]
) -> SeriesSet:
    """Merges per-block reads of the same series batch; equal timestamps keep the first."""
    pos_parts: list[npt.NDArray[np.int64]] = []
    ts_parts: list[npt.NDArray[np.int64]] = []
    val_parts: list[npt.NDArray[np.float64]] = []
    for positions, got in parts:
        lens = np.diff(got.offsets)
        pos_parts.append(np.repeat(positions, lens))
        ts_parts.append(got.timestamps_ms)
        val_parts.append(got.values)
    pos = np.concatenate(pos_parts)
    ts = np.concatenate(ts_parts)
    vals = np.concatenate(val_parts)
    if len(parts) > 1:
        order = np.lexsort((ts, pos))
        pos, ts, vals = pos[order], ts[order], vals[order]
        dup = np.zeros(len(ts), dtype=np.bool_)
        dup[1:] = (pos[1:] == pos[:-1]) & (ts[1:] == ts[:-1])
        if dup.any():
            pos, ts, vals = pos[~dup], ts[~dup], vals[~dup]
    offsets = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pos, minlength=len(labels)), out=offsets[1:])
    return SeriesSet(labels, offsets, ts, vals)


def iter_merged(
    blocks: Sequence[Block],
    matcher_sets: Sequence[Sequence[Matcher]] = ((),),
    mint_ms: int = -(1 << 63),
    maxt_ms: int = (1 << 63) - 1,
    *,
    batch_series: int = _BATCH_SERIES,
    strict: bool = False,
) -> Iterator[SeriesSet]:
    """Yields the merged series of several blocks in label order, batch by batch.

    Series that satisfy every matcher of any of `matcher_sets` are selected.

    A sample present in several blocks at the same timestamp is kept once, from the block
    with the newest source (`BlockMeta.newest_source`: the later write). Damaged chunks
    are skipped with a warning on the batch, or raise `CorruptionError` when `strict`.
    """
    blocks = sorted(blocks, key=lambda b: b.meta.newest_source, reverse=True)
    ids_per_block = [
        np.unique(np.concatenate([b.index.select(ms) for ms in matcher_sets]))
        if matcher_sets
        else np.zeros(0, np.int64)
        for b in blocks
    ]
    per_block = [b.index.series_labels(ids) for b, ids in zip(blocks, ids_per_block, strict=True)]
    union = sorted(set().union(*per_block))
    ids_by_block = [
        {lbls: int(i) for lbls, i in zip(lbls_list, ids.tolist(), strict=True)}
        for ids, lbls_list in zip(ids_per_block, per_block, strict=True)
    ]
    for a in range(0, len(union), batch_series):
        batch = union[a : a + batch_series]
        parts: list[tuple[npt.NDArray[np.int64], SeriesSet]] = []
        warnings: list[str] = []
        for block, table in zip(blocks, ids_by_block, strict=True):
            hits = [(j, table[lbls]) for j, lbls in enumerate(batch) if lbls in table]
            if not hits:
                continue
            positions = np.asarray([j for j, _ in hits], dtype=np.int64)
            ids = np.asarray([sid for _, sid in hits], dtype=np.int64)
            got = block.read(ids, mint_ms, maxt_ms)
            if got.warnings and strict:
                raise CorruptionError("; ".join(got.warnings))
            warnings.extend(got.warnings)
            parts.append((positions, SeriesSet([], got.offsets, got.timestamps_ms, got.values)))
        if parts:
            merged = _merge_batch(batch, parts)
            lens = np.diff(merged.offsets)
            if not lens.all():
                keep = np.flatnonzero(lens > 0)
                offsets = np.zeros(len(keep) + 1, dtype=np.int64)
                np.cumsum(lens[keep], out=offsets[1:])
                merged = SeriesSet(
                    [batch[i] for i in keep.tolist()], offsets, merged.timestamps_ms, merged.values
                )
            merged.warnings = warnings
            yield merged


def compact(blocks: Sequence[Block], parent_dir: Path) -> Path | None:
    """Merges blocks into one new block under `parent_dir`; returns its directory.

    Deleted (tombstoned) samples are dropped; a sample present in several blocks at the same
    timestamp is kept once (the later write, see `iter_merged`). Returns None when no
    sample is left. The inputs are left in place: deleting them is the caller's job.

    Raises:
        CorruptionError: when an input block has damaged chunks (nothing is written).
    """
    if not blocks:
        return None
    ordered = sorted(blocks, key=lambda b: (b.meta.min_time_ms, b.meta.ulid))
    sources = sorted({s for b in ordered for s in (b.meta.compaction.sources or (b.meta.ulid,))})
    comp = CompactionMeta(
        level=max(b.meta.compaction.level for b in ordered) + 1,
        sources=tuple(sources),
        parents=tuple(
            BlockDesc(b.meta.ulid, b.meta.min_time_ms, b.meta.max_time_ms) for b in ordered
        ),
    )
    mint = min(b.meta.min_time_ms for b in ordered)
    maxt = max(b.meta.max_time_ms for b in ordered)
    with BlockWriter(parent_dir, mint_ms=mint, maxt_ms=maxt, compaction=comp) as w:
        for batch in iter_merged(ordered, strict=True):
            w.add(batch)
        return w.commit()
