"""The query log: one JSON line per PromQL query, written as Prometheus 3.5's `query_log_file`.

The engine hands every query that reached execution (failed ones with an `error` field) to
the open `QueryLogFile`. Where the query came from is read from `QUERY_ORIGIN`: the HTTP API
sets it to an `http_request_origin`, the rule manager to a `rule_group_origin`. A line:

    {"time":"2026-11-27T10:03:43.712728137Z","level":"INFO","source":"engine.py",
     "msg":"promql query logged","params":{"end":"2023-11-14T22:13:20.123Z","query":"up",
     "start":"2023-11-14T22:13:20.123Z","step":0},"stats":{"timings":{...},"samples":{...}},
     "spanID":"0000000000000000","httpRequest":{"clientIP":"127.0.0.1","method":"GET",
     "path":"/api/v1/query"}}

As in Prometheus, each line is one unbuffered write(2) to a file opened for appending: lines
are on disk when the query ends, and a file renamed by logrotate is let go at the next reload.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

import orjson

from watchkeeper.model.exposition.floats import format_go_json_float
from watchkeeper.model.timefmt import format_date_ms, format_rfc3339_ns
from watchkeeper.promql.value import QueryStats

LOG_SOURCE: Final = "engine.py"
"""The `source` field (Prometheus writes the Go file and line of its logging call)."""
SPAN_ID: Final = "0000000000000000"
"""The `spanID` field: Prometheus writes the all-zero span ID when tracing is off, as here."""


class QueryLogOpenError(OSError):
    """Raised when the query log file cannot be opened; the message is Prometheus's.

    Example: "can't create json log file: open /x/q.log: no such file or directory".
    """


@dataclass(frozen=True, slots=True)
class QueryOrigin:
    """Where a query came from: one top-level key of the log line and its string fields."""

    key: str
    fields: tuple[tuple[str, str], ...]
    json: str = field(init=False, repr=False, compare=False)
    """The `"key":{...}` member of the line (fields sorted, as Go writes a map)."""

    def __post_init__(self) -> None:
        # NB: encoded once, as a rule group's origin serves every one of its evaluations.
        object.__setattr__(self, "json", f'"{self.key}":' + _json_string_map(sorted(self.fields)))


def http_request_origin(client_ip: str, method: str, path: str) -> QueryOrigin:
    """The origin of a query sent to the HTTP API (path as requested, with any route prefix)."""
    return QueryOrigin("httpRequest", (("clientIP", client_ip), ("method", method), ("path", path)))


def rule_group_origin(file: str, name: str) -> QueryOrigin:
    """The origin of a query evaluated for a rule group."""
    return QueryOrigin("ruleGroup", (("file", file), ("name", name)))


QUERY_ORIGIN: ContextVar[QueryOrigin | None] = ContextVar("query_origin", default=None)
"""The origin of the queries run in the current context (None: written without one)."""


@contextmanager
def query_origin(origin: QueryOrigin) -> Iterator[None]:
    """Marks the queries run inside the block as coming from `origin`."""
    token = QUERY_ORIGIN.set(origin)
    try:
        yield
    finally:
        QUERY_ORIGIN.reset(token)


@dataclass(frozen=True, slots=True)
class LoggedQuery:
    """One finished query as the engine reports it to the query log.

    `step_ms` is 0 for instant queries; `error` is empty when the query succeeded.
    """

    query: str
    start_ms: int
    end_ms: int
    step_ms: int
    stats: QueryStats
    error: str = ""
    origin: QueryOrigin | None = None


class QueryLogFile:
    """An open query log file; `write` and `close` are safe to call from several threads.

    Once closed, writes are dropped: a query that ends while a reload swaps the file loses
    its line rather than writing to a reused file descriptor.
    """

    def __init__(self, path: str, fd: int, *, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.path = path
        self._fd = fd
        self._now_ns = now_ns
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str, *, now_ns: Callable[[], int] = time.time_ns) -> QueryLogFile:
        """Opens (creating if needed) `path` for appending, as Prometheus does (mode 0666).

        Raises:
            QueryLogOpenError: when the file cannot be opened, with Prometheus's message.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            # NB: Go spells errno texts in lower case ("no such file or directory").
            reason = reason[:1].lower() + reason[1:]
            raise QueryLogOpenError(f"can't create json log file: open {path}: {reason}") from exc
        return cls(path, fd, now_ns=now_ns)

    def write(self, entry: LoggedQuery) -> None:
        """Appends one line for `entry`.

        Raises:
            OSError: when the line cannot be written (the engine counts it as a failure).
        """
        data = format_line(entry, self._now_ns()).encode()
        with self._lock:
            if self._fd < 0:
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Closes the file; later writes are dropped.

        Raises:
            OSError: when closing fails (the file is considered closed anyway).
        """
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def format_line(entry: LoggedQuery, now_ns: int) -> str:
    """The JSON line (with its newline) Prometheus 3.5 writes for a query at `now_ns`."""
    s = entry.stats
    eval_total = _seconds(s.exec_total_time_s or s.total_time_s)
    end = format_date_ms(entry.end_ms)
    start = end if entry.start_ms == entry.end_ms else format_date_ms(entry.start_ms)
    parts = [
        f'{{"time":"{format_rfc3339_ns(now_ns)}","level":"INFO","source":"{LOG_SOURCE}",'
        f'"msg":"promql query logged","params":{{"end":"{end}",'
        f'"query":{_json_string(entry.query)},"start":"{start}",'
        # NB: Prometheus writes the step in whole seconds, truncated.
        f'"step":{entry.step_ms // 1000}}}'
    ]
    if entry.error:
        parts.append(f',"error":{_json_string(entry.error)}')
    parts.append(
        f',"stats":{{"timings":{{"evalTotalTime":{eval_total},'
        f'"resultSortTime":{_seconds(s.result_sort_time_s)},'
        f'"queryPreparationTime":{_seconds(s.query_preparation_time_s)},'
        f'"innerEvalTime":{_seconds(s.inner_eval_time_s)},'
        f'"execQueueTime":{_seconds(s.exec_queue_time_s)},'
        f'"execTotalTime":{eval_total}}},'
        f'"samples":{{"totalQueryableSamples":{s.total_queryable_samples},'
        f'"peakSamples":{s.peak_samples}}}}},"spanID":"{SPAN_ID}"'
    )
    if entry.origin is not None:
        parts.append("," + entry.origin.json)
    parts.append("}\n")
    return "".join(parts)


def _json_string(text: str) -> str:
    """A JSON string as Go's encoder writes it (no HTML escaping, U+2028/U+2029 escaped)."""
    try:
        out = orjson.dumps(text).decode()
    except orjson.JSONEncodeError:
        # Lone surrogates cannot be encoded; Go writes U+FFFD for invalid UTF-8.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        out = orjson.dumps(text).decode()
    if "\u2028" in out or "\u2029" in out:
        out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return out


def _json_string_map(items: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{_json_string(k)}:{_json_string(v)}" for k, v in items) + "}"


def _seconds(value: float) -> str:
    """A duration in seconds as Go writes a time.Duration's Seconds() (whole nanoseconds)."""
    rounded = round(value, 9)
    if 1e-6 <= rounded < 1e9:
        # NB: with nine decimals at most, fixed notation is already the shortest form.
        return f"{rounded:.9f}".rstrip("0").rstrip(".")
    return format_go_json_float(rounded)
