"""CORS headers on every API answer (streamed ones included) and the paths served before ready.

The CORS header sets are compared with the real Prometheus 3.5 for the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy
from pytest_aiohttp import AiohttpClient

from watchkeeper.model.labels import Labels
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.web import ApiServerThread, make_api_deps
from watchkeeper.web.api.v1.deps import ReadyStatus
from watchkeeper.web.app import WebOptions, create_app

Client = TestClient[web.Request, web.Application]
NOW_MS = 1_700_000_000_000
ORIGIN = "https://ok.example"
CORS_PATTERN = r"https://ok\.example"
CORS = {
    "Access-Control-Allow-Headers": "Accept, Authorization, Content-Type, Origin",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Origin": ORIGIN,
    "Access-Control-Expose-Headers": "Date",
    "Vary": "Origin",
}


def _cors_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """The CORS part of a response's headers (Vary included)."""
    return {
        name: ", ".join(headers.getall(name))
        for name in sorted(set(headers.keys()))
        if name.startswith("Access-Control-") or name == "Vary"
    }


async def _client(
    aiohttp_client: AiohttpClient, *, ready: ReadyStatus = ReadyStatus.READY
) -> Client:
    db = MemoryStorage()
    lbls = [
        Labels.from_dict({"__name__": "big", "i": str(i), "pad": "x" * 400}) for i in range(3000)
    ]
    with db.appender() as app:
        app.append_series(lbls, [NOW_MS] * len(lbls), np.arange(len(lbls), dtype=np.float64))
    api_deps = make_api_deps(db, clock=ManualClock(NOW_MS), ready=lambda: ready)
    return await aiohttp_client(create_app(api_deps, WebOptions(cors_origin=CORS_PATTERN)))


async def test_a_streamed_query_range_answer_carries_the_cors_headers(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await _client(aiohttp_client)
    params = {"query": "big", "start": str(NOW_MS // 1000 - 60), "end": str(NOW_MS // 1000)}
    resp = await client.get(
        "/api/v1/query_range", params={**params, "step": "15"}, headers={"Origin": ORIGIN}
    )
    assert resp.status == 200
    assert "Content-Length" not in resp.headers, "the answer is streamed"
    assert _cors_headers(resp.headers) == CORS
    assert len((await resp.json())["data"]["result"]) == 3000


async def test_the_live_notification_stream_carries_the_cors_headers(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await _client(aiohttp_client)
    resp = await client.get("/api/v1/notifications/live", headers={"Origin": ORIGIN})
    assert (resp.status, resp.headers["Content-Type"]) == (200, "text/event-stream")
    assert _cors_headers(resp.headers) == CORS
    resp.close()


async def test_cors_follows_prometheus_for_other_origins_errors_and_unknown_paths(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await _client(aiohttp_client)
    evil = await client.get("/api/v1/labels", headers={"Origin": "https://evil.example"})
    assert _cors_headers(evil.headers) == {
        name: value for name, value in CORS.items() if name != "Access-Control-Allow-Origin"
    }
    bad = await client.get("/api/v1/query", params={"query": "("}, headers={"Origin": ORIGIN})
    assert (bad.status, _cors_headers(bad.headers)) == (400, CORS)
    no_origin = await client.get("/api/v1/labels")
    assert _cors_headers(no_origin.headers) == {"Vary": "Origin"}
    unknown = await client.get("/api/v1/nothing", headers={"Origin": ORIGIN})
    assert (unknown.status, _cors_headers(unknown.headers)) == (404, {})
    write = await client.post("/api/v1/write", data=b"", headers={"Origin": ORIGIN})
    assert _cors_headers(write.headers) == {}
    preflight = await client.options("/api/v1/anything", headers={"Origin": ORIGIN})
    assert (preflight.status, _cors_headers(preflight.headers)) == (204, CORS)


@pytest.mark.parametrize("status", [ReadyStatus.NOT_READY, ReadyStatus.STOPPING])
async def test_notifications_and_wal_replay_status_are_served_while_not_ready(
    aiohttp_client: AiohttpClient, status: ReadyStatus
) -> None:
    """Starting or stopping, the same paths answer; only the stopping 503s say it in a header."""
    client = await _client(aiohttp_client, ready=status)
    stopping_header = {"X-Prometheus-Stopping": "true"} if status is ReadyStatus.STOPPING else {}
    listed = await client.get("/api/v1/notifications", headers={"Origin": ORIGIN})
    assert listed.status == 200
    assert (await listed.json())["status"] == "success"
    assert _cors_headers(listed.headers) == CORS
    assert (await client.get("/api/v1/status/walreplay")).status == 200
    live = await client.get("/api/v1/notifications/live")
    assert (live.status, live.headers["Content-Type"]) == (200, "text/event-stream")
    live.close()
    for method, path in (
        ("GET", "/api/v1/query?query=1"),
        ("GET", "/api/v1/labels"),
        ("GET", "/federate?match[]=up"),
        ("OPTIONS", "/api/v1/notifications"),
        ("POST", "/api/v1/write"),
        ("GET", "/-/ready"),
    ):
        resp = await client.request(method, path, headers={"Origin": ORIGIN})
        assert (resp.status, await resp.text()) == (503, "Service Unavailable"), path
        assert _cors_headers(resp.headers) == {}, path
        stopping = {k: v for k, v in resp.headers.items() if k == "X-Prometheus-Stopping"}
        assert stopping == stopping_header, path
    assert (await client.get("/api/v1/nothing")).status == 404
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/metrics")).status == 200


_REQUESTS = (
    ("GET", "/api/v1/query?query=1", ORIGIN),
    ("GET", "/api/v1/query?query=1", ""),
    ("GET", "/api/v1/query?query=(", ORIGIN),
    ("GET", "/api/v1/query_range?query=1&start=0&end=60&step=15", ORIGIN),
    ("GET", "/api/v1/labels", "https://evil.example"),
    ("GET", "/api/v1/notifications", ORIGIN),
    ("GET", "/api/v1/notifications/live", ORIGIN),
    ("GET", "/api/v1/status/walreplay", ORIGIN),
    ("OPTIONS", "/api/v1/anything", ORIGIN),
    ("GET", "/api/v1/nothing", ORIGIN),
    ("POST", "/api/v1/write", ORIGIN),
    ("GET", "/-/healthy", ORIGIN),
)


async def _cors_answers(base: str) -> list[tuple[int, dict[str, str]]]:
    answers = []
    async with aiohttp.ClientSession() as session:
        for method, path, origin in _REQUESTS:
            headers = {"Origin": origin} if origin else {}
            async with session.request(method, base + path, headers=headers) as resp:
                answers.append((resp.status, _cors_headers(resp.headers)))
    return answers


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("the prometheus peer binary is not installed")
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    args = [
        "--config.file=prometheus.yml",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.cors.origin={CORS_PATTERN}",
    ]
    url = f"http://127.0.0.1:{port}"
    with ServerProcess(args, tmp_path, command=[str(binary)]) as proc:
        proc.wait_ready(url + "/-/ready")
        yield url


@pytest.mark.integration
@pytest.mark.peers
async def test_cors_headers_match_prometheus(prometheus: str) -> None:
    theirs = await _cors_answers(prometheus)
    deps = make_api_deps()
    with ApiServerThread(deps, WebOptions(cors_origin=CORS_PATTERN)) as server:
        ours = await _cors_answers(server.url)
    assert ours == theirs
