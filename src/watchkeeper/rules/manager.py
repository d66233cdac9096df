"""The rule manager: loads rule files, runs their groups, and reports them to the API.

Wiring (done by the server):

    manager = RuleManager(storage, storage, engine_query_func(engine), registry,
                          notify=send_alerts_func(notifier, external_url), options=...)
    await manager.update(rule_files, interval_ms, external_labels)   # on start and reload
    ...
    await manager.stop()

A reload with a bad file raises `RuleLoadError` and leaves the running groups untouched;
groups whose definition is unchanged keep running with their state; changed groups take
over their predecessor's alerts; removed groups mark their series stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import quote_plus

import numpy as np

from watchkeeper.config.rulefmt import ParsedRuleFile
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.clock import SYSTEM_CLOCK, Clock
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, matches_all
from watchkeeper.model.timefmt import format_rfc3339_ms, format_rfc3339_ns
from watchkeeper.notifier.alert import NotifierAlert
from watchkeeper.promql.batch import QueryBatch, plan_batches, split_vector
from watchkeeper.promql.errors import EvaluationError, PromQLError
from watchkeeper.promql.parser import format_expr, parse_expr
from watchkeeper.promql.querylog import query_origin, rule_group_origin
from watchkeeper.promql.value import QueryResult, Scalar, Vector
from watchkeeper.rules.alerting import Alert, AlertingRule, TemplateContext
from watchkeeper.rules.files import load_rule_files
from watchkeeper.rules.group import Group, GroupOptions, NotifyFunc, Rule
from watchkeeper.rules.metrics import RuleMetrics
from watchkeeper.rules.recording import RecordingRule
from watchkeeper.rules.rule import InstantVector, QueryFunc, format_go_exp
from watchkeeper.storage.interface import Appendable, Queryable

log = logging.getLogger(__name__)


class InstantQueryEngine(Protocol):
    """The part of the PromQL engine rules need."""

    def instant_query(self, query: str, time_ms: int) -> QueryResult:
        """Evaluates a query at one time."""
        ...


def vector_from_result(result: QueryResult) -> InstantVector:
    """Turns an instant query result into a vector as Prometheus's EngineQueryFunc does.

    Raises:
        EvaluationError: when the result is neither a vector nor a scalar.
    """
    value = result.value
    if isinstance(value, Vector):
        return InstantVector(list(value.labels), value.values, value.timestamp_ms)
    if isinstance(value, Scalar):
        return InstantVector([Labels()], np.array([value.value]), value.timestamp_ms)
    raise EvaluationError("rule result is not a vector or scalar")


class EngineQueryFunc:
    """Adapts a PromQL engine to the rules' query function, and evaluates batches.

    Rules run the same expressions every interval, so parsed expressions are cached. Groups
    ask `plan` once for batches of same-shaped expressions (see `watchkeeper.promql.batch`)
    and evaluate each batch with `run` as one query.
    """

    def __init__(self, engine: BatchingEngine) -> None:
        self._engine = engine
        self._parsed: dict[str, Any] = {}

    def __call__(self, text: str, time_ms: int) -> InstantVector:
        """Evaluates one expression at a time."""
        return vector_from_result(self._engine.eval_expr(self._parse(text), time_ms, query=text))

    def _parse(self, text: str) -> Any:
        expr = self._parsed.get(text)
        if expr is None:
            expr = self._engine.parse(text)
            if len(self._parsed) > 100_000:
                self._parsed.clear()
            self._parsed[text] = expr
        return expr

    def plan(self, texts: Sequence[str]) -> list[QueryBatch]:
        """Batches of the given expressions that can be evaluated as one query."""
        exprs = []
        for text in texts:
            try:
                exprs.append(self._parse(text))
            except PromQLError:
                exprs.append(None)
        return plan_batches(exprs)

    def run(self, batch: QueryBatch, time_ms: int) -> list[InstantVector]:
        """Each member's result, in `batch.members` order.

        The query log shows the batched expression, once for the whole batch.

        Raises:
            PromQLError: when the batched query fails (callers evaluate members alone).
        """
        vector = vector_from_result(self._engine.eval_expr(batch.expr, time_ms))
        return [
            InstantVector(labels, values, vector.timestamp_ms)
            for labels, values in split_vector(batch, vector.labels, vector.values)
        ]


class BatchingEngine(Protocol):
    """The parts of the PromQL engine that parse once and evaluate parsed expressions."""

    def parse(self, query: str) -> Any:
        """Parses a query."""
        ...

    def eval_expr(self, expr: Any, time_ms: int, *, query: str | None = None) -> QueryResult:
        """Evaluates a parsed expression at one time (`query`: its text for the query log)."""
        ...


def engine_query_func(engine: InstantQueryEngine) -> QueryFunc:
    """Adapts a PromQL engine to the rules' query function.

    Engines that parse separately from evaluating (ours) get an `EngineQueryFunc`, which
    caches parsed expressions and evaluates batches of same-shaped rules as one query.
    """
    if hasattr(engine, "parse") and hasattr(engine, "eval_expr"):
        return EngineQueryFunc(cast("BatchingEngine", engine))

    def plain(text: str, time_ms: int) -> InstantVector:
        return vector_from_result(engine.instant_query(text, time_ms))

    return plain


class AlertSender(Protocol):
    """What rules need from the notifier."""

    def send(self, alerts: Sequence[NotifierAlert]) -> None:
        """Queues alerts for every Alertmanager."""
        ...


def graph_link(expr: str) -> str:
    """Prometheus's generator URL path for an expression (strutil.TableLinkForExpression)."""
    return f"/graph?g0.expr={quote_plus(expr)}&g0.tab=1"


