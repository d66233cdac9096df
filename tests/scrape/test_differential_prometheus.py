"""Real Prometheus 3.5 and our ScrapeManager scrape the same targets; the series must match."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.config.prometheus import parse_config
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.value import stale_mask
from watchkeeper.scrape.manager import ScrapeManager
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.targets import TargetServer

pytestmark = [pytest.mark.integration, pytest.mark.peers, pytest.mark.slow]

BODY_A = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",job="app",instance="inner"} 10
http_requests_total{code="500",exported_job="x",job="app"} 2
# TYPE temp gauge
temp{room="a",pod_uid="1"} 21.5
temp{room="b",pod_uid="2"} 19
go_goroutines 7
"""

BODY_B = """# TYPE queue_depth gauge
queue_depth{queue="q1",job="batch"} 4
queue_depth{queue="q2"} 5
"""

JOBS = """
scrape_configs:
  - job_name: app
    scrape_interval: 1s
    scrape_timeout: 900ms
    metrics_path: /a
    static_configs:
      - targets: [ADDR]
        labels: {env: prod, team: web}
      - targets: ["127.0.0.1:1"]
        labels: {env: drop}
    relabel_configs:
      - source_labels: [env]
        regex: drop
        action: drop
      - source_labels: [team, env]
        separator: "-"
        target_label: owner
      - source_labels: [__address__]
        regex: "(.*):(.*)"
        target_label: port
        replacement: "p$2"
      - regex: team
        action: labeldrop
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
      - regex: pod_uid
        action: labeldrop
      - source_labels: [room]
        regex: (.+)
        target_label: location
        replacement: room-$1
  - job_name: batch
    honor_labels: true
    scrape_interval: 1s
    scrape_timeout: 900ms
    metrics_path: /b
    static_configs:
      - targets: [ADDR]
    metric_relabel_configs:
      - source_labels: [queue]
        target_label: q
      - action: labelmap
        regex: "(q)ueue"
        replacement: "${1}_name"
"""

REPORT = {"scrape_duration_seconds", "scrape_series_added"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


@pytest.fixture
async def targets() -> AsyncIterator[TargetServer]:
    server = TargetServer()
    server.add("a", BODY_A)
    server.add("b", BODY_B)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def prometheus_binary() -> Path:
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (run ../shared/peers/fetch-peers.sh)")
    return binary


async def test_prometheus_and_watchkeeper_store_the_same_series(
    targets: TargetServer, prometheus_binary: Path, tmp_path: Path
) -> None:
    jobs = JOBS.replace("ADDR", targets.address)
    (tmp_path / "prometheus.yml").write_text(jobs)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(prometheus_binary),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    storage = MemoryStorage()
    ours = ScrapeManager(
        storage, Registry(), options=ScrapeOptions(discovery_update_interval_s=0.01)
    )
    await ours.apply_config(parse_config(jobs))
    task = asyncio.create_task(ours.run())
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        theirs: list[dict[str, str]] = []
        for _ in range(150):
            await asyncio.sleep(0.1)
            try:
                data = await asyncio.to_thread(
                    get_json, f"{base}/series?match[]=up&match[]={{__name__=~%22.%2B%22}}"
                )
            except OSError:
                continue
            theirs = data["data"]
            ups = [s for s in theirs if s["__name__"] == "up"]
            if len(ups) == 2 and len(theirs) > 12:
                break
        await asyncio.sleep(1.5)
        theirs = (
            await asyncio.to_thread(get_json, f"{base}/series?match[]={{__name__=~%22.%2B%22}}")
        )["data"]
        with storage.querier(0, 2**62) as q:
            ss = q.select([])
            our_series = {str(ss.labels[i]): ss.series(i) for i in range(len(ss))}
        their_keys = sorted(json.dumps(s, sort_keys=True) for s in theirs)
        our_keys = sorted(
            json.dumps(ss_labels.as_dict(), sort_keys=True)
            for ss_labels in (v[0] for v in our_series.values())
        )
        assert our_keys == their_keys
        # Values: compare the newest sample of each non-timing series.
        for lbls, _, vals in our_series.values():
            if lbls.name in REPORT:
                continue
            sel = ",".join(f'{k}="{v}"' for k, v in lbls.as_dict().items() if k != "__name__")
            query = urllib.parse.quote(f"{lbls.name}{{{sel}}}")
            result = (await asyncio.to_thread(get_json, f"{base}/query?query={query}"))["data"][
                "result"
            ]
            live = vals[~stale_mask(vals)]
            assert len(result) == 1, lbls
            assert float(result[0]["value"][1]) == live[-1], lbls
        # Targets: the same final and discovered labels, the same dropped targets.
        their_targets = (await asyncio.to_thread(get_json, f"{base}/targets"))["data"]
        our_targets = ours.targets_api()

        def shape(data: dict[str, Any]) -> tuple[Any, ...]:
            active = sorted(
                (
                    json.dumps(t["labels"], sort_keys=True),
                    json.dumps(t["discoveredLabels"], sort_keys=True),
                    t["scrapeUrl"],
                    t["health"],
                )
                for t in data["activeTargets"]
            )
            dropped = sorted(
                json.dumps(t["discoveredLabels"], sort_keys=True) for t in data["droppedTargets"]
            )
            return tuple(active), tuple(dropped), data["droppedTargetCounts"]

        assert shape(our_targets) == shape(their_targets)
    finally:
        task.cancel()
        await ours.stop()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
