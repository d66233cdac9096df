"""`watchkeeper tsdb dump`: prints samples as `promtool tsdb dump` does, one per line.

A line is `{__name__="up", job="api"} 1 1700000000000`: the label set with every label
inside the braces, the value as Go's %g, the timestamp in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from watchkeeper.model.exposition.floats import format_go_float, go_quote
from watchkeeper.model.labels import Labels, is_valid_legacy_label_name
from watchkeeper.model.matchers import Matcher
from watchkeeper.tsdb.block import Block
from watchkeeper.tsdb.compact import iter_merged


def format_labels(labels: Labels) -> str:
    """Formats a label set as Prometheus's labels.String(): `{a="1", b="2"}`."""
    parts = []
    for n, v in labels.pairs:
        name = n if is_valid_legacy_label_name(n) else go_quote(n)
        parts.append(f"{name}={go_quote(v)}")
    return "{" + ", ".join(parts) + "}"


def dump_samples(
    blocks: Sequence[Block],
    out: TextIO,
    *,
    matcher_sets: Sequence[Sequence[Matcher]] = ((),),
    mint_ms: int = -(1 << 63),
    maxt_ms: int = (1 << 63) - 1,
) -> int:
    """Writes every sample of matching series in [mint_ms, maxt_ms]; returns the count.

    Series selected by any of `matcher_sets` are printed once, sorted by label set; samples
    of a series that several blocks hold are merged in time order.
    """
    total = 0
    for batch in iter_merged(blocks, matcher_sets, mint_ms, maxt_ms):
        for i in range(len(batch)):
            lbls, ts, vals = batch.series(i)
            prefix = format_labels(lbls) + " "
            out.writelines(
                f"{prefix}{format_go_float(v)} {t}\n"
                for v, t in zip(vals.tolist(), ts.tolist(), strict=True)
            )
            total += len(ts)
    return total
