"""The scrape loop of one target: scrape on a fixed phase, parse, relabel, append, report.

Each scrape is one batch: the body is parsed whole, each series text is looked up in a
per-target cache (text -> series ref, or dropped), and only cache misses are parsed into
labels, relabelled, limit-checked and given refs. Samples, staleness markers for series that
disappeared, and the synthetic `up`/`scrape_*` series go through one appender and commit
together. A failed scrape stores no samples, marks the previous series stale and reports
up=0 with the reason as the target's last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from itertools import repeat
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.config.prometheus import ScrapeConfig
from watchkeeper.model.clock import Clock
from watchkeeper.model.exposition import (
    NO_TIMESTAMP,
    ExpositionParseError,
    ExpositionParser,
    ParsedExposition,
    parse_series_text,
)
from watchkeeper.model.exposition.series import simple_series_pairs
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.scrape.failure_log import ScrapeFailureLog
from watchkeeper.scrape.metrics import ScrapeMetrics, go_duration
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.scrape.scraper import BodySizeLimitError, ScrapeError, Scraper, ScrapeResponse
from watchkeeper.scrape.target import Target, TargetHealth, relabel
from watchkeeper.storage.interface import Appendable, Appender, AppendResult

log = logging.getLogger(__name__)

_MISS: Final = -1
_DROPPED: Final = -2
_EMPTY_REFS: Final = np.empty(0, dtype=np.int64)

REPORT_METRICS: Final = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)
"""The synthetic series written for every scrape."""

EXTRA_REPORT_METRICS: Final = (
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
)
"""The synthetic series written with `extra_scrape_metrics`."""


class LimitError(ScrapeError):
    """Raised when a scrape breaks sample_limit or a label limit."""


class SampleLimitError(LimitError):
    """Raised when a scrape has more samples after relabelling than sample_limit."""


@dataclass(slots=True)
class ScrapeStats:
    """What one scrape produced, for the report series."""

    scraped: int = 0
    post_relabel: int = 0
    series_added: int = 0
    body_bytes: int = 0


@dataclass(slots=True)
class LoopContext:
    """What a loop shares with its pool (replaced as a whole on reload)."""

    cfg: ScrapeConfig
    scraper: Scraper
    appendable: Appendable
    metrics: ScrapeMetrics
    clock: Clock
    options: ScrapeOptions
    pool_error: Callable[[], str]
    executor: Executor | None = None
    failure_log: ScrapeFailureLog | None = None


def mutate_sample_labels(lset: Labels, target: Labels, *, honor: bool) -> Labels:
    """Adds target labels to scraped labels, as Prometheus's mutateSampleLabels does.

    With honor_labels the scraped value wins; otherwise the target's wins and the scraped
    value moves to exported_<name> (exported_exported_<name> if that is taken too).
    """
    if not len(target):
        return lset
    return _mutate_pairs(lset.pairs, target, honor=honor)


def _mutate_pairs(scraped: tuple[tuple[str, str], ...], target: Labels, *, honor: bool) -> Labels:
    """mutate_sample_labels on sorted pairs without empty values (no Labels built first)."""
    names = {n for n, _ in scraped}
    if honor:
        extra = tuple(p for p in target.pairs if p[0] not in names)
        return Labels.from_sorted_pairs(tuple(sorted(scraped + extra)))
    if names.isdisjoint(n for n, _ in target.pairs):
        # NB: the common case: no clash, both sides are valid pairs, so just merge them.
        return Labels.from_sorted_pairs(tuple(sorted(scraped + target.pairs)))
    d = dict(scraped)
    conflicts: list[tuple[str, str]] = []
    for name, value in target.pairs:
        existing = d.get(name, "")
        if existing:
            conflicts.append((name, existing))
        d[name] = value
    conflicts.sort(key=lambda c: len(c[0]))
    for name, value in conflicts:
        new = name
        while True:
            new = "exported_" + new
            if not d.get(new):
                d[new] = value
                break
    return Labels(d.items())


def sample_labels(text: str, target: Labels, *, honor: bool) -> tuple[Labels, bool]:
    """The labels of a scraped series text with the target's added (a cache miss).

    Exactly `mutate_sample_labels(parse_series_text(text), ...)`, faster for plain texts
    (no Labels built twice). Returns (labels, whether the quick path made them, so that
    they surely have a metric name).

    Raises:
        ExpositionParseError: when the text is malformed or repeats a label name.
    """
    pairs = simple_series_pairs(text)
    if pairs is None or len({n for n, _ in pairs}) != len(pairs):
        return mutate_sample_labels(parse_series_text(text), target, honor=honor), False
    pairs.sort()
    scraped = tuple(p for p in pairs if p[1])
    if not len(target):
        return Labels.from_sorted_pairs(scraped), True
    return _mutate_pairs(scraped, target, honor=honor), True


def check_label_limits(lset: Labels, cfg: ScrapeConfig) -> None:
    """Checks label_limit, label_name_length_limit and label_value_length_limit.

    Raises:
        LimitError: with Prometheus's message.
    """
    met = lset.get(METRIC_NAME)[:50]
    if cfg.label_limit and len(lset) > cfg.label_limit:
        raise LimitError(
            f"label_limit exceeded (metric: {met}, number of labels: {len(lset)}, "
            f"limit: {cfg.label_limit})"
        )
    if not cfg.label_name_length_limit and not cfg.label_value_length_limit:
        return
    for name, value in lset.pairs:
        n = len(name.encode())
        if cfg.label_name_length_limit and n > cfg.label_name_length_limit:
            raise LimitError(
                f"label_name_length_limit exceeded (metric: {met}, label name: {name[:50]}, "
                f"length: {n}, limit: {cfg.label_name_length_limit})"
            )
        v = len(value.encode())
        if cfg.label_value_length_limit and v > cfg.label_value_length_limit:
            raise LimitError(
                f"label_value_length_limit exceeded (metric: {met}, label name: {name[:50]}, "
                f'value: "{value[:50]}", length: {v}, limit: {cfg.label_value_length_limit})'
            )


def _missing(prev: npt.NDArray[np.int64], cur: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The refs of sorted unique `prev` that are not in sorted unique `cur`."""
    if not prev.size:
        return prev
    if not cur.size:
        return prev
    idx = np.minimum(np.searchsorted(cur, prev), cur.size - 1)
    missing: npt.NDArray[np.int64] = prev[cur[idx] != prev]
    return missing


