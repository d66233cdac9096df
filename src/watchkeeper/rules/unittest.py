"""Unit tests for rules in `promtool test rules` format, with promtool's messages.

A test file names rule files and test groups; each group loads input series written in
the expanding notation (`1+2x3`, `_x2`, `stale`), evaluates every rule group from time 0
every `evaluation_interval`, and compares firing alerts (`alert_rule_test`) and PromQL
results (`promql_expr_test`) with what the test expects.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchkeeper.config.rulefmt import DurationMs, GoString, StringMap, parse_go_duration
from watchkeeper.config.yamlsource import ConfigError, line_of, parse_yaml
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.clock import Clock
from watchkeeper.model.duration import format_duration_ms
from watchkeeper.model.exposition.floats import go_quote
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import PromQLError
from watchkeeper.rules.alerting import AlertState, TemplateContext
from watchkeeper.rules.files import RuleLoadError, expand_globs, load_rule_files
from watchkeeper.rules.group import Group, GroupOptions
from watchkeeper.rules.manager import build_groups
from watchkeeper.rules.metrics import RuleMetrics
from watchkeeper.rules.rule import InstantVector, QueryFunc
from watchkeeper.storage.interface import Storage

QueryFuncFactory = Callable[[Storage], QueryFunc]
"""Builds the PromQL query function over a test's storage."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SeriesInput(_Model):
    """One input series: a selector and its values in expanding notation."""

    series: GoString = ""
    values: GoString = ""


class ExpAlert(_Model):
    """An expected firing alert."""

    exp_labels: StringMap = Field(default_factory=dict)
    exp_annotations: StringMap = Field(default_factory=dict)


class AlertTestCase(_Model):
    """Alerts expected to fire for one alert name at one time."""

    eval_time: DurationMs = 0
    alertname: GoString = ""
    exp_alerts: list[ExpAlert] = Field(default_factory=list)


class ExpSample(_Model):
    """An expected sample of a PromQL test."""

    labels: GoString = ""
    value: float = 0.0


class PromQLTestCase(_Model):
    """A PromQL expression and the samples it should give at one time."""

    expr: GoString = ""
    eval_time: DurationMs = 0
    exp_samples: list[ExpSample] = Field(default_factory=list)


class TestGroup(_Model):
    """Input series and the tests over them."""

    interval: DurationMs = 0
    input_series: list[SeriesInput] = Field(default_factory=list)
    alert_rule_test: list[AlertTestCase] = Field(default_factory=list)
    promql_expr_test: list[PromQLTestCase] = Field(default_factory=list)
    external_labels: StringMap = Field(default_factory=dict)
    external_url: GoString = ""
    name: GoString = ""


class UnitTestFile(_Model):
    """A `promtool test rules` file."""

    rule_files: list[GoString] = Field(default_factory=list)
    evaluation_interval: DurationMs = 0
    group_eval_order: list[GoString] = Field(default_factory=list)
    tests: list[TestGroup] = Field(default_factory=list)
    fuzzy_compare: bool = False


class SeriesParseError(ValueError):
    """Raised for an input series that does not parse (the message is PromQL-style).

    `after` is where the last good token of the values ends (-1: before the values), from
    which the runner computes the column promtool reports.
    """

    def __init__(self, message: str, after: int = -1) -> None:
        super().__init__(message)
        self.after = after


_GO_TYPES = {
    (): "main.unitTestFile",
    ("tests",): "main.testGroup",
    ("tests", "input_series"): "main.series",
    ("tests", "alert_rule_test"): "main.alertTestCase",
    ("tests", "alert_rule_test", "exp_alerts"): "main.alert",
    ("tests", "promql_expr_test"): "main.promqlTestCase",
    ("tests", "promql_expr_test", "exp_samples"): "main.sample",
}


def _describe(exc: ValidationError, document: Any) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, ValueError) and "duration" in str(ctx_error):
            return str(ctx_error)
        line = line_of(document, loc) or 0
        path = tuple(p for p in loc[:-1] if isinstance(p, str))
        if err["type"] == "extra_forbidden":
            lines.append((line, f"field {loc[-1]} not found in type {_GO_TYPES.get(path, '?')}"))
        else:
            lines.append((line, f"cannot unmarshal into {loc[-1]}: {err['msg']}"))
    lines.sort()
    return "yaml: unmarshal errors:\n" + "\n".join(f"  line {n}: {m}" for n, m in lines)


_NUMBER = r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|inf|NaN|nan|0x[0-9a-fA-F]+)"
_ITEM_RE = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<b>[-+]{_NUMBER[5:]})?x(?P<n>[0-9]+))?$")
_BLANK_RE = re.compile(r"^_(?:x(?P<n>[0-9]+))?$")


