"""Logging in Prometheus 3's formats: logfmt (the default) or JSON, chosen by --log.format.

A line looks like Prometheus's slog output:
`time=2026-11-27T06:40:00.123Z level=INFO source=db.py:120 msg="Compaction done" blocks=3`.
Extra key/value pairs come from `logger.info("msg", extra={"kv": {...}})`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_LEVEL_NAMES: Final = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "ERROR",
}


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(record.created, tz=UTC)
    fields: dict[str, Any] = {
        "time": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "level": _LEVEL_NAMES.get(record.levelno, record.levelname),
        "source": f"{record.filename}:{record.lineno}",
        "msg": record.getMessage(),
    }
    component = record.name.removeprefix("watchkeeper.")
    if component and component != "root":
        fields["component"] = component
    kv = getattr(record, "kv", None)
    if isinstance(kv, dict):
        fields.update(kv)
    if record.exc_info:
        fields["err"] = logging.Formatter().formatException(record.exc_info)
    return fields


class LogfmtFormatter(logging.Formatter):
    """Formats records as logfmt key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        """Renders one record."""
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """Formats records as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Renders one record."""
        return orjson.dumps(_fields(record), default=str).decode()


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    """Configures the root logger for a server process (stderr, Prometheus's formats).

    Raises:
        ValueError: when the level or format is unknown (names the flag).
    """
    if level not in LEVELS:
        raise ValueError(f"--log.level: unknown level {level!r} (debug, info, warn, error)")
    if fmt not in ("logfmt", "json"):
        raise ValueError(f"--log.format: unknown format {fmt!r} (logfmt, json)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter() if fmt == "logfmt" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
