"""Request parameters of the API: times, durations, limits, match[] selectors, label names.

Each parser raises `ApiError` with Prometheus's wording, e.g.
`invalid parameter "start": cannot parse "x" to a valid timestamp`. Times are int64
milliseconds; the defaults for open ranges are Prometheus's MinTime and MaxTime.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Sequence
from typing import Final

from watchkeeper.model.duration import DurationError, parse_duration_ms
from watchkeeper.model.matchers import InvalidMatcherError, Matcher
from watchkeeper.model.timefmt import format_rfc3339_ns
from watchkeeper.promql import ast
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.parser import parse_expr
from watchkeeper.web.api.v1.errors import ApiError, bad_data, invalid_param

_MIN_TIME_S: Final = -(2**63) // 1000 + 62135596801 + 1
_MAX_TIME_S: Final = (2**63 - 1) // 1000 - 62135596801
MIN_TIME_MS: Final = _MIN_TIME_S * 1000
"""Prometheus's MinTime in milliseconds (the default start of series and labels)."""
MAX_TIME_MS: Final = _MAX_TIME_S * 1000 + 999
"""Prometheus's MaxTime in milliseconds (the default end of series and labels)."""

_RFC3339_RE: Final = re.compile(
    r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)\Z"
)
_FLOAT_RE: Final = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)\Z"
)
_INT_RE: Final = re.compile(r"[+-]?\d+\Z")
_EMPTY_MATCHERS: Final = "match[] must contain at least one non-empty matcher"


MIN_TIME_TEXT: Final = format_rfc3339_ns(_MIN_TIME_S * 1_000_000_000)
"""MinTime as Prometheus prints it (RFC 3339); accepted as a time parameter."""
MAX_TIME_TEXT: Final = format_rfc3339_ns(_MAX_TIME_S * 1_000_000_000 + 999_999_999)
"""MaxTime as Prometheus prints it (RFC 3339); accepted as a time parameter."""


def _go_round(x: float) -> float:
    """Rounds half away from zero, as Go's math.Round does."""
    return math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)


def parse_time_ms(text: str) -> int:
    """Parses a unix time in (fractional) seconds or an RFC 3339 time into milliseconds.

    Example:
        >>> parse_time_ms("1.5"), parse_time_ms("1970-01-01T00:00:02.25Z")
        (1500, 2250)

    Raises:
        ValueError: 'cannot parse "x" to a valid timestamp'.
    """
    if _FLOAT_RE.match(text):
        t = float(text)
        if math.isfinite(t):
            whole = math.trunc(t)
            frac_ms = int(_go_round((t - whole) * 1000))
            return int(whole) * 1000 + frac_ms
    m = _RFC3339_RE.match(text)
    if m is not None:
        year, mon, day, hh, mm, ss, frac, zone = m.groups()
        try:
            secs = calendar.timegm((int(year), int(mon), int(day), int(hh), int(mm), int(ss)))
        except (ValueError, OverflowError):
            secs = None
        if secs is not None and 1 <= int(mon) <= 12 and int(hh) < 24 and int(mm) < 60:
            if zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
            ms = int((frac or "0")[:3].ljust(3, "0"))
            return secs * 1000 + ms
    if text == MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise ValueError(f'cannot parse "{text}" to a valid timestamp')


def time_param(value: str | None, name: str, default_ms: int) -> int:
    """Parses an optional time parameter as Prometheus's parseTimeParam does."""
    if not value:
        return default_ms
    try:
        return parse_time_ms(value)
    except ValueError as exc:
        raise invalid_param(name, f"invalid time value for '{name}': {exc}") from None


def required_time_param(value: str | None, name: str) -> int:
    """Parses a required time parameter (query_range's start and end)."""
    try:
        return parse_time_ms(value or "")
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


