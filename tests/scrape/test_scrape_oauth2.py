from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from watchkeeper.config.prometheus import parse_config
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.scrape.manager import ScrapeManager
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.scrape.target import Target, TargetHealth
from watchkeeper.testing.oauth2 import TokenServer
from watchkeeper.testing.storage import MemoryStorage

pytestmark = pytest.mark.integration


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    await server.start()
    yield server
    await server.stop()


async def wait_for(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def up_values(storage: MemoryStorage) -> list[float]:
    with storage.querier(0, 2**62) as q:
        ss = q.select([Matcher(MatchType.EQUAL, "__name__", "up")])
        return [v for i in range(len(ss)) for v in ss.series(i)[2].tolist()]


def successful_scrapes(storage: MemoryStorage) -> int:
    return sum(1 for v in up_values(storage) if v == 1.0)


@contextlib.asynccontextmanager
async def scraping(
    server: TokenServer, oauth2: str, storage: MemoryStorage
) -> AsyncIterator[ScrapeManager]:
    cfg = parse_config(
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 90ms\nscrape_configs:\n"
        f"  - job_name: protected\n    oauth2: {{token_url: '{server.token_url}', {oauth2}}}\n"
        f"    static_configs: [{{targets: ['{server.address}']}}]\n"
    )
    m = ScrapeManager(storage, Registry(), options=ScrapeOptions(discovery_update_interval_s=0.01))
    await m.apply_config(cfg)
    task = asyncio.create_task(m.run())
    try:
        yield m
    finally:
        task.cancel()
        await m.stop()


def target(m: ScrapeManager) -> Target | None:
    targets = m.active_targets()
    return targets[0] if targets else None


def last_error(m: ScrapeManager) -> str:
    t = target(m)
    return t.last_error if t is not None else ""


def health(m: ScrapeManager) -> TargetHealth:
    t = target(m)
    return t.health if t is not None else TargetHealth.UNKNOWN


async def test_one_token_serves_many_scrapes(token_server: TokenServer) -> None:
    storage = MemoryStorage()
    async with scraping(
        token_server,
        "client_id: watchkeeper, client_secret: s3cret, scopes: [metrics, read], "
        "endpoint_params: {audience: 'https://api.example'}",
        storage,
    ) as m:
        await wait_for(lambda: successful_scrapes(storage) >= 4)
        assert health(m) is TargetHealth.UP
    (req,) = token_server.requests
    assert req.form == {
        "grant_type": "client_credentials",
        "scope": "metrics read",
        "audience": "https://api.example",
    }
    assert req.user_agent.startswith("Prometheus/")


async def test_an_expiring_token_is_renewed_without_a_failed_scrape(
    token_server: TokenServer,
) -> None:
    # NB: 11 s minus the 10 s margin leaves each token usable for one second.
    token_server.expires_in = 11
    storage = MemoryStorage()
    async with scraping(token_server, "client_id: watchkeeper, client_secret: s3cret", storage):
        await wait_for(lambda: len(token_server.granted) >= 2)
        # The target now accepts only the new token.
        before = successful_scrapes(storage)
        await wait_for(lambda: successful_scrapes(storage) >= before + 3)
    assert len(token_server.requests) == len(token_server.granted)


async def test_a_rotated_secret_file_is_read_and_used(
    token_server: TokenServer, tmp_path: Path
) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("s3cret\n")
    storage = MemoryStorage()
    async with scraping(
        token_server, f"client_id: watchkeeper, client_secret_file: '{secret}'", storage
    ) as m:
        await wait_for(lambda: successful_scrapes(storage) >= 2)
        token_server.client_secret = "rotated"
        secret.write_text("rotated\n")
        await wait_for(lambda: len(token_server.granted) == 2)
        before = successful_scrapes(storage)
        await wait_for(lambda: successful_scrapes(storage) >= before + 2)
        assert health(m) is TargetHealth.UP
    assert token_server.requests[-1].authorization.startswith("Basic ")


async def test_a_refused_token_request_fails_the_scrape_with_the_oauth_error(
    token_server: TokenServer,
) -> None:
    storage = MemoryStorage()
    async with scraping(token_server, "client_id: watchkeeper, client_secret: wrong", storage) as m:
        await wait_for(lambda: bool(last_error(m)))
        assert health(m) is TargetHealth.DOWN
        assert last_error(m) == (
            f'Get "http://{token_server.address}/metrics": '
            'oauth2: "invalid_client" "unknown client or secret"'
        )
        await wait_for(lambda: bool(up_values(storage)))
        assert set(up_values(storage)) == {0.0}
        # Failures are not cached: once the server accepts the secret, scrapes recover.
        token_server.client_secret = "wrong"
        await wait_for(lambda: health(m) is TargetHealth.UP)


async def test_http_sd_fetches_its_targets_with_an_oauth2_token(
    token_server: TokenServer,
) -> None:
    token_server.sd_body = f'[{{"targets": ["{token_server.address}"]}}]'
    storage = MemoryStorage()
    oauth2 = (
        f"oauth2: {{token_url: '{token_server.token_url}', client_id: watchkeeper, "
        "client_secret: s3cret}"
    )
    cfg = parse_config(
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 90ms\nscrape_configs:\n"
        f"  - job_name: discovered\n    {oauth2}\n"
        f"    http_sd_configs: [{{url: 'http://{token_server.address}/sd', {oauth2}}}]\n"
    )
    m = ScrapeManager(storage, Registry(), options=ScrapeOptions(discovery_update_interval_s=0.01))
    await m.apply_config(cfg)
    task = asyncio.create_task(m.run())
    try:
        await wait_for(lambda: successful_scrapes(storage) >= 2)
        assert target(m) is not None
    finally:
        task.cancel()
        await m.stop()
    # NB: the SD client and the scrape client each hold their own token.
    assert len(token_server.requests) == 2
