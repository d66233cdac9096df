"""Scrape self-metrics under Prometheus's names (prometheus_target_*).

`QuantileSummary` is a summary exporting the quantiles Prometheus's target summaries export
(0.01, 0.05, 0.5, 0.9, 0.99) over a 10-minute sliding window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from watchkeeper.discovery.provider import SDMetrics
from watchkeeper.instrument.metrics import (
    DEFAULT_AGE_BUCKETS,
    DEFAULT_MAX_AGE_S,
    Counter,
    Gauge,
    Registry,
    Summary,
)
from watchkeeper.scrape.target import Target

QUANTILES = (0.01, 0.05, 0.5, 0.9, 0.99)
"""The quantiles of Prometheus's target summaries."""


class QuantileSummary(Summary):
    """A summary exporting Prometheus's target quantiles over client_golang's 10-minute window."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        quantiles: Callable[[], dict[float, float]] | None = None,
        objectives: Sequence[float] = QUANTILES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        age_buckets: int = DEFAULT_AGE_BUCKETS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            name,
            help_text,
            label_names,
            quantiles=quantiles,
            objectives=objectives,
            max_age_s=max_age_s,
            age_buckets=age_buckets,
            now=now,
        )


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
    sync_failed: Counter
    pool_target_limit: Gauge

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
            sync_failed=registry.counter(
                "prometheus_target_sync_failed_total",
                "Total number of target sync failures.",
                ("scrape_job",),
            ),
            pool_target_limit=registry.gauge(
                "prometheus_target_scrape_pool_target_limit",
                "Maximum number of targets allowed in this scrape pool.",
                ("scrape_job",),
            ),
        )

    def forget_pool(self, job: str) -> None:
        """Drops the per-pool series of a stopped scrape pool."""
        for metric in (self.pool_targets, self.sync_failed, self.pool_target_limit):
            metric.remove(job)


def register_metadata_cache_metrics(
    registry: Registry, targets_by_job: Callable[[], Mapping[str, Iterable[Target]]]
) -> None:
    """Exports the size of the metadata kept from scrapes, per scrape pool, at render time.

    Bytes count as Prometheus counts them: the metric name, type, help and unit of each entry.
    """

    def collect() -> list[Gauge]:
        entries = Gauge(
            "prometheus_target_metadata_cache_entries",
            "Total number of metric metadata entries in the cache",
            ("scrape_job",),
        )
        size = Gauge(
            "prometheus_target_metadata_cache_bytes",
            "The number of bytes that are currently used for storing metric metadata in the cache",
            ("scrape_job",),
        )
        for job, targets in targets_by_job().items():
            count = total = 0
            for target in targets:
                count += len(target.metadata)
                total += sum(
                    len(name) + len(md.type) + len(md.help) + len(md.unit)
                    for name, md in target.metadata.items()
                )
            entries.labels(job).set(count)
            size.labels(job).set(total)
        return [entries, size]

    registry.add_collector(collect)


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

    scan = registry.get("prometheus_sd_file_scan_duration_seconds")
    file_scan_duration = (
        scan
        if isinstance(scan, Summary)
        else registry.summary(
            "prometheus_sd_file_scan_duration_seconds",
            "The duration of the File-SD scan in seconds.",
            objectives=(0.5, 0.9, 0.99),
        )
    )
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
        updates_delayed=counter(
            "prometheus_sd_updates_delayed_total",
            "Total number of update events that couldn't be sent immediately.",
            ("name",),
        ),
        file_mtime=gauge(
            "prometheus_sd_file_mtime_seconds",
            "Timestamp (mtime) of files read by FileSD. Timestamp is set at read time.",
            ("filename",),
        ),
        file_scan_duration=file_scan_duration,
    )
