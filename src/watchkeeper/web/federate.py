"""/federate: the latest sample of every matching series, in the text exposition format.

Prometheus's semantics: each match[] is a series selector; a series is included with its
newest sample in [now - lookback_delta, now] unless that sample is a staleness marker;
external labels are appended after the series' own labels unless the series already has
them; families are grouped by metric name and typed "untyped"; timestamps are written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from watchkeeper.model.exposition.floats import format_go_float
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.model.value import stale_mask
from watchkeeper.storage.interface import Queryable, SelectHints
from watchkeeper.web.api.v1.errors import ApiError
from watchkeeper.web.api.v1.params import parse_selectors

FEDERATE_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
"""The Content-Type Prometheus answers /federate with (text format 0.0.4)."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def federate_text(
    queryable: Queryable,
    matcher_sets: Sequence[Sequence[Matcher]],
    now_ms: int,
    lookback_delta_ms: int,
    external_labels: Labels,
) -> bytes:
    """Builds the /federate body for already-parsed match[] selectors."""
    mint = now_ms - lookback_delta_ms
    latest: dict[Labels, tuple[int, float]] = {}
    with queryable.querier(mint, now_ms) as q:
        hints = SelectHints(mint, now_ms)
        for matchers in matcher_sets:
            ss = q.select(list(matchers), hints=hints)
            if not len(ss):
                continue
            last = ss.offsets[1:] - 1
            nonempty = ss.offsets[1:] > ss.offsets[:-1]
            ts = ss.timestamps_ms[last[nonempty]]
            vals = ss.values[last[nonempty]]
            stale = stale_mask(vals)
            labels = [lbl for lbl, keep in zip(ss.labels, nonempty.tolist(), strict=True) if keep]
            for lbl, t, v, s in zip(
                labels, ts.tolist(), vals.tolist(), stale.tolist(), strict=True
            ):
                if not s:
                    latest[lbl] = (t, v)
    ordered = sorted(latest, key=lambda lbl: lbl.name)
    ext = external_labels.pairs
    lines: list[str] = []
    current = None
    for lbl in ordered:
        name = lbl.name
        if name != current:
            lines.append(f"# TYPE {name} untyped")
            current = name
        own = [(n, v) for n, v in lbl.pairs if n != METRIC_NAME]
        names = {n for n, _ in own}
        own.extend((n, v) for n, v in ext if n not in names)
        t, v = latest[lbl]
        body = ",".join(f'{n}="{_escape(val)}"' for n, val in own)
        series = f"{name}{{{body}}}" if body else name
        lines.append(f"{series} {format_go_float(v)} {t}")
    if not lines:
        return b""
    lines.append("")
    return "\n".join(lines).encode()


async def federate_handler(
    request: web.Request,
    queryable: Queryable,
    now_ms: int,
    lookback_delta_ms: int,
    external_labels: Labels,
) -> web.Response:
    """Answers GET /federate?match[]=... (400 with the reason on a bad selector)."""
    matches = request.query.getall("match[]", [])
    try:
        sets = parse_selectors(matches)
    except ApiError as exc:
        raise web.HTTPBadRequest(text=exc.message.split(": ", 1)[-1]) from None
    body = await asyncio.to_thread(
        federate_text, queryable, sets, now_ms, lookback_delta_ms, external_labels
    )
    return web.Response(body=body, headers={"Content-Type": FEDERATE_CONTENT_TYPE})


__all__ = ["FEDERATE_CONTENT_TYPE", "federate_handler", "federate_text"]
