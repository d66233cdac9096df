from __future__ import annotations

import asyncio
from pathlib import Path

from watchkeeper.config.prometheus import parse_config
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.instrument.metrics import Registry
from watchkeeper.scrape.metrics import sd_metrics


async def test_static_and_file_groups_are_merged_per_job(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('[{"targets": ["f:1"]}]')
    cfg = parse_config(
        f"""
scrape_configs:
  - job_name: a
    static_configs: [{{targets: ["s:1", "s:2"]}}, {{targets: ["s:3"], labels: {{x: y}}}}]
    file_sd_configs: [{{files: ["{tmp_path}/*.json"]}}]
  - job_name: b
    static_configs: [{{targets: ["b:1"]}}]
"""
    )
    registry = Registry()
    m = DiscoveryManager(sd_metrics(registry), update_interval_s=0)
    m.apply_config({sc.job_name: sc for sc in cfg.scrape_configs})
    sets = await m.wait_for_update()
    await asyncio.sleep(0.05)
    sets = m.target_sets()
    assert [g.source for g in sets["a"]] == ["0", "1", f"{tmp_path}/t.json:0"]
    assert [t["__address__"] for g in sets["b"] for t in g.targets] == ["b:1"]
    text = registry.render().decode()
    assert 'prometheus_sd_discovered_targets{config="a",name="scrape"} 4' in text
    await m.stop()


async def test_unchanged_providers_keep_running_on_reapply() -> None:
    cfg = parse_config("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [x:1]}]\n")
    m = DiscoveryManager(sd_metrics(Registry()), update_interval_s=0)
    m.apply_config({"a": cfg.scrape_configs[0]})
    await m.wait_for_update()
    first = m._providers["a"][0]
    m.apply_config({"a": cfg.scrape_configs[0]})
    assert m._providers["a"][0] is first
    m.apply_config({})
    assert m.target_sets() == {}
    await m.stop()