def _number(text: str) -> float:
    lowered = text.lower().lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if lowered == "inf":
        return sign * math.inf
    if lowered == "nan":
        return math.nan
    if lowered.startswith("0x"):
        return sign * int(lowered, 16)
    return float(text)


def expand_values(text: str) -> list[float | None]:
    """Expands promtool's series notation; None marks an omitted sample.

    Example:
        >>> expand_values("1+2x2 _ stale")[:4]
        [1.0, 3.0, 5.0, None]

    Raises:
        SeriesParseError: when an item is not valid notation.
    """
    out: list[float | None] = []
    last_end = -1
    for m in re.finditer(r"\S+", text):
        item = m.group()
        _check_item(item, last_end, m.start())
        last_end = m.end()
        if item == "stale":
            out.append(STALE_NAN)
            continue
        blank = _BLANK_RE.match(item)
        if blank:
            out.extend([None] * (int(blank.group("n")) if blank.group("n") else 1))
            continue
        match = _ITEM_RE.match(item)
        if match is None:
            bad = re.sub(rf"^{_NUMBER}", "", item)[:1] or item[:1]
            raise SeriesParseError(f'parse error: unexpected "{bad}"', last_end)
        start = _number(match.group("a"))
        if match.group("n") is None:
            out.append(start)
            continue
        step = _number(match.group("b")) if match.group("b") else 0.0
        out.extend(start + i * step for i in range(int(match.group("n")) + 1))
    return out


def _check_item(item: str, last_end: int, start: int) -> None:
    """Raises promtool's message for the common typos: words and a dangling `x`."""
    word = re.match(r"^[A-Za-z_][A-Za-z0-9_]*", item)
    if word and item not in ("stale", "Inf", "inf", "NaN", "nan") and not item.startswith("_"):
        if item.startswith("x"):
            raise SeriesParseError('parse error: unexpected "x"', last_end)
        raise SeriesParseError(
            f'parse error: unexpected identifier "{word.group()}" in series values, '
            'expected number or "stale"',
            last_end,
        )
    if re.match(rf"^{_NUMBER}x$", item):
        raise SeriesParseError(
            "parse error: unexpected end of input in series values", start + len(item) - 1
        )


_LABEL_RE = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*")\s*=\s*'
    r'(?P<value>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)\s*(?P<sep>,|\})'
)


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(
            m.group(1), m.group(1)
        ),
        body,
    )


def parse_metric(text: str) -> Labels:
    """Parses a series selector with only equality labels: `name{a="b"}` or `{__name__="x"}`.

    Raises:
        SeriesParseError: when the text is not a metric.
    """
    text = text.strip()
    match = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)?", text)
    name = match.group(1) if match and match.group(1) else ""
    rest = text[len(name) :].strip()
    pairs: dict[str, str] = {}
    if name:
        pairs[METRIC_NAME] = name
    if rest:
        if not rest.startswith("{"):
            raise SeriesParseError(
                f"1:{len(name) + 1}: parse error: unexpected character: {rest[0]!r}"
            )
        pos = 1
        body = rest
        if body[1:].strip() == "}":
            pos = len(body)
        while pos < len(body):
            lm = _LABEL_RE.match(body, pos)
            if lm is None:
                raise SeriesParseError(
                    f"1:{len(name) + pos + 1}: parse error: unexpected character inside braces: "
                    f"{body[pos : pos + 1]!r}"
                )

            label = lm.group("name")
            pairs[_unquote(label) if label.startswith('"') else label] = _unquote(lm.group("value"))
            pos = lm.end()
            if lm.group("sep") == "}":
                if body[pos:].strip():
                    raise SeriesParseError(f"1:{len(name) + pos + 1}: parse error: unexpected data")
                break
        else:
            if pos != len(body) or not body.rstrip().endswith("}"):
                raise SeriesParseError("parse error: unclosed brace")
    if not pairs and not rest:
        raise SeriesParseError("parse error: no metric name")
    return Labels(pairs.items())


def format_labels_go(labels: Labels) -> str:
    """Formats labels as Prometheus's labels.String: {__name__="up", job="a"}."""
    parts = []
    for n, v in labels:
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{n}="{escaped}"')
    return "{" + ", ".join(parts) + "}"


