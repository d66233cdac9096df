from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from watchkeeper.config.sd import HTTPSDConfig
from watchkeeper.discovery.http import HTTPProvider
from watchkeeper.discovery.provider import CounterLike, SDMetrics
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Counter, Registry
from watchkeeper.scrape.metrics import sd_metrics


def value(counter: CounterLike) -> float:
    assert isinstance(counter, Counter)
    return counter.value


pytestmark = pytest.mark.integration


class SDServer:
    def __init__(self) -> None:
        self.body = '[{"targets": ["h1:1"], "labels": {"env": "a"}}]'
        self.status = 200
        self.content_type = "application/json"
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        return web.Response(
            text=self.body, status=self.status, headers={"Content-Type": self.content_type}
        )


@pytest.fixture
async def sd_server() -> AsyncIterator[SDServer]:
    server = SDServer()
    app = web.Application()
    app.router.add_get("/sd", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/sd"
    yield server
    await runner.cleanup()


def make(url: str, **extra: object) -> tuple[HTTPProvider, SDMetrics]:
    metrics = sd_metrics(Registry())
    cfg = HTTPSDConfig.model_validate({"url": url, "refresh_interval": "100ms", **extra})
    return HTTPProvider(cfg, metrics), metrics


async def wait_for(cond: Callable[[], bool]) -> None:
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_groups_come_with_the_url_label_and_source(sd_server: SDServer) -> None:
    p, _ = make(sd_server.url, basic_auth={"username": "u", "password": "p"})
    sent: list[list[TargetGroup]] = []
    task = asyncio.create_task(p.run(sent.append))
    await wait_for(lambda: bool(sent))
    task.cancel()
    assert sent[0] == [
        TargetGroup(
            [{"__address__": "h1:1"}],
            {"env": "a", "__meta_url": sd_server.url},
            f"{sd_server.url}:0",
        )
    ]
    h = sd_server.headers[0]
    assert h["Authorization"] == "Basic dTpw"
    assert h["X-Prometheus-Refresh-Interval-Seconds"] == "0.1"
    assert h["Accept"] == "application/json"


async def test_failures_are_counted_and_keep_the_last_groups(sd_server: SDServer) -> None:
    p, metrics = make(sd_server.url)
    sent: list[list[TargetGroup]] = []
    task = asyncio.create_task(p.run(sent.append))
    await wait_for(lambda: bool(sent))
    sd_server.status = 500
    await wait_for(lambda: value(metrics.http_failures) >= 1)
    sd_server.status = 200
    sd_server.content_type = "text/plain"
    await wait_for(lambda: value(metrics.http_failures) >= 3)
    sd_server.content_type = "application/json"
    sd_server.body = "[{"
    count = value(metrics.http_failures)
    await wait_for(lambda: value(metrics.http_failures) > count)
    task.cancel()
    assert all(s == sent[0] for s in sent)


async def test_an_unreachable_server_is_a_counted_failure() -> None:
    p, metrics = make("http://127.0.0.1:9/sd")
    task = asyncio.create_task(p.run(lambda groups: None))
    await wait_for(lambda: value(metrics.http_failures) >= 1)
    task.cancel()
