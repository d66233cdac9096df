"""Scrape self-metrics under Prometheus's names (prometheus_target_*).

`QuantileSummary` is a summary whose children keep a sliding window of observations and
export the quantiles Prometheus exports (0.01, 0.05, 0.5, 0.9, 0.99).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

from watchkeeper.discovery.provider import SDMetrics
from watchkeeper.instrument.metrics import Counter, Gauge, Registry, Sample, Summary, format_float

QUANTILES = (0.01, 0.05, 0.5, 0.9, 0.99)
"""The quantiles of Prometheus's target summaries."""


class QuantileSummary(Summary):
    """A summary with quantiles over the last `window` observations of each child."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        quantiles: Sequence[float] = QUANTILES,
        window: int = 1024,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self._qs = tuple(quantiles)
        self._window: deque[float] = deque(maxlen=window)

    def _new_child(self) -> Self:
        return type(self)(self.name, self.help, quantiles=self._qs, window=self._window.maxlen or 1)

    def observe(self, value: float) -> None:
        """Records one observation."""
        super().observe(value)
        self._window.append(value)

    def quantile(self, q: float) -> float:
        """The q-quantile of the recent observations (NaN when there are none)."""
        if not self._window:
            return float("nan")
        return float(np.quantile(np.fromiter(self._window, dtype=np.float64), q))

    def _own_samples(self) -> Iterable[Sample]:
        if self._window:
            values = np.quantile(np.fromiter(self._window, dtype=np.float64), self._qs)
        else:
            values = np.full(len(self._qs), np.nan)
        for q, v in zip(self._qs, values, strict=True):
            yield Sample("", ("quantile",), (format_float(q),), float(v))
        yield Sample("_sum", (), (), self.sum)
        yield Sample("_count", (), (), float(self.count))


def go_duration(ms: int) -> str:
    """Formats milliseconds as Go's time.Duration.String() ("15s", "1m0s", "100ms", "1.5s").

    Prometheus labels prometheus_target_interval_length_seconds with this form.

    Example:
        >>> go_duration(60_000), go_duration(1500), go_duration(100)
        ('1m0s', '1.5s', '100ms')
    """
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    out = f"{secs}s"
    if hours:
        return f"{hours}h{minutes}m{out}"
    if minutes:
        return f"{minutes}m{out}"
    return out


@dataclass(slots=True)
class ScrapeMetrics:
    """The scrape manager's self-metrics."""

    pools_total: Counter
    pools_failed: Counter
    pool_reloads: Counter
    pool_reloads_failed: Counter
    pool_targets: Gauge
    pool_syncs: Counter
    sync_length: QuantileSummary
    interval_length: QuantileSummary
    reload_length: QuantileSummary
    exceeded_sample_limit: Counter
    exceeded_body_size_limit: Counter
    exceeded_target_limit: Counter
    exceeded_label_limits: Counter
    sample_out_of_order: Counter
    sample_duplicate: Counter
    sample_out_of_bounds: Counter
    cache_flush_forced: Counter

    @classmethod
    def register(cls, registry: Registry) -> ScrapeMetrics:
        """Registers the metrics on a registry."""

        def summary(name: str, help_text: str, label: str) -> QuantileSummary:
            return registry.register(QuantileSummary(name, help_text, (label,)))

        return cls(
            pools_total=registry.counter(
                "prometheus_target_scrape_pools_total",
                "Total number of scrape pool creation attempts.",
            ),
            pools_failed=registry.counter(
                "prometheus_target_scrape_pools_failed_total",
                "Total number of scrape pool creations that failed.",
            ),
            pool_reloads=registry.counter(
                "prometheus_target_scrape_pool_reloads_total",
                "Total number of scrape pool reloads.",
            ),
            pool_reloads_failed=registry.counter(
                "prometheus_target_scrape_pool_reloads_failed_total",
                "Total number of failed scrape pool reloads.",
            ),
            pool_targets=registry.gauge(
                "prometheus_target_scrape_pool_targets",
                "Current number of targets in this scrape pool.",
                ("scrape_job",),
            ),
            pool_syncs=registry.counter(
                "prometheus_target_scrape_pool_sync_total",
                "Total number of syncs that were executed on a scrape pool.",
                ("scrape_job",),
            ),
            sync_length=summary(
                "prometheus_target_sync_length_seconds",
                "Actual interval to sync the scrape pool.",
                "scrape_job",
            ),
            interval_length=summary(
                "prometheus_target_interval_length_seconds",
                "Actual intervals between scrapes.",
                "interval",
            ),
            reload_length=summary(
                "prometheus_target_reload_length_seconds",
                "Actual interval to reload the scrape pool with a given configuration.",
                "interval",
            ),
            exceeded_sample_limit=registry.counter(
                "prometheus_target_scrapes_exceeded_sample_limit_total",
                "Total number of scrapes that hit the sample limit and were rejected.",
            ),
            exceeded_body_size_limit=registry.counter(
                "prometheus_target_scrapes_exceeded_body_size_limit_total",
                "Total number of scrapes that hit the body size limit",
            ),
            exceeded_target_limit=registry.counter(
                "prometheus_target_scrape_pool_exceeded_target_limit_total",
                "Total number of times scrape pools hit the target limit, during sync or "
                "config reload.",
            ),
            exceeded_label_limits=registry.counter(
                "prometheus_target_scrape_pool_exceeded_label_limits_total",
                "Total number of times scrape pools hit the label limits, during sync or "
                "config reload.",
            ),
            sample_out_of_order=registry.counter(
                "prometheus_target_scrapes_sample_out_of_order_total",
                "Total number of samples rejected due to not being out of the expected order.",
            ),
            sample_duplicate=registry.counter(
                "prometheus_target_scrapes_sample_duplicate_timestamp_total",
                "Total number of samples rejected due to duplicate timestamps but different "
                "values.",
            ),
            sample_out_of_bounds=registry.counter(
                "prometheus_target_scrapes_sample_out_of_bounds_total",
                "Total number of samples rejected due to timestamp falling outside of the time "
                "bounds.",
            ),
            cache_flush_forced=registry.counter(
                "prometheus_target_scrapes_cache_flush_forced_total",
                "How many times a scrape cache was flushed due to getting big while scrapes "
                "are failing.",
            ),
        )