def format_go_upper_exp(value: float) -> str:
    """Formats a float as Go's strconv.FormatFloat(v, 'E', -1, 64): 3E+00."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    digits = np.format_float_scientific(value, unique=True, trim="-", exp_digits=2)
    mantissa, exp = digits.split("e")
    return f"{mantissa.removesuffix('.')}E{exp}"


def _indent(lines: str, indent: str) -> str:
    parts = lines.split("\n")
    return parts[0] + "".join("\n" + indent + p for p in parts[1:])


def _alerts_string(items: list[tuple[Labels, Labels]]) -> str:
    if not items:
        return "[]"
    chunks = []
    for i, (lbls, ann) in enumerate(items):
        body = f"\nLabels:{format_labels_go(lbls)}\nAnnotations:{format_labels_go(ann)}"
        chunks.append(f"{i}:" + _indent(body, "  "))
    return "[\n" + ",\n".join(chunks) + "\n]"


def _samples_string(items: list[tuple[Labels, float]]) -> str:
    if not items:
        return "nil"
    return ", ".join(f"{format_labels_go(lbl)} {format_go_upper_exp(v)}" for lbl, v in items)


class _FixedClock(Clock):
    def __init__(self) -> None:
        self.now = 0

    def now_ms(self) -> int:
        return self.now


@dataclass(slots=True)
class TestReport:
    """The outcome of one test file: promtool's error texts (empty when it passed)."""

    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _default_query_factory(storage: Storage) -> QueryFunc:
    from watchkeeper.rules.manager import engine_query_func

    return engine_query_func(Engine(storage, EngineOptions()))


def _new_storage() -> Storage:
    from watchkeeper.storage.memory import MemoryStorage

    return MemoryStorage()


def run_test_file(path: str, query_factory: QueryFuncFactory | None = None) -> TestReport:
    """Runs every test group of one file and returns promtool's errors."""
    report = TestReport(path)
    try:
        document = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    except OSError as exc:
        report.errors.append(f"open {path}: {(exc.strerror or str(exc)).lower()}")
        return report
    except ConfigError as exc:
        report.errors.append(str(exc).split(": ", 1)[-1])
        return report
    try:
        spec = UnitTestFile.model_validate(document or {})
    except ValidationError as exc:
        report.errors.append(_describe(exc, document))
        return report
    base = Path(path).parent
    rule_files: list[str] = []
    for pattern in spec.rule_files:
        found = expand_globs([pattern], base)
        found = [f for f in found if Path(f).exists()]
        if not found:
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            report.warnings.append(f"  WARNING: no file match pattern {full}")
        rule_files.extend(found)
    eval_ms = spec.evaluation_interval or 60_000
    order: dict[str, int] = {}
    for i, name in enumerate(spec.group_eval_order):
        if name in order:
            report.errors.append(f"group name repeated in evaluation order: {name}")
            return report
        order[name] = i
    for tg in spec.tests:
        report.errors.extend(
            _run_group(
                tg,
                eval_ms,
                order,
                rule_files,
                query_factory or _default_query_factory,
                fuzzy=spec.fuzzy_compare,
            )
        )
    return report


def _load_series(tg: TestGroup, interval_ms: int, storage: Storage) -> str | None:
    labels: list[Labels] = []
    times: list[int] = []
    values: list[float] = []
    for i, s in enumerate(tg.input_series):
        try:
            lbls = parse_metric(s.series)
            vals = expand_values(s.values)
        except SeriesParseError as exc:
            msg = str(exc)
            if not re.match(r"^\d+:\d+:", msg):
                # promtool loads "  <series> <values>" as line i+2 of a PromQL test script and
                # points at the end of the last good token.
                col = 2 + len(s.series) if exc.after < 0 else 3 + len(s.series) + exc.after
                msg = f"{i + 2}:{col}: {msg}"
            return msg
        for j, v in enumerate(vals):
            if v is None:
                continue
            labels.append(lbls)
            times.append(j * interval_ms)
            values.append(v)
    if labels:
        order = sorted(range(len(labels)), key=lambda k: times[k])
        with storage.appender() as app:
            app.append_series(
                [labels[k] for k in order],
                np.array([times[k] for k in order], dtype=np.int64),
                np.array([values[k] for k in order], dtype=np.float64),
            )
    return None


