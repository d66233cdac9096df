"""Self-metrics under Prometheus's names, rendered on /metrics.

Every stage registers its metrics on a `Registry` it is given (no global registry), so a
test can build a server and read exactly its metrics. Metric objects are cheap to update
and safe to use from several threads for simple increments (the GIL makes += atomic
enough for counters we tolerate losing a tick on).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Self, TypeVar

import numpy as np

from watchkeeper.model.labels import is_valid_legacy_metric_name

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def format_float(value: float) -> str:
    """Formats a float as Prometheus's text format does (+Inf, -Inf, NaN, shortest repr)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_value(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


@dataclass(frozen=True, slots=True)
class Sample:
    """One exported sample: a suffix of the metric name, labels and a value."""

    suffix: str
    label_names: tuple[str, ...]
    label_values: tuple[str, ...]
    value: float


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        if not is_valid_legacy_metric_name(name):
            raise ValueError(f"invalid metric name {name!r}")
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self._children: dict[tuple[str, ...], Self] = {}
        self._lock = threading.Lock()

    def _new_child(self) -> Self:
        raise NotImplementedError

    def labels(self, *values: str) -> Self:
        """Returns the child for these label values, creating it on first use."""
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name}: expected {len(self.label_names)} label values")
        child = self._children.get(values)
        if child is None:
            with self._lock:
                child = self._children.setdefault(values, self._new_child())
        return child

    def remove(self, *values: str) -> None:
        """Forgets the child for these label values."""
        self._children.pop(values, None)

    def _own_samples(self) -> Iterable[Sample]:
        return ()

    def samples(self) -> Iterable[Sample]:
        """Yields every sample of the metric and its children."""
        if not self.label_names:
            yield from self._own_samples()
            return
        for values, child in sorted(self._children.items()):
            for s in child._own_samples():
                yield Sample(
                    s.suffix, self.label_names + s.label_names, values + s.label_values, s.value
                )


class Counter(_Metric):
    """A value that only goes up (resets on restart)."""

    kind = "counter"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        callback: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.value = 0.0
        self._callback = callback

    def _new_child(self) -> Self:
        return type(self)(self.name, self.help)

    def inc(self, amount: float = 1.0) -> None:
        """Adds a non-negative amount."""
        if amount < 0:
            raise ValueError("counters only go up")
        self.value += amount

    def _own_samples(self) -> Iterable[Sample]:
        yield Sample("", (), (), self._callback() if self._callback else self.value)


class Gauge(_Metric):
    """A value that goes up and down, or is read from a callback when exported."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        callback: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.value = 0.0
        self._callback = callback

    def _new_child(self) -> Self:
        return type(self)(self.name, self.help)

    def set(self, value: float) -> None:
        """Sets the value."""
        self.value = value

    def inc(self, amount: float = 1.0) -> None:
        """Adds an amount."""
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtracts an amount."""
        self.value -= amount

    def _own_samples(self) -> Iterable[Sample]:
        yield Sample("", (), (), self._callback() if self._callback else self.value)


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with a sum and a count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def _new_child(self) -> Self:
        return type(self)(self.name, self.help, buckets=self.buckets)

    def observe(self, value: float) -> None:
        """Records one observation."""
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def _own_samples(self) -> Iterable[Sample]:
        for bound, c in zip(self.buckets, self.counts, strict=True):
            yield Sample("_bucket", ("le",), (format_float(bound),), float(c))
        yield Sample("_bucket", ("le",), ("+Inf",), float(self.count))
        yield Sample("_sum", (), (), self.sum)
        yield Sample("_count", (), (), float(self.count))


DEFAULT_MAX_AGE_S = 600.0
"""How long an observation counts towards a summary's quantiles (client_golang's MaxAge)."""

DEFAULT_AGE_BUCKETS = 5
"""How many slices the quantile window rotates through (client_golang's AgeBuckets)."""

WINDOW_SLICE_CAPACITY = 2048
"""Observations kept per slice; beyond it a slice keeps a uniform sample of what it saw."""


