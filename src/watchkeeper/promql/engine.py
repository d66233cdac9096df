"""The PromQL engine: parses a query, evaluates it over storage, returns a `QueryResult`.

Queries are synchronous and CPU-bound (the API runs them in a thread). Every AST node is
evaluated for all series and all steps at once (see `eval_node.py`); limits follow
Prometheus: a timeout checked between node evaluations, a cap on samples held at once, and
a cap on concurrent queries. With a query log set (`set_query_log`), every query that
reaches execution is written to it, failed ones too (see `querylog.py`).

Example:
    >>> from watchkeeper.storage.memory import MemoryStorage
    >>> from watchkeeper.model.labels import Labels
    >>> db = MemoryStorage()
    >>> with db.appender() as app:
    ...     _ = app.append_series([Labels.from_strings("__name__", "up")], [0], [1.0])
    >>> engine = Engine(db, EngineOptions())
    >>> engine.instant_query("up * 2", 0).value.values.tolist()
    [2.0]
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.promql import ast
from watchkeeper.promql.errors import (
    EvaluationError,
    ParseError,
    PromQLError,
    QueryTimeoutError,
    TooManySamplesError,
)
from watchkeeper.promql.eval_node import evaluate
from watchkeeper.promql.eval_types import (
    EvalContext,
    EvalValue,
    MatrixV,
    ScalarV,
    StringV,
    VectorV,
    finalize_names,
)
from watchkeeper.promql.metrics import EngineMetrics
from watchkeeper.promql.parser import expr_type, format_expr, parse_expr
from watchkeeper.promql.querylog import QUERY_ORIGIN, LoggedQuery, QueryLogFile
from watchkeeper.promql.value import Matrix, QueryResult, QueryStats, Scalar, String, Value, Vector
from watchkeeper.storage.interface import Queryable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Engine settings, named after Prometheus's --query.* flags and feature flags."""

    lookback_delta_ms: int = 300_000
    timeout_s: float = 120.0
    max_samples: int = 50_000_000
    max_concurrency: int = 20
    enable_experimental_functions: bool = False
    enable_delayed_name_removal: bool = False
    enable_duration_expressions: bool = False
    default_subquery_step_ms: int = 60_000


PARSE_CACHE_SIZE = 4096
"""How many parsed queries an engine keeps (the cache is emptied when full)."""


