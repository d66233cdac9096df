"""The notifier against a real HTTP receiver: payloads, auth, external labels, queue limits."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
from aiohttp import web

from watchkeeper.config.prometheus import AlertingConfig
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.notifier.alert import NotifierAlert
from watchkeeper.notifier.manager import NotifierManager, NotifierOptions
from watchkeeper.scrape.metrics import sd_metrics


def _notifier(
    options: NotifierOptions | None = None, registry: Registry | None = None
) -> NotifierManager:
    registry = registry or Registry()
    discovery = DiscoveryManager(
        sd_metrics(registry), name="notify", update_interval_s=0, file_poll_interval_s=0.05
    )
    return NotifierManager(discovery, options, registry)


async def _configure(
    notifier: NotifierManager, cfg: AlertingConfig, external: dict[str, str]
) -> None:
    """Applies the config, starts the notifier and waits until discovery has reported."""
    await notifier.apply_config(cfg, external)
    notifier.start()
    for _ in range(200):
        found = notifier.alertmanagers()
        if found["activeAlertmanagers"] or found["droppedAlertmanagers"]:
            return
        await asyncio.sleep(0.01)


class Receiver:
    """An aiohttp server that records what arrives at /api/v2/alerts."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[list[dict[str, Any]]] = []
        self.auth: list[str] = []
        self.status = status
        self.got = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        self.bodies.append(orjson.loads(await request.read()))
        self.got.set()
        return web.Response(status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/prefix/api/v2/alerts", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner_port(self.runner))

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def runner_port(runner: web.AppRunner) -> int:
    (address,) = runner.addresses
    return int(address[1])


def _alerting(port: int, **extra: Any) -> AlertingConfig:
    am: dict[str, Any] = {
        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        "path_prefix": "/prefix",
        "timeout": "2s",
    }
    am.update(extra)
    return AlertingConfig.model_validate({"alertmanagers": [am]})


def _alert(name: str, **labels: str) -> NotifierAlert:
    return NotifierAlert(
        Labels({"alertname": name, **labels}.items()),
        Labels.from_strings("summary", "s"),
        starts_at_ms=1_700_000_000_000,
        ends_at_ms=1_700_000_240_500,
        generator_url="http://prom/graph?g0.expr=up&g0.tab=1",
    )


async def test_alerts_arrive_as_api_v2_json_with_external_labels_and_basic_auth() -> None:
    receiver = Receiver()
    await receiver.start()
    registry = Registry()
    notifier = _notifier(NotifierOptions(), registry)
    cfg = _alerting(receiver.port, basic_auth={"username": "u", "password": "p"})
    await _configure(notifier, cfg, {"dc": "eu", "alertname": "ignored"})
    try:
        notifier.send([_alert("A", dc="us"), _alert("B")])
        await asyncio.wait_for(receiver.got.wait(), 5)
    finally:
        await notifier.stop()
        await receiver.stop()
    (body,) = receiver.bodies
    assert body[0] == {
        "labels": {"alertname": "A", "dc": "us"},
        "annotations": {"summary": "s"},
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "2023-11-14T22:17:20.5Z",
        "generatorURL": "http://prom/graph?g0.expr=up&g0.tab=1",
    }
    assert body[1]["labels"] == {"alertname": "B", "dc": "eu"}
    assert receiver.auth == ["Basic " + base64.b64encode(b"u:p").decode()]
    url = f"http://127.0.0.1:{receiver.port}/prefix/api/v2/alerts"
    assert notifier.alertmanagers() == {
        "activeAlertmanagers": [{"url": url}],
        "droppedAlertmanagers": [],
    }
    text = registry.render().decode()
    assert f'prometheus_notifications_sent_total{{alertmanager="{url}"}} 2' in text
    assert "prometheus_notifications_alertmanagers_discovered 1" in text


async def test_an_unreachable_alertmanager_never_blocks_and_overflow_is_counted() -> None:
    registry = Registry()
    notifier = _notifier(NotifierOptions(queue_capacity=3, retries=0), registry)
    await _configure(notifier, _alerting(1), {})
    notifier.send([_alert(f"A{i}") for i in range(5)])
    assert notifier.queue_length() == 3
    assert notifier.m_dropped.value == 2
    for _ in range(100):
        if notifier.queue_length() == 0 and notifier.m_dropped.value == 5:
            break
        await asyncio.sleep(0.05)
    await notifier.stop()
    assert notifier.m_dropped.value == 5
    url = "http://127.0.0.1:1/prefix/api/v2/alerts"
    assert notifier.m_errors.labels(url).value == 3


async def test_file_discovered_alertmanagers_are_listed(tmp_path: Any) -> None:
    sd = tmp_path / "ams.yml"
    sd.write_text("- targets: ['127.0.0.1:9093', '127.0.0.1:9094']\n")
    cfg = AlertingConfig.model_validate(
        {"alertmanagers": [{"file_sd_configs": [{"files": [str(sd)]}], "scheme": "http"}]}
    )
    notifier = _notifier()
    await _configure(notifier, cfg, {})
    urls = [a["url"] for a in notifier.alertmanagers()["activeAlertmanagers"]]
    assert urls == ["http://127.0.0.1:9093/api/v2/alerts", "http://127.0.0.1:9094/api/v2/alerts"]
    await notifier.stop()


async def test_alert_relabel_configs_drop_alerts_before_they_are_queued() -> None:
    cfg = AlertingConfig.model_validate(
        {
            "alert_relabel_configs": [
                {"source_labels": ["severity"], "regex": "debug", "action": "drop"}
            ],
            "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:1"]}]}],
        }
    )
    notifier = _notifier()
    await _configure(notifier, cfg, {})
    notifier.send([_alert("A", severity="debug"), _alert("B", severity="page")])
    assert notifier.queue_length() == 1
    await notifier.stop()


