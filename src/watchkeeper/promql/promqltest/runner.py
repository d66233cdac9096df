"""Running PromQL test scripts against an engine, case by case, as Prometheus's promqltest.

Each `eval` becomes a `CaseResult`: passed, failed (with the reason) or skipped (native
histograms are out of scope: evals whose data or expectations involve them are skipped).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import matches_all
from watchkeeper.model.value import STALE_NAN_BITS
from watchkeeper.promql import ast
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import PromQLError
from watchkeeper.promql.parser import format_expr, parse_expr
from watchkeeper.promql.promqltest.script import (
    OMITTED,
    ClearCmd,
    EvalCmd,
    HistogramLiteral,
    LoadCmd,
    ScriptError,
    classic_histogram_bases,
    parse_script,
)
from watchkeeper.promql.value import Matrix, QueryResult, Scalar, String, Vector
from watchkeeper.storage.interface import Storage
from watchkeeper.storage.memory import MemoryStorage

EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308

TEST_ENGINE_OPTIONS = EngineOptions(
    lookback_delta_ms=300_000,
    timeout_s=100.0,
    max_samples=10_000,
    max_concurrency=4,
    enable_experimental_functions=True,
    enable_delayed_name_removal=True,
    enable_duration_expressions=True,
    default_subquery_step_ms=60_000,
)
"""The engine settings Prometheus's test scripts assume."""


class Outcome(enum.Enum):
    """What happened to one eval case."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The result of one `eval` command."""

    line: int
    expr: str
    outcome: Outcome
    message: str = ""


@dataclass(slots=True)
class ScriptResult:
    """The results of a whole script."""

    name: str
    cases: list[CaseResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """The number of cases with that outcome."""
        return sum(1 for c in self.cases if c.outcome is outcome)


def almost_equal(a: float, b: float, epsilon: float = EPSILON) -> bool:
    """Prometheus's almost.Equal: NaNs equal, StaleNaN only equals StaleNaN."""
    stale_a = struct.pack("<d", a) == struct.pack("<Q", STALE_NAN_BITS)
    stale_b = struct.pack("<d", b) == struct.pack("<Q", STALE_NAN_BITS)
    if stale_a or stale_b:
        return stale_a and stale_b
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or abs(a) + abs(b) < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs(a) + abs(b), 1.7976931348623157e308) < epsilon


class _Mismatch(Exception):
    pass


AT_MODIFIER_UNSAFE_FUNCTIONS = frozenset(
    {
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "hour",
        "minute",
        "month",
        "year",
        "predict_linear",
        "time",
        "timestamp",
    }
)
"""Functions whose result varies with evaluation time even over `@`-pinned arguments."""


def pin_at(expr: ast.Expr, time_ms: int) -> ast.Expr:
    """Adds `@ time` to every selector and subquery that has none (not inside pinned ones)."""
    at = ast.At(ast.AtKind.TIME, time_ms)
    if isinstance(expr, ast.VectorSelector):
        return expr if expr.at is not None else replace(expr, at=at)
    if isinstance(expr, ast.MatrixSelector):
        return replace(expr, vector=pin_at(expr.vector, time_ms))  # type: ignore[arg-type]
    if isinstance(expr, ast.SubqueryExpr):
        return expr if expr.at is not None else replace(expr, at=at)
    if isinstance(expr, ast.Call):
        return replace(expr, args=tuple(pin_at(a, time_ms) for a in expr.args))
    if isinstance(expr, ast.AggregateExpr):
        param = None if expr.param is None else pin_at(expr.param, time_ms)
        return replace(expr, expr=pin_at(expr.expr, time_ms), param=param)
    if isinstance(expr, ast.BinaryExpr):
        return replace(expr, lhs=pin_at(expr.lhs, time_ms), rhs=pin_at(expr.rhs, time_ms))
    if isinstance(expr, ast.UnaryExpr | ast.ParenExpr):
        return replace(expr, expr=pin_at(expr.expr, time_ms))
    return expr