class Engine:
    """Evaluates PromQL over a `Queryable`; safe to share between threads."""

    def __init__(
        self,
        queryable: Queryable,
        options: EngineOptions | None = None,
        *,
        registry: Registry | None = None,
    ) -> None:
        """Creates an engine over storage with the given options (metrics on `registry`)."""
        self.queryable = queryable
        self.options = options or EngineOptions()
        self.metrics = EngineMetrics(registry or Registry(), self.options.max_concurrency)
        self._slots = threading.BoundedSemaphore(max(1, self.options.max_concurrency))
        self._parsed: dict[str, ast.Expr] = {}
        self._query_log: QueryLogFile | None = None

    def set_query_log(self, query_log: QueryLogFile | None) -> None:
        """Writes every query to `query_log` from now on (None: to none); closes the previous."""
        previous, self._query_log = self._query_log, query_log
        self.metrics.query_log_enabled.set(0 if query_log is None else 1)
        if previous is not None:
            try:
                previous.close()
            except OSError as exc:
                # As in Prometheus, a failed close does not fail the reload.
                log.warning(
                    "Error while closing the previous query log file",
                    extra={"kv": {"err": str(exc)}},
                )

    def parse(self, query: str) -> ast.Expr:
        """Parses a query with this engine's feature flags.

        ASTs are immutable, so parsed queries are cached by their text: dashboards and
        rules send the same queries again and again.

        Raises:
            ParseError: when the query does not parse or fails type checks.
        """
        expr = self._parsed.get(query)
        if expr is not None:
            return expr
        expr = parse_expr(
            query,
            enable_experimental_functions=self.options.enable_experimental_functions,
            enable_duration_expressions=self.options.enable_duration_expressions,
        )
        if len(self._parsed) >= PARSE_CACHE_SIZE:
            self._parsed.clear()
        self._parsed[query] = expr
        return expr

    def instant_query(
        self, query: str, time_ms: int, *, lookback_delta_ms: int | None = None
    ) -> QueryResult:
        """Evaluates a query at one time.

        Raises:
            PromQLError: a ParseError, EvaluationError, TooManySamplesError or QueryTimeoutError.
        """
        began = time.perf_counter()
        expr = self.parse(query)
        prep = time.perf_counter() - began
        result = self._run(
            expr, time_ms, time_ms, 0, lookback_delta_ms, instant=True, query=query, prepare_s=prep
        )
        self.metrics.prepare_time.observe(prep)
        result.stats.query_preparation_time_s = prep
        result.stats.total_time_s = time.perf_counter() - began
        return result

    def range_query(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        lookback_delta_ms: int | None = None,
    ) -> QueryResult:
        """Evaluates a query at start, start+step, ... up to end; the value is a Matrix.

        Raises:
            PromQLError: as `instant_query`, and EvaluationError for a bad range or type.
        """
        began = time.perf_counter()
        expr = self.parse(query)
        prep = time.perf_counter() - began
        kind = expr_type(expr)
        if kind not in (ast.ExprType.SCALAR, ast.ExprType.VECTOR):
            raise ParseError(
                f'invalid expression type "{kind.value}" for range query, must be Scalar or '
                "instant Vector"
            )
        _check_range(start_ms, end_ms, step_ms)
        result = self._run(
            expr,
            start_ms,
            end_ms,
            step_ms,
            lookback_delta_ms,
            instant=False,
            query=query,
            prepare_s=prep,
        )
        self.metrics.prepare_time.observe(prep)
        result.stats.query_preparation_time_s = prep
        result.stats.total_time_s = time.perf_counter() - began
        return result

    def eval_expr(
        self,
        expr: ast.Expr,
        time_ms: int,
        *,
        lookback_delta_ms: int | None = None,
        query: str | None = None,
    ) -> QueryResult:
        """Evaluates a parsed expression at one time (for rules, which parse once).

        `query` is the text the query log shows (by default `expr` formatted).
        """
        return self._run(expr, time_ms, time_ms, 0, lookback_delta_ms, instant=True, query=query)

    def eval_expr_range(
        self,
        expr: ast.Expr,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        lookback_delta_ms: int | None = None,
    ) -> QueryResult:
        """Evaluates a parsed expression over a range of steps."""
        _check_range(start_ms, end_ms, step_ms)
        return self._run(expr, start_ms, end_ms, step_ms, lookback_delta_ms, instant=False)

    def _run(
        self,
        expr: ast.Expr,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        lookback_delta_ms: int | None,
        *,
        instant: bool,
        query: str | None = None,
        prepare_s: float = 0.0,
    ) -> QueryResult:
        stats = QueryStats(query_preparation_time_s=prepare_s)
        query_log = self._query_log
        if query_log is None:
            return self._exec(
                expr, start_ms, end_ms, step_ms, lookback_delta_ms, stats=stats, instant=instant
            )
        # As in Prometheus, every query that reaches execution is logged, failed ones too.
        began = time.perf_counter()
        error = ""
        try:
            return self._exec(
                expr, start_ms, end_ms, step_ms, lookback_delta_ms, stats=stats, instant=instant
            )
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            if not stats.exec_total_time_s:
                stats.exec_total_time_s = time.perf_counter() - began
            text = format_expr(expr) if query is None else query
            self._log_query(
                query_log,
                LoggedQuery(text, start_ms, end_ms, step_ms, stats, error, QUERY_ORIGIN.get()),
            )

    def _log_query(self, query_log: QueryLogFile, entry: LoggedQuery) -> None:
        try:
            query_log.write(entry)
        except (OSError, ValueError) as exc:
            self.metrics.query_log_failures.inc()
            log.error("can't log query", extra={"kv": {"err": str(exc)}})

    def _exec(
        self,
        expr: ast.Expr,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        lookback_delta_ms: int | None,
        *,
        stats: QueryStats,
        instant: bool,
    ) -> QueryResult:
        opts = self.options
        queued = time.perf_counter()
        self.metrics.queries.inc()
        if not self._slots.acquire(timeout=opts.timeout_s):
            self.metrics.queries.dec()
            raise QueryTimeoutError("query queue")
        try:
            began = time.perf_counter()
            stats.exec_queue_time_s = began - queued
            if not instant and (end_ms - start_ms) // step_ms + 1 > opts.max_samples:
                # Each step holds at least one sample of any non-empty result.
                raise TooManySamplesError()
            steps = (
                np.array([start_ms], dtype=np.int64)
                if instant
                else np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
            )
            ctx = EvalContext(
                queryable=self.queryable,
                start_ms=start_ms,
                end_ms=end_ms,
                step_ms=step_ms,
                lookback_ms=lookback_delta_ms or opts.lookback_delta_ms,
                max_samples=opts.max_samples,
                deadline=time.monotonic() + opts.timeout_s,
                delayed_name_removal=opts.enable_delayed_name_removal,
                default_subquery_step_ms=opts.default_subquery_step_ms,
                stats=stats,
                steps=steps,
                query_start_ms=start_ms,
                query_end_ms=end_ms,
                per_step=np.zeros(len(steps), dtype=np.int64),
            )
            try:
                with np.errstate(all="ignore"):
                    raw = evaluate(expr, ctx)
                    value = _to_value(raw, ctx, instant=instant)
            except RecursionError as exc:
                raise EvaluationError("query is nested too deeply") from exc
            except PromQLError:
                raise
            except MemoryError as exc:
                raise EvaluationError("query needs too much memory") from exc
            stats.inner_eval_time_s = time.perf_counter() - began
            if ctx.per_step is not None:
                stats.samples_per_step = list(
                    zip(steps.tolist(), ctx.per_step.tolist(), strict=True)
                )
            stats.exec_total_time_s = stats.inner_eval_time_s + stats.exec_queue_time_s
            positions = {
                text: pos for text, pos in (*ctx.warnings.items(), *ctx.infos.items()) if pos >= 0
            }
            self.metrics.observe(stats)
            return QueryResult(value, list(ctx.warnings), list(ctx.infos), stats, positions)
        finally:
            self._slots.release()
            self.metrics.queries.dec()


