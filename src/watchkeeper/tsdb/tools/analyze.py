"""`watchkeeper tsdb analyze`: cardinality and churn of one block, by label and metric.

The sections and numbers are those of `promtool tsdb analyze`; `render_report` prints them
as rich tables or, with `plain=True`, in promtool's exact text layout.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from watchkeeper.model.labels import METRIC_NAME
from watchkeeper.tsdb.block import Block


def format_go_duration(ms: int) -> str:
    """Formats milliseconds as Go's time.Duration.String() does ("2h0m0s", "30.001s")."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, frac = divmod(rem, 1000)
    if h == 0 and m == 0 and s == 0:
        return f"{sign}{ms}ms"
    secs = f"{s}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(s)
    if h:
        return f"{sign}{h}h{m}m{secs}s"
    if m:
        return f"{sign}{m}m{secs}s"
    return f"{sign}{secs}s"


@dataclass(slots=True)
class AnalyzeReport:
    """The numbers `promtool tsdb analyze` prints for one block; sections are (count, key)."""

    block_id: str
    duration_ms: int
    total_series: int
    label_names: int
    postings: int
    postings_entries: int
    sections: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def _top(counts: dict[str, int], limit: int) -> list[tuple[int, str]]:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(v, k) for k, v in items[:limit]]


def analyze_block(block: Block, *, limit: int = 20) -> AnalyzeReport:
    """Computes cardinality, churn and label statistics of a block."""
    idx = block.index
    meta = block.meta
    duration = meta.max_time_ms - meta.min_time_ms
    refs = idx.chunk_refs
    so = refs.series_offsets.astype(np.int64)
    n = idx.num_series
    first = refs.mint[so[:-1]] if n else np.zeros(0, np.int64)
    last = refs.maxt[so[1:] - 1] if n else np.zeros(0, np.int64)
    uncovered = (duration - (last - first)).tolist()
    pair_uncovered: dict[str, int] = defaultdict(int)
    name_uncovered: dict[str, int] = defaultdict(int)
    pair_count: Counter[str] = Counter()
    metric_count: Counter[str] = Counter()
    entries = 0
    for lbls, unc in zip(idx.series_labels(np.arange(n)), uncovered, strict=True):
        for name, value in lbls.pairs:
            key = f"{name}={value}"
            pair_uncovered[key] += unc
            name_uncovered[name] += unc
            pair_count[key] += 1
            entries += 1
        metric_count[lbls.get(METRIC_NAME)] += 1
    div = max(duration, 1)
    names = idx.label_names()
    value_len: dict[str, int] = {}
    cardinality: dict[str, int] = {}
    postings = 0
    for name in names:
        values = idx.label_values(name)
        postings += len(values)
        value_len[name] = sum(len(v.encode()) for v in values)
        cardinality[name] = len(values)
    metric_count.pop("", None)
    sections = {
        "Label pairs most involved in churning": _top(
            {k: v // div for k, v in pair_uncovered.items()}, limit
        ),
        "Label names most involved in churning": _top(
            {k: v // div for k, v in name_uncovered.items()}, limit
        ),
        "Most common label pairs": _top(dict(pair_count), limit),
        "Label names with highest cumulative label value length": _top(value_len, limit),
        "Highest cardinality labels": _top(cardinality, limit),
        "Highest cardinality metric names": _top(dict(metric_count), limit),
    }
    return AnalyzeReport(
        block_id=meta.ulid,
        duration_ms=duration,
        total_series=n,
        label_names=len(names),
        postings=postings,
        postings_entries=entries,
        sections=sections,
    )


def render_report(report: AnalyzeReport, out: TextIO, *, plain: bool = False) -> None:
    """Prints a report as rich tables, or as promtool's text when `plain`."""
    head = [
        ("Block ID", report.block_id),
        ("Duration", format_go_duration(report.duration_ms)),
        ("Total Series", str(report.total_series)),
        ("Label names", str(report.label_names)),
        ("Postings (unique label pairs)", str(report.postings)),
        ("Postings entries (total label pairs)", str(report.postings_entries)),
    ]
    if plain:
        out.writelines(f"{k}: {v}\n" for k, v in head)
        for title, rows in report.sections.items():
            out.write(f"\n{title}:\n")
            out.writelines(f"{count} {key}\n" for count, key in rows)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=120)
    summary = Table(title="Block", show_header=False)
    for k, v in head:
        summary.add_row(k, v)
    console.print(summary)
    for title, rows in report.sections.items():
        table = Table(title=title)
        table.add_column("count", justify="right")
        table.add_column("label" if "metric" not in title else "metric")
        for count, key in rows:
            table.add_row(str(count), key)
        console.print(table)
