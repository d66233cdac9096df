"""TsdbOptions: the TSDB's settings, mirroring Prometheus's `--storage.tsdb.*` flags.

Only `cli/` builds these from flags; everything is in milliseconds or bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

DEFAULT_RETENTION_MS = 15 * DAY_MS
DEFAULT_MIN_BLOCK_DURATION_MS = 2 * HOUR_MS
DEFAULT_WAL_SEGMENT_SIZE_BYTES = 128 * 1024 * 1024
MAX_BLOCK_DURATION_CAP_MS = 31 * DAY_MS


@dataclass(frozen=True, slots=True)
class TsdbOptions:
    """How the TSDB keeps, cuts and compacts data.

    Attributes:
        retention_ms: Blocks older than this (relative to the newest block) are deleted
            (`--storage.tsdb.retention.time`); 0 turns time retention off.
        retention_bytes: Oldest blocks are deleted while blocks, WAL and head exceed this
            (`--storage.tsdb.retention.size`); 0 turns size retention off.
        min_block_duration_ms: The head block range (`--storage.tsdb.min-block-duration`).
        max_block_duration_ms: The largest compacted block; None means 10% of the time
            retention, capped at 31 days (`--storage.tsdb.max-block-duration`).
        out_of_order_time_window_ms: How far behind the newest sample an out-of-order sample
            may be and still be accepted (`out_of_order_time_window`); 0 rejects them.
        wal_segment_size_bytes: The size at which WAL segments are cut.
        wal_compression: Compress sample records with snappy (`--storage.tsdb.wal-compression`).
        wal_fsync_interval_ms: Commits share one fsync at most this often (group commit);
            0 fsyncs on every commit. Every commit is written to the OS before it returns, so
            a killed process loses nothing either way.
        head_segment_samples: Samples kept uncompressed in the head's open segment before
            it is sorted and compressed into pages.
        no_lockfile: Do not take the `lock` file in the data directory.
    """

    retention_ms: int = DEFAULT_RETENTION_MS
    retention_bytes: int = 0
    min_block_duration_ms: int = DEFAULT_MIN_BLOCK_DURATION_MS
    max_block_duration_ms: int | None = None
    out_of_order_time_window_ms: int = 0
    wal_segment_size_bytes: int = DEFAULT_WAL_SEGMENT_SIZE_BYTES
    wal_compression: bool = True
    wal_fsync_interval_ms: int = 1000
    head_segment_samples: int = 1 << 20
    no_lockfile: bool = False

    def __post_init__(self) -> None:
        checks = {
            "retention_ms": self.retention_ms >= 0,
            "retention_bytes": self.retention_bytes >= 0,
            "min_block_duration_ms": self.min_block_duration_ms > 0,
            "out_of_order_time_window_ms": self.out_of_order_time_window_ms >= 0,
            "wal_segment_size_bytes": self.wal_segment_size_bytes >= 64 * 1024,
            "wal_fsync_interval_ms": self.wal_fsync_interval_ms >= 0,
            "head_segment_samples": self.head_segment_samples >= 1024,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid TSDB option {name}={getattr(self, name)!r}")
        if self.max_block_duration_ms is not None and (
            self.max_block_duration_ms < self.min_block_duration_ms
        ):
            raise ValueError(
                "invalid TSDB option max_block_duration_ms: smaller than min_block_duration_ms"
            )

    @property
    def effective_max_block_duration_ms(self) -> int:
        """The largest block compaction may build, as Prometheus derives it."""
        if self.max_block_duration_ms is not None:
            return self.max_block_duration_ms
        retention = self.retention_ms or DEFAULT_RETENTION_MS
        return max(self.min_block_duration_ms, min(retention // 10, MAX_BLOCK_DURATION_CAP_MS))
