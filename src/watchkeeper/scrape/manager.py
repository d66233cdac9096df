"""The scrape manager: one pool per job, fed by service discovery, reloadable.

Wiring (the server does this):

    manager = ScrapeManager(storage, registry)
    await manager.apply_config(load_config("prometheus.yml"))
    task = asyncio.create_task(manager.run())   # consumes discovery updates
    ...
    await manager.stop()

`apply_config` keeps unchanged pools running, reloads changed ones, stops removed ones
(writing staleness markers for their series) and starts new ones. The target state for
/api/v1/targets, /api/v1/targets/metadata and /api/v1/metadata comes from `active_targets`,
`dropped_targets`, `target_metadata` and `metadata`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from watchkeeper.config.prometheus import PrometheusConfig, ScrapeConfig
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.clock import SYSTEM_CLOCK, Clock
from watchkeeper.model.exposition import MetricMetadata
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, matches_all
from watchkeeper.scrape.failure_log import ScrapeFailureLog, open_failure_logs
from watchkeeper.scrape.metrics import (
    ScrapeMetrics,
    register_metadata_cache_metrics,
    sd_metrics,
)
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.scrape.pool import ScrapePool
from watchkeeper.scrape.target import DroppedTarget, Target
from watchkeeper.storage.interface import Appendable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TargetMetadata:
    """One metric's metadata as scraped from one target (/api/v1/targets/metadata)."""

    target: Labels
    metric: str
    type: str
    help: str
    unit: str

    def as_api_dict(self) -> dict[str, Any]:
        """The entry as Prometheus's API shows it."""
        return {
            "target": self.target.as_dict(),
            "metric": self.metric,
            "type": self.type,
            "help": self.help,
            "unit": self.unit,
        }


