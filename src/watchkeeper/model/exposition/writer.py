"""Writing metric families as text 0.0.4 or OpenMetrics 1.0, and choosing one by Accept.

Used by every server that exposes metrics (/federate, the pushgateway, exporters, our own
/metrics). Output parses back to the same families, values bit for bit (NaN is written as
"NaN" and reads back as Prometheus's ordinary NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from watchkeeper.model.exposition.floats import format_go_float, format_openmetrics_float
from watchkeeper.model.exposition.parser import SCRAPE_PROTOCOL_HEADERS
from watchkeeper.model.exposition.types import Exemplar, MetricFamily
from watchkeeper.model.labels import (
    METRIC_NAME,
    Labels,
    is_valid_legacy_label_name,
    is_valid_legacy_metric_name,
)

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of `write_text` output."""

OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""The Content-Type of `write_openmetrics` output."""

DEFAULT_SCRAPE_PROTOCOLS: Final = (
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
)
"""Prometheus 3.5's default `scrape_protocols`, in order of preference."""

Writer = Callable[[Sequence[MetricFamily]], bytes]
"""A function that renders metric families as one exposition body."""

_TEXT_TYPES: Final = frozenset(("counter", "gauge", "histogram", "summary"))


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _name(name: str) -> str:
    return name if is_valid_legacy_metric_name(name) else f'"{_escape_value(name)}"'


def _series(labels: Labels) -> str:
    name = labels.get(METRIC_NAME)
    parts = []
    for n, v in labels.pairs:
        if n == METRIC_NAME:
            continue
        ln = n if is_valid_legacy_label_name(n) else f'"{_escape_value(n)}"'
        parts.append(f'{ln}="{_escape_value(v)}"')
    if is_valid_legacy_metric_name(name):
        return f"{name}{{{','.join(parts)}}}" if parts else name
    return "{" + ",".join([f'"{_escape_value(name)}"', *parts]) + "}"


def write_text(families: Sequence[MetricFamily]) -> bytes:
    """Renders families in the Prometheus text format 0.0.4 (types outside it: untyped)."""
    out: list[str] = []
    for fam in families:
        name = _name(fam.name)
        if fam.help:
            out.append(f"# HELP {name} {_escape_help_text(fam.help)}\n")
        mtype = fam.type if fam.type in _TEXT_TYPES else "untyped"
        out.append(f"# TYPE {name} {mtype}\n")
        for s in fam.samples:
            ts = "" if s.timestamp_ms is None else f" {s.timestamp_ms}"
            out.append(f"{_series(s.labels)} {format_go_float(s.value)}{ts}\n")
    return "".join(out).encode()


def _om_seconds(ms: int) -> str:
    """Seconds that Prometheus's int64(ts*1000) turns back into exactly `ms`."""
    seconds = ms / 1000.0
    for _ in range(4):
        if int(seconds * 1000.0) == ms:
            break
        seconds = math.nextafter(seconds, math.inf if ms > 0 else -math.inf)
    return format_openmetrics_float(seconds)


def _om_exemplar(ex: Exemplar) -> str:
    parts = ",".join(
        f"{n if is_valid_legacy_label_name(n) else chr(34) + _escape_value(n) + chr(34)}"
        f'="{_escape_value(v)}"'
        for n, v in ex.labels.pairs
    )
    ts = "" if ex.timestamp_ms is None else f" {_om_seconds(ex.timestamp_ms)}"
    return f" # {{{parts}}} {format_openmetrics_float(ex.value)}{ts}"


def write_openmetrics(families: Sequence[MetricFamily]) -> bytes:
    """Renders families as OpenMetrics 1.0 text, ending with "# EOF"."""
    out: list[str] = []
    for fam in families:
        name = _name(fam.name)
        out.append(f"# TYPE {name} {fam.type}\n")
        if fam.unit:
            out.append(f"# UNIT {name} {fam.unit}\n")
        if fam.help:
            out.append(f"# HELP {name} {_escape_value(fam.help)}\n")
        for s in fam.samples:
            ts = "" if s.timestamp_ms is None else f" {_om_seconds(s.timestamp_ms)}"
            ex = "" if s.exemplar is None else _om_exemplar(s.exemplar)
            out.append(f"{_series(s.labels)} {format_openmetrics_float(s.value)}{ts}{ex}\n")
    out.append("# EOF\n")
    return "".join(out).encode()


def _accept_ranges(accept: str) -> list[tuple[float, int, str, dict[str, str]]]:
    ranges = []
    for i, part in enumerate(accept.split(",")):
        media, *raw_params = part.split(";")
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        if media.strip():
            ranges.append((-q, i, media.strip().lower(), params))
    ranges.sort()
    return [(-q, i, m, p) for q, i, m, p in ranges]


def negotiate(accept_header: str) -> tuple[str, Writer]:
    """Chooses the exposition format for an Accept header (client_golang's negotiation).

    OpenMetrics when the best acceptable range asks for it (version 1.0.0, 0.0.1 or none),
    else the text format, which is also the default for a missing or unusable header.
    """
    for q, _, media, params in _accept_ranges(accept_header or ""):
        if q <= 0:
            continue
        version = params.get("version", "")
        if media == "application/openmetrics-text" and version in ("", "1.0.0", "0.0.1"):
            return OPENMETRICS_CONTENT_TYPE, write_openmetrics
        if media == "text/plain" and version in ("", "0.0.4", "1.0.0"):
            return TEXT_CONTENT_TYPE, write_text
    return TEXT_CONTENT_TYPE, write_text


def scrape_accept_header(
    protocols: Sequence[str] = DEFAULT_SCRAPE_PROTOCOLS, *, escaping: str = "allow-utf-8"
) -> str:
    """Builds the Accept header a scrape sends for `scrape_protocols` (Prometheus 3.5's rules).

    Example:
        >>> scrape_accept_header().split(",")[0]
        'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6'

    Raises:
        ValueError: for an unknown protocol name (Prometheus's message).
    """
    vals = []
    weight = len(SCRAPE_PROTOCOL_HEADERS) + 1
    for proto in protocols:
        header = SCRAPE_PROTOCOL_HEADERS.get(proto)
        if header is None:
            known = ", ".join(sorted(SCRAPE_PROTOCOL_HEADERS))
            raise ValueError(f"unknown scrape protocol {proto}, supported: [{known}]")
        if proto in ("PrometheusText1.0.0", "OpenMetricsText1.0.0"):
            header += f";escaping={escaping}"
        vals.append(f"{header};q=0.{weight}")
        weight -= 1
    vals.append(f"*/*;q=0.{weight}")
    return ",".join(vals)
