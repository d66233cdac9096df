"""Prometheus durations ("1h30m", "15s", "2w") as integer milliseconds.

Example:
    >>> parse_duration_ms("1m30s")
    90000
    >>> format_duration_ms(90000)
    '1m30s'
"""

from __future__ import annotations

import re
from typing import Final

_UNITS_MS: Final = (
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
)
_DURATION_RE: Final = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_MAX_MS: Final = (1 << 63) - 1


class DurationError(ValueError):
    """Raised when text is not a Prometheus duration."""


def parse_duration_ms(text: str) -> int:
    """Parses a Prometheus duration into milliseconds ("0" is allowed; "" and "10" are not).

    Raises:
        DurationError: with Prometheus's message when the text is not a duration.
    """
    if text == "0":
        return 0
    match = _DURATION_RE.match(text)
    if text == "" or match is None:
        raise DurationError(f'not a valid duration string: "{text}"')
    total = 0
    for group, (_, unit_ms) in zip(match.groups(), _UNITS_MS, strict=True):
        if group is not None:
            total += int(group) * unit_ms
    if total > _MAX_MS:
        raise DurationError(f'duration out of range: "{text}"')
    return total


def format_duration_ms(ms: int) -> str:
    """Formats milliseconds the way Prometheus prints durations ("0s" for zero)."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    parts = []
    for unit, unit_ms in _UNITS_MS:
        count, ms = divmod(ms, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
