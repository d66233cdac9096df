"""The /api/v1 handlers: Prometheus 3.5's endpoints with its parameters and JSON shapes.

Each handler reads GET query parameters and POST form bodies alike, answers
{"status":"success","data":...} or an `ApiError` that the app's middleware turns into
{"status":"error","errorType":...,"error":...}. Queries and series selects run in a worker
thread so the event loop keeps serving; large results are encoded there too.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web
from aiohttp.web_response import ContentCoding
from multidict import MultiDict, MultiDictProxy, MultiMapping

from watchkeeper import __version__
from watchkeeper.model.exposition.floats import go_quote
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, matches_all
from watchkeeper.promql import ast
from watchkeeper.promql.errors import EvaluationError, ParseError, PromQLError
from watchkeeper.promql.parser import format_expr
from watchkeeper.promql.querylog import http_request_origin, query_origin
from watchkeeper.promql.value import Matrix, QueryResult, Vector
from watchkeeper.storage.interface import SelectHints
from watchkeeper.web.api.v1.deps import (
    ActiveTarget,
    AlertInfo,
    ApiDeps,
    Notification,
    RuleGroupInfo,
    RuleInfo,
)
from watchkeeper.web.api.v1.encoding import (
    envelope_chunks,
    format_sample_value,
    iter_result_chunks,
    stats_json,
)
from watchkeeper.web.api.v1.errors import ApiError, bad_data, invalid_param
from watchkeeper.web.api.v1.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    check_label_name,
    duration_param,
    limit_param,
    parse_duration_param_ms,
    parse_selector,
    parse_selectors,
    required_time_param,
    time_param,
    unescape_label_name,
)
from watchkeeper.web.api.v1.translate import translate_ast

T = TypeVar("T")

MAX_POINTS_PER_SERIES: Final = 11_000
"""Prometheus refuses range queries with more points per series than this."""
STREAM_THRESHOLD_BYTES: Final = 1 << 20
"""Responses larger than this are streamed in chunks instead of one body."""
STREAM_BATCH_BYTES: Final = 1 << 20
"""Size of each later streamed batch (8 MiB batches measured no faster end to end)."""
INLINE_BUDGET_S: Final = 0.002
"""A query whose last identical run (text and step count) took less than this runs on the
event loop: the hand-off to a worker thread costs more than the query, and up to the GIL's
switch interval (5 ms) per hop when the process is busy."""
_COST_CACHE_SIZE: Final = 4096
_TRUNCATED: Final = "results truncated due to limit"
_BOOL_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_BOOL_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
LIVE_POLL_S: Final = 0.5
"""How often an idle live notification stream checks that its client is still there."""
_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
}
_UINT32_MAX: Final = (1 << 32) - 1
_INT32_LIMIT: Final = 1 << 31


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """The parts of WebOptions the handlers need."""

    enable_admin_api: bool = False
    query_timeout_s: float = 120.0


def json_response(
    data: Any, *, warnings: Sequence[str] = (), infos: Sequence[str] = ()
) -> web.Response:
    """Answers {"status":"success","data":data} (with warnings and infos when present)."""
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    if infos:
        body["infos"] = list(infos)
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def error_body(error_type: str, message: str, data: Any = None) -> bytes:
    """The JSON of an error answer."""
    body: dict[str, Any] = {"status": "error", "errorType": error_type, "error": message}
    if data is not None:
        body["data"] = data
    return orjson.dumps(body)


def error_response(exc: ApiError) -> web.Response:
    """Answers an ApiError with its status code."""
    return web.Response(
        status=exc.status,
        body=error_body(exc.error_type, exc.message),
        content_type="application/json",
    )


async def form_params(request: web.Request) -> MultiMapping[str]:
    """Merges a POST form body and the URL query, body first, as Go's r.Form does."""
    if request.method in ("POST", "PUT") and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        try:
            body = await request.post()
        except ValueError as exc:
            raise bad_data(f"error parsing form values: {exc}") from None
        merged: MultiDict[str] = MultiDict()
        for key, value in body.items():
            if isinstance(value, str):
                merged.add(key, value)
        merged.extend(request.query)
        return MultiDictProxy(merged)
    return request.query


def _map_promql_error(exc: PromQLError) -> ApiError:
    if isinstance(exc, ParseError):
        return invalid_param("query", str(exc))
    if isinstance(exc, EvaluationError) and str(exc).startswith("invalid expression type"):
        return invalid_param("query", str(exc))
    return ApiError(exc.error_type, str(exc), status=exc.http_status)