class ScrapeManager:
    """Runs scrape pools for the scrape configs of prometheus.yml."""

    def __init__(
        self,
        appendable: Appendable,
        registry: Registry,
        *,
        clock: Clock = SYSTEM_CLOCK,
        options: ScrapeOptions | None = None,
        discovery: DiscoveryManager | None = None,
    ) -> None:
        self._appendable = appendable
        self._clock = clock
        self._options = options or ScrapeOptions()
        self._metrics = ScrapeMetrics.register(registry)
        register_metadata_cache_metrics(
            registry, lambda: {j: p.active_targets() for j, p in self._pools.items()}
        )
        self.discovery = discovery or DiscoveryManager(
            sd_metrics(registry),
            name="scrape",
            update_interval_s=self._options.discovery_update_interval_s,
        )
        self._pools: dict[str, ScrapePool] = {}
        self._configs: dict[str, ScrapeConfig] = {}
        self._target_sets: dict[str, list[TargetGroup]] = {}
        self._retired: list[ScrapePool] = []
        self._failure_logs: dict[str, ScrapeFailureLog] = {}
        self._lock = asyncio.Lock()
        # NB: one writer thread: storage commits (WAL fsyncs) never block the event loop,
        # and appenders are never used from two threads at once.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrape-ingest")

    @property
    def metrics(self) -> ScrapeMetrics:
        """The scrape self-metrics."""
        return self._metrics

    async def apply_config(self, cfg: PrometheusConfig) -> None:
        """Applies a loaded config: pools and discovery follow its scrape configs.

        Raises:
            OSError: when a scrape_failure_log_file cannot be opened (nothing is changed).
        """
        configs = {sc.job_name: sc for sc in cfg.scrape_configs}
        # NB: reopened on every load, as Prometheus promises (log rotation).
        failure_logs = open_failure_logs(sc.scrape_failure_log_file for sc in configs.values())
        async with self._lock:
            for job in list(self._pools):
                if job not in configs:
                    retired = self._pools.pop(job)
                    await retired.stop(stale=True)
                    self._retired.append(retired)
                    self._target_sets.pop(job, None)
            for job, sc in configs.items():
                pool = self._pools.get(job)
                if pool is None:
                    self._pools[job] = ScrapePool(
                        sc,
                        self._appendable,
                        self._metrics,
                        self._clock,
                        self._options,
                        executor=self._executor,
                    )
                elif pool.cfg != sc:
                    await pool.reload(sc)
                self._pools[job].set_failure_log(failure_logs.get(sc.scrape_failure_log_file))
            for old_log in self._failure_logs.values():
                old_log.close()
            self._failure_logs = failure_logs
            self._configs = configs
        self.discovery.apply_config(configs)

    async def sync(self, target_sets: Mapping[str, Sequence[TargetGroup]]) -> None:
        """Gives each pool its job's current target groups (what `run` does per update)."""
        async with self._lock:
            for job, groups in target_sets.items():
                self._target_sets[job] = list(groups)
                pool = self._pools.get(job)
                if pool is not None:
                    await pool.sync(groups)

    async def run(self) -> None:
        """Consumes discovery updates until cancelled."""
        while True:
            target_sets = await self.discovery.wait_for_update()
            try:
                await self.sync(target_sets)
            except Exception:
                log.exception("syncing scrape pools failed")

    async def stop(self) -> None:
        """Stops discovery and every pool (no staleness markers, as on shutdown)."""
        await self.discovery.stop()
        async with self._lock:
            for pool in self._pools.values():
                await pool.stop(stale=False)
            for pool in self._retired:
                await pool.cancel_staleness()
            self._pools = {}
            self._retired = []
            for failure_log in self._failure_logs.values():
                failure_log.close()
            self._failure_logs = {}
        self._executor.shutdown(wait=True)

    async def wait_staleness(self) -> None:
        """Waits until pending end-of-run staleness markers are written (for tests)."""
        for pool in [*self._pools.values(), *self._retired]:
            await pool.wait_staleness()
        self._retired = []

    def pools(self) -> dict[str, ScrapePool]:
        """The running pools by job name."""
        return dict(self._pools)

    def scrape_pool_names(self) -> list[str]:
        """The job names, sorted (/api/v1/scrape_pools)."""
        return sorted(self._pools)

    def active_targets(self, scrape_pool: str | None = None) -> list[Target]:
        """Targets being scraped, by pool then URL."""
        out: list[Target] = []
        for name in sorted(self._pools):
            if scrape_pool is None or name == scrape_pool:
                out.extend(sorted(self._pools[name].active_targets(), key=lambda t: t.url))
        return out

    def dropped_targets(self, scrape_pool: str | None = None) -> list[DroppedTarget]:
        """Targets dropped by relabelling (each pool keeps keep_dropped_targets at most)."""
        out: list[DroppedTarget] = []
        for name in sorted(self._pools):
            if scrape_pool is None or name == scrape_pool:
                out.extend(self._pools[name].dropped_targets())
        return out

    def dropped_target_counts(self) -> dict[str, int]:
        """The number of dropped targets per pool, including those not kept."""
        return {name: p.dropped_count for name, p in sorted(self._pools.items())}

    def global_url(self, target: Target) -> str:
        """The scrape URL with a loopback host replaced by this machine's hostname."""
        parts = urlsplit(target.url)
        host = parts.hostname or ""
        if host in ("localhost", "127.0.0.1", "::1"):
            netloc = self._options.hostname + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return target.url

    def targets_api(self, state: str = "any", scrape_pool: str | None = None) -> dict[str, Any]:
        """The `data` of /api/v1/targets (state: active, dropped or any)."""
        data: dict[str, Any] = {}
        if state in ("any", "active"):
            data["activeTargets"] = [
                t.as_api_dict(global_url=self.global_url(t))
                for t in self.active_targets(scrape_pool)
            ]
        if state in ("any", "dropped"):
            data["droppedTargets"] = [
                {
                    "discoveredLabels": dict(sorted(d.discovered_labels.items())),
                    "scrapePool": d.scrape_pool,
                }
                for d in self.dropped_targets(scrape_pool)
            ]
            data["droppedTargetCounts"] = self.dropped_target_counts()
        return data

    def target_metadata(
        self, match_target: Sequence[Matcher] = (), metric: str = "", limit: int = -1
    ) -> list[TargetMetadata]:
        """Metadata per target and metric (/api/v1/targets/metadata)."""
        out: list[TargetMetadata] = []
        for t in self.active_targets():
            if match_target and not matches_all(list(match_target), t.public_labels):
                continue
            for name, md in sorted(t.metadata.items()):
                if metric and name != metric:
                    continue
                out.append(TargetMetadata(t.public_labels, name, md.type, md.help, md.unit))
                if 0 <= limit <= len(out):
                    return out
        return out

    def metadata(self, metric: str = "", limit: int = -1) -> dict[str, list[MetricMetadata]]:
        """Distinct metadata per metric across targets (/api/v1/metadata)."""
        out: dict[str, list[MetricMetadata]] = {}
        for t in self.active_targets():
            for name, md in t.metadata.items():
                if metric and name != metric:
                    continue
                entries = out.setdefault(name, [])
                if md not in entries:
                    entries.append(md)
        names = sorted(out)
        if limit >= 0:
            names = names[:limit]
        return {n: out[n] for n in names}
