"""The query engine's self-metrics, under Prometheus's names (prometheus_engine_*)."""

from __future__ import annotations

from watchkeeper.instrument.metrics import Registry
from watchkeeper.promql.value import QueryStats

QUERY_DURATION_QUANTILES = (0.5, 0.9, 0.99)
"""The quantiles Prometheus exports for each slice of query time."""


class EngineMetrics:
    """Registers and holds every prometheus_engine_* metric of one engine."""

    def __init__(self, registry: Registry, max_concurrency: int) -> None:
        self.queries = registry.gauge(
            "prometheus_engine_queries",
            "The current number of queries being executed or waiting.",
        )
        registry.gauge(
            "prometheus_engine_queries_concurrent_max", "The max number of concurrent queries."
        ).set(max_concurrency)
        self.query_log_enabled = registry.gauge(
            "prometheus_engine_query_log_enabled", "State of the query log."
        )
        self.query_log_failures = registry.counter(
            "prometheus_engine_query_log_failures_total", "The number of query log failures."
        )
        self.samples = registry.counter(
            "prometheus_engine_query_samples_total",
            "The total number of samples loaded by all queries.",
        )
        duration = registry.summary(
            "prometheus_engine_query_duration_seconds",
            "Query timings",
            ("slice",),
            objectives=QUERY_DURATION_QUANTILES,
        )
        self.inner_eval = duration.labels("inner_eval")
        self.prepare_time = duration.labels("prepare_time")
        self.queue_time = duration.labels("queue_time")
        self.result_sort = duration.labels("result_sort")

    def observe(self, stats: QueryStats) -> None:
        """Records a finished query's queue and evaluation times and the samples it loaded."""
        self.queue_time.observe(stats.exec_queue_time_s)
        self.inner_eval.observe(stats.inner_eval_time_s)
        if stats.result_sort_time_s:  # Only range results are sorted (and timed), as Prometheus.
            self.result_sort.observe(stats.result_sort_time_s)
        self.samples.inc(stats.total_queryable_samples)
