"""End to end: a rule fires over stored data, the real Alertmanager notifies a webhook."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
import pytest
from aiohttp import web

from watchkeeper.config.prometheus import AlertingConfig
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.notifier.manager import NotifierManager, NotifierOptions
from watchkeeper.promql.engine import Engine
from watchkeeper.rules.manager import (
    RuleManager,
    RuleManagerOptions,
    engine_query_func,
    send_alerts_func,
)
from watchkeeper.scrape.metrics import sd_metrics
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.storage import MemoryStorage

pytestmark = pytest.mark.integration

RULES = """\
groups:
  - name: availability
    interval: 500ms
    rules:
      - alert: InstanceDown
        expr: up == 0
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} of job {{ $labels.job }} is down"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Webhook:
    """Collects Alertmanager webhook payloads."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        payload = orjson.loads(await request.read())
        async with self.arrived:
            self.payloads.append(payload)
            self.arrived.notify_all()
        return web.Response()

    async def wait_for(self, status: str, within_s: float) -> dict[str, Any]:
        async def seen() -> dict[str, Any]:
            async with self.arrived:
                while True:
                    for p in self.payloads:
                        if p["status"] == status:
                            return p
                    await self.arrived.wait()

        return await asyncio.wait_for(seen(), within_s)


@contextlib.asynccontextmanager
async def _alertmanager(tmp_path: Path, hook_port: int) -> AsyncIterator[int]:
    binary = peer_binary("alertmanager")
    if binary is None:
        pytest.skip("alertmanager not installed (run ../shared/peers/fetch-peers.sh)")
    port = _free_port()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 100ms\n"
        "  group_interval: 500ms\n  repeat_interval: 1h\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{hook_port}/hook\n        send_resolved: true\n"
    )
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        f"--config.file={cfg}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/-/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("alertmanager did not become ready")
        yield port
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_a_firing_rule_reaches_the_real_alertmanager_and_then_resolves(
    tmp_path: Path,
) -> None:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    hook_port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    storage = MemoryStorage()
    now = int(time.time() * 1000)
    down_until = now + 2_500
    stamps = np.arange(now - 60_000, now + 60_000, 250, dtype=np.int64)
    values = np.where(stamps < down_until, 0.0, 1.0)
    series = Labels.from_strings("__name__", "up", "job", "node", "instance", "host-1:9100")
    with storage.appender() as app_:
        app_.append_series([series] * len(stamps), stamps, values)

    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(RULES)
    async with _alertmanager(tmp_path, hook_port) as am_port:
        registry = Registry()
        discovery = DiscoveryManager(sd_metrics(registry), name="notify", update_interval_s=0)
        notifier = NotifierManager(discovery, NotifierOptions(), registry)
        alerting = AlertingConfig.model_validate(
            {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]}
        )
        await notifier.apply_config(alerting, {"cluster": "test"})
        notifier.start()
        external_url = "http://watchkeeper.example:9090"
        manager = RuleManager(
            storage,
            storage,
            engine_query_func(Engine(storage)),
            registry,
            notify=send_alerts_func(notifier, external_url),
            options=RuleManagerOptions(resend_delay_ms=1_000, external_url=external_url),
        )
        try:
            await manager.update([str(rule_file)], 1_000, {"cluster": "test"})
            firing = await hook.wait_for("firing", 15)
            resolved = await hook.wait_for("resolved", 20)
        finally:
            await manager.stop()
            await notifier.stop()
            await runner.cleanup()
    (alert,) = firing["alerts"]
    assert alert["labels"] == {
        "alertname": "InstanceDown",
        "cluster": "test",
        "instance": "host-1:9100",
        "job": "node",
        "severity": "page",
    }
    assert alert["annotations"] == {"summary": "host-1:9100 of job node is down"}
    assert alert["generatorURL"] == (
        "http://watchkeeper.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    )
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["labels"] == alert["labels"]