def sd_metrics(registry: Registry) -> SDMetrics:
    """Service discovery metrics on a registry, shared by every discovery manager on it."""

    def counter(name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        existing = registry.get(name)
        if isinstance(existing, Counter):
            return existing
        return registry.counter(name, help_text, labels)

    def gauge(name: str, help_text: str, labels: tuple[str, ...] = ()) -> Gauge:
        existing = registry.get(name)
        if isinstance(existing, Gauge):
            return existing
        return registry.gauge(name, help_text, labels)

    return SDMetrics(
        discovered_targets=gauge(
            "prometheus_sd_discovered_targets",
            "Current number of discovered targets.",
            ("config", "name"),
        ),
        received_updates=counter(
            "prometheus_sd_received_updates_total",
            "Total number of update events received from the SD providers.",
            ("name",),
        ),
        updates=counter(
            "prometheus_sd_updates_total",
            "Total number of update events sent to the SD consumers.",
            ("name",),
        ),
        failed_configs=gauge(
            "prometheus_sd_failed_configs",
            "Current number of service discovery configurations that failed to load.",
            ("name",),
        ),
        file_read_errors=counter(
            "prometheus_sd_file_read_errors_total", "The number of File-SD read errors."
        ),
        http_failures=counter(
            "prometheus_sd_http_failures_total",
            "Number of HTTP service discovery refresh failures.",
        ),
        dns_lookups=counter("prometheus_sd_dns_lookups_total", "The number of DNS-SD lookups."),
        dns_lookup_failures=counter(
            "prometheus_sd_dns_lookup_failures_total", "The number of DNS-SD lookup failures."
        ),
    )