async def test_changes_to_file_discovered_alertmanagers_are_followed(tmp_path: Any) -> None:
    sd = tmp_path / "ams.json"
    sd.write_text('[{"targets": ["127.0.0.1:9093"], "labels": {"dc": "eu"}}]')
    cfg = AlertingConfig.model_validate(
        {
            "alertmanagers": [
                {"file_sd_configs": [{"files": [str(sd)]}], "path_prefix": "/am"},
            ]
        }
    )
    notifier = _notifier()
    await _configure(notifier, cfg, {})
    try:
        sd.write_text('[{"targets": ["127.0.0.1:9095"]}]')
        urls: list[str] = []
        for _ in range(100):
            urls = [a["url"] for a in notifier.alertmanagers()["activeAlertmanagers"]]
            if urls == ["http://127.0.0.1:9095/am/api/v2/alerts"]:
                break
            await asyncio.sleep(0.05)
        assert urls == ["http://127.0.0.1:9095/am/api/v2/alerts"]
    finally:
        await notifier.stop()


async def test_relabel_configs_drop_alertmanagers_which_are_listed_as_dropped() -> None:
    cfg = AlertingConfig.model_validate(
        {
            "alertmanagers": [
                {
                    "static_configs": [{"targets": ["127.0.0.1:9093", "127.0.0.1:9094"]}],
                    "relabel_configs": [
                        {"source_labels": ["__address__"], "regex": ".*:9094", "action": "drop"}
                    ],
                }
            ]
        }
    )
    notifier = _notifier()
    await _configure(notifier, cfg, {})
    assert notifier.alertmanagers() == {
        "activeAlertmanagers": [{"url": "http://127.0.0.1:9093/api/v2/alerts"}],
        "droppedAlertmanagers": [{"url": "http://127.0.0.1:9094/api/v2/alerts"}],
    }
    await notifier.stop()


async def _wait_for_empty_queue(notifier: NotifierManager) -> None:
    for _ in range(200):
        if notifier.queue_length() == 0:
            return
        await asyncio.sleep(0.01)


async def test_alerts_sent_before_any_alertmanager_is_discovered_count_as_neither_sent_nor_dropped(
    tmp_path: Any,
) -> None:
    """As Prometheus 3.5 on start-up: discovery has not reported, the batch goes nowhere."""
    receiver = Receiver()
    await receiver.start()
    sd = tmp_path / "ams.yml"  # Missing for now: discovery finds no Alertmanager.
    cfg = AlertingConfig.model_validate(
        {"alertmanagers": [{"file_sd_configs": [{"files": [str(sd)]}], "path_prefix": "/prefix"}]}
    )
    registry = Registry()
    notifier = _notifier(NotifierOptions(retries=0), registry)
    await notifier.apply_config(cfg, {})
    notifier.start()
    try:
        notifier.send([_alert("Early")])
        await _wait_for_empty_queue(notifier)
        assert notifier.queue_length() == 0
        assert notifier.m_dropped.value == 0
        sd.write_text(f"- targets: ['127.0.0.1:{receiver.port}']\n")
        for _ in range(200):
            if notifier.alertmanagers()["activeAlertmanagers"]:
                break
            await asyncio.sleep(0.01)
        notifier.send([_alert("Late")])
        await asyncio.wait_for(receiver.got.wait(), 5)
    finally:
        await notifier.stop()
        await receiver.stop()
    assert [[a["labels"]["alertname"] for a in body] for body in receiver.bodies] == [["Late"]]
    url = f"http://127.0.0.1:{receiver.port}/prefix/api/v2/alerts"
    text = registry.render().decode()
    assert f'prometheus_notifications_sent_total{{alertmanager="{url}"}} 1' in text
    assert f'prometheus_notifications_errors_total{{alertmanager="{url}"}} 0' in text
    assert "prometheus_notifications_dropped_total 0" in text


async def test_a_batch_one_set_of_alertmanagers_refused_is_dropped_even_if_another_took_it() -> (
    None
):
    """Prometheus counts a batch as dropped unless every set that was tried took it."""
    receiver = Receiver()
    await receiver.start()
    ok = _alerting(receiver.port).alertmanagers[0]
    refusing = _alerting(1).alertmanagers[0]
    notifier = _notifier(NotifierOptions(retries=0))
    await _configure(notifier, AlertingConfig(alertmanagers=[ok, refusing]), {})
    try:
        notifier.send([_alert("A"), _alert("B")])
        await asyncio.wait_for(receiver.got.wait(), 5)
        for _ in range(200):
            if notifier.m_dropped.value:
                break
            await asyncio.sleep(0.01)
    finally:
        await notifier.stop()
        await receiver.stop()
    assert len(receiver.bodies) == 1
    assert notifier.m_errors.labels("http://127.0.0.1:1/prefix/api/v2/alerts").value == 2
    assert notifier.m_dropped.value == 2


async def test_a_set_whose_alert_relabelling_drops_the_whole_batch_is_not_a_failure() -> None:
    cfg = _alerting(
        1,
        alert_relabel_configs=[{"source_labels": ["alertname"], "regex": "A", "action": "drop"}],
    )
    notifier = _notifier(NotifierOptions(retries=0))
    await _configure(notifier, cfg, {})
    try:
        notifier.send([_alert("A")])
        await _wait_for_empty_queue(notifier)
        await asyncio.sleep(0.05)
    finally:
        await notifier.stop()
    assert notifier.m_dropped.value == 0
    assert notifier.m_errors.labels("http://127.0.0.1:1/prefix/api/v2/alerts").value == 0
