"""Real Prometheus 3.5 and our ScrapeManager scrape through the same OAuth 2.0 token server."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.config.prometheus import parse_config
from watchkeeper.instrument.metrics import Registry
from watchkeeper.scrape.manager import ScrapeManager
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.testing.oauth2 import TokenServer
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.storage import MemoryStorage

pytestmark = [pytest.mark.integration, pytest.mark.peers, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def jobs(server: TokenServer, missing_file: Path) -> str:
    target = f"static_configs: [{{targets: ['{server.address}']}}]"
    down = f"http://127.0.0.1:{free_port()}/token"
    return f"""
global: {{scrape_interval: 1s, scrape_timeout: 900ms}}
scrape_configs:
  - job_name: good
    oauth2:
      client_id: "my id"
      client_secret: "s&cret"
      token_url: {server.token_url}
      scopes: [metrics, read]
      endpoint_params: {{audience: api}}
    {target}
  - job_name: refused
    oauth2: {{client_id: "my id", client_secret: wrong, token_url: '{server.token_url}'}}
    {target}
  - job_name: down
    oauth2: {{client_id: "my id", client_secret: x, token_url: '{down}'}}
    {target}
  - job_name: no_secret_file
    oauth2:
      client_id: "my id"
      client_secret_file: {missing_file}
      token_url: {server.token_url}
    {target}
"""


async def test_prometheus_and_watchkeeper_ask_for_tokens_and_fail_alike(tmp_path: Path) -> None:
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (run ../shared/peers/fetch-peers.sh)")
    # NB: both scrapers hold a token at once, so earlier tokens stay good.
    server = TokenServer(client_id="my id", client_secret="s&cret", only_latest_token=False)
    await server.start()
    text = jobs(server, tmp_path / "missing-secret")
    (tmp_path / "prometheus.yml").write_text(text)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    ours = ScrapeManager(
        MemoryStorage(), Registry(), options=ScrapeOptions(discovery_update_interval_s=0.01)
    )
    await ours.apply_config(parse_config(text))
    task = asyncio.create_task(ours.run())
    try:
        theirs: dict[str, tuple[str, str]] = {}
        mine: dict[str, tuple[str, str]] = {}
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                data = await asyncio.to_thread(get_json, f"http://127.0.0.1:{port}/api/v1/targets")
            except OSError:
                continue
            theirs = {
                t["labels"]["job"]: (t["health"], t["lastError"])
                for t in data["data"]["activeTargets"]
                if t["health"] != "unknown"
            }
            mine = {
                str(t.labels.get("job")): (t.health.value, t.last_error)
                for t in ours.active_targets()
                if t.last_scrape_ms
            }
            if len(theirs) == len(mine) == 4:
                break
        assert mine == theirs
        assert theirs["good"] == ("up", "")
    finally:
        task.cancel()
        await ours.stop()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        await server.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
    # The same token requests: header, form, and one token for the good job from each.
    by_client: dict[str, set[tuple[str, str]]] = {"ours": set(), "theirs": set()}
    for req in server.requests:
        who = "ours" if "Watchkeeper" in req.user_agent else "theirs"
        by_client[who].add((req.authorization, json.dumps(req.form, sort_keys=True)))
    assert by_client["ours"] == by_client["theirs"]
    assert len(server.granted) == 2
