"""The notifier gets an OAuth 2.0 token and sends it with each alert post."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from watchkeeper.config.prometheus import AlertingConfig
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.notifier.alert import NotifierAlert
from watchkeeper.notifier.manager import NotifierManager
from watchkeeper.scrape.metrics import sd_metrics
from watchkeeper.testing.oauth2 import TokenServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    await server.start()
    yield server
    await server.stop()


async def test_alerts_are_posted_with_the_oauth2_token(token_server: TokenServer) -> None:
    registry = Registry()
    discovery = DiscoveryManager(
        sd_metrics(registry), name="notify", update_interval_s=0, file_poll_interval_s=0.05
    )
    notifier = NotifierManager(discovery, None, registry)
    cfg = AlertingConfig.model_validate(
        {
            "alertmanagers": [
                {
                    "static_configs": [{"targets": [token_server.address]}],
                    "oauth2": {
                        "client_id": token_server.client_id,
                        "client_secret": token_server.client_secret,
                        "token_url": token_server.token_url,
                    },
                }
            ]
        }
    )
    await notifier.apply_config(cfg)
    notifier.start()
    try:
        for _ in range(200):
            if notifier.alertmanagers()["activeAlertmanagers"]:
                break
            await asyncio.sleep(0.01)
        for sent, name in enumerate(("A", "B"), start=1):
            notifier.send([NotifierAlert(Labels({"alertname": name}.items()), Labels())])
            for _ in range(500):
                if len(token_server.alert_posts) == sent:
                    break
                await asyncio.sleep(0.01)
    finally:
        await notifier.stop()
    names = [orjson.loads(body)[0]["labels"]["alertname"] for body in token_server.alert_posts]
    assert names == ["A", "B"]
    assert len(token_server.requests) == 1
