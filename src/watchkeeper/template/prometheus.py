"""Prometheus's template functions and the alert template convention (template/template.go).

`prometheus_funcs` builds the function map (humanize, query, graphLink, ...);
`expand_alert_template` expands one alert label or annotation as the rule manager does,
returning "<error expanding template: ...>" on failure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from watchkeeper.model.duration import DurationError, parse_duration_ms
from watchkeeper.model.relabel import expand as regexp_expand
from watchkeeper.template.errors import GoFuncError, TemplateError
from watchkeeper.template.gofmt import format_v, go_type, sprintf
from watchkeeper.template.template import Template

ALERT_TEMPLATE_DEFS: Final = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
"""The variable definitions Prometheus prepends to every alert template."""

QueryFunc = Callable[[str], Any]
"""Runs a PromQL query at the evaluation time; returns samples with .Labels and .Value (or
an object with `labels` and `values` columns)."""


@dataclass
class TemplateSample:
    """One sample of a `query` result as templates see it: .Labels and .Value."""

    Labels: dict[str, str] = field(default_factory=dict)
    Value: Any = 0.0
    GO_TYPE: ClassVar[str] = "*template.sample"

    def __str__(self) -> str:
        return f"&{{{format_v(self.Labels)} {format_v(self.Value)}}}"


@dataclass
class AlertTemplateData:
    """The data (dot) of an alert template: .Labels, .ExternalLabels, .ExternalURL, .Value."""

    Labels: dict[str, str]
    ExternalLabels: dict[str, str]
    ExternalURL: str
    Value: Any
    GO_TYPE: ClassVar[str] = (
        "struct { Labels map[string]string; ExternalLabels map[string]string; "
        "ExternalURL string; Value interface {} }"
    )

    def __str__(self) -> str:
        return (
            f"{{{format_v(self.Labels)} {format_v(self.ExternalLabels)} {self.ExternalURL} "
            f"{format_v(self.Value)}}}"
        )


def convert_to_float(value: Any) -> float:
    """prometheus/common's ConvertToFloat: float, int, numeric string or duration.

    Raises:
        GoFuncError: "can't convert T to float" or Go's ParseFloat error.
    """
    if isinstance(value, bool):
        raise GoFuncError("can't convert bool to float")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        from watchkeeper.model.exposition.floats import parse_go_float

        try:
            if any(c in value for c in "pP_"):
                return float.fromhex(value) if value.lower().startswith("0x") else float(value)
            return parse_go_float(value)
        except ValueError as exc:
            message = str(exc)
            if not message.startswith("strconv"):
                message = f'strconv.ParseFloat: parsing "{value}": invalid syntax'
            raise GoFuncError(message) from None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise GoFuncError(f"can't convert {go_type(value)} to float")


def _g4(value: float, suffix: str = "") -> str:
    return sprintf("%.4g", value) + suffix


def humanize(value: Any) -> str:
    """Humanize: SI prefixes with 4 significant digits (1234567 -> 1.235M)."""
    v = convert_to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v, prefix)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v, prefix)


def humanize1024(value: Any) -> str:
    """Humanize with binary prefixes (ki, Mi, ...)."""
    v = convert_to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v, prefix)


def humanize_duration(value: Any) -> str:
    """Seconds as "1d 2h 3m 4s", or "1.5s", "15ms" below a second."""
    v = convert_to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v, "s")
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        duration = int(v)
        seconds = duration % 60
        minutes = (duration // 60) % 60
        hours = (duration // 3600) % 24
        days = duration // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v, prefix + "s")


def humanize_percentage(value: Any) -> str:
    """A ratio as a percentage with 4 significant digits (0.1234 -> 12.34%)."""
    return _g4(convert_to_float(value) * 100, "%")


_LAYOUT_RE: Final = re.compile(
    r"January|Jan|Monday|Mon|2006|-07:00|-0700|Z07:00|MST|PM|pm|\.0+|\.9+|_2|01|02|03|04|05|06|15|1|2|3|4|5"
)


class GoTime(dt.datetime):
    """A time.Time: prints as Go does and has Go's Format, Unix and UTC methods."""

    GO_TYPE: ClassVar[str] = "*time.Time"

    def Format(self, layout: str) -> str:
        """Formats with a Go reference-time layout ("2006-01-02 15:04:05")."""
        return _LAYOUT_RE.sub(lambda m: self._token(m.group()), layout)

    def Unix(self) -> int:
        """Seconds since the epoch."""
        return int(self.timestamp() // 1)

    def UTC(self) -> GoTime:
        """The same instant in UTC."""
        return self

    def _token(self, tok: str) -> str:
        fixed = {
            "January": "%B", "Jan": "%b", "Monday": "%A", "Mon": "%a", "2006": "%Y",
            "06": "%y", "01": "%m", "02": "%d", "15": "%H", "03": "%I", "04": "%M",
            "05": "%S", "PM": "%p",
        }  # fmt: skip
        if tok in fixed:
            return self.strftime(fixed[tok])
        simple = {
            "1": str(self.month),
            "2": str(self.day),
            "_2": f"{self.day:2d}",
            "3": str(self.hour % 12 or 12),
            "4": str(self.minute),
            "5": str(self.second),
            "pm": self.strftime("%p").lower(),
            "MST": "UTC",
            "-0700": "+0000",
            "-07:00": "+00:00",
            "Z07:00": "Z",
        }
        if tok in simple:
            return simple[tok]
        digits = f"{self.microsecond:06d}000"[: len(tok) - 1]
        if tok.startswith(".9"):
            digits = digits.rstrip("0")
            return "." + digits if digits else ""
        return "." + digits


def _to_time(v: float) -> GoTime:
    if math.isnan(v) or math.isinf(v):
        raise GoFuncError("value is NaN or Inf")
    ns = v * 1e9
    if ns > 2**63 - 1 or ns < -(2**63):
        raise GoFuncError(
            f"{format_v(v)} cannot be represented as a nanoseconds timestamp since it overflows "
            "int64"
        )
    # NB: Prometheus goes through model.Time, so times have millisecond resolution.
    ns_int = int(ns)
    ms = -(-ns_int // 1_000_000) if ns_int < 0 else ns_int // 1_000_000
    base = GoTime(1970, 1, 1, tzinfo=dt.UTC)
    out = base + dt.timedelta(milliseconds=ms)
    return GoTime(
        out.year, out.month, out.day, out.hour, out.minute, out.second, out.microsecond,
        tzinfo=dt.UTC,
    )  # fmt: skip


def humanize_timestamp(value: Any) -> str:
    """A Unix timestamp (seconds) as Go prints a UTC time.Time."""
    v = convert_to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return format_v(_to_time(v))


def title(text: str) -> str:
    """Title-cases words (cases.Title with NoLower: other letters keep their case)."""
    out = []
    prev_letter = False
    for ch in text:
        out.append(ch.upper() if not prev_letter and ch.isalpha() else ch)
        prev_letter = ch.isalnum() or ch in "'’_"
    return "".join(out)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise GoFuncError(f"error parsing regexp: {exc}: `{pattern}`") from None


def re_replace_all(pattern: str, repl: str, text: str) -> str:
    """Replaces every match of pattern in text, expanding $1 / ${name} as Go does."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise GoFuncError(
            f"regexp: Compile(`{pattern}`): error parsing regexp: {exc}: `{pattern}`"
        ) from None
    return regex.sub(lambda m: regexp_expand(repl, m), text)


def match(pattern: str, text: str) -> bool:
    """Tells whether the (unanchored) pattern matches text."""
    return _compile(pattern).search(text) is not None


def _query_escape(text: str) -> str:
    return urllib.parse.quote_plus(text, safe="-_.~")


def graph_link(expr: str) -> str:
    """A relative link to the graph page for an expression."""
    return f"/graph?g0.expr={_query_escape(expr)}&g0.tab=0"


def table_link(expr: str) -> str:
    """A relative link to the table view for an expression."""
    return f"/graph?g0.expr={_query_escape(expr)}&g0.tab=1"


def _split_host_port(host_port: str) -> tuple[str, str] | None:
    """net.SplitHostPort; None where Go returns an error."""
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or host_port[end + 1 : end + 2] != ":":
            return None
        host, port = host_port[1:end], host_port[end + 2 :]
        return (host, port) if ":" not in port and "[" not in port else None
    i = host_port.rfind(":")
    if i < 0:
        return None
    host, port = host_port[:i], host_port[i + 1 :]
    if ":" in host or "[" in host or "]" in host:
        return None
    return host, port


def strip_port(host_port: str) -> str:
    """Removes the port of host:port (unchanged when there is none)."""
    split = _split_host_port(host_port)
    return host_port if split is None else split[0]


def strip_domain(host_port: str) -> str:
    """Keeps the first label of a host name (IPs unchanged), keeping any port."""
    split = _split_host_port(host_port)
    host, port = (host_port, "") if split is None else split
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host_port
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def parse_duration(text: str) -> float:
    """A Prometheus duration string as seconds."""
    try:
        return parse_duration_ms(text) / 1000.0
    except DurationError as exc:
        raise GoFuncError(str(exc)) from None


def _samples(result: Any) -> list[TemplateSample]:
    if hasattr(result, "labels") and hasattr(result, "values"):
        return [
            TemplateSample(_as_dict(lbls), float(v))
            for lbls, v in zip(result.labels, result.values, strict=True)
        ]
    out = []
    for s in result:
        if isinstance(s, TemplateSample):
            out.append(s)
        else:
            out.append(TemplateSample(_as_dict(s.Labels), s.Value))
    return out


def _as_dict(labels: Any) -> dict[str, str]:
    if isinstance(labels, Mapping):
        return dict(labels)
    if hasattr(labels, "as_dict"):
        result: dict[str, str] = labels.as_dict()
        return result
    return dict(labels)


def prometheus_funcs(
    query_func: QueryFunc | None = None,
    external_url: str = "",
    *,
    timestamp_ms: int = 0,
) -> dict[str, Callable[..., Any]]:
    """Prometheus's template functions; `query` runs `query_func` (an error if None).

    `timestamp_ms` is the evaluation time that `now` returns (as seconds).
    """

    def query(q: str) -> list[TemplateSample]:
        if query_func is None:
            raise GoFuncError("no query function configured")
        try:
            return _samples(query_func(q))
        except GoFuncError:
            raise
        except Exception as exc:  # the engine's errors become the template's error
            raise GoFuncError(str(exc)) from None

    def first(v: Sequence[TemplateSample]) -> TemplateSample:
        if v:
            return v[0]
        raise GoFuncError("first() called on vector with no elements")

    def label(name: str, s: TemplateSample) -> str:
        return s.Labels.get(name, "")

    def value(s: TemplateSample) -> Any:
        return s.Value

    def strvalue(s: TemplateSample) -> str:
        return s.Labels.get("__value__", "")

    def args(*values: Any) -> dict[str, Any]:
        return {f"arg{i}": v for i, v in enumerate(values)}

    def sort_by_label(name: str, v: Iterable[TemplateSample]) -> list[TemplateSample]:
        return sorted(v, key=lambda s: s.Labels.get(name, ""))

    def to_time(v: Any) -> GoTime:
        return _to_time(convert_to_float(v))

    def to_duration(v: Any) -> dt.timedelta:
        return dt.timedelta(seconds=convert_to_float(v))

    def now() -> float:
        return timestamp_ms / 1000.0

    def path_prefix() -> str:
        return urllib.parse.urlsplit(external_url).path

    def external() -> str:
        return external_url

    return {
        "query": query,
        "first": first,
        "label": label,
        "value": value,
        "strvalue": strvalue,
        "args": args,
        "reReplaceAll": re_replace_all,
        "safeHtml": str,
        "match": match,
        "title": title,
        "toUpper": str.upper,
        "toLower": str.lower,
        "graphLink": graph_link,
        "tableLink": table_link,
        "sortByLabel": sort_by_label,
        "stripPort": strip_port,
        "stripDomain": strip_domain,
        "humanize": humanize,
        "humanize1024": humanize1024,
        "humanizeDuration": humanize_duration,
        "humanizePercentage": humanize_percentage,
        "humanizeTimestamp": humanize_timestamp,
        "toTime": to_time,
        "toDuration": to_duration,
        "now": now,
        "pathPrefix": path_prefix,
        "externalURL": external,
        "parseDuration": parse_duration,
    }


def expand_template(
    name: str, text: str, data: Any, funcs: Mapping[str, Callable[..., Any]]
) -> str:
    """Expands text as Prometheus's Expander.Expand (missingkey=zero).

    Raises:
        TemplateError: "error parsing template NAME: ..." or "error executing template ...".
    """
    try:
        tmpl = Template.parse(name, text, funcs, missingkey="zero")
    except TemplateError as exc:
        raise TemplateError(f"error parsing template {name}: {exc}") from None
    try:
        return tmpl.execute(data)
    except TemplateError as exc:
        raise TemplateError(f"error executing template {name}: {exc}") from None


def expand_alert_template(  # noqa: PLR0917 - the positional signature rules call.
    text: str,
    labels: Mapping[str, str] | Any,
    external_labels: Mapping[str, str] | Any,
    external_url: str,
    value: float,
    query_func: QueryFunc | None = None,
    *,
    name: str = "__alert_",
    timestamp_ms: int = 0,
) -> str:
    """Expands an alert label or annotation template the way the rule manager does.

    Prepends ALERT_TEMPLATE_DEFS, so `$labels`, `$externalLabels`, `$externalURL` and
    `$value` work. `name` should be "__alert_" + the alert name. On any error the result is
    Prometheus's "<error expanding template: ...>" text instead of an exception.
    """
    data = AlertTemplateData(_as_dict(labels), _as_dict(external_labels), external_url, value)
    funcs = prometheus_funcs(query_func, external_url, timestamp_ms=timestamp_ms)
    try:
        return expand_template(name, ALERT_TEMPLATE_DEFS + text, data, funcs)
    except TemplateError as exc:
        return f"<error expanding template: {exc}>"


def check_alert_template(name: str, text: str) -> str | None:
    """Returns the parse error of an alert template as Prometheus reports it, or None."""
    try:
        Template.parse(name, ALERT_TEMPLATE_DEFS + text, prometheus_funcs(), missingkey="zero")
    except TemplateError as exc:
        return str(exc)
    return None