class ScrapeLoop:
    """Scrapes one target every interval until stopped."""

    def __init__(self, target: Target, ctx: LoopContext) -> None:
        self.target = target
        self.ctx = ctx
        self._cache: dict[str, int] = {}
        self._parser = ExpositionParser()
        self._prev: npt.NDArray[np.int64] = _EMPTY_REFS
        self._prev_source: npt.NDArray[np.int64] | None = None
        self._last_texts: list[str] = []
        self._last_refs: npt.NDArray[np.int64] = _EMPTY_REFS
        self._last_keep: npt.NDArray[np.bool_] | None = None
        self._report_refs: npt.NDArray[np.uint64] | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[tuple[str, float, ScrapeStats]] | None = None
        self._next_mono = 0.0
        self.interval_s = target.interval_ms / 1000
        self.timeout_s = target.timeout_ms / 1000
        self.scrapes = 0
        self.missed = 0

    def start(self) -> None:
        """Starts the loop task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    def take_state(self, other: ScrapeLoop) -> None:
        """Continues another loop's staleness tracking (a reload replacing `other`)."""
        self._prev = other._prev
        self._report_refs = other._report_refs if self.ctx.cfg == other.ctx.cfg else None
        self.target.health = other.target.health
        self.target.last_error = other.target.last_error
        self.target.last_scrape_ms = other.target.last_scrape_ms
        self.target.last_scrape_duration_s = other.target.last_scrape_duration_s
        self.target.metadata = other.target.metadata

    async def run(self) -> None:
        """Scrapes at the target's phase within each interval until cancelled."""
        loop = asyncio.get_running_loop()
        offset = self.target.offset_s(
            self.interval_s, self.ctx.options.offset_seed, self.ctx.clock.now_ms() / 1000
        )
        self._next_mono = loop.time() + offset
        interval_label = go_duration(self.target.interval_ms)
        summary = self.ctx.metrics.interval_length.labels(interval_label)
        last_start: float | None = None
        while True:
            delay = self._next_mono - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            start = loop.time()
            if last_start is not None:
                summary.observe(start - last_start)
            last_start = start
            await self.scrape_once(wait=False)
            self._next_mono += self.interval_s
            now = loop.time()
            if self._next_mono < now:
                skipped = int((now - self._next_mono) // self.interval_s) + 1
                self.missed += skipped
                self._next_mono += skipped * self.interval_s

    async def scrape_once(self, *, wait: bool = True) -> None:
        """Runs one scrape and writes its samples and report.

        The HTTP request runs on the event loop; parsing and appending (which may wait for
        a WAL fsync) run on the ingest executor when there is one. With `wait=False` (the
        running loop) the next scrape does not wait for this ingest, only the one after
        does, so a slow commit does not delay the scrape schedule.
        """
        ctx = self.ctx
        ts_ms = ctx.clock.now_ms()
        start = time.perf_counter()
        resp: ScrapeResponse | None = None
        error = ""
        try:
            limit_error = ctx.pool_error()
            if limit_error:
                raise ScrapeError(limit_error)
            try:
                resp = await ctx.scraper.scrape(self.target.url, self.timeout_s)
            except ScrapeError as exc:
                # NB: only failed requests are logged there, not pool limits or bad bodies.
                if ctx.failure_log is not None:
                    ctx.failure_log.write(
                        str(exc), job_name=ctx.cfg.job_name, target=self.target.url
                    )
                raise
        except ScrapeError as exc:
            error = str(exc)
            if isinstance(exc, BodySizeLimitError):
                ctx.metrics.exceeded_body_size_limit.inc()
        http_s = time.perf_counter() - start
        if ctx.executor is None:
            self._finish(ts_ms, self.ingest(resp, error, ts_ms, http_s))
            return
        prev = self._inflight
        if prev is not None and not prev.done():
            # NB: shielded so a stop during ingest still lets `stop` wait for it to finish.
            with contextlib.suppress(Exception):
                await asyncio.shield(prev)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(ctx.executor, self.ingest, resp, error, ts_ms, http_s)
        self._inflight = fut
        fut.add_done_callback(lambda f: self._finish(ts_ms, f.result()))
        if wait:
            with contextlib.suppress(Exception):
                await asyncio.shield(fut)

    def _finish(self, ts_ms: int, outcome: tuple[str, float, ScrapeStats]) -> None:
        error, duration, stats = outcome
        t = self.target
        t.health = TargetHealth.DOWN if error else TargetHealth.UP
        t.last_error = error
        t.last_scrape_ms = ts_ms
        t.last_scrape_duration_s = duration
        t.last_samples = stats.post_relabel
        self.scrapes += 1

    def ingest(
        self, resp: ScrapeResponse | None, error: str, ts_ms: int, http_s: float
    ) -> tuple[str, float, ScrapeStats]:
        """Parses and appends one scrape (or its failure) with its report, then commits.

        `http_s` is how long the request took; scrape_duration_seconds adds the time spent
        here (not the time queued for the executor), as Prometheus's includes the append.
        Returns (error, duration in seconds, stats). Runs on one thread at a time per loop.
        """
        start = time.perf_counter() - http_s
        ctx = self.ctx
        stats = ScrapeStats(body_bytes=len(resp.body) if resp is not None else 0)
        app = ctx.appendable.appender()
        try:
            if resp is None:
                raise ScrapeError(error)
            parsed = self._parse(resp.body, resp.content_type)
            self._append(app, parsed, ts_ms, stats)
        except (ScrapeError, ExpositionParseError) as exc:
            app.rollback()
            error = str(exc)
            if not isinstance(exc, SampleLimitError):
                # NB: Prometheus still reports the counts of a scrape over its sample limit.
                stats = ScrapeStats(body_bytes=stats.body_bytes)
            app = ctx.appendable.appender()
            self._append_stale(app, self._prev, ts_ms)
            self._prev, self._prev_source = _EMPTY_REFS, None
        except Exception as exc:
            app.rollback()
            log.exception("scrape of %s failed unexpectedly", self.target.url)
            error = f"internal error: {exc}"
            stats = ScrapeStats()
            app = ctx.appendable.appender()
        duration = time.perf_counter() - start
        try:
            self._append_report(app, ts_ms, duration, stats, up=not error)
            app.commit()
        except Exception as exc:
            app.rollback()
            log.exception("appending the report of %s failed", self.target.url)
            error = error or f"append failed: {exc}"
        return error, duration, stats

    def _parse(self, body: bytes, content_type: str) -> ParsedExposition:
        cfg = self.ctx.cfg
        return self._parser.parse(
            body,
            content_type,
            fallback=cfg.fallback_scrape_protocol or None,
            validate_series=False,
            classic_histograms=bool(cfg.always_scrape_classic_histograms),
        )

    def _resolve_misses(
        self, app: Appender, texts: Sequence[str], refs: npt.NDArray[np.int64]
    ) -> int:
        """Fills cache misses in `refs` (in place); returns how many new series were added."""
        miss = np.flatnonzero(refs == _MISS)
        if not miss.size:
            return 0
        cfg = self.ctx.cfg
        target_labels = self.target.public_labels
        relabel_configs = cfg.metric_relabel_configs
        limits = cfg.label_limit or cfg.label_name_length_limit or cfg.label_value_length_limit
        new_index: dict[str, int] = {}
        new_labels: list[Labels] = []
        positions: list[tuple[int, int]] = []
        for i in miss.tolist():
            text = texts[i]
            j = new_index.get(text)
            if j is None:
                merged, quick = sample_labels(text, target_labels, honor=cfg.honor_labels)
                lset = relabel(merged, relabel_configs) if relabel_configs else merged
                if lset is None or not len(lset):
                    self._cache[text] = _DROPPED
                    refs[i] = _DROPPED
                    continue
                if (relabel_configs or not quick) and not lset.has(METRIC_NAME):
                    raise ScrapeError("missing metric name (__name__ label)")
                if limits:
                    try:
                        check_label_limits(lset, cfg)
                    except LimitError:
                        self.ctx.metrics.exceeded_label_limits.inc()
                        raise
                j = len(new_labels)
                new_index[text] = j
                new_labels.append(lset)
            positions.append((i, j))
        if not new_labels:
            return 0
        new_refs = app.refs(new_labels).astype(np.int64)
        for text, j in new_index.items():
            self._cache[text] = int(new_refs[j])
        if positions:
            pos = np.array(positions, dtype=np.int64)
            refs[pos[:, 0]] = new_refs[pos[:, 1]]
        return len(new_labels)

    def _refs_for(
        self, app: Appender, texts: list[str], stats: ScrapeStats
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_] | None]:
        """Maps series texts to refs (dropped = -2); the mask of kept ones, None for all."""
        if texts == self._last_texts:
            # NB: most targets expose the same series in the same order every time, so the
            # whole previous mapping is reused (one list comparison, no dict lookups).
            return self._last_refs, self._last_keep
        n = len(texts)
        get = self._cache.get
        refs = np.fromiter(map(get, texts, repeat(_MISS, n)), dtype=np.int64, count=n)
        stats.series_added = self._resolve_misses(app, texts, refs)
        keep: npt.NDArray[np.bool_] | None = refs >= 0
        if keep is not None and bool(keep.all()):
            keep = None
        self._last_texts, self._last_refs, self._last_keep = texts, refs, keep
        if len(self._cache) > 2 * n + 1024:
            live = set(texts)
            self._cache = {t: r for t, r in self._cache.items() if t in live}
        return refs, keep

    def _append(
        self, app: Appender, parsed: ParsedExposition, ts_ms: int, stats: ScrapeStats
    ) -> None:
        cfg = self.ctx.cfg
        texts = parsed.series_text
        # NB: native histograms are not stored, but Prometheus counts them as scraped.
        stats.scraped = len(texts) + parsed.skipped_native_histograms
        refs, keep = self._refs_for(app, texts, stats)
        n_post = len(refs) if keep is None else int(np.count_nonzero(keep))
        stats.post_relabel = n_post
        if cfg.sample_limit and n_post > cfg.sample_limit:
            self.ctx.metrics.exceeded_sample_limit.inc()
            raise SampleLimitError("sample limit exceeded")
        if keep is None:
            kept, values, stamps = refs, parsed.values, parsed.timestamps_ms
        else:
            kept, values = refs[keep], parsed.values[keep]
            stamps = parsed.timestamps_ms[keep]
        tracked = kept
        if not cfg.honor_timestamps:
            stamps = np.full(len(kept), ts_ms, dtype=np.int64)
        else:
            explicit = stamps != NO_TIMESTAMP
            if explicit.any():
                stamps = np.where(explicit, stamps, np.int64(ts_ms))
                if not cfg.track_timestamps_staleness:
                    tracked = kept[~explicit]
            else:
                stamps = np.full(len(kept), ts_ms, dtype=np.int64)
        result = app.append(kept.astype(np.uint64), stamps, values)
        self._count(result)
        if tracked is self._prev_source:
            # NB: the same series as last time: nothing went stale.
            cur = self._prev
        else:
            cur = np.sort(tracked)
            if len(cur) > 1:
                dup = cur[1:] == cur[:-1]
                if dup.any():
                    cur = cur[np.concatenate(([True], ~dup))]
            self._append_stale(app, _missing(self._prev, cur), ts_ms)
        self._prev, self._prev_source = cur, tracked
        self.target.metadata = parsed.metadata

    def _count(self, result: AppendResult) -> None:
        m = self.ctx.metrics
        if result.out_of_order:
            m.sample_out_of_order.inc(result.out_of_order)
        if result.duplicate:
            m.sample_duplicate.inc(result.duplicate)
        if result.out_of_bounds:
            m.sample_out_of_bounds.inc(result.out_of_bounds)

    @staticmethod
    def _append_stale(app: Appender, refs: npt.NDArray[np.int64], ts_ms: int) -> None:
        if refs.size:
            # NB: stale markers that land out of order are ignored, as in Prometheus.
            app.append(
                refs.astype(np.uint64),
                np.full(refs.size, ts_ms, dtype=np.int64),
                np.full(refs.size, STALE_NAN, dtype=np.float64),
            )

    def _report_names(self) -> tuple[str, ...]:
        if self.ctx.options.extra_scrape_metrics:
            return REPORT_METRICS + EXTRA_REPORT_METRICS
        return REPORT_METRICS

    def _report_refs_for(self, app: Appender) -> npt.NDArray[np.uint64]:
        if self._report_refs is None:
            base = self.target.public_labels
            self._report_refs = app.refs(
                [base.with_labels(__name__=name) for name in self._report_names()]
            )
        return self._report_refs

    def _append_report(
        self, app: Appender, ts_ms: int, duration_s: float, stats: ScrapeStats, *, up: bool
    ) -> None:
        values = [
            1.0 if up else 0.0,
            duration_s,
            float(stats.scraped),
            float(stats.post_relabel),
            float(stats.series_added),
        ]
        if self.ctx.options.extra_scrape_metrics:
            values += [self.timeout_s, float(self.ctx.cfg.sample_limit), float(stats.body_bytes)]
        refs = self._report_refs_for(app)
        app.append(refs, np.full(len(refs), ts_ms, dtype=np.int64), np.array(values))

    async def stop(self) -> None:
        """Cancels the loop and waits for it (and an ingest in progress) to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await self._inflight
            self._inflight = None

    async def end_of_run_staleness(self) -> None:
        """After stopping: marks the target's series stale, as Prometheus does.

        Waits for the next scheduled scrape (its time is the markers' timestamp), one more
        interval and 10% so a recreated target would have written first, then appends.
        """
        loop = asyncio.get_running_loop()
        delay = self._next_mono - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stale_ms = self.ctx.clock.now_ms()
        await asyncio.sleep(self.interval_s * 1.1)
        if self.ctx.executor is None:
            self._write_end_of_run(stale_ms)
        else:
            await loop.run_in_executor(self.ctx.executor, self._write_end_of_run, stale_ms)

    def _write_end_of_run(self, stale_ms: int) -> None:
        app = self.ctx.appendable.appender()
        try:
            self._append_stale(app, self._prev, stale_ms)
            if self._report_refs is not None:
                self._append_stale(app, self._report_refs.astype(np.int64), stale_ms)
            app.commit()
        except Exception:
            app.rollback()
            log.exception("writing staleness markers for %s failed", self.target.url)
        self._prev, self._prev_source = _EMPTY_REFS, None