def at_modifier_cases(text: str, time_ms: int) -> list[tuple[str, int]]:
    """The extra (query, time) runs promqltest makes: everything pinned `@` the eval time."""
    try:
        expr = parse_expr(text)
    except PromQLError:
        return []
    for node in ast.walk(expr):
        if isinstance(node, ast.Call) and node.func in AT_MODIFIER_UNSAFE_FUNCTIONS:
            return []
    pinned = format_expr(pin_at(expr, time_ms))
    times = (
        [-1000, 1000] if time_ms == 0 else [-10 * time_ms, 0, time_ms // 5, time_ms, 10 * time_ms]
    )
    return [(pinned, t) for t in times]


class ScriptRunner:
    """Runs one script's commands against a fresh storage per `clear`."""

    def __init__(
        self,
        options: EngineOptions = TEST_ENGINE_OPTIONS,
        storage_factory: Callable[[], Storage] | None = None,
        *,
        cross_check: bool = True,
        at_modifier_check: bool = True,
    ) -> None:
        """Sets the engine options, how to make storage, and promqltest's extra checks.

        `cross_check` reruns each instant eval as a range query and compares the middle
        step; `at_modifier_check` reruns it with `@ <time>` added at other times.
        """
        self.options = options
        self.storage_factory = storage_factory or MemoryStorage
        self.cross_check = cross_check
        self.at_modifier_check = at_modifier_check

    def run_file(self, path: Path) -> ScriptResult:
        """Runs a script file."""
        return self.run_text(path.read_text(encoding="utf-8"), path.name)

    def run_text(self, text: str, name: str = "<script>") -> ScriptResult:
        """Runs script text."""
        result = ScriptResult(name)
        storage = self.storage_factory()
        histogram_series: list[Labels] = []
        for cmd in parse_script(text):
            if isinstance(cmd, ClearCmd):
                storage.close()
                storage = self.storage_factory()
                histogram_series = []
            elif isinstance(cmd, LoadCmd):
                histogram_series.extend(self._load(storage, cmd))
            else:
                result.cases.append(self._eval(storage, cmd, histogram_series))
        storage.close()
        return result

    def _load(self, storage: Storage, cmd: LoadCmd) -> list[Labels]:
        hist: list[Labels] = []
        if cmd.with_nhcb:
            hist.extend(classic_histogram_bases(cmd.series))
        with storage.appender() as app:
            for labels, values in cmd.series.items():
                ts: list[int] = []
                vals: list[float] = []
                for k, v in enumerate(values):
                    if isinstance(v, HistogramLiteral):
                        if labels not in hist:
                            hist.append(labels)
                        continue
                    if v is OMITTED or not isinstance(v, float):
                        continue
                    ts.append(k * cmd.interval_ms)
                    vals.append(v)
                if ts:
                    res = app.append_series([labels] * len(ts), ts, vals)
                    if res.rejected:
                        raise ScriptError(
                            f"line {cmd.line}: storage rejected {res.rejected} samples of "
                            f"{labels} (out of order or out of bounds)"
                        )
        return hist

    def _skip_reason(self, cmd: EvalCmd, histogram_series: list[Labels]) -> str:
        if cmd.has_histogram:
            return "native histogram: expected values are native histograms"
        if not histogram_series:
            return ""
        try:
            expr = parse_expr(cmd.expr)
        except PromQLError:
            return ""
        for node in ast.walk(expr):
            if isinstance(node, ast.VectorSelector):
                for lb in histogram_series:
                    if matches_all(node.matchers, lb):
                        return f"native histogram: the query selects {lb}"
        return ""

    def _eval(self, storage: Storage, cmd: EvalCmd, histogram_series: list[Labels]) -> CaseResult:
        reason = self._skip_reason(cmd, histogram_series)
        if reason:
            return CaseResult(cmd.line, cmd.expr, Outcome.SKIPPED, reason)
        engine = Engine(storage, self.options)
        try:
            if cmd.is_range:
                self._run_range(engine, cmd)
            else:
                self._run_instant(engine, cmd)
        except _Mismatch as exc:
            return CaseResult(cmd.line, cmd.expr, Outcome.FAILED, str(exc))
        except PromQLError as exc:
            return CaseResult(
                cmd.line, cmd.expr, Outcome.FAILED, f"unexpected {type(exc).__name__}: {exc}"
            )
        except Exception as exc:
            return CaseResult(
                cmd.line, cmd.expr, Outcome.FAILED, f"crash {type(exc).__name__}: {exc}"
            )
        return CaseResult(cmd.line, cmd.expr, Outcome.PASSED)

    # -- execution -------------------------------------------------------------------------
    def _check_failure(self, cmd: EvalCmd, exc: PromQLError) -> None:
        text = str(exc)
        if cmd.expected_fail_message is not None and cmd.expected_fail_message != text:
            raise _Mismatch(f"expected error {cmd.expected_fail_message!r}, got {text!r}")
        if cmd.expected_fail_regexp is not None and not cmd.expected_fail_regexp.search(text):
            raise _Mismatch(f"expected error matching {cmd.expected_fail_regexp.pattern!r}")
        fails = cmd.expects_of("fail")
        if fails and not fails[0].matches(text):
            raise _Mismatch(f"expected error matching {fails[0]}, got {text!r}")

    def _run_range(self, engine: Engine, cmd: EvalCmd) -> None:
        try:
            res = engine.range_query(cmd.expr, cmd.start_ms, cmd.end_ms, cmd.step_ms)
        except PromQLError as exc:
            if cmd.is_fail:
                self._check_failure(cmd, exc)
                return
            raise _Mismatch(f"error evaluating query: {exc}") from exc
        if cmd.is_fail:
            raise _Mismatch("expected error but got none")
        self._check_annotations(cmd, res)
        self._compare(cmd, res.value)

    def _run_instant(self, engine: Engine, cmd: EvalCmd) -> None:
        self._run_instant_at(engine, cmd, cmd.expr, cmd.start_ms)
        if not self.at_modifier_check:
            return
        for text, time_ms in at_modifier_cases(cmd.expr, cmd.start_ms):
            try:
                self._run_instant_at(engine, cmd, text, time_ms)
            except _Mismatch as exc:
                raise _Mismatch(f"with @ added ({text} at {time_ms}): {exc}") from exc

    def _run_instant_at(self, engine: Engine, cmd: EvalCmd, text: str, time_ms: int) -> None:
        try:
            res = engine.instant_query(text, time_ms)
        except PromQLError as exc:
            if cmd.is_fail:
                self._check_failure(cmd, exc)
                return
            raise _Mismatch(f"error evaluating query: {exc}") from exc
        if cmd.is_fail:
            raise _Mismatch("expected error but got none")
        self._check_annotations(cmd, res)
        self._compare(cmd, res.value)
        if not self.cross_check or cmd.is_ordered:
            return
        try:
            rres = engine.range_query(text, time_ms - 60_000, time_ms + 60_000, 60_000)
        except PromQLError as exc:
            raise _Mismatch(f"error evaluating query in range mode: {exc}") from exc
        mat = rres.value
        if not isinstance(mat, Matrix):
            raise _Mismatch("range mode did not return a matrix")
        self._assert_sorted(mat)
        labels: list[Labels] = []
        values: list[float] = []
        for i in range(len(mat)):
            lb, ts, vs = mat.series(i)
            hit = np.flatnonzero(ts == time_ms)
            if len(hit):
                labels.append(lb)
                values.append(float(vs[hit[0]]))
        try:
            if isinstance(res.value, Scalar):
                if not values:
                    raise _Mismatch("range mode returned no scalar point")
                self._compare(cmd, Scalar(time_ms, values[0]))
            else:
                self._compare(cmd, Vector(labels, np.asarray(values), time_ms))
        except _Mismatch as exc:
            raise _Mismatch(f"range mode: {exc}") from exc

    def _check_annotations(self, cmd: EvalCmd, res: QueryResult) -> None:
        if cmd.warn and not res.warnings:
            raise _Mismatch("expected warnings but got none")
        if cmd.info and not res.infos:
            raise _Mismatch("expected info annotations but got none")
        for kind, got in (("warn", res.warnings), ("info", res.infos)):
            lines = cmd.expects_of(kind)
            if lines:
                if not got:
                    raise _Mismatch(f"expected {kind} annotations but got none")
                for text in got:
                    if not any(e.matches(text) for e in lines):
                        raise _Mismatch(f"unexpected {kind} annotation {text!r}")
                for e in lines:
                    if not any(e.matches(text) for text in got):
                        raise _Mismatch(f"expected {kind} annotation {e} not found in {got}")
        if cmd.expects_of("no_warn") and res.warnings:
            raise _Mismatch(f"unexpected warning annotations: {res.warnings}")
        if cmd.expects_of("no_info") and res.infos:
            raise _Mismatch(f"unexpected info annotations: {res.infos}")

    @staticmethod
    def _assert_sorted(mat: Matrix) -> None:
        for a, b in zip(mat.labels, mat.labels[1:], strict=False):
            if b < a:
                raise _Mismatch(f"matrix is not sorted: {b} after {a}")

    def _compare(self, cmd: EvalCmd, value: object) -> None:
        expected = dict(cmd.series)
        positions = {lb: i + 1 for i, (lb, _) in enumerate(cmd.series)}
        if isinstance(value, Scalar):
            if cmd.expect_scalar is None:
                raise _Mismatch(f"expected vector or matrix result, but got scalar {value.value}")
            if not almost_equal(cmd.expect_scalar, value.value):
                raise _Mismatch(f"expected scalar {cmd.expect_scalar} but got {value.value}")
            return
        if cmd.expect_scalar is not None:
            raise _Mismatch(f"expected scalar result, but got {type(value).__name__}")
        if isinstance(value, String):
            raise _Mismatch("unexpected string result")
        if isinstance(value, Vector):
            seen: set[Labels] = set()
            for pos, (lb, v) in enumerate(zip(value.labels, value.values.tolist(), strict=True)):
                if lb not in expected:
                    raise _Mismatch(f"unexpected metric {lb} in result, has value {v}")
                if cmd.is_ordered and positions[lb] != pos + 1:
                    raise _Mismatch(
                        f"expected metric {lb} at position {positions[lb]} but was at {pos + 1}"
                    )
                exp0 = expected[lb][0]
                if not isinstance(exp0, float) or not almost_equal(exp0, v):
                    raise _Mismatch(f"expected {exp0} for {lb} but got {v}")
                seen.add(lb)
            for lb in expected:
                if lb not in seen:
                    raise _Mismatch(f"expected metric {lb} not found")
            return
        if not isinstance(value, Matrix):
            raise _Mismatch(f"unexpected result type {type(value).__name__}")
        if cmd.is_ordered:
            raise _Mismatch("expected ordered result, but query returned a matrix")
        self._assert_sorted(value)
        seen = set()
        for i in range(len(value)):
            lb, ts, vs = value.series(i)
            if lb not in expected:
                raise _Mismatch(f"unexpected metric {lb} in result")
            seen.add(lb)
            exp_ts: list[int] = []
            exp_vs: list[float] = []
            for j, ev in enumerate(expected[lb]):
                t = cmd.start_ms + j * cmd.step_ms
                if t > max(cmd.end_ms, cmd.start_ms):
                    raise _Mismatch(f"expected {len(expected[lb])} points for {lb}: too many")
                if isinstance(ev, float):
                    exp_ts.append(t)
                    exp_vs.append(ev)
            if len(exp_ts) != len(ts):
                raise _Mismatch(
                    f"expected {len(exp_ts)} float points for {lb}, but got "
                    f"{list(zip(ts.tolist(), vs.tolist(), strict=True))}"
                )
            for et, ev2, at, av in zip(exp_ts, exp_vs, ts.tolist(), vs.tolist(), strict=True):
                if et != at:
                    raise _Mismatch(f"expected timestamp {et} for {lb}, got {at}")
                if not almost_equal(ev2, av):
                    raise _Mismatch(f"expected {ev2} at t={at} for {lb} but got {av}")
        for lb in expected:
            if lb not in seen:
                raise _Mismatch(f"expected metric {lb} not found")


def run_script(path: Path, options: EngineOptions = TEST_ENGINE_OPTIONS) -> ScriptResult:
    """Runs one `.test` file against MemoryStorage with the test engine settings."""
    return ScriptRunner(options).run_file(path)