def _truncate(result: QueryResult, limit: int) -> bool:
    value = result.value
    if limit <= 0 or not isinstance(value, Vector | Matrix) or len(value) <= limit:
        return False
    if isinstance(value, Vector):
        result.value = Vector(value.labels[:limit], value.values[:limit], value.timestamp_ms)
    else:
        end = int(value.offsets[limit])
        result.value = Matrix(
            value.labels[:limit],
            value.offsets[: limit + 1],
            value.timestamps_ms[:end],
            value.values[:end],
        )
    return True


def _format_go_e(value: float) -> str:
    """Formats like Go's strconv.FormatFloat(v, 'e', -1, 64) ("1e+00", "1.5e+02")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = f"{value:.17e}"
    sign = "-" if value < 0 else ""
    for digits in range(17):
        candidate = f"{value:.{digits}e}"
        if float(candidate) == value:
            text = candidate
            break
    mant, _, exp = text.lstrip("-").partition("e")
    exp_sign, exp_digits = exp[0], exp[1:].lstrip("0")
    return f"{sign}{mant}e{exp_sign}{exp_digits.rjust(2, '0')}"


def _dict(labels: Labels) -> dict[str, str]:
    return dict(labels.pairs)


def _parse_bool(value: str, name: str) -> bool:
    if value in _BOOL_TRUE:
        return True
    if value in _BOOL_FALSE:
        return False
    raise invalid_param(
        name, f'unable to parse boolean: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


class Api:
    """The /api/v1 handlers over `ApiDeps`."""

    def __init__(self, deps: ApiDeps, options: ApiOptions) -> None:
        """Binds handlers to their collaborators."""
        self.deps = deps
        self.options = options
        self._costs: dict[tuple[object, ...], float] = {}
        self._stopping = asyncio.Event()

    def register(self, app: web.Application, prefix: str) -> None:
        """Adds every route under `prefix` (e.g. "/api/v1")."""
        r = app.router
        for path, handler in (
            ("/query", self.query),
            ("/query_range", self.query_range),
            ("/query_exemplars", self.query_exemplars),
            ("/format_query", self.format_query),
            ("/parse_query", self.parse_query),
            ("/labels", self.label_names),
            ("/series", self.series),
        ):
            r.add_get(prefix + path, handler)
            r.add_post(prefix + path, handler)
        for path, handler in (
            ("/label/{name}/values", self.label_values),
            ("/targets", self.targets),
            ("/targets/metadata", self.target_metadata),
            ("/scrape_pools", self.scrape_pools),
            ("/metadata", self.metadata),
            ("/rules", self.rules),
            ("/alerts", self.alerts),
            ("/alertmanagers", self.alertmanagers),
            ("/status/config", self.status_config),
            ("/status/flags", self.status_flags),
            ("/status/runtimeinfo", self.status_runtimeinfo),
            ("/status/buildinfo", self.status_buildinfo),
            ("/status/tsdb", self.status_tsdb),
            ("/status/walreplay", self.status_walreplay),
            ("/notifications", self.notifications),
            ("/notifications/live", self.notifications_live),
        ):
            r.add_get(prefix + path, handler)
        app.on_shutdown.append(self._stop_live_streams)
        for path, handler in (
            ("/admin/tsdb/delete_series", self.delete_series),
            ("/admin/tsdb/clean_tombstones", self.clean_tombstones),
            ("/admin/tsdb/snapshot", self.snapshot),
        ):
            r.add_post(prefix + path, handler)
            r.add_put(prefix + path, handler)

    # -- helpers -------------------------------------------------------------------------

    async def _in_thread(self, func: Callable[[], T], timeout_s: float | None = None) -> T:
        limit = timeout_s if timeout_s is not None else self.options.query_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await asyncio.get_running_loop().run_in_executor(None, func)
        except TimeoutError:
            raise ApiError("timeout", "query timed out in query execution") from None

    def _record_cost(self, key: tuple[object, ...], seconds: float) -> None:
        costs = self._costs
        costs.pop(key, None)
        if len(costs) >= _COST_CACHE_SIZE:
            del costs[next(iter(costs))]
        costs[key] = seconds

    async def _query_response(
        self,
        request: web.Request,
        run: Callable[[], QueryResult],
        params: Mapping[str, str],
        *,
        limit: int = 0,
        cost_key: tuple[object, ...] = (),
    ) -> web.StreamResponse:
        timeout_s: float | None = None
        if params.get("timeout"):
            timeout_s = duration_param(params.get("timeout"), "timeout") / 1000
        stats_param = params.get("stats", "")
        spent = [math.inf]
        origin = http_request_origin(request.remote or "", request.method, request.path)

        def work() -> tuple[bytes, Iterator[bytes] | None]:
            began = time.perf_counter()
            try:
                with query_origin(origin):
                    result = run()
            except PromQLError as exc:
                raise _map_promql_error(exc) from None
            warnings, infos = result.annotation_strings(params.get("query", ""))
            if _truncate(result, limit):
                warnings.append(_TRUNCATED)
            stats = b""
            if stats_param:
                stats = b',"stats":' + orjson.dumps(
                    stats_json(result.stats, all_stats=stats_param == "all")
                )
            data = itertools.chain(
                (b'{"resultType":"', result.value.type.value.encode(), b'","result":'),
                iter_result_chunks(result.value),
                (stats, b"}"),
            )
            chunks = envelope_chunks(data, warnings, infos)
            # NB: the first batch is encoded here so small answers need no second hop.
            first, rest = _next_batch(chunks, STREAM_THRESHOLD_BYTES)
            spent[0] = time.perf_counter() - began if rest is None else math.inf
            return first, rest

        key = (*cost_key, params.get("query", ""), limit, stats_param)
        last = self._costs.get(key)
        try:
            if last is not None and last < INLINE_BUDGET_S:
                first, rest = work()
            else:
                first, rest = await self._in_thread(work, timeout_s)
        finally:
            self._record_cost(key, spent[0])
        return await send_batches(request, first, rest)

    def _now_ms(self) -> int:
        return self.deps.clock.now_ms()

    # -- query ---------------------------------------------------------------------------

    async def query(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/query: an instant query."""
        p = await form_params(request)
        limit = limit_param(p.get("limit"))
        t = time_param(p.get("time"), "time", self._now_ms())
        lookback = _lookback_param(p.get("lookback_delta"))
        text = p.get("query", "")
        engine = self.deps.engine
        return await self._query_response(
            request,
            lambda: engine.instant_query(text, t, lookback_delta_ms=lookback),
            p,
            limit=limit,
            cost_key=("instant",),
        )

    async def query_range(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/query_range: a range query."""
        p = await form_params(request)
        limit = limit_param(p.get("limit"))
        start = required_time_param(p.get("start"), "start")
        end = required_time_param(p.get("end"), "end")
        if end < start:
            raise invalid_param("end", "end timestamp must not be before start time")
        step = duration_param(p.get("step"), "step")
        if step <= 0:
            raise invalid_param(
                "step",
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer",
            )
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        lookback = _lookback_param(p.get("lookback_delta"))
        text = p.get("query", "")
        engine = self.deps.engine
        return await self._query_response(
            request,
            lambda: engine.range_query(text, start, end, step, lookback_delta_ms=lookback),
            p,
            limit=limit,
            cost_key=("range", (end - start) // step),
        )

    async def query_exemplars(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/query_exemplars: exemplars of the query's selectors."""
        p = await form_params(request)
        start = time_param(p.get("start"), "start", MIN_TIME_MS)
        end = time_param(p.get("end"), "end", MAX_TIME_MS)
        if end < start:
            raise bad_data("end timestamp must not be before start timestamp")
        expr = self._parse(p.get("query", ""), prefix=False)
        sets = [list(n.matchers) for n in ast.walk(expr) if isinstance(n, ast.VectorSelector)]
        if not sets:
            return web.Response(status=204)
        source = self.deps.exemplars
        if source is None:
            return json_response([])
        found = await self._in_thread(lambda: source.select_exemplars(start, end, sets))
        return json_response(
            [
                {
                    "seriesLabels": _dict(s.series_labels),
                    "exemplars": [
                        {
                            "labels": _dict(lbl),
                            "value": format_sample_value(v),
                            "timestamp": t / 1000,
                        }
                        for lbl, v, t in s.exemplars
                    ],
                }
                for s in found
            ]
        )

    def _parse(self, text: str, *, prefix: bool = True) -> ast.Expr:
        try:
            return self.deps.engine.parse(text)
        except ParseError as exc:
            if prefix:
                raise invalid_param("query", str(exc)) from None
            raise bad_data(str(exc)) from None

    async def format_query(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/format_query: the query pretty-printed."""
        p = await form_params(request)
        return json_response(format_expr(self._parse(p.get("query", ""))))

    async def parse_query(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/parse_query: the query's syntax tree as JSON."""
        p = await form_params(request)
        return json_response(translate_ast(self._parse(p.get("query", ""))))

    # -- series and labels -----------------------------------------------------------------

    async def series(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/series: label sets of series matching match[]."""
        p = await form_params(request)
        matches = p.getall("match[]", [])
        if not matches:
            raise bad_data("no match[] parameter provided")
        start = time_param(p.get("start"), "start", MIN_TIME_MS)
        end = time_param(p.get("end"), "end", MAX_TIME_MS)
        limit = limit_param(p.get("limit"))
        sets = parse_selectors(matches)
        queryable = self.deps.queryable

        def work() -> tuple[list[Labels], list[str]]:
            found: set[Labels] = set()
            warnings: list[str] = []
            with queryable.querier(start, end) as q:
                hints = SelectHints(start, end, func="series")
                for ms in sets:
                    ss = q.select(ms, hints=hints)
                    found.update(ss.labels)
                    warnings.extend(ss.warnings)
            return sorted(found), warnings

        labels, warnings = await self._in_thread(work)
        if limit and len(labels) > limit:
            labels = labels[:limit]
            warnings.append(_TRUNCATED)
        return json_response([_dict(lbl) for lbl in labels], warnings=warnings)

    async def label_names(self, request: web.Request) -> web.StreamResponse:
        """GET/POST /api/v1/labels: label names (of series matching match[])."""
        p = await form_params(request)
        start = time_param(p.get("start"), "start", MIN_TIME_MS)
        end = time_param(p.get("end"), "end", MAX_TIME_MS)
        limit = limit_param(p.get("limit"))
        sets = parse_selectors(p.getall("match[]", []))
        queryable = self.deps.queryable

        def work() -> list[str]:
            with queryable.querier(start, end) as q:
                if not sets:
                    return q.label_names()
                names: set[str] = set()
                for ms in sets:
                    names.update(q.label_names(ms))
                return sorted(names)

        names = await self._in_thread(work)
        warnings = []
        if limit and len(names) > limit:
            names = names[:limit]
            warnings.append(_TRUNCATED)
        return json_response(names, warnings=warnings)

    async def label_values(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/label/<name>/values: values of one label."""
        name = unescape_label_name(request.match_info["name"])
        check_label_name(name)
        p = await form_params(request)
        start = time_param(p.get("start"), "start", MIN_TIME_MS)
        end = time_param(p.get("end"), "end", MAX_TIME_MS)
        limit = limit_param(p.get("limit"))
        sets = parse_selectors(p.getall("match[]", []))
        queryable = self.deps.queryable

        def work() -> list[str]:
            with queryable.querier(start, end) as q:
                if not sets:
                    return q.label_values(name)
                values: set[str] = set()
                for ms in sets:
                    values.update(q.label_values(name, ms))
                return sorted(values)

        values = await self._in_thread(work)
        warnings = []
        if limit and len(values) > limit:
            values = values[:limit]
            warnings.append(_TRUNCATED)
        return json_response(values, warnings=warnings)

    # -- targets and metadata ----------------------------------------------------------------

    async def targets(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/targets: active and dropped targets (state, scrapePool filters)."""
        state = request.query.get("state", "").lower()
        pool_filter = request.query.get("scrapePool", "")
        show_active = state in ("", "any", "active")
        show_dropped = state in ("", "any", "dropped")
        retriever = self.deps.targets
        active: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        counts: dict[str, int] | None = None
        if show_active and retriever is not None:
            by_pool = retriever.targets_active()
            for pool in sorted(by_pool):
                if pool_filter and pool != pool_filter:
                    continue
                active.extend(_target_json(t) for t in by_pool[pool])
        if show_dropped:
            counts = {}
            if retriever is not None:
                by_pool_dropped = retriever.targets_dropped()
                all_counts = retriever.targets_dropped_counts()
                for pool in sorted(set(by_pool_dropped) | set(all_counts)):
                    if pool_filter and pool != pool_filter:
                        continue
                    counts[pool] = all_counts.get(pool, len(by_pool_dropped.get(pool, ())))
                    dropped.extend(
                        {
                            "discoveredLabels": _dict(d.discovered_labels),
                            "scrapePool": d.scrape_pool or pool,
                        }
                        for d in by_pool_dropped.get(pool, ())
                    )
        return json_response(
            {"activeTargets": active, "droppedTargets": dropped, "droppedTargetCounts": counts}
        )

    def _all_active(self) -> Iterator[ActiveTarget]:
        if self.deps.targets is None:
            return
        by_pool = self.deps.targets.targets_active()
        for pool in sorted(by_pool):
            yield from by_pool[pool]

    async def target_metadata(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/targets/metadata: metric metadata per target."""
        q = request.query
        limit = -1
        if q.get("limit"):
            try:
                limit = int(q["limit"])
            except ValueError:
                raise bad_data("limit must be a number") from None
        metric = q.get("metric", "")
        matchers: list[Matcher] = []
        if q.get("match_target"):
            matchers = _target_matchers(q["match_target"])
        out: list[dict[str, Any]] = []
        for target in self._all_active():
            if limit >= 0 and len(out) >= limit:
                break
            if not matches_all(matchers, target.labels):
                continue
            for md in target.metadata:
                if metric and md.metric != metric:
                    continue
                entry: dict[str, Any] = {"target": _dict(target.labels)}
                if not metric:
                    entry["metric"] = md.metric
                entry.update(type=md.type, help=md.help, unit=md.unit)
                out.append(entry)
                if limit >= 0 and len(out) >= limit:
                    break
        return json_response(out)

    async def metadata(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/metadata: metadata by metric name, deduplicated across targets."""
        q = request.query
        limit = _int_or(q.get("limit"), -1, "limit must be a number")
        per_metric = _int_or(q.get("limit_per_metric"), -1, "limit_per_metric must be a number")
        metric = q.get("metric", "")
        found: dict[str, dict[tuple[str, str, str], None]] = {}
        for target in self._all_active():
            for md in target.metadata:
                if metric and md.metric != metric:
                    continue
                found.setdefault(md.metric, {})[(md.type, md.help, md.unit)] = None
        out: dict[str, list[dict[str, str]]] = {}
        for name, entries in found.items():
            if limit >= 0 and len(out) >= limit:
                break
            items = [{"type": t, "help": h, "unit": u} for t, h, u in entries]
            if per_metric > 0:
                items = items[:per_metric]
            out[name] = items
        return json_response(out)

    async def scrape_pools(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/scrape_pools: configured scrape pool names."""
        pools = sorted(self.deps.targets.scrape_pools()) if self.deps.targets else []
        return json_response({"scrapePools": pools})

    # -- rules and alerts --------------------------------------------------------------------

    async def rules(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/rules: rule groups, with Prometheus's filters and pagination.

        With group_limit, a page holds at most that many non-empty groups and
        `groupNextToken` names the first group of the next page (a hash of its file and
        name); the filters apply within each page, as in Prometheus.
        """
        q = request.query
        try:
            sets = parse_selectors(q.getall("match[]", []))
        except ApiError as exc:
            # NB: unlike /series, Prometheus's rules endpoint does not name the parameter.
            raise bad_data(exc.message.removeprefix('invalid parameter "match[]": ')) from None
        kind = q.get("type", "").lower()
        if kind not in ("", "alert", "record"):
            raise invalid_param("type", f"not supported value {go_quote(kind)}")
        exclude_alerts = _exclude_alerts_param(q.get("exclude_alerts", ""))
        group_limit, next_token = _group_paging_params(q)
        names = set(q.getall("rule_name[]", []))
        groups_wanted = set(q.getall("rule_group[]", []))
        files = set(q.getall("file[]", []))
        out: list[dict[str, Any]] = []
        found_token = not next_token
        token_out = ""
        for group in self.deps.rules.rule_groups() if self.deps.rules else []:
            if not found_token:
                # NB: the token is looked up before the filters, as Prometheus does.
                if next_token != rule_group_token(group):
                    continue
                found_token = True
            if groups_wanted and group.name not in groups_wanted:
                continue
            if files and group.file not in files:
                continue
            rules_json = [
                _rule_json(rule, exclude_alerts=exclude_alerts)
                for rule in group.rules
                if _rule_wanted(rule, kind, names, sets)
            ]
            if not rules_json:
                continue
            if group_limit and len(out) == group_limit:
                token_out = rule_group_token(group)
                break
            out.append(_group_json(group, rules_json))
        if not found_token:
            raise invalid_param(
                "group_next_token",
                f"invalid group_next_token '{next_token}'. were rule groups changed?",
            )
        data: dict[str, Any] = {"groups": out}
        if token_out:
            data["groupNextToken"] = token_out
        return json_response(data)

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/alerts: active alerts of every alerting rule."""
        alerts: list[dict[str, Any]] = []
        for group in self.deps.rules.rule_groups() if self.deps.rules else []:
            for rule in group.rules:
                if rule.type == "alerting":
                    alerts.extend(_alert_json(a) for a in rule.alerts)
        return json_response({"alerts": alerts})

    async def alertmanagers(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/alertmanagers: discovered Alertmanagers."""
        r = self.deps.alertmanagers
        active = [{"url": u} for u in r.alertmanagers()] if r else []
        dropped = [{"url": u} for u in r.dropped_alertmanagers()] if r else []
        return json_response({"activeAlertmanagers": active, "droppedAlertmanagers": dropped})

    # -- status ------------------------------------------------------------------------------

    async def status_config(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/status/config: the loaded configuration as YAML."""
        return json_response({"yaml": self.deps.config.config_yaml() if self.deps.config else ""})

    async def status_flags(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/status/flags: command-line flags."""
        return json_response(dict(self.deps.config.flags()) if self.deps.config else {})

    async def status_runtimeinfo(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/status/runtimeinfo: process facts."""
        return json_response(dict(self.deps.config.runtime_info()) if self.deps.config else {})

    async def status_buildinfo(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/status/buildinfo: version facts."""
        if self.deps.config is not None:
            return json_response(dict(self.deps.config.build_info()))
        return json_response(default_build_info())

    async def status_tsdb(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/status/tsdb: head cardinality statistics."""
        limit = 10
        if request.query.get("limit"):
            try:
                limit = int(request.query["limit"])
            except ValueError:
                limit = 0
            if limit < 1:
                raise bad_data("limit must be a positive number")
        if self.deps.tsdb is None:
            raise ApiError("unavailable", "TSDB not ready")
        tsdb = self.deps.tsdb
        st = await self._in_thread(lambda: tsdb.stats(limit))

        def pairs(items: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
            return [{"name": n, "value": v} for n, v in list(items)[:limit]]

        return json_response(
            {
                "headStats": {
                    "numSeries": st.num_series,
                    "numLabelPairs": st.num_label_pairs,
                    "chunkCount": st.chunk_count,
                    "minTime": st.min_time_ms,
                    "maxTime": st.max_time_ms,
                },
                "seriesCountByMetricName": pairs(st.series_count_by_metric_name),
                "labelValueCountByLabelName": pairs(st.label_value_count_by_label_name),
                "memoryInBytesByLabelName": pairs(st.memory_in_bytes_by_label_name),
                "seriesCountByLabelValuePair": pairs(st.series_count_by_label_value_pair),
            }
        )

    async def status_walreplay(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/status/walreplay: WAL replay progress."""
        lo, hi, cur = self.deps.tsdb.wal_replay_status() if self.deps.tsdb else (0, 0, 0)
        return json_response({"min": lo, "max": hi, "current": cur})

    async def notifications(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/notifications: current server notifications."""
        src = self.deps.notifications
        items = src.notifications() if src else []
        return json_response([_notification_json(n) for n in items])

    async def notifications_live(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/notifications/live: a Server-Sent Events stream of notifications.

        Sends the current notifications, then each change, one `data: <json>` event each.
        At the subscriber limit the answer is 204 No Content, as Prometheus's. The stream
        ends when the client leaves (checked every LIVE_POLL_S) or the server shuts down.
        """
        src = self.deps.notifications
        feed = src.subscribe() if src is not None else None
        if feed is None:
            return web.Response(status=204, headers=_SSE_HEADERS)
        response = web.StreamResponse(headers=_SSE_HEADERS)
        stopping = asyncio.ensure_future(self._stopping.wait())
        next_item: asyncio.Future[Notification] | None = None
        try:
            await response.prepare(request)
            while True:
                if next_item is None:
                    next_item = asyncio.ensure_future(feed.get())
                done, _ = await asyncio.wait(
                    (next_item, stopping), timeout=LIVE_POLL_S, return_when=asyncio.FIRST_COMPLETED
                )
                if next_item in done:
                    await response.write(_sse_event(next_item.result()))
                    next_item = None
                elif stopping in done:
                    while (item := feed.get_nowait()) is not None:
                        await response.write(_sse_event(item))
                    break
                elif request.transport is None or request.transport.is_closing():
                    break
        except ConnectionError:
            pass  # the client left while we were writing
        finally:
            for waiter in (stopping, next_item):
                if waiter is not None:
                    waiter.cancel()
            feed.close()
        return response

    async def _stop_live_streams(self, app: web.Application) -> None:
        """Ends every live stream so shutting down does not wait for their clients."""
        self._stopping.set()

    # -- admin -------------------------------------------------------------------------------

    def _admin(self) -> Any:
        if not self.options.enable_admin_api:
            raise ApiError("unavailable", "admin APIs disabled")
        if self.deps.tsdb is None:
            raise ApiError("unavailable", "TSDB not ready")
        return self.deps.tsdb

    async def delete_series(self, request: web.Request) -> web.StreamResponse:
        """POST/PUT /api/v1/admin/tsdb/delete_series."""
        tsdb = self._admin()
        p = await form_params(request)
        matches = p.getall("match[]", [])
        if not matches:
            raise bad_data("no match[] parameter provided")
        start = time_param(p.get("start"), "start", MIN_TIME_MS)
        end = time_param(p.get("end"), "end", MAX_TIME_MS)
        sets = parse_selectors(matches)
        await self._in_thread(lambda: tsdb.delete_series(sets, start, end))
        return web.Response(status=204)

    async def clean_tombstones(self, request: web.Request) -> web.StreamResponse:
        """POST/PUT /api/v1/admin/tsdb/clean_tombstones."""
        tsdb = self._admin()
        await self._in_thread(tsdb.clean_tombstones)
        return web.Response(status=204)

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        """POST/PUT /api/v1/admin/tsdb/snapshot: answers {"name": <dir>}."""
        tsdb = self._admin()
        p = await form_params(request)
        skip_head = _parse_bool(p["skip_head"], "skip_head") if p.get("skip_head") else False
        name = await self._in_thread(lambda: tsdb.snapshot(skip_head=skip_head))
        return json_response({"name": name})


def default_build_info() -> dict[str, str]:
    """Build facts when no ConfigInfo is wired."""
    return {
        "version": __version__,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }


def _lookback_param(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return parse_duration_param_ms(value)
    except ValueError as exc:
        raise bad_data(f"error parsing lookback delta duration: {exc}") from None


def _int_or(value: str | None, default: int, message: str) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise bad_data(message) from None


_SELECTOR_ONLY = re.compile(r"\s*\{\s*\}\s*\Z")


def _target_matchers(text: str) -> list[Matcher]:
    if _SELECTOR_ONLY.match(text):
        return []
    return parse_selector(text, "match_target")


def _target_json(t: ActiveTarget) -> dict[str, Any]:
    return {
        "discoveredLabels": _dict(t.discovered_labels),
        "labels": _dict(t.labels),
        "scrapePool": t.scrape_pool,
        "scrapeUrl": t.scrape_url,
        "globalUrl": t.global_url,
        "lastError": t.last_error,
        "lastScrape": t.last_scrape,
        "lastScrapeDuration": t.last_scrape_duration_s,
        "health": t.health,
        "scrapeInterval": t.scrape_interval,
        "scrapeTimeout": t.scrape_timeout,
    }


def _alert_json(a: AlertInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": _dict(a.labels),
        "annotations": _dict(a.annotations),
        "state": a.state,
    }
    if a.active_at is not None:
        out["activeAt"] = a.active_at
    if a.keep_firing_since is not None:
        out["keepFiringSince"] = a.keep_firing_since
    out["value"] = _format_go_e(a.value)
    return out


def _notification_json(n: Notification) -> dict[str, Any]:
    return {"text": n.text, "date": n.date, "active": n.active}


def _sse_event(n: Notification) -> bytes:
    return b"data: " + orjson.dumps(_notification_json(n)) + b"\n\n"


def _rule_json(rule: RuleInfo, *, exclude_alerts: bool) -> dict[str, Any]:
    if rule.type == "alerting":
        out: dict[str, Any] = {
            "state": rule.state,
            "name": rule.name,
            "query": rule.query,
            "duration": rule.duration_s,
            "keepFiringFor": rule.keep_firing_for_s,
            "labels": _dict(rule.labels),
            "annotations": _dict(rule.annotations),
        }
        # NB: Prometheus answers "alerts": null when they are excluded.
        out["alerts"] = None if exclude_alerts else [_alert_json(a) for a in rule.alerts]
    else:
        out = {"name": rule.name, "query": rule.query, "labels": _dict(rule.labels)}
    out["health"] = rule.health
    if rule.last_error:
        out["lastError"] = rule.last_error
    out["evaluationTime"] = rule.evaluation_time_s
    out["lastEvaluation"] = rule.last_evaluation
    out["type"] = rule.type
    return out


def _group_json(group: RuleGroupInfo, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": group.name,
        "file": group.file,
        "rules": rules,
        "interval": group.interval_s,
        "limit": group.limit,
        "evaluationTime": group.evaluation_time_s,
        "lastEvaluation": group.last_evaluation,
    }


def rule_group_token(group: RuleGroupInfo) -> str:
    """The page token naming a rule group: hex SHA-1 of "<file>;<name>", as Prometheus's."""
    return hashlib.sha1(f"{group.file};{group.name}".encode()).hexdigest()


def _rule_wanted(rule: RuleInfo, kind: str, names: set[str], sets: list[list[Matcher]]) -> bool:
    if kind == "alert" and rule.type != "alerting":
        return False
    if kind == "record" and rule.type != "recording":
        return False
    if names and rule.name not in names:
        return False
    return not sets or any(matches_all(ms, rule.labels) for ms in sets)


def _exclude_alerts_param(value: str) -> bool:
    """Parses exclude_alerts as Prometheus does: lower-cased, then strconv.ParseBool."""
    text = value.lower()
    if not text:
        return False
    if text in _BOOL_TRUE or text in _BOOL_FALSE:
        return text in _BOOL_TRUE
    raise invalid_param(
        "exclude_alerts",
        f"error converting exclude_alerts: strconv.ParseBool: parsing {go_quote(text)}: "
        "invalid syntax",
    )


def _group_paging_params(query: MultiMapping[str]) -> tuple[int, str]:
    """Returns (group_limit, group_next_token) of /api/v1/rules; (0, "") when not paging."""
    limit_text = query.get("group_limit", "")
    token = query.get("group_next_token", "")
    if token and not limit_text:
        raise invalid_param(
            "group_next_token",
            "group_limit needs to be present in order to paginate over the groups",
        )
    if not limit_text:
        return 0, ""
    try:
        limit = go_parse_int32(limit_text)
    except ValueError as exc:
        raise invalid_param(
            "group_limit", f"group_limit needs to be a valid number: {exc}"
        ) from None
    if limit <= 0:
        raise invalid_param("group_limit", "group_limit needs to be greater than 0")
    return limit, token


def go_parse_int32(text: str) -> int:
    """Parses base-10 text as Go's strconv.ParseInt(text, 10, 32) does.

    Raises:
        ValueError: with Go's message, e.g. `strconv.ParseInt: parsing "1.5": invalid syntax`
            or `... "9999999999": value out of range` (whichever the digit scan meets first).
    """
    negative = text.startswith("-")
    digits = text[1:] if text[:1] in ("+", "-") else text
    invalid = ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    out_of_range = ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    if not digits:
        raise invalid
    value = 0
    for ch in digits:
        if not "0" <= ch <= "9":
            raise invalid
        value = value * 10 + ord(ch) - ord("0")
        if value > _UINT32_MAX:
            raise out_of_range
    if value > (_INT32_LIMIT if negative else _INT32_LIMIT - 1):
        raise out_of_range
    return -value if negative else value


def _next_batch(
    chunks: Iterator[bytes], size_bytes: int = STREAM_BATCH_BYTES
) -> tuple[bytes, Iterator[bytes] | None]:
    """Joins chunks up to `size_bytes`; the iterator is None once exhausted."""
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= size_bytes:
            return b"".join(batch), chunks
    return b"".join(batch), None


async def send_batches(
    request: web.Request, first: bytes, rest: Iterator[bytes] | None
) -> web.StreamResponse:
    """Sends a JSON answer: one body when small, else streamed while the rest is encoded.

    The next batch is encoded in a worker thread while the previous one is written, so a
    large answer's memory stays bounded and the client receives bytes early.
    """
    if rest is None:
        return web.Response(body=first, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression(ContentCoding.gzip)
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, _next_batch, rest)
    try:
        await resp.write(first)
        while True:
            batch, more = await pending
            if more is not None:
                pending = loop.run_in_executor(None, _next_batch, more)
            if batch:
                await resp.write(batch)
            if more is None:
                break
    finally:
        if not pending.done():
            pending.cancel()
    await resp.write_eof()
    return resp