def parse_duration_param_ms(text: str) -> int:
    """Parses float seconds or a Prometheus duration into milliseconds.

    Raises:
        ValueError: 'cannot parse "x" to a valid duration'.
    """
    if _FLOAT_RE.match(text):
        secs = float(text)
        ns = secs * 1e9
        if math.isinf(secs) or ns > 2**63 - 1 or ns < -(2**63):
            raise ValueError(f'cannot parse "{text}" to a valid duration. It overflows int64')
        return int(ns) // 1_000_000 if ns >= 0 else -(int(-ns) // 1_000_000)
    try:
        return parse_duration_ms(text)
    except DurationError:
        raise ValueError(f'cannot parse "{text}" to a valid duration') from None


def duration_param(value: str | None, name: str) -> int:
    """Parses a required duration parameter (step, timeout) into milliseconds."""
    try:
        return parse_duration_param_ms(value or "")
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


def limit_param(value: str | None) -> int:
    """Parses the `limit` parameter (0 or absent: no limit)."""
    if not value:
        return 0
    if not _INT_RE.match(value):
        raise invalid_param("limit", f'strconv.Atoi: parsing "{value}": invalid syntax')
    n = int(value)
    if not -(2**63) <= n < 2**63:
        raise invalid_param("limit", f'strconv.Atoi: parsing "{value}": value out of range')
    if n < 0:
        raise invalid_param("limit", "limit must be non-negative")
    return n


def parse_selector(text: str, param: str = "match[]") -> list[Matcher]:
    """Parses one series selector (`up{job="api"}`) into its matchers.

    Raises:
        ApiError: bad_data naming the parameter when the text is not a selector or every
            matcher would match the empty label set.
    """
    try:
        expr = parse_expr(text)
    except (ParseError, InvalidMatcherError) as exc:
        if "at least one non-empty matcher" in str(exc):
            raise invalid_param(param, _EMPTY_MATCHERS) from None
        raise invalid_param(param, str(exc)) from None
    if not isinstance(expr, ast.VectorSelector) or expr.offset_ms or expr.at is not None:
        stripped = text.lstrip()
        pos = len(text) - len(stripped)
        while pos < len(text) and (text[pos].isalnum() or text[pos] in "_:"):
            pos += 1
        ch = text[pos] if pos < len(text) else ""
        raise invalid_param(param, f'1:{pos + 1}: parse error: unexpected "{ch}"')
    matchers = list(expr.matchers)
    if all(m.matches_empty() for m in matchers):
        raise invalid_param(param, _EMPTY_MATCHERS)
    return matchers


def parse_selectors(texts: Sequence[str], param: str = "match[]") -> list[list[Matcher]]:
    """Parses every match[] value."""
    return [parse_selector(t, param) for t in texts]


def unescape_label_name(name: str) -> str:
    """Undoes Prometheus's "U__" value-encoding escaping of a label name in a URL path.

    Example:
        >>> unescape_label_name("U__a_2e_b"), unescape_label_name("job")
        ('a.b', 'job')
    """
    if not name.startswith("U__"):
        return name
    body = name[3:]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "_":
            out.append(ch)
            i += 1
            continue
        if i + 1 < len(body) and body[i + 1] == "_":
            out.append("_")
            i += 2
            continue
        end = body.find("_", i + 1)
        code = body[i + 1 : end] if end > 0 else ""
        if not code or any(c not in "0123456789abcdefABCDEF" for c in code):
            return name
        try:
            out.append(chr(int(code, 16)))
        except (ValueError, OverflowError):
            return name
        i = end + 1
    return "".join(out)


def check_label_name(name: str) -> None:
    """Refuses label names that Prometheus 3 refuses (empty or not valid UTF-8)."""
    if not name or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise bad_data(f'invalid label name: "{name}"')


__all__ = [
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "ApiError",
    "check_label_name",
    "duration_param",
    "limit_param",
    "parse_duration_param_ms",
    "parse_selector",
    "parse_selectors",
    "parse_time_ms",
    "required_time_param",
    "time_param",
    "unescape_label_name",
]
