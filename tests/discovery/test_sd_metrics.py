"""prometheus_sd_* families as /metrics shows them: file mtimes, scan durations, managers."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from watchkeeper.config.prometheus import parse_config
from watchkeeper.config.sd import FileSDConfig
from watchkeeper.discovery.file import FileProvider
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.instrument.metrics import Registry
from watchkeeper.scrape.metrics import sd_metrics


def _exposed(registry: Registry) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in registry.render().decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def test_file_sd_exports_each_read_files_mtime_and_its_scan_durations(tmp_path: Path) -> None:
    registry = Registry()
    target_file = tmp_path / "a.json"
    target_file.write_text(json.dumps([{"targets": ["h1:1"]}]))
    os.utime(target_file, (1_700_000_000, 1_700_000_000))
    provider = FileProvider(
        FileSDConfig(files=[str(tmp_path / "*.json")]), sd_metrics(registry), poll_interval_s=0.02
    )
    provider.refresh(force=True)
    provider.refresh(force=False)
    exposed = _exposed(registry)
    assert exposed[f'prometheus_sd_file_mtime_seconds{{filename="{target_file}"}}'] == 1.7e9
    assert exposed["prometheus_sd_file_scan_duration_seconds_count"] == 2
    assert exposed['prometheus_sd_file_scan_duration_seconds{quantile="0.99"}'] > 0
    target_file.unlink()
    provider.refresh(force=False)
    assert not any("prometheus_sd_file_mtime_seconds{" in s for s in _exposed(registry))


async def test_a_manager_exports_its_series_at_zero_and_counts_updates() -> None:
    registry = Registry()
    manager = DiscoveryManager(sd_metrics(registry), name="scrape", update_interval_s=0.05)
    exposed = _exposed(registry)
    for family in (
        "prometheus_sd_failed_configs",
        "prometheus_sd_received_updates_total",
        "prometheus_sd_updates_total",
        "prometheus_sd_updates_delayed_total",
    ):
        assert exposed[f'{family}{{name="scrape"}}'] == 0, family
    cfg = parse_config(
        "scrape_configs:\n"
        "  - job_name: a\n    static_configs: [{targets: [a:1]}]\n"
        "  - job_name: b\n    static_configs: [{targets: [b:1]}]\n"
    )
    manager.apply_config({sc.job_name: sc for sc in cfg.scrape_configs})
    try:
        await asyncio.wait_for(manager.wait_for_update(), 5)
    finally:
        await manager.stop()
    exposed = _exposed(registry)
    assert exposed['prometheus_sd_received_updates_total{name="scrape"}'] == 2
    assert exposed['prometheus_sd_updates_total{name="scrape"}'] == 1, "two updates, sent as one"
    assert exposed['prometheus_sd_updates_delayed_total{name="scrape"}'] == 0
