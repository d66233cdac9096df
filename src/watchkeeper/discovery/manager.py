"""The discovery manager: runs providers per job and hands the scrape manager target sets.

`apply_config` starts a provider per SD config of each job (keeping providers whose config
did not change, so a reload does not re-read files or re-query DNS); `wait_for_update`
returns every job's current groups once something changed, at most once per
`update_interval_s` (Prometheus sends updates every 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from watchkeeper.discovery.dns import DNSProvider
from watchkeeper.discovery.file import FileProvider
from watchkeeper.discovery.http import HTTPProvider
from watchkeeper.discovery.provider import (
    DNSSDConfigLike,
    FileSDConfigLike,
    HTTPSDConfigLike,
    Provider,
    SDConfigs,
    SDMetrics,
    StaticConfigLike,
)
from watchkeeper.discovery.static import StaticProvider
from watchkeeper.discovery.targetgroup import TargetGroup

log = logging.getLogger(__name__)

ProviderFactory = Callable[[str, object], Provider | None]
"""Builds a provider for an SD config type name and config (for tests and extensions)."""


class _Running:
    __slots__ = ("groups", "key", "task")

    def __init__(self, key: str) -> None:
        self.key = key
        self.groups: list[TargetGroup] = []
        self.task: asyncio.Task[None] | None = None


def _provider_configs(sd: SDConfigs) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    if sd.static_configs:
        out.append(("static", sd.static_configs))
    out.extend(("file", c) for c in sd.file_sd_configs)
    out.extend(("http", c) for c in sd.http_sd_configs)
    out.extend(("dns", c) for c in sd.dns_sd_configs)
    return out


def _config_key(kind: str, cfg: object) -> str:
    # NB: config models print every field in their repr, so equal reprs mean equal configs.
    return f"{kind}:{cfg!r}"


class DiscoveryManager:
    """Runs service discovery for a set of jobs (scrape jobs or Alertmanager sets)."""

    def __init__(
        self,
        metrics: SDMetrics,
        *,
        name: str = "scrape",
        update_interval_s: float = 5.0,
        file_poll_interval_s: float = 1.0,
        provider_factory: ProviderFactory | None = None,
    ) -> None:
        self._name = name
        self._metrics = metrics
        metrics.init_manager(name)
        self._update_interval_s = update_interval_s
        self._file_poll_s = file_poll_interval_s
        self._factory = provider_factory
        self._providers: dict[str, list[_Running]] = {}
        self._dirty = asyncio.Event()
        self._closed = False

    @property
    def metrics(self) -> SDMetrics:
        """The SD self-metrics (shared by every manager on the registry)."""
        return self._metrics

    def _build(self, kind: str, cfg: object) -> Provider:
        if self._factory is not None:
            provider = self._factory(kind, cfg)
            if provider is not None:
                return provider
        if kind == "static":
            return StaticProvider(cast(Sequence[StaticConfigLike], cfg))
        if kind == "file":
            return FileProvider(
                cast(FileSDConfigLike, cfg), self._metrics, poll_interval_s=self._file_poll_s
            )
        if kind == "http":
            return HTTPProvider(cast(HTTPSDConfigLike, cfg), self._metrics)
        if kind == "dns":
            return DNSProvider(cast(DNSSDConfigLike, cfg), self._metrics)
        raise ValueError(f"unknown service discovery type {kind}")

    def apply_config(self, configs: Mapping[str, SDConfigs]) -> None:
        """Starts, keeps or stops providers so they match `configs` (job name -> SD configs).

        Must be called from the event loop.
        """
        old = self._providers
        new: dict[str, list[_Running]] = {}
        reusable: dict[tuple[str, str], _Running] = {}
        for job, running in old.items():
            for prev in running:
                reusable[(job, prev.key)] = prev
        for job, sd in configs.items():
            runs: list[_Running] = []
            for kind, cfg in _provider_configs(sd):
                key = _config_key(kind, cfg)
                kept = reusable.pop((job, key), None)
                if kept is None:
                    kept = _Running(key)
                    kept.task = asyncio.get_running_loop().create_task(
                        self._run_provider(job, kept, self._build(kind, cfg))
                    )
                runs.append(kept)
            new[job] = runs
        for (job, _), left in reusable.items():
            if left.task is not None:
                left.task.cancel()
            if job not in new:
                self._metrics.discovered_targets.remove(job, self._name)
        self._providers = new
        for job in new:
            self._update_gauge(job)
        self._dirty.set()

    async def _run_provider(self, job: str, running: _Running, provider: Provider) -> None:
        def send(groups: list[TargetGroup]) -> None:
            self._metrics.received_updates.labels(self._name).inc()
            running.groups = groups
            self._update_gauge(job)
            self._dirty.set()

        try:
            await provider.run(send)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("service discovery provider for job %s failed", job)
            self._metrics.failed_configs.labels(self._name).inc()

    def _update_gauge(self, job: str) -> None:
        total = sum(len(g.targets) for r in self._providers.get(job, ()) for g in r.groups)
        self._metrics.discovered_targets.labels(job, self._name).set(total)

    def target_sets(self) -> dict[str, list[TargetGroup]]:
        """Every job's current groups (provider order, then each provider's group order)."""
        return {job: [g for r in runs for g in r.groups] for job, runs in self._providers.items()}

    async def wait_for_update(self) -> dict[str, list[TargetGroup]]:
        """Waits until groups change, then returns every job's groups (throttled)."""
        await self._dirty.wait()
        if self._update_interval_s > 0:
            await asyncio.sleep(self._update_interval_s)
        self._dirty.clear()
        self._metrics.updates.labels(self._name).inc()
        return self.target_sets()

    async def stop(self) -> None:
        """Cancels every provider and waits for them to end."""
        tasks = [r.task for runs in self._providers.values() for r in runs if r.task is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._providers = {}
