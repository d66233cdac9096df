"""The careful, line-at-a-time parser of both text formats (the fast path's fallback).

It follows Prometheus's lexers (model/textparse/promlex.l and openmetricslex.l): the text
format allows blank lines, free comments and spaces or tabs between tokens; OpenMetrics
allows single spaces only, no blank lines and no free comments. Errors are `ValueError`s
carrying Prometheus's wording; the caller adds the line number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from watchkeeper.model.exposition.floats import format_openmetrics_float, go_quote, parse_go_float
from watchkeeper.model.exposition.types import Exemplar
from watchkeeper.model.labels import Labels

_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LNAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_QSTRING_RE: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OM_QSTRING_RE: Final = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')
_WS_RE: Final = re.compile(r"[ \t]*")
_TEXT_META_RE: Final = re.compile(r"#[ \t]+(HELP|TYPE)[ \t]+")
_UNESCAPE_RE: Final = re.compile(r'\\(["\\n])')
_HELP_UNESCAPE_RE: Final = re.compile(r"\\([\\n])")
_DIGITS_RE: Final = re.compile(r"[0-9]+")
_INT64_MAX: Final = (1 << 63) - 1

TEXT_TYPES: Final = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "untyped": "unknown",
}
OM_TYPES: Final = frozenset(
    ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")
)


@dataclass(slots=True)
class Line:
    """What one line holds: kind is blank, comment, help, type, unit, eof or sample."""

    kind: str
    name: str = ""
    text: str = ""
    series: str = ""
    value: float = 0.0
    timestamp_ms: int | None = None
    exemplar: Exemplar | None = None


def unescape(text: str) -> str:
    r"""Undoes label value escaping (\" \\ \n); other backslashes stay, as in Prometheus."""
    if "\\" not in text:
        return text
    return _UNESCAPE_RE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _unescape_help(text: str) -> str:
    if "\\" not in text:
        return text
    return _HELP_UNESCAPE_RE.sub(lambda m: "\n" if m.group(1) == "n" else "\\", text)


def _token(line: str, pos: int) -> str:
    """The offending text at pos, for error messages."""
    return line[pos : pos + 1] if pos < len(line) else "\n"


def _err(expected: str, line: str, pos: int) -> ValueError:
    return ValueError(
        f"{expected}, got {go_quote(_token(line, pos))} while parsing: "
        f"{go_quote((line + chr(10))[: pos + 1])}"
    )


def normalize_bucket_label(series: str, metric_type: str) -> str:
    """Rewrites le (histograms) or quantile (summaries) values the way OpenMetrics prints them.

    Prometheus normalises these label values by the current TYPE; the series text carries the
    normalised value so that `parse_series_text` needs no type.
    """
    if metric_type == "histogram":
        label = 'le="'
    elif metric_type == "summary":
        label = 'quantile="'
    else:
        return series
    start = series.find(label)
    while start > 0 and series[start - 1] not in "{,":
        start = series.find(label, start + 1)
    if start <= 0:
        return series
    vstart = start + len(label)
    vend = series.find('"', vstart)
    if vend < 0:
        return series
    raw = series[vstart:vend]
    try:
        normal = format_openmetrics_float(float(raw))
    except ValueError:
        return series
    if normal == raw or "_" in raw or raw.strip() != raw:
        return series
    return series[:vstart] + normal + series[vend:]


def _parse_labels(line: str, pos: int, *, om: bool, exemplar: bool) -> tuple[int, list[str], str]:
    """Parses from just after "{" to just after "}"; returns (pos, tokens, metric name)."""
    qre = _OM_QSTRING_RE if om else _QSTRING_RE
    parts: list[str] = []
    name = ""
    while True:
        if not om:
            pos = _WS_RE.match(line, pos).end()  # type: ignore[union-attr]
        if line.startswith("}", pos):
            return pos + 1, parts, name
        m = _LNAME_RE.match(line, pos) or qre.match(line, pos)
        if m is None:
            raise _err("expected label name", line, pos)
        token = m.group()
        pos = m.end()
        if not om:
            pos = _WS_RE.match(line, pos).end()  # type: ignore[union-attr]
        nxt = line[pos : pos + 1]
        if nxt in (",", "}") and token.startswith('"'):
            if exemplar:
                raise _err("expected label name", line, pos)
            if name:
                raise ValueError(f"metric name already set while parsing: {go_quote(line[:pos])}")
            name = token
            parts.append(token)
            if nxt == "}":
                return pos + 1, parts, name
            parts.append(",")
            pos += 1
            continue
        if nxt != "=":
            raise _err("expected equal", line, pos)
        pos += 1
        if not om:
            pos = _WS_RE.match(line, pos).end()  # type: ignore[union-attr]
        v = qre.match(line, pos)
        if v is None:
            raise _err("expected label value", line, pos)
        parts.append(f"{token}={v.group()}")
        pos = v.end()
        if not om:
            pos = _WS_RE.match(line, pos).end()  # type: ignore[union-attr]
        if line.startswith(",", pos):
            parts.append(",")
            pos += 1
        elif om and not line.startswith("}", pos):
            raise _err("expected comma or brace close", line, pos)


def _series(line: str, pos: int, *, om: bool) -> tuple[int, str]:
    """Parses the metric name and labels; returns (pos after them, canonical series text)."""
    m = _NAME_RE.match(line, pos)
    name = ""
    head = ""
    if m is not None:
        name = head = m.group()
        pos = m.end()
        if not om:
            pos = _WS_RE.match(line, pos).end()  # type: ignore[union-attr]
    if line.startswith("{", pos):
        pos, parts, quoted = _parse_labels(line, pos + 1, om=om, exemplar=False)
        if quoted and name:
            raise ValueError(f"metric name already set while parsing: {go_quote(line[:pos])}")
        name = name or quoted
        if not name:
            raise ValueError(f"metric name not set while parsing: {go_quote(line[:pos])}")
        return pos, head + "{" + "".join(parts) + "}"
    if not name:
        raise _err("expected a valid start token", line, pos)
    return pos, head


def parse_text_line(line: str) -> Line:
    """Parses one line of the Prometheus text format 0.0.4 (without its newline)."""
    pos = _WS_RE.match(line).end()  # type: ignore[union-attr]
    if pos == len(line):
        return Line("blank")
    if line.startswith("#", pos):
        meta = _TEXT_META_RE.match(line, pos)
        if meta is None:
            return Line("comment", text=line[pos:])
        kind = meta.group(1)
        pos = meta.end()
        m = _NAME_RE.match(line, pos) or _QSTRING_RE.match(line, pos)
        if m is None:
            raise _err(f"expected metric name after {kind}", line, pos)
        name = m.group()
        name = unescape(name[1:-1]) if name.startswith('"') else name
        rest = line[m.end() :]
        text = rest[1:] if rest else ""
        if kind == "TYPE":
            if text not in TEXT_TYPES:
                raise ValueError(f"invalid metric type {go_quote(text)}")
            return Line("type", name=name, text=TEXT_TYPES[text])
        return Line("help", name=name, text=_unescape_help(text))
    start = pos
    pos, series = _series(line, pos, om=False)
    pos = _WS_RE.match(line, pos).end()  # type: ignore[union-attr]
    vend = pos
    while vend < len(line) and line[vend] not in "{ \t":
        vend += 1
    if vend == pos:
        raise _err("expected value after metric", line, pos)
    try:
        value = parse_go_float(line[pos:vend])
    except ValueError as exc:
        raise ValueError(f"{exc} while parsing: {go_quote(line[start:vend])}") from None
    pos = _WS_RE.match(line, vend).end()  # type: ignore[union-attr]
    ts: int | None = None
    if pos < len(line):
        d = _DIGITS_RE.match(line, pos)
        if d is None:
            raise _err("expected timestamp or new record", line, pos)
        ts = int(d.group())
        if ts > _INT64_MAX:
            raise ValueError(
                f"strconv.ParseInt: parsing {go_quote(d.group())}: value out of range"
                f" while parsing: {go_quote(line[start : d.end()])}"
            )
        pos = _WS_RE.match(line, d.end()).end()  # type: ignore[union-attr]
        if pos < len(line):
            raise _err("expected next entry after timestamp", line, pos)
    return Line("sample", series=series, value=value, timestamp_ms=ts)


def _om_float(line: str, start: int, pos: int, what: str) -> tuple[int, float]:
    """Parses " <float>" at pos; returns (pos after it, value)."""
    if not line.startswith(" ", pos) or pos + 1 >= len(line) or line[pos + 1] == " ":
        raise _err(f"expected value after {what}", line, pos)
    end = line.find(" ", pos + 1)
    end = len(line) if end < 0 else end
    try:
        return end, parse_go_float(line[pos + 1 : end])
    except ValueError as exc:
        raise ValueError(f"{exc} while parsing: {go_quote(line[start:end])}") from None


def _om_timestamp(line: str, start: int, pos: int, what: str) -> tuple[int, int]:
    end = line.find(" ", pos + 1)
    end = len(line) if end < 0 else end
    try:
        seconds = parse_go_float(line[pos + 1 : end])
    except ValueError as exc:
        raise ValueError(f"{exc} while parsing: {go_quote(line[start:end])}") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid {what}timestamp {format_openmetrics_float(seconds)}")
    ms = int(seconds * 1000)
    if not -(1 << 63) < ms <= _INT64_MAX:
        raise ValueError(f"{what}timestamp out of range while parsing: {go_quote(line[start:end])}")
    return end, ms


def split_pair(part: str) -> tuple[str, str]:
    """Splits `name="v"` or `"quoted name"="v"` into the (unescaped) name and raw value."""
    if part.startswith('"'):
        m = _QSTRING_RE.match(part)
        if m is not None:
            return unescape(m.group()[1:-1]), part[m.end() + 1 :]
    name, _, raw = part.partition("=")
    return name, raw


def _om_exemplar(line: str, start: int, pos: int) -> Exemplar:
    """Parses an exemplar starting at the "{" after " # "."""
    pos, parts, _ = _parse_labels(line, pos + 1, om=True, exemplar=True)
    pairs = []
    for part in parts:
        if part == ",":
            continue
        name, raw = split_pair(part)
        pairs.append((name, unescape(raw[1:-1])))
    pos, value = _om_float(line, start, pos, "exemplar labels")
    ts: int | None = None
    if pos < len(line):
        if not line.startswith(" ", pos) or pos + 1 >= len(line):
            raise _err("expected timestamp or comment", line, pos)
        pos, ts = _om_timestamp(line, start, pos, "exemplar ")
        if pos < len(line):
            raise _err("expected next entry after exemplar timestamp", line, pos)
    return Exemplar(Labels(pairs), value, ts)


def parse_om_line(line: str) -> Line:
    """Parses one line of OpenMetrics 1.0 text (without its newline)."""
    if line.startswith("#"):
        if line == "# EOF":
            return Line("eof")
        for kind in ("HELP", "TYPE", "UNIT"):
            if line.startswith(f"# {kind} "):
                break
        else:
            raise _err("expected a valid start token", line, 0)
        pos = len(kind) + 3
        m = _NAME_RE.match(line, pos) or _OM_QSTRING_RE.match(line, pos)
        if m is None:
            raise _err(f"expected metric name after {kind}", line, pos)
        name = m.group()
        name = unescape(name[1:-1]) if name.startswith('"') else name
        if not line.startswith(" ", m.end()):
            raise ValueError(f"expected text in {kind}")
        text = line[m.end() + 1 :]
        if kind == "TYPE":
            if text not in OM_TYPES:
                raise ValueError(f"invalid metric type {go_quote(text)}")
            return Line("type", name=name, text=text)
        if kind == "UNIT":
            if text and (not name.endswith("_" + text)):
                raise ValueError(f"unit {go_quote(text)} not a suffix of metric {go_quote(name)}")
            return Line("unit", name=name, text=text)
        return Line("help", name=name, text=unescape(text))
    if not line:
        raise _err("expected a valid start token", line, 0)
    pos, series = _series(line, 0, om=True)
    pos, value = _om_float(line, 0, pos, "metric")
    ts: int | None = None
    exemplar: Exemplar | None = None
    if pos < len(line):
        if line.startswith(" # {", pos):
            exemplar = _om_exemplar(line, 0, pos + 3)
        else:
            if not line.startswith(" ", pos) or pos + 1 >= len(line) or line[pos + 1] == " ":
                raise _err("expected timestamp or new record", line, pos)
            pos, ts = _om_timestamp(line, 0, pos, "")
            if pos < len(line):
                if not line.startswith(" # {", pos):
                    raise _err("expected next entry after timestamp", line, pos)
                exemplar = _om_exemplar(line, 0, pos + 3)
    return Line("sample", series=series, value=value, timestamp_ms=ts, exemplar=exemplar)
