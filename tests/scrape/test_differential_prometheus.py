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
from watchkeeper.model.exposition import PROTOBUF_CONTENT_TYPE, encode_delimited
from watchkeeper.model.exposition.protobuf import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    MESSAGES,
    SUMMARY,
    UNTYPED,
)
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


def protobuf_body() -> bytes:
    """Every metric type, exemplars, a native-only histogram and one with both kinds."""
    fam = MESSAGES["MetricFamily"]
    counter = fam(name="rpc_total", help="RPCs.", type=COUNTER)
    m = counter.metric.add()
    m.label.add(name="code", value="200")
    m.counter.value = 12
    m.counter.exemplar.value = 1
    m.counter.exemplar.label.add(name="trace_id", value="abc")
    m.counter.created_timestamp.seconds = 1_700_000_000
    gauge = fam(name="temp", type=GAUGE)
    m = gauge.metric.add()
    m.label.add(name="room", value='a "quoted"\nroom')
    m.gauge.value = -3.5
    untyped = fam(name="my.dotted", type=UNTYPED)
    untyped.metric.add().untyped.value = 42
    summary = fam(name="rpc_seconds", type=SUMMARY)
    s = summary.metric.add().summary
    s.sample_count, s.sample_sum = 4, 2.5
    s.quantile.add(quantile=0.5, value=0.25)
    s.quantile.add(quantile=0.99, value=1)
    classic = fam(name="lat_seconds", type=HISTOGRAM, unit="seconds")
    h = classic.metric.add().histogram
    h.sample_count, h.sample_sum = 3, 1.5
    h.bucket.add(upper_bound=0.1, cumulative_count=1).exemplar.value = 0.05
    h.bucket.add(upper_bound=1, cumulative_count=2)
    hists = []
    for name, with_buckets in (("native_only", False), ("both_kinds", True)):
        native = fam(name=name, type=HISTOGRAM)
        h = native.metric.add().histogram
        h.sample_count, h.sample_sum, h.schema, h.zero_threshold = 2, 1.0, 0, 1e-128
        h.positive_span.add(offset=0, length=1)
        h.positive_delta.append(2)
        if with_buckets:
            h.bucket.add(upper_bound=1, cumulative_count=2)
        hists.append(native)
    return encode_delimited([counter, gauge, untyped, summary, classic, *hists])


PROTO_JOBS = """
scrape_configs:
  - job_name: proto
    scrape_interval: 1s
    scrape_timeout: 900ms
    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]
    scrape_failure_log_file: LOG
    metrics_path: /p
    static_configs: [{targets: [ADDR]}]
  - job_name: proto_classic
    scrape_interval: 1s
    scrape_timeout: 900ms
    scrape_protocols: [PrometheusProto]
    always_scrape_classic_histograms: true
    metrics_path: /p
    static_configs: [{targets: [ADDR]}]
  - job_name: down
    scrape_interval: 1s
    scrape_timeout: 900ms
    scrape_failure_log_file: LOG
    static_configs: [{targets: ["127.0.0.1:9"]}]
"""


async def test_prometheus_and_watchkeeper_scrape_protobuf_and_log_failures_alike(
    prometheus_binary: Path, tmp_path: Path
) -> None:
    server = TargetServer()
    endpoint = server.add("p", protobuf_body(), content_type=PROTOBUF_CONTENT_TYPE)
    await server.start()
    jobs = PROTO_JOBS.replace("ADDR", server.address)
    their_log, our_log = tmp_path / "theirs.log", tmp_path / "ours.log"
    (tmp_path / "prometheus.yml").write_text(jobs.replace("LOG", str(their_log)))
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
    await ours.apply_config(parse_config(jobs.replace("LOG", str(our_log))))
    task = asyncio.create_task(ours.run())
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        query = f"{base}/series?match[]={{__name__=~%22.%2B%22}}"
        theirs: list[dict[str, str]] = []
        for _ in range(150):
            await asyncio.sleep(0.1)
            try:
                theirs = (await asyncio.to_thread(get_json, query))["data"]
            except OSError:
                continue
            if sum(s["__name__"] == "up" for s in theirs) == 3 and their_log.exists():
                break
        await asyncio.sleep(1.5)
        theirs = (await asyncio.to_thread(get_json, query))["data"]
        with storage.querier(0, 2**62) as q:
            ss = q.select([])
            our_series = [ss.series(i) for i in range(len(ss))]
        assert sorted(json.dumps(lbls.as_dict(), sort_keys=True) for lbls, _, _ in our_series) == (
            sorted(json.dumps(s, sort_keys=True) for s in theirs)
        )
        for lbls, _, vals in our_series:
            if lbls.name in REPORT:
                continue
            expr = urllib.parse.quote(
                "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in lbls.as_dict().items()) + "}"
            )
            result = (await asyncio.to_thread(get_json, f"{base}/query?query={expr}"))["data"][
                "result"
            ]
            assert len(result) == 1, lbls
            assert float(result[0]["value"][1]) == vals[~stale_mask(vals)][-1], lbls
        assert any(
            s["job"] == "proto_classic" and s["__name__"] == "both_kinds_bucket" for s in theirs
        )
        accepts = {
            ("ours" if "Watchkeeper" in r.headers["User-Agent"] else "theirs", r.headers["Accept"])
            for r in endpoint.requests
        }
        assert {a for who, a in accepts if who == "ours"} == {
            a for who, a in accepts if who == "theirs"
        }
        # The failure logs: the same fields, in the same order, for the same failures.
        mine = [json.loads(line) for line in our_log.read_text().splitlines()]
        their_lines = [json.loads(line) for line in their_log.read_text().splitlines()]
        assert mine
        assert their_lines
        assert list(mine[0]) == list(their_lines[0])
        shape = {(d["level"], d["msg"], d["job_name"], d["target"]) for d in their_lines}
        assert {(d["level"], d["msg"], d["job_name"], d["target"]) for d in mine} == shape
    finally:
        task.cancel()
        await ours.stop()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
        await server.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
