"""The in-memory storage for tests (it lives in `watchkeeper.storage.memory`)."""

from watchkeeper.storage.memory import MemoryStorage

__all__ = ["MemoryStorage"]