def to_notifier_alerts(
    expr: str, alerts: Sequence[Alert], external_url: str
) -> list[NotifierAlert]:
    """Converts rule alerts to notifier alerts (Prometheus's SendAlerts)."""
    out = []
    for a in alerts:
        ends = a.resolved_at_ms or a.valid_until_ms
        out.append(
            NotifierAlert(
                labels=a.labels,
                annotations=a.annotations,
                starts_at_ms=a.fired_at_ms,
                ends_at_ms=ends,
                generator_url=external_url.rstrip("/") + graph_link(expr),
            )
        )
    return out


def send_alerts_func(sender: AlertSender, external_url: str) -> NotifyFunc:
    """Returns a notify function that hands rule alerts to the notifier."""

    def notify(expr: str, alerts: Sequence[Alert]) -> None:
        if alerts:
            sender.send(to_notifier_alerts(expr, alerts, external_url))

    return notify


@dataclass(slots=True)
class RuleManagerOptions:
    """Flags of the rule manager (--rules.alert.*, external URL, global query offset)."""

    resend_delay_ms: int = 60_000
    outage_tolerance_ms: int = 3_600_000
    for_grace_period_ms: int = 600_000
    external_url: str = ""
    default_query_offset_ms: int = 0


def canonical_query(text: str) -> str:
    """The expression as Prometheus prints it (API `query`, generator URLs): `up == 0`."""
    try:
        return format_expr(parse_expr(text))
    except PromQLError:
        return text


def build_groups(
    files: Sequence[ParsedRuleFile],
    interval_ms: int,
    opts: GroupOptions,
    *,
    default_query_offset_ms: int = 0,
    should_restore: bool = False,
) -> dict[str, Group]:
    """Builds groups (keyed "file;name") from parsed, validated rule files."""
    groups: dict[str, Group] = {}
    for parsed in files:
        if parsed.groups is None:
            continue
        for g in parsed.groups.groups:
            group_labels = g.labels
            rules: list[Rule] = []
            for r in g.rules:
                labels = Labels({**group_labels, **r.labels}.items())
                expr = canonical_query(r.expr)
                if r.record:
                    rules.append(RecordingRule(r.record, expr, labels))
                else:
                    rules.append(
                        AlertingRule(
                            r.alert,
                            expr,
                            hold_ms=r.for_ms,
                            keep_firing_for_ms=r.keep_firing_for_ms,
                            labels=labels,
                            annotations=Labels(r.annotations.items()),
                        )
                    )
            group = Group(
                g.name,
                parsed.path,
                g.interval_ms or interval_ms,
                rules,
                opts,
                limit=g.limit,
                query_offset_ms=(
                    g.query_offset_ms if g.query_offset_ms is not None else default_query_offset_ms
                ),
                labels=Labels(group_labels.items()),
                should_restore=should_restore,
            )
            groups[group.key] = group
    return groups


