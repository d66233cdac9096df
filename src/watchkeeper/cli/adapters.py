"""Adapters from the stages' own objects to the narrow interfaces the HTTP API defines.

The web stage states what it needs (web/api/v1/deps.py); the server process, which knows
every stage, translates. Keeping this here lets scrape, rules and the TSDB stay unaware of
the API's JSON shapes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from watchkeeper import __version__
from watchkeeper.model.duration import format_duration_ms
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.rules.alerting import AlertingRule
from watchkeeper.web.api.v1.deps import (
    ActiveTarget,
    AlertInfo,
    DroppedTarget,
    MetricMetadataEntry,
    RuleGroupInfo,
    RuleInfo,
    TsdbStats,
)

if TYPE_CHECKING:
    from watchkeeper.notifier.manager import NotifierManager
    from watchkeeper.rules.manager import RuleManager
    from watchkeeper.scrape.manager import ScrapeManager
    from watchkeeper.tsdb.db import TSDB

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339_ms(ms: int) -> str:
    """Formats milliseconds as RFC 3339 with millisecond precision (Go's zero time for 0)."""
    if ms <= 0:
        return ZERO_TIME
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class ScrapeTargets:
    """The scrape manager as the API's TargetRetriever."""

    def __init__(self, manager: ScrapeManager) -> None:
        self._manager = manager

    def targets_active(self) -> Mapping[str, Sequence[ActiveTarget]]:
        """Active targets by scrape pool."""
        out: dict[str, list[ActiveTarget]] = {}
        for name, pool in self._manager.pools().items():
            interval = format_duration_ms(pool.cfg.scrape_interval)
            timeout = format_duration_ms(pool.cfg.scrape_timeout)
            out[name] = [
                ActiveTarget(
                    discovered_labels=Labels(t.discovered.items()),
                    labels=t.public_labels,
                    scrape_pool=name,
                    scrape_url=t.url,
                    global_url=self._manager.global_url(t),
                    last_error=t.last_error,
                    last_scrape=rfc3339_ms(t.last_scrape_ms),
                    last_scrape_duration_s=t.last_scrape_duration_s,
                    health=t.health.value,
                    scrape_interval=interval,
                    scrape_timeout=timeout,
                    metadata=tuple(
                        MetricMetadataEntry(metric, md.type, md.help, md.unit)
                        for metric, md in sorted(t.metadata.items())
                    ),
                )
                for t in self._manager.active_targets(name)
            ]
        return out

    def targets_dropped(self) -> Mapping[str, Sequence[DroppedTarget]]:
        """Dropped targets by scrape pool."""
        out: dict[str, list[DroppedTarget]] = {}
        for d in self._manager.dropped_targets():
            out.setdefault(d.scrape_pool, []).append(
                DroppedTarget(Labels(d.discovered_labels.items()), d.scrape_pool)
            )
        return out

    def targets_dropped_counts(self) -> Mapping[str, int]:
        """Dropped-target counts by scrape pool."""
        return self._manager.dropped_target_counts()

    def scrape_pools(self) -> Sequence[str]:
        """Configured scrape pool names."""
        return self._manager.scrape_pool_names()


class RuleGroups:
    """The rule manager as the API's RulesRetriever."""

    def __init__(self, manager: RuleManager) -> None:
        self._manager = manager

    def rule_groups(self) -> Sequence[RuleGroupInfo]:
        """Every group with its rules and their alerts."""
        groups = []
        for g in self._manager.rule_groups():
            rules = []
            for r in g.rules:
                common = {
                    "name": r.name,
                    "query": r.query,
                    "labels": r.labels,
                    "health": r.health.value,
                    "last_error": r.last_error or "",
                    "evaluation_time_s": r.evaluation_seconds,
                    "last_evaluation": rfc3339_ms(r.last_evaluation_ms),
                }
                if isinstance(r, AlertingRule):
                    alerts = tuple(
                        AlertInfo(
                            labels=a.labels,
                            annotations=a.annotations,
                            state=a.state.value,
                            active_at=_rfc3339_ns(a.active_at_ns),
                            value=a.value,
                            keep_firing_since=(
                                rfc3339_ms(a.keep_firing_since_ms)
                                if a.keep_firing_since_ms
                                else None
                            ),
                        )
                        for a in r.active_alerts()
                    )
                    rules.append(
                        RuleInfo(
                            type="alerting",
                            duration_s=r.hold_ms / 1000,
                            keep_firing_for_s=r.keep_firing_for_ms / 1000,
                            annotations=r.annotations,
                            alerts=alerts,
                            state=r.state().value,
                            **common,  # type: ignore[arg-type]
                        )
                    )
                else:
                    rules.append(RuleInfo(type="recording", **common))  # type: ignore[arg-type]
            groups.append(
                RuleGroupInfo(
                    name=g.name,
                    file=g.file,
                    interval_s=g.interval_ms / 1000,
                    rules=tuple(rules),
                    limit=g.limit,
                    evaluation_time_s=g.evaluation_seconds,
                    last_evaluation=rfc3339_ms(g.last_evaluation_ms),
                )
            )
        return groups


def _rfc3339_ns(ns: int) -> str | None:
    if ns <= 0:
        return None
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


class Alertmanagers:
    """The notifier as the API's AlertmanagerRetriever."""

    def __init__(self, notifier: NotifierManager) -> None:
        self._notifier = notifier

    def alertmanagers(self) -> Sequence[str]:
        """Active Alertmanager URLs."""
        return [a["url"] for a in self._notifier.alertmanagers()["activeAlertmanagers"]]

    def dropped_alertmanagers(self) -> Sequence[str]:
        """Dropped Alertmanager URLs."""
        return [a["url"] for a in self._notifier.alertmanagers()["droppedAlertmanagers"]]


class TsdbAdministration:
    """The TSDB as the API's TsdbAdmin."""

    def __init__(self, db: TSDB) -> None:
        self._db = db

    def stats(self, limit: int) -> TsdbStats:
        """Head statistics."""
        s = self._db.head_stats(limit)
        return TsdbStats(
            num_series=s.num_series,
            num_label_pairs=s.num_label_pairs,
            chunk_count=s.chunk_count,
            min_time_ms=s.min_time_ms,
            max_time_ms=s.max_time_ms,
            series_count_by_metric_name=s.series_count_by_metric_name,
            label_value_count_by_label_name=s.label_value_count_by_label_name,
            memory_in_bytes_by_label_name=s.memory_in_bytes_by_label_name,
            series_count_by_label_value_pair=s.series_count_by_label_value_pair,
        )

    def wal_replay_status(self) -> tuple[int, int, int]:
        """(min, max, current) WAL segments of the replay."""
        st = self._db.wal_replay_status()
        return st["min"], st["max"], st["current"]

    def delete_series(
        self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> None:
        """Deletes matching samples in [start_ms, end_ms]."""
        for matchers in matcher_sets:
            self._db.delete_series(matchers, start_ms, end_ms)

    def clean_tombstones(self) -> None:
        """Rewrites blocks without deleted data."""
        self._db.clean_tombstones()

    def snapshot(self, *, skip_head: bool) -> str:
        """Snapshots into <data>/snapshots/<time>-<random> and returns the folder name."""
        name = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.urandom(8).hex()}"
        target = self._db.dir / "snapshots" / name
        self._db.snapshot(target, with_head=not skip_head)
        return name


class ServerInfo:
    """The server's config, flags, runtime and build facts as the API's ConfigInfo."""

    def __init__(self, flags: Mapping[str, str], start_time_s: float) -> None:
        self._flags = dict(flags)
        self.start_time_s = start_time_s
        self.config_text = ""
        self.external = Labels()
        self.reload_ok = True
        self.last_config_time_s = start_time_s
        self.storage_retention = ""

    def config_yaml(self) -> str:
        """The loaded configuration as YAML."""
        return self.config_text

    def flags(self) -> Mapping[str, str]:
        """Flags by name."""
        return self._flags

    def runtime_info(self) -> Mapping[str, object]:
        """/api/v1/status/runtimeinfo."""
        import psutil

        proc = psutil.Process()
        return {
            "startTime": rfc3339_ms(int(self.start_time_s * 1000)),
            "CWD": os.getcwd(),
            "hostname": os.uname().nodename,
            "serverTime": rfc3339_ms(int(time.time() * 1000)),
            "reloadConfigSuccess": self.reload_ok,
            "lastConfigTime": rfc3339_ms(int(self.last_config_time_s * 1000)),
            "corruptionCount": 0,
            "goroutineCount": proc.num_threads(),
            "GOMAXPROCS": os.cpu_count() or 1,
            "GOMEMLIMIT": 0,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": self.storage_retention,
        }

    def build_info(self) -> Mapping[str, str]:
        """/api/v1/status/buildinfo."""
        return {
            "version": __version__,
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": f"python{sys.version.split()[0]}",
        }

    def external_labels(self) -> Labels:
        """global.external_labels."""
        return self.external
