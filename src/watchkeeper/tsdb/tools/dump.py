"""`watchkeeper tsdb dump` and `dump-openmetrics`: samples of blocks and head, as promtool.

`dump` prints one line per sample, `{__name__="up", job="api"} 1 1700000000000`: every label
inside the braces (labels.String()), the value as Go's %g, the timestamp in milliseconds.
`dump-openmetrics` prints `up{job="api"} 1 1700000000.000` and a final `# EOF`.

Series come sorted by label set, except where promtool reads the head alone (one selector
and no block in the range): then they come in the order the head created them.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterator, Sequence
from typing import TextIO

import numpy as np
import numpy.typing as npt

from watchkeeper.model.exposition.floats import format_go_float, go_quote
from watchkeeper.model.labels import METRIC_NAME, Labels, is_valid_legacy_label_name
from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.storage.merge import merge_series_sets
from watchkeeper.tsdb.block import Block
from watchkeeper.tsdb.compact import iter_merged
from watchkeeper.tsdb.head import Head


class DumpFormat(enum.Enum):
    """The line formats of promtool's two dump commands."""

    TEXT = "text"
    """`promtool tsdb dump`: labels.String(), %g value, timestamp in milliseconds."""
    OPENMETRICS = "openmetrics"
    """`promtool tsdb dump-openmetrics`: name{labels}, %g value, seconds with 3 decimals."""


def format_labels(labels: Labels) -> str:
    """Formats a label set as Prometheus's labels.String(): `{a="1", b="2"}`."""
    parts = []
    for n, v in labels.pairs:
        name = n if is_valid_legacy_label_name(n) else go_quote(n)
        parts.append(f"{name}={go_quote(v)}")
    return "{" + ", ".join(parts) + "}"


def format_openmetrics_series(labels: Labels) -> str:
    """Formats a label set as promtool's dump-openmetrics: `name{a="1",b="2"}`, names bare."""
    inner = ",".join(f"{n}={go_quote(v)}" for n, v in labels.pairs if n != METRIC_NAME)
    return labels.get(METRIC_NAME) + "{" + inner + "}"


def dump_samples(
    blocks: Sequence[Block],
    out: TextIO,
    *,
    head: Head | None = None,
    matcher_sets: Sequence[Sequence[Matcher]] = ((),),
    mint_ms: int = -(1 << 63),
    maxt_ms: int = (1 << 63) - 1,
    fmt: DumpFormat = DumpFormat.TEXT,
) -> int:
    """Writes every sample of matching series in [mint_ms, maxt_ms]; returns the count.

    Series selected by any of `matcher_sets` are printed once; the samples a series has in
    several blocks and the head are merged in time order (a timestamp once).
    """
    total = 0
    for batch in iter_dump_series(blocks, head, matcher_sets, mint_ms, maxt_ms):
        for i in range(len(batch)):
            lbls, ts, vals = batch.series(i)
            if fmt is DumpFormat.OPENMETRICS:
                prefix = format_openmetrics_series(lbls) + " "
                # NB: float(t) / 1000 rounds as Go's float64(ts)/1000 does, beyond 2**53 too.
                out.writelines(
                    f"{prefix}{format_go_float(v)} {float(t) / 1000:.3f}\n"
                    for v, t in zip(vals.tolist(), ts.tolist(), strict=True)
                )
            else:
                prefix = format_labels(lbls) + " "
                out.writelines(
                    f"{prefix}{format_go_float(v)} {t}\n"
                    for v, t in zip(vals.tolist(), ts.tolist(), strict=True)
                )
            total += len(ts)
    if fmt is DumpFormat.OPENMETRICS:
        out.write("# EOF\n")
    return total


def iter_dump_series(
    blocks: Sequence[Block],
    head: Head | None,
    matcher_sets: Sequence[Sequence[Matcher]],
    mint_ms: int,
    maxt_ms: int,
) -> Iterator[SeriesSet]:
    """Yields the matching series of blocks and head in promtool's order, batch by batch.

    Blocks are read a batch of series at a time; the head's selection (in memory anyway)
    is cut at each batch's last label set and merged into it.
    """
    blocks = [b for b in blocks if b.meta.min_time_ms <= maxt_ms and b.meta.max_time_ms > mint_ms]
    batches = iter_merged(blocks, matcher_sets, mint_ms, maxt_ms)
    if head is None:
        yield from batches
        return
    head_set = merge_series_sets([head.select(ms, mint_ms, maxt_ms) for ms in matcher_sets])
    if not blocks and len(matcher_sets) == 1:
        # NB: promtool then reads the head alone, unsorted: series in creation (ref) order.
        # The label sets come from the head, so get_or_create only looks their refs up.
        yield _take(head_set, np.argsort(head.get_or_create(head_set.labels), kind="stable"))
        return
    done = 0
    for batch in batches:
        if not len(batch):
            continue
        upto = bisect.bisect_right(head_set.labels, batch.labels[-1], lo=done)
        yield merge_series_sets([batch, _slice(head_set, done, upto)])
        done = upto
    if done < len(head_set):
        yield _slice(head_set, done, len(head_set))


def _slice(s: SeriesSet, lo: int, hi: int) -> SeriesSet:
    """Series lo..hi-1 of a set."""
    a, b = int(s.offsets[lo]), int(s.offsets[hi])
    return SeriesSet(
        s.labels[lo:hi], s.offsets[lo : hi + 1] - a, s.timestamps_ms[a:b], s.values[a:b]
    )


def _take(s: SeriesSet, order: npt.NDArray[np.intp]) -> SeriesSet:
    """The set's series in the given order."""
    lens = np.diff(s.offsets)[order]
    starts = s.offsets[:-1][order]
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    idx = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lens)
    return SeriesSet(
        [s.labels[i] for i in order.tolist()], offsets, s.timestamps_ms[idx], s.values[idx]
    )
