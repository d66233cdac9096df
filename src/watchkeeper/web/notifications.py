"""Server notifications and their live subscribers, as Prometheus's util/notifications.

/api/v1/notifications lists them and /api/v1/notifications/live streams them. The server
raises a notification by text (`add`) and clears it (`delete`); every change is offered to
each live feed without blocking: a feed whose buffer is full drops it, as Prometheus drops
it for a slow subscriber. Safe to call from any thread; a feed is read on the event loop
that opened it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Final

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.timefmt import format_rfc3339_ns
from watchkeeper.web.api.v1.deps import Notification

CONFIGURATION_UNSUCCESSFUL: Final = "Configuration reload has failed."
"""Raised while the last configuration reload failed; cleared by the next good one."""
STARTING_UP: Final = "Prometheus is starting and replaying the write-ahead log (WAL)."
"""Raised from start-up until the server is ready."""
SHUTTING_DOWN: Final = "Prometheus is shutting down and gracefully stopping all operations."
"""Raised when the server starts to shut down."""

DEFAULT_MAX_SUBSCRIBERS: Final = 16
"""Prometheus's --web.max-notifications-subscribers default."""
FEED_BUFFER: Final = 10
"""Notifications a feed holds before it drops newer ones (Prometheus's channel size)."""


class NotificationHub:
    """The server's current notifications and their live subscribers."""

    def __init__(
        self,
        *,
        max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS,
        registry: Registry | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        """Creates an empty hub; its metrics are registered in `registry` when given."""
        self._max_subscribers = max_subscribers
        self._now_ns = now_ns
        self._lock = threading.Lock()
        self._items: list[Notification] = []
        self._feeds: set[LiveFeed] = set()
        reg = registry if registry is not None else Registry()
        self._subscribers = reg.gauge(
            "prometheus_api_notification_active_subscribers",
            "The current number of active notification subscribers.",
        )
        self._sent = reg.counter(
            "prometheus_api_notification_updates_sent_total",
            "Total number of notification updates sent.",
        )
        self._dropped = reg.counter(
            "prometheus_api_notification_updates_dropped_total",
            "Total number of notification updates dropped.",
        )

    def notifications(self) -> list[Notification]:
        """Returns a copy of the current notifications, oldest first."""
        with self._lock:
            return list(self._items)

    def add(self, text: str) -> None:
        """Raises a notification, or refreshes its date when it is already raised."""
        with self._lock:
            date = format_rfc3339_ns(self._now_ns())
            for i, item in enumerate(self._items):
                if item.text == text:
                    self._items[i] = dataclasses.replace(item, date=date)
                    self._publish(self._items[i])
                    return
            item = Notification(text, date, active=True)
            self._items.append(item)
            self._publish(item)

    def delete(self, text: str) -> None:
        """Clears a notification; live feeds receive it once more with `active` False."""
        with self._lock:
            for i, item in enumerate(self._items):
                if item.text == text:
                    self._publish(dataclasses.replace(item, active=False))
                    del self._items[i]
                    return

    def subscribe(self) -> LiveFeed | None:
        """Opens a feed on the running loop holding the current notifications.

        Returns None when `max_subscribers` feeds are already open.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if len(self._feeds) >= self._max_subscribers:
                return None
            feed = LiveFeed(self, loop)
            self._feeds.add(feed)
            self._subscribers.set(len(self._feeds))
            for item in self._items:
                feed.offer(item)
            return feed

    def _publish(self, item: Notification) -> None:
        for feed in self._feeds:
            self._sent.inc()
            feed.offer(item)

    def _unsubscribe(self, feed: LiveFeed) -> None:
        with self._lock:
            self._feeds.discard(feed)
            self._subscribers.set(len(self._feeds))

    def _count_dropped(self) -> None:
        self._dropped.inc()


class LiveFeed:
    """One subscriber's buffer of notifications (a NotificationFeed)."""

    def __init__(self, hub: NotificationHub, loop: asyncio.AbstractEventLoop) -> None:
        """Binds the feed to the loop its reader runs on."""
        self._hub = hub
        self._loop = loop
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=FEED_BUFFER)

    def offer(self, item: Notification) -> None:
        """Queues a notification from any thread; dropped when the buffer is full."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._put(item)
            return
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:  # the reader's loop is closed: nobody is listening any more
            self._hub._count_dropped()

    def _put(self, item: Notification) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._hub._count_dropped()

    async def get(self) -> Notification:
        """Waits for the next notification."""
        return await self._queue.get()

    def get_nowait(self) -> Notification | None:
        """Returns a notification already waiting, or None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        """Unsubscribes from the hub."""
        self._hub._unsubscribe(self)