def _run_group(
    tg: TestGroup,
    eval_ms: int,
    order: dict[str, int],
    rule_files: list[str],
    query_factory: QueryFuncFactory,
    *,
    fuzzy: bool = False,
) -> list[str]:
    interval_ms = tg.interval or eval_ms
    storage = _new_storage()
    problem = _load_series(tg, interval_ms, storage)
    if problem is not None:
        return [problem]
    query = query_factory(storage)
    try:
        files = load_rule_files(rule_files)
    except RuleLoadError as exc:
        return exc.errors
    clock = _FixedClock()
    opts = GroupOptions(
        appendable=storage,
        queryable=storage,
        query=query,
        metrics=RuleMetrics(Registry()),
        clock=clock,
        template=TemplateContext(dict(tg.external_labels), tg.external_url, query),
    )
    groups_map = build_groups(files, interval_ms, opts)
    groups = sorted(groups_map.values(), key=lambda g: order.get(g.name, 0))
    for tc in tg.alert_rule_test:
        if not tc.alertname:
            where = f" (in TestGroup {tg.name})" if tg.name else ""
            return [
                "an item under alert_rule_test misses required attribute alertname at "
                f"eval_time {format_duration_ms(tc.eval_time)}{where}"
            ]
    max_t = max(
        [tc.eval_time for tc in tg.alert_rule_test] + [tc.eval_time for tc in tg.promql_expr_test],
        default=0,
    )
    alert_times = sorted({tc.eval_time for tc in tg.alert_rule_test})
    errs: list[str] = []
    curr = 0
    ts = 0
    while ts <= max_t:
        clock.now = ts
        eval_errs: list[str] = []
        for g in groups:
            g.eval(ts)
            eval_errs.extend(
                f"    rule: {r.name}, time: {format_duration_ms(ts)}, err: {r.last_error}"
                for r in g.rules
                if r.last_error
            )
        errs.extend(eval_errs)
        if eval_errs:
            return errs
        while curr < len(alert_times) and ts <= alert_times[curr] < ts + eval_ms:
            t = alert_times[curr]
            errs.extend(_check_alerts(tg, t, groups))
            curr += 1
        ts += eval_ms
    for pc in tg.promql_expr_test:
        errs.extend(_check_expr(pc, query, fuzzy=fuzzy))
    return errs


def _check_alerts(tg: TestGroup, t: int, groups: Sequence[Group]) -> list[str]:
    errs = []
    for tc in (c for c in tg.alert_rule_test if c.eval_time == t):
        got: list[tuple[Labels, Labels]] = [
            (a.labels, a.annotations)
            for g in groups
            for r in g.alerting_rules()
            if r.name == tc.alertname
            for a in r.active_alerts()
            if a.state == AlertState.FIRING
        ]
        exp = [
            (
                Labels({**e.exp_labels, "alertname": tc.alertname}.items()),
                Labels(e.exp_annotations.items()),
            )
            for e in tc.exp_alerts
        ]
        got.sort()
        exp.sort()
        if got != exp:
            name = f"    name: {tg.name},\n" if tg.name else ""
            errs.append(
                f"{name}    alertname: {tc.alertname}, time: {format_duration_ms(t)}, \n"
                f"        exp:{_indent(_alerts_string(exp), ' ' * 12)}, \n"
                f"        got:{_indent(_alerts_string(got), ' ' * 12)}"
            )
    return errs


def _check_expr(pc: PromQLTestCase, query: QueryFunc, *, fuzzy: bool = False) -> list[str]:
    head = f"    expr: {go_quote(pc.expr)}, time: {format_duration_ms(pc.eval_time)}"
    try:
        result: InstantVector = query(pc.expr, pc.eval_time)
    except PromQLError as exc:
        return [f"{head}, err: {exc}"]
    got = sorted(zip(result.labels, result.values.tolist(), strict=True))
    exp: list[tuple[Labels, float]] = []
    for s in pc.exp_samples:
        try:
            exp.append((parse_metric(s.labels), s.value))
        except SeriesParseError as exc:
            return [f"{head}, err: labels {go_quote(s.labels)}: {exc}"]
    exp.sort()
    if not _samples_equal(exp, got, fuzzy=fuzzy):
        return [
            f"{head},\n        exp: {_samples_string(exp)}\n        got: {_samples_string(got)}"
        ]
    return []


def _samples_equal(
    exp: list[tuple[Labels, float]], got: list[tuple[Labels, float]], *, fuzzy: bool = False
) -> bool:
    """Compares samples exactly, or within 1e-6 relative error with `fuzzy_compare`."""
    if len(exp) != len(got):
        return False
    for (el, ev), (gl, gv) in zip(exp, got, strict=True):
        if el != gl:
            return False
        if math.isnan(ev) and math.isnan(gv):
            continue
        if ev != gv and not (fuzzy and math.isclose(ev, gv, rel_tol=1e-6)):
            return False
    return True


def run_rule_tests(
    paths: Sequence[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    query_factory: QueryFuncFactory | None = None,
) -> int:
    """Runs test files like `promtool test rules`; returns the exit code (0 pass, 1 fail)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    quiet = logging.getLogger("watchkeeper.rules")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    failed = False
    for path in paths:
        report = run_test_file(path, query_factory)
        for w in report.warnings:
            print(w, file=err)
        if report.errors:
            print("  FAILED:", file=err)
            for e in report.errors:
                print(e, file=err)
                print(file=out)
            failed = True
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0


__all__ = [
    "SeriesParseError",
    "TestReport",
    "UnitTestFile",
    "expand_values",
    "parse_go_duration",
    "parse_metric",
    "run_rule_tests",
    "run_test_file",
]
