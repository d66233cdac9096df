"""prometheus_http_* and prometheus_engine_* as a user reads them on /metrics after requests."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from watchkeeper.instrument.metrics import Registry
from watchkeeper.promql.engine import Engine
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.web import make_api_deps
from watchkeeper.web.app import WebOptions, create_app

Client = TestClient[web.Request, web.Application]
NOW_MS = 1_700_000_000_000


async def _client(aiohttp_client: AiohttpClient) -> Client:
    db = MemoryStorage()
    registry = Registry()
    deps = make_api_deps(
        db,
        clock=ManualClock(NOW_MS),
        registry=registry,
        engine=Engine(db, registry=registry),
    )
    return await aiohttp_client(create_app(deps, WebOptions()))


async def _metrics(client: Client) -> dict[str, float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    out: dict[str, float] = {}
    for line in (await resp.text()).splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


async def test_every_get_route_has_a_request_counter_from_start_up(
    aiohttp_client: AiohttpClient,
) -> None:
    metrics = await _metrics(await _client(aiohttp_client))
    assert metrics['prometheus_http_requests_total{code="200",handler="/api/v1/query"}'] == 0
    assert (
        metrics['prometheus_http_requests_total{code="200",handler="/api/v1/label/:name/values"}']
        == 0
    )
    assert metrics['prometheus_http_requests_total{code="200",handler="/federate"}'] == 0


async def test_requests_are_counted_by_status_and_route_and_timed(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await _client(aiohttp_client)
    assert (await client.get("/api/v1/query", params={"query": "1+1"})).status == 200
    assert (await client.get("/api/v1/query", params={"query": "1+"})).status == 400
    assert (await client.get("/api/v1/label/job/values")).status == 200
    assert (await client.get("/no/such/page")).status == 404
    metrics = await _metrics(client)
    assert metrics['prometheus_http_requests_total{code="200",handler="/api/v1/query"}'] == 1
    assert metrics['prometheus_http_requests_total{code="400",handler="/api/v1/query"}'] == 1
    assert (
        metrics['prometheus_http_requests_total{code="200",handler="/api/v1/label/:name/values"}']
        == 1
    )
    assert not any("/no/such/page" in series for series in metrics)
    duration = 'prometheus_http_request_duration_seconds_count{handler="/api/v1/query"}'
    assert metrics[duration] == 2
    size = 'prometheus_http_response_size_bytes_bucket{handler="/api/v1/query",le="1000"}'
    assert metrics[size] == 2, "both JSON answers are small"


async def test_queries_through_the_api_show_in_the_engine_metrics(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await _client(aiohttp_client)
    for _ in range(3):
        assert (await client.get("/api/v1/query", params={"query": "vector(1)"})).status == 200
    metrics = await _metrics(client)
    assert metrics['prometheus_engine_query_duration_seconds_count{slice="inner_eval"}'] == 3
    assert metrics['prometheus_engine_query_duration_seconds_count{slice="queue_time"}'] == 3
    assert metrics['prometheus_engine_query_duration_seconds_count{slice="prepare_time"}'] == 3
    assert (
        metrics['prometheus_engine_query_duration_seconds{slice="inner_eval",quantile="0.5"}'] > 0
    )
    assert metrics["prometheus_engine_queries"] == 0
    assert metrics["prometheus_engine_queries_concurrent_max"] == 20
    assert metrics["prometheus_web_federation_errors_total"] == 0


async def test_range_queries_time_the_sort_of_their_result_as_prometheus(
    aiohttp_client: AiohttpClient,
) -> None:
    """result_sort counts each range query (its matrix is sorted by labels), not instant ones."""
    client = await _client(aiohttp_client)
    start_s = NOW_MS // 1000 - 60
    range_params = {"start": str(start_s), "end": str(start_s + 60), "step": "15"}
    for query in ('label_replace(vector(1), "a", "x", "", "")', "vector(2)"):
        resp = await client.get("/api/v1/query_range", params={"query": query, **range_params})
        assert resp.status == 200
    resp = await client.get(
        "/api/v1/query_range", params={"query": "time()", "stats": "all", **range_params}
    )
    timings = (await resp.json())["data"]["stats"]["timings"]
    assert timings["resultSortTime"] > 0
    assert (await client.get("/api/v1/query", params={"query": "vector(1)"})).status == 200
    metrics = await _metrics(client)
    assert metrics['prometheus_engine_query_duration_seconds_count{slice="result_sort"}'] == 3
    assert metrics['prometheus_engine_query_duration_seconds_count{slice="inner_eval"}'] == 4
    assert (
        metrics['prometheus_engine_query_duration_seconds{slice="result_sort",quantile="0.5"}'] > 0
    )
