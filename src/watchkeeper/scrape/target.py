"""Targets: turning discovered target groups into scrape targets, as Prometheus does.

`populate_labels` is Prometheus's PopulateLabels: discovered labels plus defaults (job,
__scheme__, __metrics_path__, __scrape_interval__, __scrape_timeout__, __param_*), target
relabelling, address and interval checks, __meta_* removal and the default instance label.
A `Target` holds the result and the scrape state shown on the targets page and API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from watchkeeper.config.prometheus import ScrapeConfig
from watchkeeper.discovery.targetgroup import ADDRESS_LABEL, TargetGroup
from watchkeeper.model.duration import DurationError, format_duration_ms, parse_duration_ms
from watchkeeper.model.exposition import MetricMetadata
from watchkeeper.model.labels import Labels
from watchkeeper.model.relabel import RelabelConfig
from watchkeeper.model.relabel import relabel as relabel_process

SCHEME_LABEL = "__scheme__"
METRICS_PATH_LABEL = "__metrics_path__"
SCRAPE_INTERVAL_LABEL = "__scrape_interval__"
SCRAPE_TIMEOUT_LABEL = "__scrape_timeout__"
PARAM_PREFIX = "__param_"
META_PREFIX = "__meta_"
RESERVED_PREFIX = "__"


class TargetHealth(Enum):
    """A target's health after its last scrape."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class TargetError(ValueError):
    """Raised when a discovered target cannot become a scrape target (bad address...)."""


def relabel(labels: Labels, configs: Sequence[RelabelConfig]) -> Labels | None:
    """Applies relabel configs; None means the label set was dropped."""
    if not configs:
        return labels
    return relabel_process(labels, configs)


def discovered_labels(
    cfg: ScrapeConfig, target: dict[str, str], group_labels: dict[str, str]
) -> dict[str, str]:
    """The labels of a target before relabelling (Prometheus's PopulateDiscoveredLabels)."""
    lb = dict(group_labels)
    lb.update(target)
    defaults = (
        ("job", cfg.job_name),
        (SCRAPE_INTERVAL_LABEL, format_duration_ms(cfg.scrape_interval)),
        (SCRAPE_TIMEOUT_LABEL, format_duration_ms(cfg.scrape_timeout)),
        (METRICS_PATH_LABEL, cfg.metrics_path),
        (SCHEME_LABEL, cfg.scheme),
    )
    for name, value in defaults:
        if not lb.get(name):
            lb[name] = value
    for key, values in cfg.params.items():
        name = PARAM_PREFIX + key
        if values and not lb.get(name):
            lb[name] = values[0]
    return {k: v for k, v in lb.items() if v}


def populate_labels(cfg: ScrapeConfig, discovered: dict[str, str]) -> Labels | None:
    """Relabels discovered labels into target labels; None when relabelling drops the target.

    Raises:
        TargetError: with Prometheus's reason (no address, bad interval...).
    """
    res = relabel(Labels(discovered.items()), cfg.relabel_configs)
    if res is None:
        return None
    lb = res.as_dict()
    addr = lb.get(ADDRESS_LABEL, "")
    if not addr:
        raise TargetError("no address")
    if "/" in addr:
        raise TargetError(f'"{addr}" is not a valid hostname')
    interval = lb.get(SCRAPE_INTERVAL_LABEL, "")
    try:
        interval_ms = parse_duration_ms(interval)
    except DurationError as exc:
        raise TargetError(f"error parsing scrape interval: {exc}") from None
    if interval_ms == 0:
        raise TargetError("scrape interval cannot be 0")
    timeout = lb.get(SCRAPE_TIMEOUT_LABEL, "")
    try:
        timeout_ms = parse_duration_ms(timeout)
    except DurationError as exc:
        raise TargetError(f"error parsing scrape timeout: {exc}") from None
    if timeout_ms == 0:
        raise TargetError("scrape timeout cannot be 0")
    if timeout_ms > interval_ms:
        raise TargetError(
            f'scrape timeout cannot be greater than scrape interval ("{timeout}" > "{interval}")'
        )
    lb = {k: v for k, v in lb.items() if not k.startswith(META_PREFIX)}
    if not lb.get("instance"):
        lb["instance"] = addr
    return Labels(lb.items())


@dataclass(slots=True)
class DroppedTarget:
    """A discovered target that relabelling dropped (kept for the API)."""

    discovered_labels: dict[str, str]
    scrape_pool: str


