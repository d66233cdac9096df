"""A scrape pool: the targets of one job, their loops and one shared HTTP session.

`sync` turns the job's current target groups into targets and starts, keeps or stops
loops (stopped ones write end-of-run staleness markers); `reload` swaps in a new config,
keeping each continuing target's staleness state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor

import aiohttp

from watchkeeper.config.prometheus import ScrapeConfig
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.model.clock import Clock
from watchkeeper.scrape.failure_log import ScrapeFailureLog
from watchkeeper.scrape.loop import LoopContext, ScrapeLoop
from watchkeeper.scrape.metrics import ScrapeMetrics, go_duration
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.scrape.scraper import Scraper
from watchkeeper.scrape.target import DroppedTarget, Target, targets_from_groups
from watchkeeper.storage.interface import Appendable

log = logging.getLogger(__name__)


def _new_session(cfg: ScrapeConfig) -> aiohttp.ClientSession:
    ssl_ctx = cfg.ssl_context()
    # NB: idle connections live 5 minutes, as in Prometheus's HTTP client; aiohttp's default
    # of 15 s would drop them just before every scrape at the common 15 s interval.
    connector = aiohttp.TCPConnector(
        limit=0, ssl=ssl_ctx, ttl_dns_cache=300, keepalive_timeout=300.0
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True
    )


class ScrapePool:
    """Scrapes the targets of one scrape config."""

    def __init__(
        self,
        cfg: ScrapeConfig,
        appendable: Appendable,
        metrics: ScrapeMetrics,
        clock: Clock,
        options: ScrapeOptions,
        *,
        executor: Executor | None = None,
    ) -> None:
        self.cfg = cfg
        self._executor = executor
        self._appendable = appendable
        self._metrics = metrics
        self._clock = clock
        self._options = options
        self._session = _new_session(cfg)
        self._failure_log: ScrapeFailureLog | None = None
        self._ctx = self._context(cfg)
        self._loops: dict[int, ScrapeLoop] = {}
        self._dropped: list[DroppedTarget] = []
        self.dropped_count = 0
        self._groups: list[TargetGroup] = []
        self._limit_error = ""
        self._stale_tasks: set[asyncio.Task[None]] = set()
        metrics.pools_total.inc()

    def _context(self, cfg: ScrapeConfig) -> LoopContext:
        return LoopContext(
            cfg=cfg,
            scraper=Scraper(cfg, self._session),
            appendable=self._appendable,
            metrics=self._metrics,
            clock=self._clock,
            options=self._options,
            pool_error=self._pool_error,
            executor=self._executor,
            failure_log=self._failure_log,
        )

    def set_failure_log(self, failure_log: ScrapeFailureLog | None) -> None:
        """Sends this pool's failed scrapes to a (re)opened scrape_failure_log_file."""
        self._failure_log = failure_log
        self._ctx.failure_log = failure_log

    def _pool_error(self) -> str:
        return self._limit_error

    @property
    def name(self) -> str:
        """The job name."""
        return self.cfg.job_name

    def active_targets(self) -> list[Target]:
        """The targets being scraped, in a stable order."""
        return [loop.target for loop in self._loops.values()]

    def loops(self) -> list[ScrapeLoop]:
        """The running loops."""
        return list(self._loops.values())

    def dropped_targets(self) -> list[DroppedTarget]:
        """Targets dropped by relabelling (at most keep_dropped_targets when set)."""
        return list(self._dropped)

    async def sync(
        self, groups: Sequence[TargetGroup], *, carry: dict[int, ScrapeLoop] | None = None
    ) -> None:
        """Makes the running loops match the targets of `groups`.

        `carry` holds stopped loops of a reload whose staleness state new loops continue.
        """
        start = time.perf_counter()
        self._groups = list(groups)
        active, dropped, failures = targets_from_groups(self.cfg, groups)
        for f in failures:
            log.error("Creating target failed for job %s: %s", self.name, f)
        self._metrics.sync_failed.labels(self.name).inc(len(failures))
        limit = self.cfg.keep_dropped_targets
        self.dropped_count = len(dropped)
        self._dropped = dropped[:limit] if limit else dropped
        wanted: dict[int, Target] = {}
        for t in active:
            wanted.setdefault(t.hash(), t)
        gone = [h for h in self._loops if h not in wanted]
        for h, t in wanted.items():
            loop = self._loops.get(h)
            if loop is None:
                loop = ScrapeLoop(t, self._ctx)
                old = carry.pop(h, None) if carry is not None else None
                if old is not None:
                    loop.take_state(old)
                self._loops[h] = loop
                loop.start()
            else:
                # NB: keep the running target but show the latest discovered labels.
                loop.target.discovered = t.discovered
        for h in gone:
            await self._stop_loop(self._loops.pop(h), stale=True)
        tl = self.cfg.target_limit
        self._metrics.pool_target_limit.labels(self.name).set(tl)
        if tl and len(self._loops) > tl:
            self._limit_error = (
                f"target_limit exceeded (number of targets: {len(self._loops)}, limit: {tl})"
            )
            self._metrics.exceeded_target_limit.inc()
        else:
            self._limit_error = ""
        self._metrics.pool_targets.labels(self.name).set(len(self._loops))
        self._metrics.pool_syncs.labels(self.name).inc()
        self._metrics.sync_length.labels(self.name).observe(time.perf_counter() - start)

    async def _stop_loop(self, loop: ScrapeLoop, *, stale: bool) -> None:
        await loop.stop()
        if stale and self._options.end_of_run_staleness:
            task = asyncio.get_running_loop().create_task(loop.end_of_run_staleness())
            self._stale_tasks.add(task)
            task.add_done_callback(self._stale_tasks.discard)

    async def reload(self, cfg: ScrapeConfig) -> None:
        """Applies a changed config: new session and loops, staleness state carried over."""
        start = time.perf_counter()
        self._metrics.pool_reloads.inc()
        old_loops = self._loops
        old_session = self._session
        self.cfg = cfg
        self._session = _new_session(cfg)
        self._ctx = self._context(cfg)
        self._loops = {}
        for loop in old_loops.values():
            await loop.stop()
        await self.sync(self._groups, carry=old_loops)
        for old in old_loops.values():
            if self._options.end_of_run_staleness:
                task = asyncio.get_running_loop().create_task(old.end_of_run_staleness())
                self._stale_tasks.add(task)
                task.add_done_callback(self._stale_tasks.discard)
        await old_session.close()
        self._metrics.reload_length.labels(go_duration(cfg.scrape_interval)).observe(
            time.perf_counter() - start
        )

    async def stop(self, *, stale: bool = False) -> None:
        """Stops every loop (writing staleness markers when `stale`) and closes the session."""
        loops = list(self._loops.values())
        self._loops = {}
        for loop in loops:
            await self._stop_loop(loop, stale=stale)
        if not stale:
            await self.cancel_staleness()
        self._metrics.forget_pool(self.name)
        await self._session.close()

    async def wait_staleness(self) -> None:
        """Waits for pending end-of-run staleness markers (tests and shutdown)."""
        while self._stale_tasks:
            await asyncio.gather(*list(self._stale_tasks), return_exceptions=True)

    async def cancel_staleness(self) -> None:
        """Cancels pending end-of-run staleness markers (shutdown: Prometheus skips them)."""
        tasks = list(self._stale_tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
