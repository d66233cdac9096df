"""The time-series database: head, WAL, blocks, compaction and retention."""
