"""The one error the chunk, index and tombstone readers raise for damaged bytes."""

from __future__ import annotations

from watchkeeper.storage.interface import StorageError


class CorruptionError(StorageError):
    """Raised when on-disk TSDB data (a chunk page, an index, tombstones, meta) is damaged.

    The message names the file and what is wrong; readers raise nothing else for bad bytes.
    """