def _check_range(start_ms: int, end_ms: int, step_ms: int) -> None:
    if step_ms <= 0:
        raise EvaluationError("zero or negative query resolution step widths are not accepted")
    if end_ms < start_ms:
        raise EvaluationError("end timestamp must not be before start time")


def _to_value(raw: EvalValue, ctx: EvalContext, *, instant: bool) -> Value:
    t0 = ctx.start_ms
    if isinstance(raw, StringV):
        return String(t0, raw.value)
    if isinstance(raw, ScalarV):
        if instant:
            return Scalar(t0, float(raw.values[0]))
        vec = VectorV(
            [ast_empty_labels()],
            raw.values[None, :].copy(),
            np.ones((1, ctx.n_steps), dtype=np.bool_),
            np.zeros(1, dtype=np.bool_),
        )
        return _vector_to_matrix(vec, ctx)
    if isinstance(raw, MatrixV):
        return _range_to_matrix(raw)
    vec = finalize_names(raw)
    if instant:
        rows = np.flatnonzero(vec.present[:, 0])
        return Vector([vec.labels[i] for i in rows.tolist()], vec.values[rows, 0].copy(), t0)
    return _vector_to_matrix(vec, ctx)


def ast_empty_labels() -> Labels:
    """The empty label set (a scalar's series in a range result)."""
    return Labels()


def _vector_to_matrix(vec: VectorV, ctx: EvalContext) -> Matrix:
    vec = vec.nonempty()
    sort_began = time.perf_counter()  # NB: as Prometheus, every range result's sort is timed.
    order = sorted(range(len(vec.labels)), key=lambda i: vec.labels[i])
    ctx.stats.result_sort_time_s = time.perf_counter() - sort_began
    if not len(vec.labels):
        return Matrix.empty()
    present, values = vec.present, vec.values
    if order != list(range(len(order))):
        idx = np.asarray(order, dtype=np.intp)
        present, values = present[idx], values[idx]
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    timestamps = np.broadcast_to(ctx.steps, present.shape)[present]
    return Matrix([vec.labels[i] for i in order], offsets, timestamps, values[present])


def _range_to_matrix(mat: MatrixV) -> Matrix:
    labels: list[Labels] = []
    ts_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    counts: list[int] = []
    for i in sorted(range(len(mat.labels)), key=lambda j: mat.labels[j]):
        lo, hi = int(mat.lo[i, 0]), int(mat.hi[i, 0])
        if hi <= lo:
            continue
        labels.append(mat.labels[i])
        ts_parts.append(mat.timestamps_ms[lo:hi])
        val_parts.append(mat.values[lo:hi])
        counts.append(hi - lo)
    if not labels:
        return Matrix.empty()
    offsets = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Matrix(labels, offsets, np.concatenate(ts_parts), np.concatenate(val_parts))
