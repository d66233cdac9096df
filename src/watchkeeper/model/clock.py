"""Clocks: the one place that reads wall time, so tests can control it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Tells the current time."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK = SystemClock()
"""The shared wall clock."""
