# ruff: noqa: E501 - help texts are kept verbatim from Prometheus, one per line.
"""The TSDB's self-metrics, under Prometheus's names and types.

One `TsdbMetrics` is built per open TSDB on the registry it is given; the head, the WAL
and the database update its fields directly.
"""

from __future__ import annotations

from collections.abc import Callable

from watchkeeper.instrument.metrics import Counter, Gauge, Histogram, Registry, Summary

SAMPLE_TYPE_FLOAT = "float"
"""The `type` label value Prometheus uses for float samples."""


class TsdbMetrics:
    """Every metric the head, WAL and database export."""

    def __init__(self, registry: Registry | None = None) -> None:
        r = registry if registry is not None else Registry()
        self.registry = r
        # Head.
        self.head_series = r.gauge(
            "prometheus_tsdb_head_series", "Total number of series in the head block."
        )
        self.head_series_created = r.counter(
            "prometheus_tsdb_head_series_created_total",
            "Total number of series created in the head",
        )
        self.head_series_removed = r.counter(
            "prometheus_tsdb_head_series_removed_total",
            "Total number of series removed in the head",
        )
        self.head_series_not_found = r.counter(
            "prometheus_tsdb_head_series_not_found_total",
            "Total number of requests for series that were not found.",
        )
        self.head_chunks = r.gauge(
            "prometheus_tsdb_head_chunks", "Total number of chunks in the head block."
        )
        self.samples_appended = r.counter(
            "prometheus_tsdb_head_samples_appended_total",
            "Total number of appended samples.",
            ["type"],
        )
        self.ooo_samples_appended = r.counter(
            "prometheus_tsdb_head_out_of_order_samples_appended_total",
            "Total number of appended out of order samples.",
            ["type"],
        )
        self.out_of_bound_samples = r.counter(
            "prometheus_tsdb_out_of_bound_samples_total",
            "Total number of out of bound samples ingestion failed attempts with out of order support disabled.",
            ["type"],
        )
        self.out_of_order_samples = r.counter(
            "prometheus_tsdb_out_of_order_samples_total",
            "Total number of out of order samples ingestion failed attempts due to out of order being disabled.",
            ["type"],
        )
        self.too_old_samples = r.counter(
            "prometheus_tsdb_too_old_samples_total",
            "Total number of out of order samples ingestion failed attempts with out of support enabled, but sample outside of time window.",
            ["type"],
        )
        self.head_min_time = r.gauge(
            "prometheus_tsdb_head_min_time",
            "Minimum time bound of the head block. The unit is decided by the library consumer.",
        )
        self.head_max_time = r.gauge(
            "prometheus_tsdb_head_max_time",
            "Maximum timestamp of the head block. The unit is decided by the library consumer.",
        )
        self.head_min_time_seconds = r.gauge(
            "prometheus_tsdb_head_min_time_seconds", "Minimum time bound of the head block."
        )
        self.head_max_time_seconds = r.gauge(
            "prometheus_tsdb_head_max_time_seconds", "Maximum timestamp of the head block."
        )
        self.head_truncations = r.counter(
            "prometheus_tsdb_head_truncations_total", "Total number of head truncations attempted."
        )
        self.head_truncations_failed = r.counter(
            "prometheus_tsdb_head_truncations_failed_total",
            "Total number of head truncations that failed.",
        )
        self.head_gc_duration = r.summary(
            "prometheus_tsdb_head_gc_duration_seconds",
            "Runtime of garbage collection in the head block.",
        )
        self.head_active_appenders = r.gauge(
            "prometheus_tsdb_head_active_appenders",
            "Number of currently active appender transactions",
        )
        self.data_replay_duration = r.gauge(
            "prometheus_tsdb_data_replay_duration_seconds", "Time taken to replay the data on disk."
        )
        # WAL.
        self.wal_corruptions = r.counter(
            "prometheus_tsdb_wal_corruptions_total", "Total number of WAL corruptions."
        )
        self.wal_truncations = r.counter(
            "prometheus_tsdb_wal_truncations_total",
            "Total number of write log truncations attempted.",
        )
        self.wal_truncations_failed = r.counter(
            "prometheus_tsdb_wal_truncations_failed_total",
            "Total number of write log truncations that failed.",
        )
        self.checkpoint_creations = r.counter(
            "prometheus_tsdb_checkpoint_creations_total",
            "Total number of checkpoint creations attempted.",
        )
        self.checkpoint_creations_failed = r.counter(
            "prometheus_tsdb_checkpoint_creations_failed_total",
            "Total number of checkpoint creations that failed.",
        )
        self.checkpoint_deletions = r.counter(
            "prometheus_tsdb_checkpoint_deletions_total",
            "Total number of checkpoint deletions attempted.",
        )
        self.wal_fsync_duration = r.summary(
            "prometheus_tsdb_wal_fsync_duration_seconds",
            "Duration of write log fsync.",
            objectives=(0.5, 0.9, 0.99),
        )
        self.wal_writes_failed = r.counter(
            "prometheus_tsdb_wal_writes_failed_total",
            "Total number of write log writes that failed.",
        )
        self.wal_segment_current = r.gauge(
            "prometheus_tsdb_wal_segment_current",
            "Write log segment index that TSDB is currently writing to.",
        )
        self.wal_storage_size = r.gauge(
            "prometheus_tsdb_wal_storage_size_bytes", "Size of the write log directory."
        )
        # Database.
        self.compactions = r.counter(
            "prometheus_tsdb_compactions_total",
            "Total number of compactions that were executed for the partition.",
        )
        self.compactions_failed = r.counter(
            "prometheus_tsdb_compactions_failed_total",
            "Total number of compactions that failed for the partition.",
        )
        self.compactions_triggered = r.counter(
            "prometheus_tsdb_compactions_triggered_total",
            "Total number of triggered compactions for the partition.",
        )
        self.compaction_duration = r.histogram(
            "prometheus_tsdb_compaction_duration_seconds",
            "Duration of compaction runs",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192),
        )
        self.compactions_skipped = r.counter(
            "prometheus_tsdb_compactions_skipped_total",
            "Total number of skipped compactions due to disabled auto compaction.",
        )
        self.blocks_loaded = r.gauge(
            "prometheus_tsdb_blocks_loaded", "Number of currently loaded data blocks"
        )
        self.storage_blocks_bytes = r.gauge(
            "prometheus_tsdb_storage_blocks_bytes",
            "The number of bytes that are currently used for local storage by all blocks.",
        )
        self.retention_limit_bytes = r.gauge(
            "prometheus_tsdb_retention_limit_bytes",
            "Max number of bytes to be retained in the tsdb blocks, configured 0 means disabled",
        )
        self.retention_limit_seconds = r.gauge(
            "prometheus_tsdb_retention_limit_seconds", "How long to retain samples in storage."
        )
        self.time_retentions = r.counter(
            "prometheus_tsdb_time_retentions_total",
            "The number of times that blocks were deleted because the maximum time limit was exceeded.",
        )
        self.size_retentions = r.counter(
            "prometheus_tsdb_size_retentions_total",
            "The number of times that blocks were deleted because the maximum number of bytes was exceeded.",
        )
        self.reloads = r.counter(
            "prometheus_tsdb_reloads_total",
            "Number of times the database reloaded block data from disk.",
        )
        self.reloads_failed = r.counter(
            "prometheus_tsdb_reloads_failures_total",
            "Number of times the database failed to reloadBlocks block data from disk.",
        )
        self.tombstone_cleanup = r.histogram(
            "prometheus_tsdb_tombstone_cleanup_seconds",
            "The time taken to recompact blocks to remove tombstones.",
        )
        self.symbol_table_size = r.gauge(
            "prometheus_tsdb_symbol_table_size_bytes",
            "Size of symbol table in memory for loaded blocks",
        )

    def lowest_timestamp_gauges(self, lowest_ms: Callable[[], float]) -> tuple[Gauge, Gauge]:
        """Registers the lowest-timestamp gauges, read from the database when exported."""
        g1 = self.registry.gauge(
            "prometheus_tsdb_lowest_timestamp",
            "Lowest timestamp value stored in the database. The unit is decided by the library consumer.",
            callback=lowest_ms,
        )
        g2 = self.registry.gauge(
            "prometheus_tsdb_lowest_timestamp_seconds",
            "Lowest timestamp value stored in the database.",
            callback=lambda: lowest_ms() / 1000.0,
        )
        return g1, g2


__all__ = ["SAMPLE_TYPE_FLOAT", "Counter", "Gauge", "Histogram", "Summary", "TsdbMetrics"]
