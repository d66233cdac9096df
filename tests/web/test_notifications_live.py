"""/api/v1/notifications/live: the Server-Sent Events stream of server notifications.

The same scenario runs against `watchkeeper server` and the real Prometheus 3.5: a failed
reload, a late subscriber, the subscriber limit, a good reload and the shutdown.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port
from watchkeeper.web import notifications
from watchkeeper.web.notifications import NotificationHub

PROMETHEUS = peer_binary("prometheus")
GOOD_CONFIG = "global:\n  scrape_interval: 1m\n"
BROKEN_CONFIG = "global:\n  bad_field: 1\n"
FAILED = "Configuration reload has failed."
SHUTTING_DOWN = "Prometheus is shutting down and gracefully stopping all operations."


async def _next_event(resp: aiohttp.ClientResponse, timeout_s: float = 10.0) -> dict[str, Any]:
    """Reads one `data: <json>` event (ended by a blank line) from an SSE response."""
    data: dict[str, Any] | None = None
    async with asyncio.timeout(timeout_s):
        while True:
            line = await resp.content.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                data = json.loads(line[len(b"data: ") :])
            elif line == b"\n" and data is not None:
                return data


async def _subscribe(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    resp = await session.get(url + "/api/v1/notifications/live")
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    return resp


async def _subscribe_when_free(
    session: aiohttp.ClientSession, url: str, timeout_s: float = 10.0
) -> aiohttp.ClientResponse:
    """Subscribes once a slot is free (the server notices a client left on its own time)."""
    async with asyncio.timeout(timeout_s):
        while True:
            resp = await _subscribe(session, url)
            if resp.status == 200:
                return resp
            resp.release()
            await asyncio.sleep(0.1)


def _start(implementation: str, workdir: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    (workdir / "prometheus.yml").write_text(GOOD_CONFIG)
    args = [
        "--config.file=prometheus.yml",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--web.max-notifications-subscribers=2",
    ]
    if implementation == "prometheus":
        if PROMETHEUS is None:
            pytest.skip("the prometheus peer binary is not installed")
        proc = ServerProcess(args, workdir, command=[str(PROMETHEUS)])
    else:
        proc = ServerProcess(["server", *args], workdir)
    return proc.start(), f"http://127.0.0.1:{port}"


@pytest.mark.integration
@pytest.mark.parametrize(
    "implementation",
    ["watchkeeper", pytest.param("prometheus", marks=pytest.mark.peers)],
)
async def test_live_notifications_follow_reloads_limits_and_shutdown(
    tmp_path: Path, implementation: str
) -> None:
    proc, url = _start(implementation, tmp_path)
    try:
        await asyncio.to_thread(proc.wait_ready, url + "/-/ready")
        async with aiohttp.ClientSession() as session:
            first = await _subscribe(session, url)
            assert first.status == 200
            (tmp_path / "prometheus.yml").write_text(BROKEN_CONFIG)
            async with session.post(url + "/-/reload") as reload:
                assert reload.status == 500
            failed = await _next_event(first)
            assert (failed["text"], failed["active"]) == (FAILED, True)
            assert failed["date"].endswith("Z")

            late = await _subscribe(session, url)
            assert late.status == 200
            assert await _next_event(late) == failed, "a new subscriber gets what is current"
            over = await _subscribe(session, url)
            assert (over.status, await over.read()) == (204, b"")
            late.close()
            again = await _subscribe_when_free(session, url)
            assert await _next_event(again) == failed
            again.close()

            async with session.get(url + "/api/v1/status/flags") as resp:
                flags = (await resp.json())["data"]
            assert flags["web.max-notifications-subscribers"] == "2"

            (tmp_path / "prometheus.yml").write_text(GOOD_CONFIG)
            async with session.post(url + "/-/reload") as reload:
                assert reload.status == 200
            assert await _next_event(first) == {**failed, "active": False}
            async with session.get(url + "/api/v1/notifications") as resp:
                assert (await resp.json())["data"] == []

            proc.signal(signal.SIGTERM)
            bye = await _next_event(first)
            assert (bye["text"], bye["active"]) == (SHUTTING_DOWN, True)
            first.close()
        assert await asyncio.to_thread(proc.stop) == 0, proc.log()
    finally:
        proc.stop()


async def test_a_feed_gets_changes_from_other_threads_and_drops_past_its_buffer() -> None:
    registry = Registry()
    hub = NotificationHub(max_subscribers=1, registry=registry, now_ns=lambda: 1_500_000_000)
    hub.add(notifications.STARTING_UP)
    feed = hub.subscribe()
    assert feed is not None
    assert hub.subscribe() is None, "one subscriber at most"
    assert await feed.get() == hub.notifications()[0]
    assert hub.notifications()[0].date == "1970-01-01T00:00:01.5Z"
    writer = threading.Thread(target=hub.delete, args=(notifications.STARTING_UP,))
    writer.start()
    writer.join()
    cleared = await asyncio.wait_for(feed.get(), 5)
    assert (cleared.text, cleared.active) == (notifications.STARTING_UP, False)
    for _ in range(notifications.FEED_BUFFER + 3):
        hub.add(notifications.SHUTTING_DOWN)
    assert len(hub.notifications()) == 1, "raising the same text again refreshes it"
    text = registry.render().decode()
    assert "prometheus_api_notification_updates_dropped_total 3" in text
    assert "prometheus_api_notification_active_subscribers 1" in text
    feed.close()
    assert hub.subscribe() is not None, "closing frees the slot"
