"""The HTTP API v1 in process: shapes, parameters, errors and status codes as Prometheus."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from watchkeeper.model.labels import Labels
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.web import (
    MemoryTsdbAdmin,
    StaticAlertmanagers,
    StaticRules,
    StaticTargets,
    make_api_deps,
)
from watchkeeper.web.api.v1.deps import (
    ActiveTarget,
    AlertInfo,
    ApiDeps,
    DroppedTarget,
    MetricMetadataEntry,
    ReadyStatus,
    RuleGroupInfo,
    RuleInfo,
)
from watchkeeper.web.app import WebOptions, create_app

Client = TestClient[web.Request, web.Application]
NOW_MS = 1_700_000_000_000


def _storage() -> MemoryStorage:
    db = MemoryStorage()
    with db.appender() as app:
        ts = NOW_MS - 120_000 + np.arange(0, 120_001, 15_000)
        for job, inst, scale in (("api", "a:1", 1.0), ("api", "b:1", 2.0), ("web", "c:1", 0.5)):
            lbl = Labels.from_dict({"__name__": "up", "job": job, "instance": inst})
            app.append_series([lbl] * len(ts), ts, np.ones(len(ts)) * scale)
            lbl2 = Labels.from_dict(
                {"__name__": "http_requests_total", "job": job, "instance": inst}
            )
            app.append_series([lbl2] * len(ts), ts, np.arange(len(ts)) * 10.0 * scale)
        dotted = Labels.from_dict({"__name__": "dotted", "a.b": "x"})
        app.append_series([dotted], [NOW_MS], [1.0])
    return db


MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient) -> MakeClient:
    async def make(deps: ApiDeps | None = None, **options: Any) -> Client:
        d = deps if deps is not None else make_api_deps(_storage(), clock=ManualClock(NOW_MS))
        return await aiohttp_client(create_app(d, WebOptions(**options)))

    return make


async def _json(client: Client, path: str, *, status: int = 200, **kw: Any) -> Any:
    method = kw.pop("method", "GET")
    resp = await client.request(method, path, **kw)
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/json")
    return await resp.json()


async def test_instant_query_answers_a_vector_as_prometheus_encodes_it(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    body = await _json(
        client, "/api/v1/query", params={"query": 'up{job="api"}', "time": "1700000000.5"}
    )
    assert body == {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {"__name__": "up", "instance": "a:1", "job": "api"},
                    "value": [1700000000.5, "1"],
                },
                {
                    "metric": {"__name__": "up", "instance": "b:1", "job": "api"},
                    "value": [1700000000.5, "2"],
                },
            ],
        },
    }
    raw = await (
        await client.get("/api/v1/query", params={"query": "up", "time": "1700000000.05"})
    ).read()
    assert b"[1700000000.050," in raw


async def test_instant_query_defaults_time_to_now_and_accepts_post_forms(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/query", method="POST", data={"query": "time()"})
    assert body["data"] == {"resultType": "scalar", "result": [1700000000, "1700000000"]}


async def test_scalar_and_string_results_use_go_float_text(make_client: MakeClient) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/query", params={"query": "1e21", "time": "1.78"})
    assert body["data"]["result"] == [1.78, "1000000000000000000000"]
    body = await _json(client, "/api/v1/query", params={"query": '"a"', "time": "2"})
    assert body["data"] == {"resultType": "string", "result": [2, "a"]}


async def test_range_query_answers_a_matrix(make_client: MakeClient) -> None:
    client = await make_client()
    start = (NOW_MS - 60_000) / 1000
    body = await _json(
        client,
        "/api/v1/query_range",
        method="POST",
        data={
            "query": 'up{job="web"}',
            "start": str(start),
            "end": str(NOW_MS / 1000),
            "step": "30s",
        },
    )
    assert body["data"]["resultType"] == "matrix"
    [series] = body["data"]["result"]
    assert series["metric"] == {"__name__": "up", "instance": "c:1", "job": "web"}
    assert series["values"] == [[1699999940, "0.5"], [1699999970, "0.5"], [1700000000, "0.5"]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "1"}, 'invalid parameter "start": cannot parse "" to a valid timestamp'),
        (
            {"query": "1", "start": "x", "end": "1", "step": "1"},
            'invalid parameter "start": cannot parse "x" to a valid timestamp',
        ),
        (
            {"query": "1", "start": "1", "end": "0", "step": "1"},
            'invalid parameter "end": end timestamp must not be before start time',
        ),
        (
            {"query": "1", "start": "0", "end": "10"},
            'invalid parameter "step": cannot parse "" to a valid duration',
        ),
        (
            {"query": "1", "start": "0", "end": "10", "step": "0"},
            'invalid parameter "step": zero or negative query '
            "resolution step widths are not accepted. Try a positive integer",
        ),
        (
            {"query": "1", "start": "0", "end": "100000", "step": "1"},
            "exceeded maximum resolution of 11,000 points per "
            "timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            {"query": "up[5m]", "start": "0", "end": "10", "step": "1"},
            'invalid parameter "query": invalid expression type "range '
            'vector" for range query, must be Scalar or instant Vector',
        ),
    ],
)
async def test_range_query_refuses_bad_parameters_with_prometheus_messages(
    make_client: MakeClient, params: dict[str, str], message: str
) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/query_range", status=400, params=params)
    assert body == {"status": "error", "errorType": "bad_data", "error": message}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"query": "1", "time": "x"},
            'invalid parameter "time": invalid time value '
            "for 'time': cannot parse \"x\" to a valid timestamp",
        ),
        (
            {"query": "1", "timeout": "x"},
            'invalid parameter "timeout": cannot parse "x" to a valid duration',
        ),
        (
            {"query": "1", "limit": "x"},
            'invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax',
        ),
        ({"query": "1", "limit": "-1"}, 'invalid parameter "limit": limit must be non-negative'),
        (
            {"query": "1", "lookback_delta": "x"},
            'error parsing lookback delta duration: cannot parse "x" to a valid duration',
        ),
    ],
)
async def test_instant_query_refuses_bad_parameters(
    make_client: MakeClient, params: dict[str, str], message: str
) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/query", status=400, params=params)
    assert body["error"] == message


async def test_query_parse_errors_are_bad_data_and_execution_errors_are_422(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/query", status=400, params={"query": "up{"})
    assert body["errorType"] == "bad_data"
    assert body["error"].startswith('invalid parameter "query": 1:')
    body = await _json(
        client, "/api/v1/query", status=422, params={"query": "up + on(job) http_requests_total"}
    )
    assert body["errorType"] == "execution"


async def test_query_limit_truncates_with_a_warning_and_stats_are_reported(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    body = await _json(
        client, "/api/v1/query", params={"query": "up", "limit": "1", "stats": "all"}
    )
    assert len(body["data"]["result"]) == 1
    assert body["warnings"] == ["results truncated due to limit"]
    assert set(body["data"]["stats"]) == {"timings", "samples"}


async def test_series_labels_and_label_values(make_client: MakeClient) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/series", params={"match[]": 'up{job="api"}'})
    assert body["data"] == [
        {"__name__": "up", "instance": "a:1", "job": "api"},
        {"__name__": "up", "instance": "b:1", "job": "api"},
    ]
    body = await _json(client, "/api/v1/labels")
    assert body["data"] == ["__name__", "a.b", "instance", "job"]
    body = await _json(client, "/api/v1/labels", method="POST", data={"match[]": "up"})
    assert body["data"] == ["__name__", "instance", "job"]
    body = await _json(client, "/api/v1/label/job/values")
    assert body["data"] == ["api", "web"]
    body = await _json(client, "/api/v1/label/U__a_2e_b/values")
    assert body["data"] == ["x"]
    body = await _json(client, "/api/v1/label/__name__/values", params={"limit": "2"})
    assert body == {
        "status": "success",
        "data": ["dotted", "http_requests_total"],
        "warnings": ["results truncated due to limit"],
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "no match[] parameter provided"),
        ({"match[]": "sum(up)"}, 'invalid parameter "match[]": 1:4: parse error: unexpected "("'),
        (
            {"match[]": '{job=~".*"}'},
            'invalid parameter "match[]": match[] must contain at least one non-empty matcher',
        ),
        (
            {"match[]": "up", "start": "x"},
            'invalid parameter "start": invalid time value '
            "for 'start': cannot parse \"x\" to a valid timestamp",
        ),
    ],
)
async def test_series_refuses_bad_selectors(
    make_client: MakeClient, params: dict[str, str], message: str
) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/series", status=400, params=params)
    assert body["error"] == message


def _target() -> ActiveTarget:
    return ActiveTarget(
        discovered_labels=Labels.from_dict({"__address__": "a:1", "job": "api"}),
        labels=Labels.from_dict({"instance": "a:1", "job": "api"}),
        scrape_pool="api",
        scrape_url="http://a:1/metrics",
        global_url="http://a:1/metrics",
        last_error="",
        last_scrape="2023-11-14T22:13:20Z",
        last_scrape_duration_s=0.01,
        health="up",
        scrape_interval="15s",
        scrape_timeout="10s",
        metadata=(MetricMetadataEntry("up", "gauge", "Up.", ""),),
    )


async def test_targets_metadata_and_scrape_pools(make_client: MakeClient) -> None:
    targets = StaticTargets(
        active={"api": [_target()]},
        dropped={"api": [DroppedTarget(Labels.from_dict({"__address__": "x:1"}), "api")]},
    )
    client = await make_client(make_api_deps(_storage(), targets=targets))
    body = await _json(client, "/api/v1/targets")
    assert body["data"]["activeTargets"][0]["health"] == "up"
    assert body["data"]["droppedTargets"] == [
        {"discoveredLabels": {"__address__": "x:1"}, "scrapePool": "api"}
    ]
    assert body["data"]["droppedTargetCounts"] == {"api": 1}
    body = await _json(client, "/api/v1/targets", params={"state": "ACTIVE"})
    assert body["data"]["droppedTargetCounts"] is None
    body = await _json(client, "/api/v1/targets", params={"scrapePool": "other"})
    assert body["data"]["activeTargets"] == []
    body = await _json(client, "/api/v1/scrape_pools")
    assert body["data"] == {"scrapePools": ["api"]}
    body = await _json(client, "/api/v1/metadata")
    assert body["data"] == {"up": [{"type": "gauge", "help": "Up.", "unit": ""}]}
    body = await _json(client, "/api/v1/metadata", status=400, params={"limit": "x"})
    assert body["error"] == "limit must be a number"
    body = await _json(client, "/api/v1/targets/metadata", params={"match_target": '{job="api"}'})
    assert body["data"] == [
        {
            "target": {"instance": "a:1", "job": "api"},
            "metric": "up",
            "type": "gauge",
            "help": "Up.",
            "unit": "",
        }
    ]


def _rules() -> StaticRules:
    alert = AlertInfo(
        labels=Labels.from_dict({"alertname": "Down", "severity": "page"}),
        annotations=Labels.from_dict({"summary": "down"}),
        state="firing",
        active_at="2023-11-14T22:13:20Z",
        value=1.0,
    )
    return StaticRules(
        [
            RuleGroupInfo(
                name="g1",
                file="rules.yml",
                interval_s=15.0,
                rules=(
                    RuleInfo(
                        type="alerting",
                        name="Down",
                        query="up == 0",
                        labels=Labels.from_dict({"severity": "page"}),
                        alerts=(alert,),
                        state="firing",
                        health="ok",
                    ),
                    RuleInfo(
                        type="recording", name="job:up:sum", query="sum by (job) (up)", health="ok"
                    ),
                ),
            )
        ]
    )


async def test_rules_alerts_and_alertmanagers(make_client: MakeClient) -> None:
    deps = make_api_deps(
        _storage(),
        rules=_rules(),
        alertmanagers=StaticAlertmanagers(["http://am:9093/api/v2/alerts"]),
    )
    client = await make_client(deps)
    body = await _json(client, "/api/v1/rules")
    group = body["data"]["groups"][0]
    assert group["name"] == "g1"
    assert [r["type"] for r in group["rules"]] == ["alerting", "recording"]
    assert group["rules"][0]["alerts"][0]["value"] == "1e+00"
    body = await _json(client, "/api/v1/rules", params={"type": "record"})
    assert [r["name"] for r in body["data"]["groups"][0]["rules"]] == ["job:up:sum"]
    body = await _json(client, "/api/v1/rules", params={"type": "alert", "exclude_alerts": "true"})
    assert body["data"]["groups"][0]["rules"][0]["alerts"] is None
    body = await _json(client, "/api/v1/rules", status=400, params={"type": "x"})
    assert body["error"] == 'invalid parameter "type": not supported value "x"'
    body = await _json(client, "/api/v1/rules", params={"rule_group[]": "nope"})
    assert body["data"] == {"groups": []}
    body = await _json(client, "/api/v1/alerts")
    assert body["data"]["alerts"][0]["labels"]["alertname"] == "Down"
    body = await _json(client, "/api/v1/alertmanagers")
    assert body["data"] == {
        "activeAlertmanagers": [{"url": "http://am:9093/api/v2/alerts"}],
        "droppedAlertmanagers": [],
    }


async def test_status_endpoints(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await _json(client, "/api/v1/status/config"))["data"]["yaml"].startswith("global:")
    assert (await _json(client, "/api/v1/status/buildinfo"))["data"]["version"]
    assert (await _json(client, "/api/v1/status/flags"))["data"] == {}
    assert (await _json(client, "/api/v1/status/runtimeinfo"))["status"] == "success"
    assert (await _json(client, "/api/v1/status/walreplay"))["data"] == {
        "min": 0,
        "max": 0,
        "current": 0,
    }
    tsdb = (await _json(client, "/api/v1/status/tsdb", params={"limit": "2"}))["data"]
    assert tsdb["headStats"]["numSeries"] == 7
    assert tsdb["seriesCountByMetricName"] == [
        {"name": "http_requests_total", "value": 3},
        {"name": "up", "value": 3},
    ]
    body = await _json(client, "/api/v1/status/tsdb", status=400, params={"limit": "0"})
    assert body["error"] == "limit must be a positive number"
    assert (await _json(client, "/api/v1/notifications"))["data"] == []


async def test_format_and_parse_query(make_client: MakeClient) -> None:
    client = await make_client()
    body = await _json(client, "/api/v1/format_query", params={"query": "sum(up)by(a)"})
    assert body["data"] == "sum by (a) (up)"
    body = await _json(client, "/api/v1/parse_query", params={"query": "sum(up)"})
    assert body["data"]["type"] == "aggregation"
    assert body["data"]["expr"]["matchers"] == [{"name": "__name__", "type": "=", "value": "up"}]


async def test_query_exemplars_without_selectors_is_no_content(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.get("/api/v1/query_exemplars", params={"query": "1"})).status == 204
    body = await _json(client, "/api/v1/query_exemplars", params={"query": "up"})
    assert body["data"] == []
    body = await _json(
        client,
        "/api/v1/query_exemplars",
        status=400,
        params={"query": "up", "start": "2", "end": "1"},
    )
    assert body["error"] == "end timestamp must not be before start timestamp"


async def test_admin_endpoints_are_refused_unless_enabled(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("delete_series", "clean_tombstones", "snapshot"):
        body = await _json(client, f"/api/v1/admin/tsdb/{path}", status=503, method="POST")
        assert body == {
            "status": "error",
            "errorType": "unavailable",
            "error": "admin APIs disabled",
        }
    assert (await client.get("/api/v1/admin/tsdb/snapshot")).status == 405


async def test_admin_endpoints_work_when_enabled(make_client: MakeClient) -> None:
    deps = make_api_deps(_storage())
    client = await make_client(deps, enable_admin_api=True)
    resp = await client.post(
        "/api/v1/admin/tsdb/delete_series", params={"match[]": "up", "start": "0"}
    )
    assert resp.status == 204
    assert isinstance(deps.tsdb, MemoryTsdbAdmin)
    assert deps.tsdb.deleted[0][1] == 0
    assert (await client.put("/api/v1/admin/tsdb/clean_tombstones")).status == 204
    body = await _json(client, "/api/v1/admin/tsdb/snapshot", method="POST")
    assert body["data"]["name"].startswith("2025")
    body = await _json(client, "/api/v1/admin/tsdb/delete_series", status=400, method="POST")
    assert body["error"] == "no match[] parameter provided"


async def test_lifecycle_endpoints_are_refused_unless_enabled(make_client: MakeClient) -> None:
    client = await make_client()
    resp = await client.post("/-/reload")
    assert (resp.status, await resp.text()) == (403, "Lifecycle API is not enabled.")
    assert (await client.put("/-/quit")).status == 403
    assert (await client.get("/-/reload")).status == 405


async def test_lifecycle_reload_and_quit_call_the_server(make_client: MakeClient) -> None:
    calls: list[str] = []

    async def reload() -> None:
        calls.append("reload")
        if len(calls) > 1:
            raise ValueError("bad config")

    deps = make_api_deps(_storage(), reloader=reload, quit=lambda: calls.append("quit"))
    client = await make_client(deps, enable_lifecycle=True)
    assert (await client.post("/-/reload")).status == 200
    resp = await client.post("/-/reload")
    assert resp.status == 500
    assert "bad config" in await resp.text()
    assert (await client.post("/-/quit")).status == 200
    assert calls == ["reload", "reload", "quit"]


async def test_health_readiness_and_metrics(make_client: MakeClient) -> None:
    ready = [ReadyStatus.NOT_READY]
    deps = make_api_deps(_storage(), ready=lambda: ready[0])
    deps.registry.counter("watchkeeper_test_total", "A test counter.").inc()
    client = await make_client(deps)
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/-/ready")).status == 503
    assert (await client.get("/api/v1/query", params={"query": "1"})).status == 503
    ready[0] = ReadyStatus.READY
    resp = await client.get("/-/ready")
    assert (resp.status, await resp.text()) == (200, "Prometheus Server is Ready.\n")
    text = await (await client.get("/metrics")).text()
    assert "watchkeeper_test_total 1" in text


async def test_responses_are_gzipped_when_asked(make_client: MakeClient) -> None:
    client = await make_client()
    resp = await client.get(
        "/api/v1/labels", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert resp.headers["Content-Encoding"] == "gzip"
    assert b'"__name__"' in gzip.decompress(await resp.read())


async def test_unknown_paths_and_crashing_handlers_never_answer_html(
    make_client: MakeClient,
) -> None:
    class Broken:
        def querier(self, mint_ms: int, maxt_ms: int) -> Any:
            raise RuntimeError("boom")

    deps = make_api_deps(_storage())
    deps.queryable = Broken()
    client = await make_client(deps)
    body = await _json(client, "/api/v1/labels", status=500)
    assert body == {"status": "error", "errorType": "internal", "error": "RuntimeError: boom"}
    resp = await client.get("/api/v1/nonexistent")
    assert (resp.status, await resp.text()) == (404, "404 page not found\n")


async def test_oversized_request_bodies_are_refused(make_client: MakeClient) -> None:
    client = await make_client(max_request_bytes=1024)
    resp = await client.post("/api/v1/query", data={"query": "x" * 4096})
    assert resp.status == 413


async def test_cors_headers_follow_the_origin_pattern(make_client: MakeClient) -> None:
    client = await make_client(cors_origin="https://ok\\.example")
    resp = await client.get("/api/v1/labels", headers={"Origin": "https://ok.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    resp = await client.get("/api/v1/labels", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_route_prefix_from_the_external_url(make_client: MakeClient) -> None:
    client = await make_client(external_url="http://example.com/prom/")
    assert (await client.get("/prom/-/healthy")).status == 200
    body = await _json(client, "/prom/api/v1/query", params={"query": "1", "time": "1"})
    assert body["data"]["result"] == [1, "1"]


async def test_large_answers_are_streamed_and_still_gzipped(make_client: MakeClient) -> None:
    db = MemoryStorage()
    lbls = [
        Labels.from_dict({"__name__": "big", "i": str(i), "pad": "x" * 400}) for i in range(3000)
    ]
    with db.appender() as app:
        app.append_series(lbls, [NOW_MS] * len(lbls), np.arange(len(lbls), dtype=np.float64))
    client = await make_client(make_api_deps(db, clock=ManualClock(NOW_MS)))
    body = await _json(client, "/api/v1/query", params={"query": "big"})
    assert len(body["data"]["result"]) == 3000
    resp = await client.get(
        "/api/v1/query", params={"query": "big"}, headers={"Accept-Encoding": "gzip"}
    )
    assert resp.headers["Content-Encoding"] == "gzip"
    assert len((await resp.json())["data"]["result"]) == 3000


async def test_queries_past_the_timeout_answer_503_timeout(make_client: MakeClient) -> None:
    deps = make_api_deps(_storage(), clock=ManualClock(NOW_MS))
    engine = deps.engine

    class SlowEngine:
        def parse(self, query: str) -> Any:
            return engine.parse(query)

        def instant_query(self, query: str, time_ms: int, **kw: Any) -> Any:
            time.sleep(0.5)
            return engine.instant_query(query, time_ms, **kw)

        def range_query(self, *args: Any, **kw: Any) -> Any:
            return engine.range_query(*args, **kw)

    deps.engine = SlowEngine()
    client = await make_client(deps)
    body = await _json(
        client, "/api/v1/query", status=503, params={"query": "up", "timeout": "0.1"}
    )
    assert body == {
        "status": "error",
        "errorType": "timeout",
        "error": "query timed out in query execution",
    }


async def test_repeated_cheap_queries_skip_the_worker_thread_with_the_same_answer(
    make_client: MakeClient,
) -> None:
    deps = make_api_deps(_storage(), clock=ManualClock(NOW_MS))
    engine = deps.engine
    threads: list[int] = []

    class RecordingEngine:
        def parse(self, query: str) -> Any:
            return engine.parse(query)

        def instant_query(self, query: str, time_ms: int, **kw: Any) -> Any:
            threads.append(threading.get_ident())
            return engine.instant_query(query, time_ms, **kw)

        def range_query(self, *args: Any, **kw: Any) -> Any:
            threads.append(threading.get_ident())
            return engine.range_query(*args, **kw)

    deps.engine = RecordingEngine()
    client = await make_client(deps)
    loop_thread = threading.get_ident()
    params = {"query": "sum by (job) (up)", "time": str(NOW_MS / 1000)}
    bodies = [await _json(client, "/api/v1/query", params=params) for _ in range(3)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert threads[0] != loop_thread
    assert threads[1:] == [loop_thread, loop_thread]
    # A different step count is another query: its first run goes to the worker again.
    rng = {"query": "up", "start": str(NOW_MS / 1000 - 60), "end": str(NOW_MS / 1000)}
    first = await _json(client, "/api/v1/query_range", params={**rng, "step": "15"})
    second = await _json(client, "/api/v1/query_range", params={**rng, "step": "30"})
    assert len(first["data"]["result"]) == len(second["data"]["result"]) == 3
    assert loop_thread not in threads[3:]
