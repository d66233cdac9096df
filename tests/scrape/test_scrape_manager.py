from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from watchkeeper.config.prometheus import PrometheusConfig, parse_config
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.model.value import is_stale_nan
from watchkeeper.scrape.manager import ScrapeManager
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.targets import TargetServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def target_server() -> AsyncIterator[TargetServer]:
    server = TargetServer()
    await server.start()
    yield server
    await server.stop()


def dump(storage: MemoryStorage) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    with storage.querier(0, 2**62) as q:
        ss = q.select([])
        for i in range(len(ss)):
            lbls, ts, vs = ss.series(i)
            out[str(lbls)] = list(zip(ts.tolist(), vs.tolist(), strict=True))
    return out


async def wait_for(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def config(server: TargetServer, jobs: str) -> PrometheusConfig:
    return parse_config(
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 80ms\nscrape_configs:\n"
        + jobs.replace("ADDR", server.address)
    )


def manager(storage: MemoryStorage, registry: Registry | None = None) -> ScrapeManager:
    return ScrapeManager(
        storage, registry or Registry(), options=ScrapeOptions(discovery_update_interval_s=0.01)
    )


async def test_targets_are_scraped_and_shown_with_discovered_and_final_labels(
    target_server: TargetServer,
) -> None:
    target_server.add("metrics", "# HELP a An a.\n# TYPE a counter\na_total 1\n")
    storage = MemoryStorage()
    m = manager(storage)
    await m.apply_config(
        config(
            target_server,
            """  - job_name: web
    static_configs: [{targets: [ADDR], labels: {env: prod}}, {targets: ["dropme:1"]}]
    relabel_configs:
      - source_labels: [__address__]
        regex: dropme.*
        action: drop
      - source_labels: [env]
        target_label: stage
""",
        ),
    )
    task = asyncio.create_task(m.run())
    try:
        await wait_for(lambda: any(t.last_scrape_ms for t in m.active_targets()))
        data = m.targets_api()
        (active,) = data["activeTargets"]
        assert active["labels"] == {
            "env": "prod",
            "instance": target_server.address,
            "job": "web",
            "stage": "prod",
        }
        assert active["discoveredLabels"]["__address__"] == target_server.address
        assert "stage" not in active["discoveredLabels"]
        assert active["health"] == "up"
        assert active["scrapeUrl"] == f"http://{target_server.address}/metrics"
        assert active["scrapeInterval"] == "100ms"
        assert data["droppedTargets"][0]["discoveredLabels"]["__address__"] == "dropme:1"
        assert data["droppedTargetCounts"] == {"web": 1}
        assert m.scrape_pool_names() == ["web"]
        md = m.target_metadata([Matcher(MatchType.EQUAL, "job", "web")], metric="a")
        assert [(x.metric, x.type, x.help) for x in md] == [("a", "counter", "An a.")]
        assert m.metadata()["a"][0].help == "An a."
    finally:
        task.cancel()
        await m.stop()


async def test_keep_dropped_targets_limits_what_is_kept(target_server: TargetServer) -> None:
    m = manager(MemoryStorage())
    await m.apply_config(
        config(
            target_server,
            """  - job_name: a
    keep_dropped_targets: 1
    static_configs: [{targets: ["x:1", "x:2", "x:3"]}]
    relabel_configs: [{action: drop, source_labels: [__address__], regex: "x:.*"}]
""",
        )
    )
    try:
        await m.sync(await m.discovery.wait_for_update())
        assert len(m.dropped_targets()) == 1
        assert m.dropped_target_counts() == {"a": 3}
    finally:
        await m.stop()


async def test_target_limit_fails_every_scrape_of_the_pool(target_server: TargetServer) -> None:
    target_server.add("metrics", "a 1\n")
    storage = MemoryStorage()
    m = manager(storage)
    await m.apply_config(
        config(
            target_server,
            """  - job_name: a
    target_limit: 1
    static_configs: [{targets: [ADDR, "127.0.0.1:9"]}]
""",
        )
    )
    task = asyncio.create_task(m.run())
    try:
        await wait_for(
            lambda: (
                all(t.last_scrape_ms for t in m.active_targets()) and len(m.active_targets()) == 2
            )
        )
        for t in m.active_targets():
            assert t.last_error == "target_limit exceeded (number of targets: 2, limit: 1)"
    finally:
        task.cancel()
        await m.stop()


async def test_a_target_that_goes_away_gets_staleness_markers(target_server: TargetServer) -> None:
    target_server.add("metrics", "a 1\n")
    storage = MemoryStorage()
    m = manager(storage)
    await m.apply_config(
        config(target_server, "  - job_name: a\n    static_configs: [{targets: [ADDR]}]\n")
    )
    task = asyncio.create_task(m.run())
    try:
        # NB: a successful scrape, not just any: an 80 ms timeout can expire on a busy machine.
        await wait_for(
            lambda: any(t.last_scrape_ms and not t.last_error for t in m.active_targets())
        )
        await m.sync({"a": []})
        await m.wait_staleness()
        got = dump(storage)
        key = f'a{{instance="{target_server.address}", job="a"}}'
        assert is_stale_nan(got[key][-1][1])
        assert is_stale_nan(got[f'up{{instance="{target_server.address}", job="a"}}'][-1][1])
    finally:
        task.cancel()
        await m.stop()


async def test_reload_keeps_unchanged_pools_and_stops_removed_ones(
    target_server: TargetServer,
) -> None:
    target_server.add("metrics", "a 1\n")
    storage = MemoryStorage()
    registry = Registry()
    m = manager(storage, registry)
    jobs = """  - job_name: keep
    static_configs: [{targets: [ADDR]}]
  - job_name: gone
    static_configs: [{targets: [ADDR]}]
"""
    await m.apply_config(config(target_server, jobs))
    task = asyncio.create_task(m.run())
    try:
        await wait_for(
            lambda: (
                len(m.active_targets()) == 2 and all(t.last_scrape_ms for t in m.active_targets())
            )
        )
        kept = m.pools()["keep"]
        await m.apply_config(
            config(
                target_server,
                """  - job_name: keep
    static_configs: [{targets: [ADDR]}]
  - job_name: new
    metric_relabel_configs: [{target_label: v, replacement: "2"}]
    static_configs: [{targets: [ADDR]}]
""",
            )
        )
        assert m.pools()["keep"] is kept
        assert sorted(m.pools()) == ["keep", "new"]
        await wait_for(
            lambda: any(t.scrape_pool == "new" and t.last_scrape_ms for t in m.active_targets())
        )
        await m.wait_staleness()
        got = dump(storage)
        gone = f'a{{instance="{target_server.address}", job="gone"}}'
        assert is_stale_nan(got[gone][-1][1])
        assert f'a{{instance="{target_server.address}", job="new", v="2"}}' in got
        text = registry.render().decode()
        assert "prometheus_target_scrape_pools_total 3" in text
        assert 'prometheus_target_scrape_pool_targets{scrape_job="keep"} 1' in text
    finally:
        task.cancel()
        await m.stop()


async def test_a_changed_job_reloads_without_marking_its_series_stale(
    target_server: TargetServer,
) -> None:
    target_server.add("metrics", "a 1\n")
    storage = MemoryStorage()
    m = manager(storage)
    await m.apply_config(
        config(target_server, "  - job_name: a\n    static_configs: [{targets: [ADDR]}]\n")
    )
    task = asyncio.create_task(m.run())
    try:
        await wait_for(lambda: any(t.last_scrape_ms for t in m.active_targets()))
        await m.apply_config(
            config(
                target_server,
                "  - job_name: a\n    sample_limit: 10\n    static_configs: [{targets: [ADDR]}]\n",
            )
        )
        (loop,) = m.pools()["a"].loops()
        before = loop.scrapes
        await wait_for(lambda: loop.scrapes >= before + 2)
        await m.wait_staleness()
        key = f'a{{instance="{target_server.address}", job="a"}}'
        assert not any(is_stale_nan(v) for _, v in dump(storage)[key])
    finally:
        task.cancel()
        await m.stop()


async def test_file_sd_targets_are_scraped_and_follow_file_changes(
    target_server: TargetServer, tmp_path: Path
) -> None:
    target_server.add("metrics", "a 1\n")
    sd = tmp_path / "t.json"
    sd.write_text(f'[{{"targets": ["{target_server.address}"], "labels": {{"team": "x"}}}}]')
    storage = MemoryStorage()
    m = manager(storage)
    await m.apply_config(
        config(
            target_server,
            f"""  - job_name: f
    file_sd_configs: [{{files: ["{tmp_path}/*.json"], refresh_interval: 100ms}}]
    relabel_configs:
      - source_labels: [__meta_filepath]
        target_label: from
""",
        )
    )
    task = asyncio.create_task(m.run())
    try:
        await wait_for(lambda: any(t.last_scrape_ms for t in m.active_targets()))
        (t,) = m.active_targets()
        assert t.public_labels.get("from") == str(sd)
        assert t.public_labels.get("team") == "x"
        sd.write_text("[]")
        await wait_for(lambda: not m.active_targets())
    finally:
        task.cancel()
        await m.stop()


async def test_many_targets_share_one_event_loop(target_server: TargetServer) -> None:
    body = "".join(f'm{{i="{i}"}} {i}\n' for i in range(50))
    for i in range(150):
        target_server.add(f"t{i}", body)
    storage = MemoryStorage()
    m = manager(storage)
    cfg = config(
        target_server,
        (
            "  - job_name: many\n    scrape_interval: 3s\n    scrape_timeout: 3s\n"
            "    static_configs: [{targets: [ADDR]}]\n"
        ),
    )
    await m.apply_config(cfg)
    groups = [
        TargetGroup(
            [{"__address__": target_server.address, "__metrics_path__": f"/t{i}"}], {}, str(i)
        )
        for i in range(150)
    ]
    await m.sync({"many": groups})
    try:
        await wait_for(lambda: all(t.last_scrape_ms for t in m.active_targets()), timeout_s=20)
        assert len(m.active_targets()) == 150
        assert [t.last_error for t in m.active_targets() if t.last_error][:3] == []
    finally:
        await m.stop()


async def test_failure_log_files_are_per_job_or_global_and_reopened_on_reload(
    target_server: TargetServer, tmp_path: Path
) -> None:
    target_server.add("metrics", "a 1\n", status=503)
    glob, own = tmp_path / "global.log", tmp_path / "own.log"
    text = (
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 80ms\n"
        f"  scrape_failure_log_file: {glob}\nscrape_configs:\n"
        "  - job_name: a\n    static_configs: [{targets: [ADDR]}]\n"
        f"  - job_name: b\n    scrape_failure_log_file: {own}\n"
        "    static_configs: [{targets: [ADDR]}]\n"
    ).replace("ADDR", target_server.address)
    m = manager(MemoryStorage())
    await m.apply_config(parse_config(text))
    task = asyncio.create_task(m.run())
    try:
        await wait_for(lambda: glob.exists() and own.exists() and bool(own.read_text()))
        await wait_for(lambda: bool(glob.read_text()))
        assert {json.loads(line)["job_name"] for line in glob.read_text().splitlines()} == {"a"}
        assert {json.loads(line)["job_name"] for line in own.read_text().splitlines()} == {"b"}
        # A rotated file is written anew after a reload, even of an unchanged config.
        glob.rename(tmp_path / "global.log.1")
        await m.apply_config(parse_config(text))
        await wait_for(lambda: glob.exists() and bool(glob.read_text()))
        with pytest.raises(OSError, match="can't create json log file"):
            await m.apply_config(parse_config(text.replace(str(own), "/nonexistent/dir/x.log")))
    finally:
        task.cancel()
        await m.stop()
