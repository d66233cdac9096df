"""A clock that moves only when a test says so."""

from __future__ import annotations


class ManualClock:
    """A `watchkeeper.model.clock.Clock` that starts at a given time and moves on demand."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        """The current manual time in milliseconds."""
        return self._now_ms

    def advance(self, delta_ms: int) -> None:
        """Moves the clock forward."""
        self._now_ms += delta_ms

    def set(self, now_ms: int) -> None:
        """Sets the clock to an absolute time."""
        self._now_ms = now_ms
