"""Times as Go prints them: RFC 3339 in UTC for any year, as Prometheus's JSON and logs show.

One place for the calendar arithmetic: Python's datetime stops at year 9999 and Prometheus's
time bounds (MinTime, MaxTime) lie far beyond it.
"""

from __future__ import annotations

import functools


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 as a proleptic Gregorian (year, month, day), any year.

    Example:
        >>> civil_from_days(0), civil_from_days(-1), civil_from_days(19_675)
        ((1970, 1, 1), (1969, 12, 31), (2023, 11, 14))
    """
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, doy - (153 * mp + 2) // 5 + 1


@functools.lru_cache(maxsize=64)
def _format_day(days: int) -> str:
    year, month, day = civil_from_days(days)
    year_text = f"{year:04d}" if year >= 0 else f"-{-year:04d}"
    return f"{year_text}-{month:02d}-{day:02d}"


def _format_seconds(seconds: int) -> str:
    days, rem = divmod(seconds, 86400)
    return f"{_format_day(days)}T{rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}"


def format_rfc3339_ns(ns: int) -> str:
    """Nanoseconds as Go's RFC3339Nano in UTC (time.Time's JSON): fraction zeros dropped.

    Example:
        >>> format_rfc3339_ns(1_700_000_000_120_000_000), format_rfc3339_ns(0)
        ('2023-11-14T22:13:20.12Z', '1970-01-01T00:00:00Z')
    """
    seconds, nanos = divmod(ns, 1_000_000_000)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{_format_seconds(seconds)}{fraction}Z"


def format_rfc3339_ms(ms: int) -> str:
    """Milliseconds as Go's RFC3339Nano in UTC (fraction trimmed).

    Example:
        >>> format_rfc3339_ms(1_700_000_000_500)
        '2023-11-14T22:13:20.5Z'
    """
    return format_rfc3339_ns(ms * 1_000_000)


def format_date_ms(ms: int) -> str:
    """Milliseconds in UTC with exactly three fractional digits (Prometheus's query log).

    Example:
        >>> format_date_ms(1_700_000_000_123), format_date_ms(-1500)
        ('2023-11-14T22:13:20.123Z', '1969-12-31T23:59:58.500Z')
    """
    seconds, millis = divmod(ms, 1000)
    return f"{_format_seconds(seconds)}.{millis:03d}Z"