@dataclass(eq=False, slots=True)
class Target:
    """One scrape target: its labels, URL and the state of its last scrape."""

    labels: Labels
    discovered: dict[str, str]
    scrape_pool: str
    params: dict[str, list[str]]
    health: TargetHealth = TargetHealth.UNKNOWN
    last_error: str = ""
    last_scrape_ms: int = 0
    last_scrape_duration_s: float = 0.0
    last_samples: int = 0
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    _public: Labels | None = None
    _url: str = ""

    @property
    def public_labels(self) -> Labels:
        """The labels every scraped series gets (target labels without the __ ones)."""
        if self._public is None:
            self._public = Labels.from_sorted_pairs(
                tuple(p for p in self.labels.pairs if not p[0].startswith(RESERVED_PREFIX))
            )
        return self._public

    @property
    def url(self) -> str:
        """The scrape URL: scheme, address, metrics path and params (__param_* override)."""
        if not self._url:
            params = {k: list(v) for k, v in self.params.items()}
            for name, value in self.labels.pairs:
                if name.startswith(PARAM_PREFIX):
                    key = name[len(PARAM_PREFIX) :]
                    if params.get(key):
                        params[key][0] = value
                    else:
                        params[key] = [value]
            query = urlencode(sorted(params.items()), doseq=True)
            lb = self.labels
            path = lb.get(METRICS_PATH_LABEL)
            self._url = f"{lb.get(SCHEME_LABEL)}://{lb.get(ADDRESS_LABEL)}{path}"
            if query:
                self._url += "?" + query
        return self._url

    @property
    def interval_ms(self) -> int:
        """The scrape interval from __scrape_interval__."""
        return parse_duration_ms(self.labels.get(SCRAPE_INTERVAL_LABEL))

    @property
    def timeout_ms(self) -> int:
        """The scrape timeout from __scrape_timeout__."""
        return parse_duration_ms(self.labels.get(SCRAPE_TIMEOUT_LABEL))

    def hash(self) -> int:
        """A stable 64-bit identity of labels and URL (Prometheus's Target.hash)."""
        digest = hashlib.blake2b(f"{self.labels}\xff{self.url}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "little")

    def offset_s(self, interval_s: float, seed: int, now_s: float) -> float:
        """Seconds to wait before the first scrape, spreading targets over the interval.

        The phase is pinned to wall time, so a target keeps its phase across restarts.
        """
        interval_ns = max(int(interval_s * 1e9), 1)
        now_ns = int(now_s * 1e9)
        base = interval_ns - now_ns % interval_ns
        offset = (self.hash() ^ seed) % interval_ns
        nxt = base + offset
        if nxt > interval_ns:
            nxt -= interval_ns
        return nxt / 1e9

    def as_api_dict(self, *, global_url: str | None = None) -> dict[str, Any]:
        """The target as /api/v1/targets shows it (activeTargets entry)."""
        last = (
            datetime.fromtimestamp(self.last_scrape_ms / 1000, tz=UTC)
            .isoformat()
            .replace("+00:00", "Z")
            if self.last_scrape_ms
            else "0001-01-01T00:00:00Z"
        )
        return {
            "discoveredLabels": dict(sorted(self.discovered.items())),
            "labels": self.public_labels.as_dict(),
            "scrapePool": self.scrape_pool,
            "scrapeUrl": self.url,
            "globalUrl": global_url or self.url,
            "lastError": self.last_error,
            "lastScrape": last,
            "lastScrapeDuration": self.last_scrape_duration_s,
            "health": self.health.value,
            "scrapeInterval": self.labels.get(SCRAPE_INTERVAL_LABEL),
            "scrapeTimeout": self.labels.get(SCRAPE_TIMEOUT_LABEL),
        }


def targets_from_groups(
    cfg: ScrapeConfig, groups: Sequence[TargetGroup]
) -> tuple[list[Target], list[DroppedTarget], list[str]]:
    """Builds targets from groups: (active, dropped, failures as "source: reason")."""
    active: list[Target] = []
    dropped: list[DroppedTarget] = []
    failures: list[str] = []
    for group in groups:
        for t in group.targets:
            disc = discovered_labels(cfg, t, group.labels)
            try:
                lbls = populate_labels(cfg, disc)
            except TargetError as exc:
                failures.append(f"{group.source}: {exc}")
                continue
            if lbls is None:
                dropped.append(DroppedTarget(disc, cfg.job_name))
                continue
            active.append(
                Target(labels=lbls, discovered=disc, scrape_pool=cfg.job_name, params=cfg.params)
            )
    return active, dropped, failures
