"""Sending alerts to Alertmanagers: a bounded queue drained in batches to every Alertmanager.

`send` never blocks: it relabels alerts (external labels, alert_relabel_configs), appends
them to the queue and drops the oldest past capacity. A background task posts batches to
every discovered Alertmanager in parallel through API v2 (POST /api/v2/alerts); a batch
that some set of Alertmanagers tried and none of them accepted is counted as dropped, as in
Prometheus (a set with no Alertmanager discovered yet is skipped: the batch is not kept).
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import threading
import time
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from watchkeeper.config.oauth2 import OAuth2TokenSource
from watchkeeper.config.prometheus import AlertingConfig, AlertmanagerConfig
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.relabel import RelabelConfig, relabel
from watchkeeper.notifier.alert import NotifierAlert

log = logging.getLogger(__name__)

USER_AGENT = "Prometheus/3.5.3"
"""Alertmanager sees the same client name as from Prometheus."""


@dataclass(slots=True)
class NotifierOptions:
    """Flags of the notifier (--alertmanager.notification-queue-capacity and friends)."""

    queue_capacity: int = 10_000
    max_batch_size: int = 256
    drain_on_shutdown: bool = True
    retries: int = 2
    retry_backoff_s: float = 0.1


def _relabel(labels: Labels, configs: Sequence[RelabelConfig]) -> Labels | None:
    """Applies relabel configs through the shared relabelling code (None drops)."""
    if not configs:
        return labels
    result = relabel(labels, configs)
    if result is None or len(result) == 0:
        return None
    return result


def _post_path(prefix: str, api_version: str) -> str:
    return posixpath.join("/", prefix, f"api/{api_version}/alerts")


@dataclass(slots=True)
class _Target:
    url: str
    labels: Labels


@dataclass(slots=True)
class AlertmanagerSet:
    """The Alertmanagers of one `alertmanagers` entry, with its HTTP client settings."""

    config: AlertmanagerConfig
    active: list[_Target] = field(default_factory=list)
    dropped: list[_Target] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None
    relabel: list[RelabelConfig] = field(default_factory=list)
    alert_relabel: list[RelabelConfig] = field(default_factory=list)
    oauth2: OAuth2TokenSource | None = None

    def __post_init__(self) -> None:
        self.relabel = list(self.config.relabel_configs)
        self.alert_relabel = list(self.config.alert_relabel_configs)

    def set_groups(self, groups: Sequence[TargetGroup]) -> None:
        """Turns discovered target groups into Alertmanager URLs (relabelled; some dropped)."""
        cfg = self.config
        active: list[_Target] = []
        dropped: list[_Target] = []
        path_label = _post_path(cfg.path_prefix, cfg.api_version)
        for group in groups:
            for target in group.targets:
                merged = {**group.labels, **target}
                merged["__alerts_path__"] = path_label
                merged["__scheme__"] = cfg.scheme
                lbls = Labels(merged.items())
                result = _relabel(lbls, self.relabel)
                if result is None:
                    dropped.append(_Target(self._url(lbls), lbls))
                    continue
                active.append(_Target(self._url(result), result))
        unique: dict[str, _Target] = {}
        for t in active:
            unique.setdefault(t.url, t)
        self.active = list(unique.values())
        self.dropped = dropped

    @staticmethod
    def _url(lbls: Labels) -> str:
        return f"{lbls.get('__scheme__')}://{lbls.get('__address__')}{lbls.get('__alerts_path__')}"

    def open_session(self) -> aiohttp.ClientSession:
        """Creates the HTTP client with the set's auth and TLS settings."""
        cfg = self.config
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        headers.update(cfg.extra_headers())
        # NB: oauth2 tokens expire, so they go on each request (`_post`), not on the session.
        self.oauth2 = OAuth2TokenSource(cfg.oauth2) if cfg.oauth2 is not None else None
        authorization = cfg.authorization_header()
        if authorization is not None:
            headers["Authorization"] = authorization
        connector = aiohttp.TCPConnector(ssl=cfg.ssl_context() if cfg.scheme == "https" else True)
        self.session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=cfg.timeout / 1000),
        )
        return self.session


