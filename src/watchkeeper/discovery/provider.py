"""The provider contract and the service discovery self-metrics.

A provider is an asyncio task that sends its complete current list of target groups
whenever it changes (a full state, not a delta); the manager keys it by (job, provider).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from watchkeeper.discovery.targetgroup import TargetGroup

SendGroups = Callable[[list[TargetGroup]], None]
"""How a provider reports its current target groups."""


class StaticConfigLike(Protocol):
    """A static_configs entry (watchkeeper.config.sd.StaticConfig fits)."""

    @property
    def targets(self) -> Sequence[str]:
        """host:port strings."""
        ...

    @property
    def labels(self) -> dict[str, str]:
        """Labels common to the targets."""
        ...


class FileSDConfigLike(Protocol):
    """A file_sd_configs entry (watchkeeper.config.sd.FileSDConfig fits)."""

    @property
    def files(self) -> Sequence[str]:
        """Paths, with globs in the last element."""
        ...

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between full re-reads."""
        ...


class RequestAuthorizerLike(Protocol):
    """Adds credentials to requests (watchkeeper.config.oauth2.RequestAuthorizer fits)."""

    async def authorization_header(self, *, user_agent: str = "") -> str | None:
        """The Authorization header value, if any.

        Raises:
            OSError: when a credentials file cannot be read.
            aiohttp.ClientError: when an OAuth 2.0 token cannot be had.
        """
        ...


class HTTPSDConfigLike(Protocol):
    """An http_sd_configs entry (watchkeeper.config.sd.HTTPSDConfig fits)."""

    @property
    def url(self) -> str:
        """The URL that returns the groups."""
        ...

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between refreshes."""
        ...

    @property
    def follow_redirects(self) -> bool:
        """Whether to follow redirects."""
        ...

    @property
    def proxy_url(self) -> str:
        """An HTTP proxy, or ""."""
        ...

    def new_authorizer(self) -> RequestAuthorizerLike:
        """An authorizer that gives each request its Authorization header (oauth2 included)."""
        ...

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context."""
        ...

    def extra_headers(self) -> dict[str, str]:
        """Custom request headers."""
        ...


class DNSSDConfigLike(Protocol):
    """A dns_sd_configs entry (watchkeeper.config.sd.DNSSDConfig fits)."""

    @property
    def names(self) -> Sequence[str]:
        """The names to resolve."""
        ...

    @property
    def refresh_interval(self) -> int:
        """Milliseconds between lookups."""
        ...

    @property
    def type(self) -> str:
        """SRV, A, AAAA, MX or NS."""
        ...

    @property
    def port(self) -> int:
        """The port for A, AAAA, MX and NS targets."""
        ...


class SDConfigs(Protocol):
    """The SD configs of one job (a scrape config or an Alertmanager config fits)."""

    @property
    def static_configs(self) -> Sequence[StaticConfigLike]:
        """Static groups."""
        ...

    @property
    def file_sd_configs(self) -> Sequence[FileSDConfigLike]:
        """File SD configs."""
        ...

    @property
    def http_sd_configs(self) -> Sequence[HTTPSDConfigLike]:
        """HTTP SD configs."""
        ...

    @property
    def dns_sd_configs(self) -> Sequence[DNSSDConfigLike]:
        """DNS SD configs."""
        ...


class Provider(Protocol):
    """A running source of target groups."""

    async def run(self, send: SendGroups) -> None:
        """Sends groups until cancelled (static providers send once and return)."""
        ...


class CounterLike(Protocol):
    """A counter (watchkeeper.instrument.metrics.Counter fits)."""

    def inc(self, amount: float = 1.0) -> None:
        """Adds to the counter."""
        ...


class LabelledCounter(CounterLike, Protocol):
    """A counter with label children."""

    def labels(self, *values: str) -> CounterLike:
        """The child for these label values."""
        ...


class GaugeLike(Protocol):
    """A gauge (watchkeeper.instrument.metrics.Gauge fits)."""

    def set(self, value: float) -> None:
        """Sets the gauge."""
        ...

    def inc(self, amount: float = 1.0) -> None:
        """Adds to the gauge."""
        ...


class LabelledGauge(GaugeLike, Protocol):
    """A gauge with label children."""

    def labels(self, *values: str) -> GaugeLike:
        """The child for these label values."""
        ...

    def remove(self, *values: str) -> None:
        """Forgets a child."""
        ...


class SummaryLike(Protocol):
    """A summary (watchkeeper.instrument.metrics.Summary fits)."""

    def observe(self, value: float) -> None:
        """Records one observation."""
        ...


@dataclass(slots=True)
class SDMetrics:
    """Service discovery self-metrics under Prometheus's names.

    `watchkeeper.scrape.metrics.sd_metrics` builds them on a Registry (discovery itself may
    not import instrument).
    """

    discovered_targets: LabelledGauge
    received_updates: LabelledCounter
    updates: LabelledCounter
    failed_configs: LabelledGauge
    file_read_errors: CounterLike
    http_failures: CounterLike
    dns_lookups: CounterLike
    dns_lookup_failures: CounterLike
    updates_delayed: LabelledCounter
    """Stays 0: Prometheus counts updates its receiver was too busy to take, but here the
    receiver pulls them (`wait_for_update`), so an update is never offered to a busy one."""
    file_mtime: LabelledGauge
    file_scan_duration: SummaryLike

    def init_manager(self, name: str) -> None:
        """Creates a discovery manager's per-name series at zero, as Prometheus does."""
        for counter in (self.received_updates, self.updates, self.updates_delayed):
            counter.labels(name)
        self.failed_configs.labels(name)