class RuleManager:
    """Runs every rule group and answers the API's questions about rules and alerts."""

    def __init__(
        self,
        appendable: Appendable,
        queryable: Queryable,
        query: QueryFunc,
        registry: Registry,
        *,
        notify: NotifyFunc | None = None,
        clock: Clock = SYSTEM_CLOCK,
        options: RuleManagerOptions | None = None,
    ) -> None:
        self.appendable = appendable
        self.queryable = queryable
        self.query = query
        self.notify = notify
        self.clock = clock
        self.options = options or RuleManagerOptions()
        self.metrics = RuleMetrics(registry)
        self.groups: dict[str, Group] = {}
        self._restored = False
        self._lock = asyncio.Lock()
        self._stopped = asyncio.Event()

    def _group_options(self, external_labels: Mapping[str, str], external_url: str) -> GroupOptions:
        return GroupOptions(
            appendable=self.appendable,
            queryable=self.queryable,
            query=self.query,
            metrics=self.metrics,
            clock=self.clock,
            notify=self.notify,
            template=TemplateContext(
                dict(external_labels), external_url, self.query, self.metrics.templates
            ),
            resend_delay_ms=self.options.resend_delay_ms,
            outage_tolerance_ms=self.options.outage_tolerance_ms,
            for_grace_period_ms=self.options.for_grace_period_ms,
        )

    async def update(
        self,
        rule_files: Sequence[str],
        interval_ms: int,
        external_labels: Mapping[str, str] | None = None,
        *,
        external_url: str | None = None,
        query_offset_ms: int | None = None,
    ) -> None:
        """Loads rule files (already glob-expanded) and swaps the running groups.

        Raises:
            RuleLoadError: when any file is invalid; the running groups are left as they are.
        """
        async with self._lock:
            files = await asyncio.to_thread(load_rule_files, list(rule_files))
            url = self.options.external_url if external_url is None else external_url
            offset = (
                self.options.default_query_offset_ms if query_offset_ms is None else query_offset_ms
            )
            opts = self._group_options(external_labels or {}, url)
            new = build_groups(
                files,
                interval_ms,
                opts,
                default_query_offset_ms=offset,
                should_restore=not self._restored,
            )
            self._restored = True
            old = self.groups
            result: dict[str, Group] = {}
            for key, group in new.items():
                previous = old.get(key)
                if previous is not None and previous.definition() == group.definition():
                    previous.opts = opts
                    result[key] = previous
                    continue
                if previous is not None:
                    await previous.stop()
                    group.copy_state_from(previous)
                # NB: the group's task copies this context, so its queries (rules and
                # template queries) reach the query log with the group as their origin.
                with query_origin(rule_group_origin(group.file, group.name)):
                    group.start()
                result[key] = group
            for key, group in old.items():
                if key not in new:
                    await group.stop()
                    group.mark_all_stale(self.clock.now_ms())
                    self.metrics.forget(key)
            self.groups = result

    async def run(self) -> None:
        """Waits until `stop` is called (groups already run as tasks from `update`).

        For callers that keep one task per component, as Prometheus's Manager.Run blocks.
        """
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stops every group (their series are not marked stale, as on shutdown)."""
        for group in self.groups.values():
            await group.stop()
        self._stopped.set()

    def rule_groups(self) -> list[Group]:
        """The running groups sorted by file and name."""
        return sorted(self.groups.values(), key=lambda g: (g.file, g.name))

    def alerting_rules(self) -> list[AlertingRule]:
        """Every alerting rule of every group."""
        return [r for g in self.rule_groups() for r in g.alerting_rules()]

    def api_rules(
        self,
        *,
        rule_type: str = "",
        rule_names: Sequence[str] = (),
        group_names: Sequence[str] = (),
        files: Sequence[str] = (),
        exclude_alerts: bool = False,
        match: Sequence[Sequence[Matcher]] = (),
    ) -> dict[str, Any]:
        """The `data` of /api/v1/rules: {"groups": [...]} with Prometheus's filters.

        `rule_type` is "alert" or "record"; `match` keeps rules whose labels satisfy any one
        of the matcher lists (the `match[]` parameter).
        """
        out = []
        for g in self.rule_groups():
            if group_names and g.name not in group_names:
                continue
            if files and g.file not in files:
                continue
            rules = []
            for r in g.rules:
                if rule_type == "alert" and not isinstance(r, AlertingRule):
                    continue
                if rule_type == "record" and not isinstance(r, RecordingRule):
                    continue
                if rule_names and r.name not in rule_names:
                    continue
                if match and not any(matches_all(list(ms), r.labels) for ms in match):
                    continue
                rules.append(api_rule(r, exclude_alerts=exclude_alerts))
            if (rule_type or rule_names or match) and not rules:
                continue
            out.append(
                {
                    "name": g.name,
                    "file": g.file,
                    "rules": rules,
                    "interval": g.interval_ms / 1000,
                    "limit": g.limit,
                    "evaluationTime": g.evaluation_seconds,
                    "lastEvaluation": format_rfc3339_ms_or_zero(g.last_evaluation_ms),
                }
            )
        return {"groups": out}

    def api_alerts(self) -> dict[str, Any]:
        """The `data` of /api/v1/alerts: {"alerts": [...]} (pending and firing)."""
        return {"alerts": [api_alert(a) for r in self.alerting_rules() for a in r.active_alerts()]}


def format_rfc3339_ms_or_zero(ms: int) -> str:
    """RFC 3339 time, or Go's zero time when never set."""
    return format_rfc3339_ms(ms) if ms else "0001-01-01T00:00:00Z"


