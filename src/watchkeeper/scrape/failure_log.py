"""scrape_failure_log_file: failed scrapes as JSON lines, as Prometheus 3.5's JSONFileLogger.

One line per failed HTTP scrape (not for parse or limit errors, as in Prometheus):
`{"time":"2026-11-27T09:41:09.497246Z","level":"ERROR","source":"loop.py:301",
"msg":"server returned HTTP status 500 Internal Server Error","job_name":"app",
"target":"http://127.0.0.1:8080/metrics"}`. The manager opens the files anew on every
config load (so rotated files are picked up) and closes the previous ones.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

log = logging.getLogger(__name__)


class ScrapeFailureLog:
    """One open failure log file; every write appends whole lines (O_APPEND)."""

    def __init__(self, path: str) -> None:
        """Opens (creates) the file for appending.

        Raises:
            OSError: "can't create json log file: ..." when it cannot be opened.
        """
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OSError(f"can't create json log file: {exc}") from exc

    def write(self, message: str, *, job_name: str, target: str) -> None:
        """Appends one failure; errors writing are logged, never raised.

        `source` names the caller's file and line, as slog's does.
        """
        caller = sys._getframe(1)
        stamp = datetime.now(tz=UTC)
        fraction = f"{stamp.microsecond:06d}".rstrip("0")
        line = {
            "time": stamp.strftime("%Y-%m-%dT%H:%M:%S")
            + (f".{fraction}" if fraction else "")
            + "Z",
            "level": "ERROR",
            "source": f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}",
            "msg": message,
            "job_name": job_name,
            "target": target,
        }
        try:
            os.write(self._fd, orjson.dumps(line) + b"\n")
        except OSError as exc:
            log.error(
                "Writing the scrape failure log failed",
                extra={"kv": {"file": self.path, "err": str(exc)}},
            )

    def close(self) -> None:
        """Closes the file (writes after this are errors)."""
        os.close(self._fd)


def open_failure_logs(paths: Iterable[str]) -> dict[str, ScrapeFailureLog]:
    """Opens each distinct non-empty path once (configs naming one file share it).

    Raises:
        OSError: when a file cannot be opened; those opened already are closed again.
    """
    logs: dict[str, ScrapeFailureLog] = {}
    try:
        for path in paths:
            if path and path not in logs:
                logs[path] = ScrapeFailureLog(path)
    except OSError:
        for opened in logs.values():
            opened.close()
        raise
    return logs
