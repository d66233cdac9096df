"""Scrape options that do not come from prometheus.yml (command-line flags in Prometheus)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ScrapeOptions:
    """Process-level scrape settings.

    Attributes:
        extra_scrape_metrics: also write scrape_timeout_seconds, scrape_sample_limit and
            scrape_body_size_bytes (Prometheus's `--enable-feature=extra-scrape-metrics`).
        discovery_update_interval_s: how often discovery changes reach the pools (5 s).
        hostname: replaces localhost in a target's global URL.
        offset_seed: mixed into each target's phase so HA pairs scrape at different times.
        end_of_run_staleness: write staleness markers for targets that go away.
    """

    extra_scrape_metrics: bool = False
    discovery_update_interval_s: float = 5.0
    hostname: str = field(default_factory=socket.gethostname)
    offset_seed: int = 0
    end_of_run_staleness: bool = True