class _SlidingWindow:
    """The observations of the last `max_age_s`, kept in `age_buckets` rotating time slices.

    As in client_golang, the quantiles cover the current slice and the previous
    `age_buckets - 1`, so an observation counts for between `max_age_s * (1 - 1/age_buckets)`
    and `max_age_s`. Slices rotate lazily on use (no timers). A slice that sees more than
    `WINDOW_SLICE_CAPACITY` observations keeps a uniform reservoir sample of them, weighted
    by how many it stands for, so memory stays bounded under any observation rate.
    """

    __slots__ = ("_ids", "_now", "_rng", "_seen", "_slice_s", "_values")

    def __init__(self, max_age_s: float, age_buckets: int, now: Callable[[], float]) -> None:
        if max_age_s <= 0 or age_buckets < 1:
            raise ValueError("max_age_s must be positive and age_buckets at least 1")
        self._slice_s = max_age_s / age_buckets
        self._now = now
        self._ids = [-1] * age_buckets
        self._values: list[list[float]] = [[] for _ in range(age_buckets)]
        self._seen = [0] * age_buckets
        self._rng = random.Random(0)

    def _current_slice(self) -> int:
        return int(self._now() // self._slice_s)

    def observe(self, value: float) -> None:
        """Adds one observation to the current slice (the caller holds the metric's lock)."""
        slice_id = self._current_slice()
        pos = slice_id % len(self._ids)
        if self._ids[pos] != slice_id:
            self._ids[pos] = slice_id
            self._values[pos] = []
            self._seen[pos] = 0
        values = self._values[pos]
        self._seen[pos] += 1
        if len(values) < WINDOW_SLICE_CAPACITY:
            values.append(value)
            return
        j = self._rng.randrange(self._seen[pos])
        if j < WINDOW_SLICE_CAPACITY:
            values[j] = value

    def quantiles(self, qs: Sequence[float]) -> np.ndarray:
        """The q-quantiles (smallest observation whose weighted rank reaches q), NaN if empty."""
        oldest = self._current_slice() - len(self._ids) + 1
        parts: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for slice_id, values, seen in zip(self._ids, self._values, self._seen, strict=True):
            if slice_id >= oldest and values:
                parts.append(np.asarray(values, dtype=np.float64))
                weights.append(np.full(len(values), seen / len(values)))
        if not parts:
            return np.full(len(qs), np.nan)
        values_all = np.concatenate(parts)
        order = np.argsort(values_all, kind="stable")
        cumulative = np.cumsum(np.concatenate(weights)[order])
        targets = np.asarray(qs, dtype=np.float64) * cumulative[-1]
        ranks = np.searchsorted(cumulative, targets * (1 - 1e-12), side="left")
        result: np.ndarray = values_all[order][np.minimum(ranks, len(order) - 1)]
        return result


class Summary(_Metric):
    """Observations with a sum and a count, and quantiles over a sliding time window.

    `objectives` are the quantiles to export (none by default, as client_golang); they are
    computed at render time over the observations of the last `max_age_s` seconds (see
    `_SlidingWindow`), and are NaN when that window is empty. `quantiles` is the older form:
    a callback that returns precomputed quantiles.
    """

    kind = "summary"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        quantiles: Callable[[], dict[float, float]] | None = None,
        objectives: Sequence[float] = (),
        max_age_s: float = DEFAULT_MAX_AGE_S,
        age_buckets: int = DEFAULT_AGE_BUCKETS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, help_text, label_names)
        if any(not 0.0 <= q <= 1.0 for q in objectives):
            raise ValueError(f"{name}: quantile objectives must be in [0, 1], got {objectives}")
        if "quantile" in self.label_names:
            raise ValueError(f"{name}: a summary cannot have a label named quantile")
        self.sum = 0.0
        self.count = 0
        self._quantiles = quantiles
        self.objectives = tuple(sorted(objectives))
        self._max_age_s = max_age_s
        self._age_buckets = age_buckets
        self._now = now
        self._window = (
            _SlidingWindow(max_age_s, age_buckets, now)
            if self.objectives and not self.label_names
            else None
        )

    def _new_child(self) -> Self:
        return type(self)(
            self.name,
            self.help,
            quantiles=self._quantiles,
            objectives=self.objectives,
            max_age_s=self._max_age_s,
            age_buckets=self._age_buckets,
            now=self._now,
        )

    def observe(self, value: float) -> None:
        """Records one observation."""
        if self._window is None:
            self.sum += value
            self.count += 1
            return
        with self._lock:
            self.sum += value
            self.count += 1
            self._window.observe(value)

    def quantile(self, q: float) -> float:
        """The q-quantile of the observations in the window (NaN when there are none)."""
        if self._window is None:
            return math.nan
        with self._lock:
            return float(self._window.quantiles((q,))[0])

    def _own_samples(self) -> Iterable[Sample]:
        if self._window is not None:
            with self._lock:
                values = self._window.quantiles(self.objectives)
            for q, v in zip(self.objectives, values, strict=True):
                yield Sample("", ("quantile",), (format_float(q),), float(v))
        elif self._quantiles is not None:
            for q, v in sorted(self._quantiles().items()):
                yield Sample("", ("quantile",), (format_float(q),), v)
        yield Sample("_sum", (), (), self.sum)
        yield Sample("_count", (), (), float(self.count))


