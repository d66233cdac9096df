"""Rule groups: rules evaluated in order at one interval, their output written to storage.

A group evaluates at timestamps aligned like Prometheus's (a per-group offset taken from a
hash of the file and group name), writes recording results and ALERTS series through an
`Appender`, marks vanished series stale, and hands alerts to the notify function.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from watchkeeper.model.clock import Clock
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.model.value import STALE_NAN, stale_mask
from watchkeeper.promql.batch import QueryBatch
from watchkeeper.promql.errors import PromQLError
from watchkeeper.rules.alerting import (
    ALERT_FOR_STATE_METRIC,
    Alert,
    AlertingRule,
    TemplateContext,
)
from watchkeeper.rules.batching import BatchingQueryFunc, IterationQueries, plan_group_batches
from watchkeeper.rules.metrics import RuleMetrics
from watchkeeper.rules.recording import RecordingRule
from watchkeeper.rules.rule import InstantVector, QueryFunc, RuleError
from watchkeeper.storage.interface import Appendable, Queryable, SelectHints

log = logging.getLogger(__name__)

Rule = RecordingRule | AlertingRule
"""Either kind of rule."""

NotifyFunc = Callable[[str, Sequence[Alert]], None]
"""Receives (expression, alerts to send) after each evaluation of an alerting rule."""


@dataclass(slots=True)
class GroupOptions:
    """What a group needs from its manager."""

    appendable: Appendable
    queryable: Queryable
    query: QueryFunc
    metrics: RuleMetrics
    clock: Clock
    notify: NotifyFunc | None = None
    template: TemplateContext = field(default_factory=TemplateContext)
    resend_delay_ms: int = 60_000
    outage_tolerance_ms: int = 3_600_000
    for_grace_period_ms: int = 600_000


def xxhash64(data: bytes, seed: int = 0) -> int:
    """The 64-bit xxHash of `data` (as Go's cespare/xxhash), for Prometheus's group offsets."""
    p1, p2, p3, p4, p5 = (
        11400714785074694791,
        14029467366897019727,
        1609587929392839161,
        9650029242287828579,
        2870177450012600261,
    )
    mask = (1 << 64) - 1

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (64 - r))) & mask

    def rnd(acc: int, lane: int) -> int:
        acc = (acc + lane * p2) & mask
        return (rotl(acc, 31) * p1) & mask

    def merge(acc: int, val: int) -> int:
        acc ^= rnd(0, val)
        return (acc * p1 + p4) & mask

    n = len(data)
    i = 0
    if n >= 32:
        v1, v2, v3, v4 = (seed + p1 + p2) & mask, (seed + p2) & mask, seed, (seed - p1) & mask
        while i + 32 <= n:
            v1 = rnd(v1, int.from_bytes(data[i : i + 8], "little"))
            v2 = rnd(v2, int.from_bytes(data[i + 8 : i + 16], "little"))
            v3 = rnd(v3, int.from_bytes(data[i + 16 : i + 24], "little"))
            v4 = rnd(v4, int.from_bytes(data[i + 24 : i + 32], "little"))
            i += 32
        h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) & mask
        for v in (v1, v2, v3, v4):
            h = merge(h, v)
    else:
        h = (seed + p5) & mask
    h = (h + n) & mask
    while i + 8 <= n:
        k1 = rnd(0, int.from_bytes(data[i : i + 8], "little"))
        h ^= k1
        h = (rotl(h, 27) * p1 + p4) & mask
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * p1) & mask
        h = (rotl(h, 23) * p2 + p3) & mask
        i += 4
    while i < n:
        h ^= (data[i] * p5) & mask
        h = (rotl(h, 11) * p1) & mask
        i += 1
    h ^= h >> 33
    h = (h * p2) & mask
    h ^= h >> 29
    h = (h * p3) & mask
    h ^= h >> 32
    return h


_IDENTIFIER: Final = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


class _PendingWrites:
    """Rule output waiting for one commit: label sets and their values."""

    def __init__(self) -> None:
        self.labels: list[Labels] = []
        self._values: list[np.ndarray] = []

    def add(self, labels: list[Labels], values: np.ndarray) -> None:
        if labels:
            self.labels.extend(labels)
            self._values.append(values)

    def take(self) -> tuple[list[Labels], np.ndarray]:
        labels, values = self.labels, np.concatenate(self._values)
        self.labels, self._values = [], []
        return labels, values


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Group:
    """A named list of rules from one file, evaluated in order every `interval_ms`."""

    def __init__(
        self,
        name: str,
        file: str,
        interval_ms: int,
        rules: Sequence[Rule],
        opts: GroupOptions,
        *,
        limit: int = 0,
        query_offset_ms: int = 0,
        labels: Labels | None = None,
        should_restore: bool = False,
    ) -> None:
        self.name = name
        self.file = file
        self.interval_ms = interval_ms
        self.rules = list(rules)
        self.opts = opts
        self.limit = limit
        self.query_offset_ms = query_offset_ms
        self.labels = labels or Labels()
        self.should_restore = should_restore
        self.series_in_previous_eval: list[set[Labels]] = [set() for _ in self.rules]
        self.evaluation_seconds = 0.0
        self.last_evaluation_ms = 0
        self.last_eval_timestamp_ms = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.mark_stale_on_stop = False
        key = self.key
        self._m_labels = (key,)
        metrics = opts.metrics
        metrics.group_interval.labels(key).set(interval_ms / 1000)
        metrics.group_rules.labels(key).set(len(self.rules))
        metrics.init_group(key)
        if self.should_restore:
            for rule in self.rules:
                if isinstance(rule, AlertingRule):
                    rule.restored = False

    @property
    def key(self) -> str:
        """The group's identity: "file;name", as in the rule_group metric label."""
        return f"{self.file};{self.name}"

    def hash(self) -> int:
        """Prometheus's labels.Hash of {file, name}: the source of the evaluation offset.

        Prometheus 3 builds with stringlabels, which hashes the label data as stored:
        each name and value prefixed by its length as a uvarint.
        """
        data = bytearray()
        for part in ("file", self.file, "name", self.name):
            raw = part.encode()
            data += _uvarint(len(raw)) + raw
        return xxhash64(bytes(data))

    def eval_timestamp_ms(self, start_ms: int) -> int:
        """The aligned evaluation time at or before `start_ms` (Prometheus's EvalTimestamp)."""
        interval_ns = self.interval_ms * 1_000_000
        offset = self.hash() % interval_ns
        adj = start_ms * 1_000_000 - offset
        base = adj - adj % interval_ns
        return (base + offset) // 1_000_000

    def definition(self) -> tuple[object, ...]:
        """What makes two loads of a group equal (then the running one is kept)."""
        return (
            self.name,
            self.file,
            self.interval_ms,
            self.limit,
            self.query_offset_ms,
            self.labels,
            tuple(r.definition() for r in self.rules),
        )

    def alerting_rules(self) -> list[AlertingRule]:
        """The group's alerting rules in order."""
        return [r for r in self.rules if isinstance(r, AlertingRule)]

    def copy_state_from(self, old: Group) -> None:
        """Takes alert state and staleness bookkeeping from the group this one replaces."""
        self.evaluation_seconds = old.evaluation_seconds
        self.last_evaluation_ms = old.last_evaluation_ms
        self.last_eval_timestamp_ms = old.last_eval_timestamp_ms
        by_def: dict[tuple[object, ...], list[int]] = {}
        for i, rule in enumerate(old.rules):
            by_def.setdefault((type(rule).__name__, rule.name, rule.labels), []).append(i)
        for i, rule in enumerate(self.rules):
            matches = by_def.get((type(rule).__name__, rule.name, rule.labels))
            if not matches:
                continue
            j = matches.pop(0)
            self.series_in_previous_eval[i] = old.series_in_previous_eval[j]
            old.series_in_previous_eval[j] = set()
            old_rule = old.rules[j]
            if isinstance(rule, AlertingRule) and isinstance(old_rule, AlertingRule):
                rule.copy_state_from(old_rule)
        # Series of old rules that are gone become stale at the next evaluation.
        self._orphans = set().union(*old.series_in_previous_eval) if old.rules else set()

    _orphans: set[Labels] = set()  # noqa: RUF012 - replaced per instance by copy_state_from

    def eval(self, ts_ms: int) -> None:
        """Evaluates every rule at `ts_ms`, writes results, marks stale series, sends alerts."""
        metrics = self.opts.metrics
        key = self.key
        total_samples = 0
        sample_ts = ts_ms - self.query_offset_ms
        flush_after = self._flush_points()
        pending = _PendingWrites()
        evaluations = metrics.evaluations.labels(key)
        observe = metrics.evaluation_duration.observe
        query = self.opts.query
        batches = self._batches()
        iteration = (
            IterationQueries(query, batches, [r.query for r in self.rules], sample_ts)
            if batches and isinstance(query, BatchingQueryFunc)
            else None
        )
        if iteration is not None:
            query = iteration
        for i, rule in enumerate(self.rules):
            start = time.perf_counter()
            evaluations.inc()
            error = ""
            vector = InstantVector.empty(sample_ts)
            try:
                if isinstance(rule, RecordingRule):
                    vector = rule.eval(sample_ts, query, self.limit)
                else:
                    vector = rule.eval(
                        ts_ms,
                        query,
                        query_offset_ms=self.query_offset_ms,
                        limit=self.limit,
                        ctx=self.opts.template,
                    )
            except (PromQLError, RuleError) as exc:
                error = str(exc)
                metrics.evaluation_failures.labels(key).inc()
                log.warning("evaluating rule failed: group=%s rule=%s err=%s", key, rule.name, exc)
            # As in Prometheus, a failed rule sends nothing and marks nothing stale.
            if not error:
                if isinstance(rule, AlertingRule) and self.opts.notify is not None:
                    to_send = rule.alerts_to_send(
                        ts_ms, self.opts.resend_delay_ms, self.interval_ms
                    )
                    if to_send:
                        self.opts.notify(rule.query, to_send)
                current = set(vector.labels)
                pending.add(vector.labels, vector.values)
                stale = self.series_in_previous_eval[i] - current
                self.series_in_previous_eval[i] = current
                if stale:
                    pending.add(sorted(stale), np.full(len(stale), STALE_NAN, dtype=np.float64))
            if flush_after[i]:
                self._write(pending, sample_ts)
            duration = time.perf_counter() - start
            if iteration is not None:
                duration += iteration.duration_adjustment(rule.query)
            observe(duration)
            rule.record_evaluation(self.opts.clock.now_ms(), duration, error, len(vector))
            total_samples += len(vector)
        if self._orphans:
            still = set().union(*self.series_in_previous_eval)
            leftover = sorted(self._orphans - still)
            self._orphans = set()
            if leftover:
                pending.add(leftover, np.full(len(leftover), STALE_NAN, dtype=np.float64))
        self._write(pending, sample_ts)
        metrics.group_last_samples.labels(key).set(total_samples)

    def _batches(self) -> list[QueryBatch]:
        """Batches of this group's same-shaped rule expressions (planned once)."""
        if self._batch_cache is None or self._batch_cache[0] != len(self.rules):
            written = {r.name for r in self.rules if isinstance(r, RecordingRule)}
            if self.alerting_rules():
                written |= {"ALERTS", "ALERTS_FOR_STATE"}
            texts = [r.query for r in self.rules]
            self._batch_cache = (
                len(self.rules),
                plan_group_batches(self.opts.query, texts, written),
            )
        return self._batch_cache[1]

    _batch_cache: tuple[int, list[QueryBatch]] | None = None

    def _flush_points(self) -> list[bool]:
        """For each rule, whether its output must be committed before the next rule runs.

        A later rule of the group may read an earlier rule's output (Prometheus commits
        after every rule). Where no later expression names the output metric, results are
        batched into one commit per iteration, which is far cheaper.
        """
        if self._flush_cache is not None and self._flush_cache[0] == len(self.rules):
            return self._flush_cache[1]
        used_later: set[str] = set()
        flags = [False] * len(self.rules)
        for i in range(len(self.rules) - 1, -1, -1):
            rule = self.rules[i]
            names = (
                (rule.name,) if isinstance(rule, RecordingRule) else ("ALERTS", "ALERTS_FOR_STATE")
            )
            flags[i] = any(n in used_later for n in names)
            used_later.update(_IDENTIFIER.findall(rule.query))
        self._flush_cache = (len(self.rules), flags)
        return flags

    _flush_cache: tuple[int, list[bool]] | None = None

    def _write(self, pending: _PendingWrites, ts_ms: int) -> None:
        if not pending.labels:
            return
        labels, values = pending.take()
        with self.opts.appendable.appender() as app:
            app.append_series(labels, np.full(len(labels), ts_ms, dtype=np.int64), values)

    def _append_stale(self, labels: list[Labels], ts_ms: int) -> None:
        with self.opts.appendable.appender() as app:
            app.append_series(
                labels,
                np.full(len(labels), ts_ms, dtype=np.int64),
                np.full(len(labels), STALE_NAN, dtype=np.float64),
            )

    def mark_all_stale(self, ts_ms: int) -> None:
        """Writes staleness markers for every series the group produced (group removed)."""
        series = sorted(set().union(*self.series_in_previous_eval)) if self.rules else []
        self.series_in_previous_eval = [set() for _ in self.rules]
        if series:
            self._append_stale(series, ts_ms)

    def restore_for_state(self, ts_ms: int) -> None:
        """Restores `for` state of alerting rules from ALERTS_FOR_STATE (after a restart)."""
        started = time.perf_counter()
        mint = ts_ms - self.opts.outage_tolerance_ms
        for rule in self.alerting_rules():
            if rule.hold_ms <= 0 or rule.hold_ms < self.opts.for_grace_period_ms:
                rule.restored = True
                continue
            matchers = [
                Matcher(MatchType.EQUAL, METRIC_NAME, ALERT_FOR_STATE_METRIC),
                Matcher(MatchType.EQUAL, "alertname", rule.name),
            ]
            found: dict[Labels, tuple[int, float]] = {}
            try:
                with self.opts.queryable.querier(mint, ts_ms) as q:
                    sset = q.select(matchers, hints=SelectHints(mint, ts_ms, func="series"))
                    for j in range(len(sset)):
                        lbls, tss, vals = sset.series(j)
                        # The newest sample counts; a staleness marker means "not active".
                        if len(vals) == 0 or bool(stale_mask(vals[-1:])[0]):
                            continue
                        found[lbls.without_name()] = (int(tss[-1]), float(vals[-1]))
            except Exception as exc:
                log.error("restoring for state failed: group=%s err=%s", self.key, exc)
            rule.restore_for_state(ts_ms, found, grace_period_ms=self.opts.for_grace_period_ms)
        self.opts.metrics.group_last_restore_duration.labels(self.key).set(
            time.perf_counter() - started
        )

    def run_iteration(self, ts_ms: int) -> None:
        """One scheduled evaluation with its timing metrics."""
        metrics = self.opts.metrics
        key = self.key
        metrics.group_iterations.labels(key).inc()
        start = time.perf_counter()
        start_ms = self.opts.clock.now_ms()
        self.eval(ts_ms)
        took = time.perf_counter() - start
        metrics.group_duration.observe(took)
        metrics.group_last_duration.labels(key).set(took)
        metrics.group_last_eval_timestamp.labels(key).set(ts_ms / 1000)
        metrics.group_last_rule_duration_sum.labels(key).set(
            sum(r.evaluation_seconds for r in self.rules)
        )
        self.evaluation_seconds = took
        self.last_evaluation_ms = start_ms
        self.last_eval_timestamp_ms = ts_ms

    async def run(self) -> None:
        """Evaluates the group on schedule until `stop` is called."""
        loop_interval = self.interval_ms
        # Evaluation times are whole ms plus the sub-ms part of the group's offset.
        sub_ms = (self.hash() % (self.interval_ms * 1_000_000)) % 1_000_000
        for rule in self.alerting_rules():
            rule.sub_ms_ns = sub_ms
        now = self.opts.clock.now_ms()
        eval_ts = self.eval_timestamp_ms(now) + loop_interval
        if await self._sleep_until(eval_ts):
            return
        await asyncio.to_thread(self.run_iteration, eval_ts)
        iterations = 1
        while True:
            next_ts = eval_ts + loop_interval
            if await self._sleep_until(next_ts):
                return
            now = self.opts.clock.now_ms()
            missed = (now - eval_ts) // loop_interval - 1
            if missed > 0:
                self.opts.metrics.group_missed.labels(self.key).inc(missed)
                self.opts.metrics.group_iterations.labels(self.key).inc(missed)
            eval_ts += (max(missed, 0) + 1) * loop_interval
            await asyncio.to_thread(self.run_iteration, eval_ts)
            iterations += 1
            if self.should_restore and iterations == 2:
                await asyncio.to_thread(self.restore_for_state, self.opts.clock.now_ms())
                self.should_restore = False

    async def _sleep_until(self, ts_ms: int) -> bool:
        """Sleeps until the clock reaches `ts_ms`; True when stopped meanwhile."""
        delay = (ts_ms - self.opts.clock.now_ms()) / 1000
        if delay <= 0:
            return self._stop.is_set()
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True

    def start(self) -> None:
        """Starts the evaluation loop as an asyncio task."""
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"rules {self.key}")

    async def stop(self) -> None:
        """Stops the loop and waits for the current evaluation to finish."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
