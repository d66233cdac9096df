"""What the HTTP API needs from the rest of the server, as narrow Protocols.

The web stage is the consumer, so it defines these interfaces; the server process (cli)
adapts the engine, scrape manager, rule manager, notifier and TSDB to them. Value types
that cross the boundary (targets, rules, alerts, TSDB stats) are plain dataclasses here,
already in the units the API reports. Every collaborator except the engine and the
queryable is optional: a missing one answers as an idle Prometheus does (empty lists).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.clock import Clock, SystemClock
from watchkeeper.model.labels import EMPTY_LABELS, Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.promql import ast
from watchkeeper.promql.value import QueryResult
from watchkeeper.storage.interface import Appendable, Queryable


class QueryEngine(Protocol):
    """Evaluates PromQL (watchkeeper.promql.engine.Engine satisfies it).

    Methods are synchronous and CPU-bound; the API calls them in a worker thread. They
    raise `watchkeeper.promql.errors.PromQLError` subclasses, which carry the API's
    errorType and HTTP status.
    """

    def parse(self, query: str) -> ast.Expr:
        """Parses a query (raises ParseError)."""
        ...

    def instant_query(
        self, query: str, time_ms: int, *, lookback_delta_ms: int | None = None
    ) -> QueryResult:
        """Evaluates a query at one time."""
        ...

    def range_query(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        lookback_delta_ms: int | None = None,
    ) -> QueryResult:
        """Evaluates a query at start, start+step, ... end."""
        ...


@dataclass(frozen=True, slots=True)
class MetricMetadataEntry:
    """Metadata of one metric family as a target exposes it."""

    metric: str
    type: str
    help: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class ActiveTarget:
    """One scraped target as /api/v1/targets reports it.

    `last_scrape` is RFC 3339 text ("0001-01-01T00:00:00Z" before the first scrape);
    `health` is "up", "down" or "unknown"; intervals are Prometheus duration strings.
    """

    discovered_labels: Labels
    labels: Labels
    scrape_pool: str
    scrape_url: str
    global_url: str
    last_error: str
    last_scrape: str
    last_scrape_duration_s: float
    health: str
    scrape_interval: str
    scrape_timeout: str
    metadata: Sequence[MetricMetadataEntry] = ()


@dataclass(frozen=True, slots=True)
class DroppedTarget:
    """A discovered target that relabelling dropped."""

    discovered_labels: Labels
    scrape_pool: str = ""


class TargetRetriever(Protocol):
    """The scrape manager's view of targets, by scrape pool."""

    def targets_active(self) -> Mapping[str, Sequence[ActiveTarget]]:
        """Returns active targets by scrape pool name."""
        ...

    def targets_dropped(self) -> Mapping[str, Sequence[DroppedTarget]]:
        """Returns dropped targets by scrape pool name (may be capped)."""
        ...

    def targets_dropped_counts(self) -> Mapping[str, int]:
        """Returns the number of dropped targets by scrape pool (uncapped)."""
        ...

    def scrape_pools(self) -> Sequence[str]:
        """Returns the names of the configured scrape pools."""
        ...


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """An active alert of an alerting rule. Times are RFC 3339 text or None."""

    labels: Labels
    annotations: Labels
    state: str
    active_at: str | None
    value: float
    keep_firing_since: str | None = None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A recording or alerting rule (`type` is "recording" or "alerting")."""

    type: str
    name: str
    query: str
    labels: Labels = EMPTY_LABELS
    health: str = "unknown"
    last_error: str = ""
    evaluation_time_s: float = 0.0
    last_evaluation: str = "0001-01-01T00:00:00Z"
    # Alerting rules only:
    duration_s: float = 0.0
    keep_firing_for_s: float = 0.0
    annotations: Labels = EMPTY_LABELS
    alerts: Sequence[AlertInfo] = ()
    state: str = "inactive"


@dataclass(frozen=True, slots=True)
class RuleGroupInfo:
    """A rule group as /api/v1/rules reports it."""

    name: str
    file: str
    interval_s: float
    rules: Sequence[RuleInfo]
    limit: int = 0
    evaluation_time_s: float = 0.0
    last_evaluation: str = "0001-01-01T00:00:00Z"


class RulesRetriever(Protocol):
    """The rule manager's groups, in file order."""

    def rule_groups(self) -> Sequence[RuleGroupInfo]:
        """Returns every rule group."""
        ...


class AlertmanagerRetriever(Protocol):
    """The notifier's discovered Alertmanagers (URLs of their alerts endpoints)."""

    def alertmanagers(self) -> Sequence[str]:
        """Returns active Alertmanager URLs."""
        ...

    def dropped_alertmanagers(self) -> Sequence[str]:
        """Returns dropped Alertmanager URLs."""
        ...


