"""Runs a long-lived server's coroutine on the fastest event loop available.

uvloop (libuv) roughly halves asyncio's own cost per HTTP request, which is a large part
of a small query's time; where it is not installed the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_server(main: Coroutine[Any, Any, T]) -> T:
    """Runs `main` to completion (as `asyncio.run`) on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)