class NotifierManager:
    """Queues alerts and sends them to the configured Alertmanagers."""

    def __init__(
        self,
        discovery: DiscoveryManager,
        options: NotifierOptions | None = None,
        registry: Registry | None = None,
    ) -> None:
        """Sends to the Alertmanagers that `discovery` finds for each `alerting` entry.

        The discovery manager is the scrape side's kind, created with name="notify"; the
        notifier gives it its SD configs on `apply_config` and follows its updates.
        """
        self.discovery = discovery
        self.options = options or NotifierOptions()
        registry = registry or Registry()
        am = ("alertmanager",)
        self.m_latency = registry.summary(
            "prometheus_notifications_latency_seconds",
            "Latency quantiles for sending alert notifications.",
            am,
            objectives=(0.5, 0.9, 0.99),
        )
        self.m_errors = registry.counter(
            "prometheus_notifications_errors_total",
            "Total number of sent alerts affected by errors.",
            am,
        )
        self.m_sent = registry.counter(
            "prometheus_notifications_sent_total", "Total number of alerts sent.", am
        )
        self.m_dropped = registry.counter(
            "prometheus_notifications_dropped_total",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
        )
        registry.gauge(
            "prometheus_notifications_queue_length",
            "The number of alert notifications in the queue.",
            callback=lambda: float(len(self._queue)),
        )
        registry.gauge(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            callback=lambda: float(self.options.queue_capacity),
        )
        registry.gauge(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            callback=lambda: float(sum(len(s.active) for s in self._sets)),
        )
        self._queue: deque[NotifierAlert] = deque()
        self._lock = threading.Lock()
        self._sets: list[AlertmanagerSet] = []
        self._external_labels: dict[str, str] = {}
        self._relabel_configs: list[RelabelConfig] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._more = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._sd_task: asyncio.Task[None] | None = None

    async def apply_config(
        self, alerting: AlertingConfig | None, external_labels: Mapping[str, str] | None = None
    ) -> None:
        """Replaces the Alertmanager sets and relabelling (on start and reload)."""
        alerting = alerting or AlertingConfig()
        new_sets = [AlertmanagerSet(cfg) for cfg in alerting.alertmanagers]
        old = self._sets
        for s in new_sets:
            s.open_session()
        with self._lock:
            self._external_labels = dict(external_labels or {})
            self._relabel_configs = list(alerting.alert_relabel_configs)
            self._sets = new_sets
        self.discovery.apply_config(self.sd_configs())
        self._take_groups(self.discovery.target_sets())
        for s in old:
            if s.session is not None:
                await s.session.close()

    def sd_configs(self) -> dict[str, AlertmanagerConfig]:
        """The SD configs per Alertmanager set, keyed as Prometheus keys them ("config-0")."""
        return {f"config-{i}": s.config for i, s in enumerate(self._sets)}

    def _take_groups(self, target_sets: Mapping[str, Sequence[TargetGroup]]) -> None:
        for i, aset in enumerate(self._sets):
            groups = target_sets.get(f"config-{i}")
            if groups is not None:
                aset.set_groups(groups)
                for t in aset.active:  # The series exist from discovery on, as in Prometheus.
                    self.m_sent.labels(t.url)
                    self.m_errors.labels(t.url)

    async def _follow_discovery(self) -> None:
        while True:
            self._take_groups(await self.discovery.wait_for_update())

    def alertmanagers(self) -> dict[str, list[dict[str, str]]]:
        """The `data` of /api/v1/alertmanagers."""
        return {
            "activeAlertmanagers": [{"url": t.url} for s in self._sets for t in s.active],
            "droppedAlertmanagers": [{"url": t.url} for s in self._sets for t in s.dropped],
        }

    def _prepare(self, alerts: Sequence[NotifierAlert]) -> list[NotifierAlert]:
        out = []
        for a in alerts:
            lbls = a.labels
            missing = {k: v for k, v in self._external_labels.items() if not lbls.has(k)}
            if missing:
                lbls = lbls.with_mapping(missing)
            relabelled = _relabel(lbls, self._relabel_configs)
            if relabelled is None:
                continue
            out.append(
                NotifierAlert(
                    relabelled, a.annotations, a.starts_at_ms, a.ends_at_ms, a.generator_url
                )
            )
        return out

    def send(self, alerts: Sequence[NotifierAlert]) -> None:
        """Queues alerts for sending; never blocks (safe to call from any thread)."""
        with self._lock:
            prepared = self._prepare(alerts)
            cap = self.options.queue_capacity
            over = len(prepared) - cap
            if over > 0:
                prepared = prepared[over:]
                self.m_dropped.inc(over)
            over = len(self._queue) + len(prepared) - cap
            if over > 0:
                for _ in range(over):
                    self._queue.popleft()
                self.m_dropped.inc(over)
            self._queue.extend(prepared)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._more.set)

    def queue_length(self) -> int:
        """The number of queued alerts."""
        return len(self._queue)

    def _next_batch(self) -> list[NotifierAlert]:
        with self._lock:
            n = min(self.options.max_batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def start(self) -> None:
        """Starts sending, and following discovery, on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._more = asyncio.Event()
        if self._queue:
            self._more.set()
        self._task = self._loop.create_task(self._run(), name="notifier")
        self._sd_task = self._loop.create_task(self._follow_discovery(), name="notifier sd")

    async def _run(self) -> None:
        while True:
            await self._more.wait()
            self._more.clear()
            while self._queue:
                if self._stopping and not self.options.drain_on_shutdown:
                    return
                batch = self._next_batch()
                if not await self.send_all(batch):
                    self.m_dropped.inc(len(batch))
            if self._stopping:
                return

    async def send_all(self, alerts: Sequence[NotifierAlert]) -> bool:
        """Posts alerts to every Alertmanager in parallel; False when a set took none of them.

        As Prometheus 3.5, a set with no Alertmanager yet (discovery has not reported, as on
        start-up) or whose alert relabelling drops every alert is skipped, not failed: the
        batch then counts neither as sent nor as dropped. A set that was tried succeeds when
        any one of its Alertmanagers took the batch.
        """
        if not alerts:
            return True
        jobs: list[Coroutine[Any, Any, bool]] = []
        set_of_job: list[int] = []
        for set_index, s in enumerate(list(self._sets)):
            if not s.active:
                continue
            batch = list(alerts)
            if s.alert_relabel:
                batch = []
                for a in alerts:
                    lbls = _relabel(a.labels, s.alert_relabel)
                    if lbls is not None:
                        batch.append(
                            NotifierAlert(
                                lbls, a.annotations, a.starts_at_ms, a.ends_at_ms, a.generator_url
                            )
                        )
                if not batch:
                    continue
            body = orjson.dumps([a.to_api() for a in batch])
            jobs.extend(self._post(s, t.url, body, len(batch)) for t in s.active)
            set_of_job.extend(set_index for _ in s.active)
        results = await asyncio.gather(*jobs)
        covered = {i for i, ok in zip(set_of_job, results, strict=True) if ok}
        return covered == set(set_of_job)

    async def _post(self, aset: AlertmanagerSet, url: str, body: bytes, count: int) -> bool:
        start = time.perf_counter()
        session = aset.session
        if session is None or session.closed:
            # NB: a reload closed this set's client while the batch was on its way.
            return self._count_attempt(url, count, start, "client closed by a config reload")
        for attempt in range(self.options.retries + 1):
            try:
                headers = {}
                if aset.oauth2 is not None:
                    headers["Authorization"] = await aset.oauth2.authorization_header(
                        user_agent=USER_AGENT
                    )
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status // 100 != 2:
                        raise aiohttp.ClientResponseError(
                            resp.request_info, (), status=resp.status, message="bad response status"
                        )
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt < self.options.retries and not self._stopping:
                    await asyncio.sleep(self.options.retry_backoff_s * 2**attempt)
                    continue
                return self._count_attempt(url, count, start, str(exc))
            else:
                return self._count_attempt(url, count, start, None)
        return False  # pragma: no cover - the loop always returns

    def _count_attempt(self, url: str, count: int, start: float, error: str | None) -> bool:
        """Counts one batch to one Alertmanager; True when it was accepted.

        As Prometheus: sent and latency count every attempt, failed or not, and a failed
        one also counts its alerts as errors.
        """
        if error is not None:
            log.error("sending alerts failed: alertmanager=%s count=%d err=%s", url, count, error)
            self.m_errors.labels(url).inc(count)
        self.m_latency.labels(url).observe(time.perf_counter() - start)
        self.m_sent.labels(url).inc(count)
        return error is None

    async def stop(self) -> None:
        """Stops sending (draining the queue first when drain_on_shutdown) and closes clients."""
        self._stopping = True
        self._more.set()
        if self._sd_task is not None:
            self._sd_task.cancel()
            await asyncio.gather(self._sd_task, return_exceptions=True)
        await self.discovery.stop()
        if self._task is not None:
            await self._task
        for s in self._sets:
            if s.session is not None:
                await s.session.close()