@dataclass(frozen=True, slots=True)
class TsdbStats:
    """Cardinality statistics of the head block (/api/v1/status/tsdb)."""

    num_series: int
    num_label_pairs: int
    chunk_count: int
    min_time_ms: int
    max_time_ms: int
    series_count_by_metric_name: Sequence[tuple[str, int]] = ()
    label_value_count_by_label_name: Sequence[tuple[str, int]] = ()
    memory_in_bytes_by_label_name: Sequence[tuple[str, int]] = ()
    series_count_by_label_value_pair: Sequence[tuple[str, int]] = ()


class TsdbAdmin(Protocol):
    """TSDB statistics and the admin operations (the admin ones only with the admin API)."""

    def stats(self, limit: int) -> TsdbStats:
        """Returns head statistics with the top `limit` entries of each list."""
        ...

    def wal_replay_status(self) -> tuple[int, int, int]:
        """Returns (min, max, current) WAL segment numbers of the replay."""
        ...

    def delete_series(
        self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> None:
        """Marks samples of matching series in [start_ms, end_ms] deleted."""
        ...

    def clean_tombstones(self) -> None:
        """Rewrites blocks without deleted samples."""
        ...

    def snapshot(self, *, skip_head: bool) -> str:
        """Writes a snapshot and returns its directory name."""
        ...


class ConfigInfo(Protocol):
    """The loaded configuration and process facts for the status endpoints."""

    def config_yaml(self) -> str:
        """Returns the loaded configuration as YAML text."""
        ...

    def flags(self) -> Mapping[str, str]:
        """Returns the command-line flags by name (without dashes)."""
        ...

    def runtime_info(self) -> Mapping[str, object]:
        """Returns /status/runtimeinfo's object (startTime, CWD, reloadConfigSuccess...)."""
        ...

    def build_info(self) -> Mapping[str, str]:
        """Returns version, revision, branch, buildUser, buildDate, goVersion."""
        ...

    def external_labels(self) -> Labels:
        """Returns global.external_labels (added to federated series)."""
        ...


@dataclass(frozen=True, slots=True)
class Notification:
    """A server notification (for example a failed config reload).

    `date` is RFC 3339 text of when it was last raised; a notification sent to live
    subscribers with `active` False has just been cleared.
    """

    text: str
    date: str
    active: bool


class NotificationFeed(Protocol):
    """One live subscription to server notifications, read on the event loop that opened it."""

    async def get(self) -> Notification:
        """Waits for the next notification (current ones first, then each change)."""
        ...

    def get_nowait(self) -> Notification | None:
        """Returns a notification already waiting, or None."""
        ...

    def close(self) -> None:
        """Unsubscribes, freeing the slot; call it once when the client leaves."""
        ...


class NotificationSource(Protocol):
    """Current server notifications and live subscriptions to their changes."""

    def notifications(self) -> Sequence[Notification]:
        """Returns the current notifications."""
        ...

    def subscribe(self) -> NotificationFeed | None:
        """Opens a live feed on the running event loop (None at the subscriber limit)."""
        ...


@dataclass(frozen=True, slots=True)
class ExemplarSeries:
    """Exemplars of one series: each is (labels, value, timestamp_ms)."""

    series_labels: Labels
    exemplars: Sequence[tuple[Labels, float, int]]


class ExemplarQueryable(Protocol):
    """Stored exemplars."""

    def select_exemplars(
        self, start_ms: int, end_ms: int, matcher_sets: Sequence[Sequence[Matcher]]
    ) -> Sequence[ExemplarSeries]:
        """Returns exemplars of series matching any matcher set, in [start_ms, end_ms]."""
        ...


Reloader = Callable[[], Awaitable[None]]
"""Reloads the configuration; raises with the reason when the new config is refused."""


class ReadyStatus(enum.Enum):
    """Where the server is in its life, as Prometheus's web handler tracks it."""

    NOT_READY = "not ready"
    """Starting: storage and configuration are not loaded yet."""
    READY = "ready"
    """Serving every endpoint."""
    STOPPING = "stopping"
    """Shutting down: 503 answers say so with `X-Prometheus-Stopping: true`."""

    @classmethod
    def of(cls, ready: bool, *, stopping: bool) -> ReadyStatus:
        """The status of a server that is `ready` or not, and `stopping` or not."""
        if stopping:
            return cls.STOPPING
        return cls.READY if ready else cls.NOT_READY


def _always_ready() -> ReadyStatus:
    return ReadyStatus.READY


@dataclass(slots=True)
class ApiDeps:
    """Everything the app factory wires into handlers; all but two parts are optional."""

    queryable: Queryable
    engine: QueryEngine
    targets: TargetRetriever | None = None
    rules: RulesRetriever | None = None
    alertmanagers: AlertmanagerRetriever | None = None
    tsdb: TsdbAdmin | None = None
    remote_write_sink: Appendable | None = None
    config: ConfigInfo | None = None
    reloader: Reloader | None = None
    quit: Callable[[], None] | None = None
    notifications: NotificationSource | None = None
    exemplars: ExemplarQueryable | None = None
    registry: Registry = field(default_factory=Registry)
    clock: Clock = field(default_factory=SystemClock)
    ready: Callable[[], ReadyStatus] = _always_ready