def api_alert(a: Alert) -> dict[str, Any]:
    """One alert as /api/v1/alerts and /api/v1/rules show it."""
    out: dict[str, Any] = {
        "labels": a.labels.as_dict(),
        "annotations": a.annotations.as_dict(),
        "state": a.state.value,
        "activeAt": format_rfc3339_ns(a.active_at_ns),
        "value": format_go_exp(a.value),
    }
    if a.keep_firing_since_ms:
        out["keepFiringSince"] = format_rfc3339_ms(a.keep_firing_since_ms)
    return out


def api_rule(r: Rule, *, exclude_alerts: bool = False) -> dict[str, Any]:
    """One rule as /api/v1/rules shows it."""
    common = {
        "health": r.health.value,
        "evaluationTime": r.evaluation_seconds,
        "lastEvaluation": format_rfc3339_ms_or_zero(r.last_evaluation_ms),
    }
    if isinstance(r, AlertingRule):
        out: dict[str, Any] = {
            "state": r.state().value,
            "name": r.name,
            "query": r.query,
            "duration": r.hold_ms / 1000,
            "keepFiringFor": r.keep_firing_for_ms / 1000,
            "labels": r.labels.as_dict(),
            "annotations": r.annotations.as_dict(),
        }
        if not exclude_alerts:
            out["alerts"] = [api_alert(a) for a in r.active_alerts()]
        out.update(common)
        if r.last_error:
            out["lastError"] = r.last_error
        out["type"] = "alerting"
        return out
    out = {"name": r.name, "query": r.query}
    if len(r.labels):
        out["labels"] = r.labels.as_dict()
    out.update(common)
    if r.last_error:
        out["lastError"] = r.last_error
    out["type"] = "recording"
    return out
