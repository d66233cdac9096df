"""Ours and the real Prometheus 3.5 evaluate one rule file over the same data: same alerts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.promql.engine import Engine
from watchkeeper.remote import codec
from watchkeeper.rules.manager import RuleManager, engine_query_func
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.storage import MemoryStorage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULES = """\
groups:
  - name: availability
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by(job)(up)
      - alert: InstanceDown
        expr: up==0
        for: 2s
        labels:
          severity: page
          instance_copy: "{{ $labels.instance }}"
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})"
          cluster: "{{ $externalLabels.cluster }}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(now_s: float, down_at_s: float) -> list[tuple[Labels, np.ndarray, np.ndarray]]:
    out = []
    stamps = np.round((now_s + np.arange(-60, 61)) * 1000).astype(np.int64)
    for inst in ("a", "b"):
        lbls = Labels.from_strings("__name__", "up", "job", "node", "instance", inst)
        values = np.zeros(len(stamps)) if inst == "b" else (stamps < down_at_s * 1000) * 1.0
        out.append((lbls, stamps, values.astype(np.float64)))
    return out


async def _wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail("prometheus did not become ready")


async def _get(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as resp:
        body = await resp.json()
        assert body["status"] == "success", body
        return body["data"]


async def test_alerts_and_alerts_series_match_prometheus(tmp_path: Path) -> None:
    prometheus = peer_binary("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (run ../shared/peers/fetch-peers.sh)")
    now = time.time()
    down_at = now + 6
    series = _samples(now, down_at)
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  evaluation_interval: 1s\n  external_labels: {cluster: c1}\n"
        f"rule_files: [{rule_file}]\n"
    )
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        str(prometheus),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    storage = MemoryStorage()
    with storage.appender() as app:
        for lbls, stamps, values in series:
            app.append_series([lbls] * len(stamps), stamps, values)
    engine = Engine(storage)
    manager = RuleManager(storage, storage, engine_query_func(engine), Registry())
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_ready(session, f"http://127.0.0.1:{port}/-/ready")
            async with session.post(
                f"{base}/write",
                data=codec.encode_write_request(
                    codec.WriteBatch.from_series(
                        [(lb, st.tolist(), vs.tolist()) for lb, st, vs in series]
                    )
                ),
                headers={
                    "Content-Type": "application/x-protobuf",
                    "Content-Encoding": "snappy",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            ) as resp:
                assert resp.status == 204, await resp.text()
        await manager.update([str(rule_file)], 1_000, {"cluster": "c1"})
        await asyncio.sleep(max(0.0, down_at + 5 - time.time()))
        async with aiohttp.ClientSession() as session:
            theirs = (await _get(session, f"{base}/alerts"))["alerts"]
            check_at = down_at + 4
            their_series = await _get(
                session, f"{base}/query", query="ALERTS or ALERTS_FOR_STATE", time=str(check_at)
            )
            their_rules = await _get(session, f"{base}/rules")
            their_sum = await _get(session, f"{base}/query", query="job:up:sum", time=str(check_at))
    finally:
        await manager.stop()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    ours = manager.api_alerts()["alerts"]

    def key(a: dict[str, Any]) -> str:
        return str(sorted(a["labels"].items()))

    assert len(ours) == 2
    assert len(theirs) == 2
    for mine, real in zip(sorted(ours, key=key), sorted(theirs, key=key), strict=True):
        assert mine["labels"] == real["labels"]
        assert mine["annotations"] == real["annotations"]
        assert mine["state"] == real["state"] == "firing"
        assert mine["value"] == real["value"]
        if mine["labels"]["instance"] == "a":
            # Both evaluate on the same grid (offset from the group's hash): same activeAt.
            assert mine["activeAt"] == real["activeAt"]
    result = engine.instant_query("ALERTS or ALERTS_FOR_STATE", int(check_at * 1000)).value
    mine_series = {
        str(sorted(lbl.as_dict().items())): v
        for lbl, v in zip(result.labels, result.values.tolist(), strict=True)  # type: ignore[union-attr]
    }
    real_series = {
        str(sorted(s["metric"].items())): float(s["value"][1]) for s in their_series["result"]
    }
    assert set(mine_series) == set(real_series)
    compared = 0
    for name, value in real_series.items():
        if "ALERTS_FOR_STATE" in name and "('instance', 'a')" in name:
            assert mine_series[name] == value
            compared += 1
    assert compared == 1
    (their_sample,) = their_sum["result"]
    our_sum = engine.instant_query("job:up:sum", int(check_at * 1000)).value
    assert our_sum.labels[0].as_dict() == their_sample["metric"]  # type: ignore[union-attr]
    assert float(our_sum.values[0]) == float(their_sample["value"][1])  # type: ignore[union-attr]
    their_group = their_rules["groups"][0]
    our_group = manager.api_rules()["groups"][0]
    assert [r["name"] for r in our_group["rules"]] == [r["name"] for r in their_group["rules"]]
    assert set(our_group) == set(their_group)
    for mine_rule, real_rule in zip(our_group["rules"], their_group["rules"], strict=True):
        assert set(mine_rule) == set(real_rule)
        for field in ("name", "query", "labels", "annotations", "duration", "health", "type"):
            assert mine_rule.get(field) == real_rule.get(field), field