M = TypeVar("M", bound=_Metric)


class Registry:
    """A set of metrics rendered together in the text exposition format 0.0.4."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Callable[[], Iterable[_Metric]]] = []

    def register(self, metric: M) -> M:
        """Adds a metric; registering the same name twice is an error."""
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        callback: Callable[[], float] | None = None,
    ) -> Counter:
        """Registers and returns a counter (read from `callback` at render time if given)."""
        return self.register(Counter(name, help_text, label_names, callback=callback))

    def gauge(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        callback: Callable[[], float] | None = None,
    ) -> Gauge:
        """Registers and returns a gauge."""
        return self.register(Gauge(name, help_text, label_names, callback=callback))

    def histogram(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Registers and returns a histogram."""
        return self.register(Histogram(name, help_text, label_names, buckets=buckets))

    def summary(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        *,
        quantiles: Callable[[], dict[float, float]] | None = None,
        objectives: Sequence[float] = (),
        max_age_s: float = DEFAULT_MAX_AGE_S,
        age_buckets: int = DEFAULT_AGE_BUCKETS,
    ) -> Summary:
        """Registers and returns a summary (quantiles `objectives` over a sliding window)."""
        return self.register(
            Summary(
                name,
                help_text,
                label_names,
                quantiles=quantiles,
                objectives=objectives,
                max_age_s=max_age_s,
                age_buckets=age_buckets,
            )
        )

    def add_collector(self, collect: Callable[[], Iterable[_Metric]]) -> None:
        """Adds a callback that builds metrics at render time (for per-target state)."""
        self._collectors.append(collect)

    def get(self, name: str) -> _Metric | None:
        """Returns a registered metric by name."""
        return self._metrics.get(name)

    def collect(self) -> list[_Metric]:
        """Returns every metric, sorted by name."""
        metrics = list(self._metrics.values())
        for collect in self._collectors:
            metrics.extend(collect())
        return sorted(metrics, key=lambda m: m.name)

    def render(self) -> bytes:
        """Renders every metric in the text exposition format 0.0.4."""
        lines: list[str] = []
        for m in self.collect():
            lines.append(f"# HELP {m.name} {_escape_help(m.help)}")
            lines.append(f"# TYPE {m.name} {m.kind}")
            for s in m.samples():
                extra = ""
                names, values = list(s.label_names), list(s.label_values)
                lines.append(
                    f"{m.name}{s.suffix}{_label_text(names, values, extra)} {format_float(s.value)}"
                )
        lines.append("")
        return "\n".join(lines).encode()
