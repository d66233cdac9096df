"""The engine's intermediate values: every node is evaluated for all series and all steps.

An instant vector over a query's steps is dense: `values` and `present` have the shape
(n_series, n_steps). A range vector keeps its samples ragged (flat arrays + per-series
offsets) with window bounds per (series, step), as `kernels.window_bounds` returns them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.promql import ast
from watchkeeper.promql.errors import EvaluationError, QueryTimeoutError, TooManySamplesError
from watchkeeper.promql.value import QueryStats
from watchkeeper.storage.interface import Queryable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"

NAME_LABELS: frozenset[str] = frozenset((METRIC_NAME, "__type__", "__unit__"))
"""The labels an operation that changes a value's meaning removes (name, type, unit)."""


def labels_without(lb: Labels, names: frozenset[str]) -> Labels:
    """`lb` without the given label names; `lb` itself when it has none of them."""
    pairs = lb.pairs
    kept = tuple(p for p in pairs if p[0] not in names)
    return lb if len(kept) == len(pairs) else Labels.from_sorted_pairs(kept)


def labels_keep(lb: Labels, names: frozenset[str]) -> Labels:
    """`lb` with only the given label names; `lb` itself when it has no others."""
    pairs = lb.pairs
    kept = tuple(p for p in pairs if p[0] in names)
    return lb if len(kept) == len(pairs) else Labels.from_sorted_pairs(kept)


def strip_names(labels: list[Labels]) -> list[Labels]:
    """Every label set without its metric name, type and unit."""
    return [labels_without(lb, NAME_LABELS) for lb in labels]


@dataclass(slots=True)
class ScalarV:
    """A scalar per step, shape (n_steps,)."""

    values: F64


@dataclass(slots=True)
class StringV:
    """A string (the same at every step)."""

    value: str


@dataclass(slots=True)
class VectorV:
    """An instant vector at every step: values/present of shape (n_series, n_steps).

    `drop_name` flags series whose metric name is dropped at the end (delayed name removal).
    """

    labels: list[Labels]
    values: F64
    present: Bool
    drop_name: Bool

    @classmethod
    def empty(cls, n_steps: int) -> VectorV:
        """A vector with no series."""
        return cls(
            [],
            np.empty((0, n_steps), dtype=np.float64),
            np.empty((0, n_steps), dtype=np.bool_),
            np.empty(0, dtype=np.bool_),
        )

    def take(self, rows: npt.NDArray[np.intp] | list[int]) -> VectorV:
        """Returns the given rows (series) in that order."""
        idx = np.asarray(rows, dtype=np.intp)
        return VectorV(
            [self.labels[i] for i in idx.tolist()],
            self.values[idx],
            self.present[idx],
            self.drop_name[idx],
        )

    def nonempty(self) -> VectorV:
        """Drops series that have no sample at any step."""
        keep = self.present.any(axis=1)
        if keep.all():
            return self
        return self.take(np.flatnonzero(keep))


@dataclass(slots=True)
class MatrixV:
    """A range vector: ragged samples and, per (series, step), a window [lo, hi)."""

    labels: list[Labels]
    offsets: I64
    timestamps_ms: I64
    values: F64
    lo: I64
    hi: I64
    eval_ts_ms: I64
    range_ms: int
    drop_name: Bool
    is_subquery: bool = False


EvalValue = ScalarV | StringV | VectorV | MatrixV


SeriesKey = tuple[Labels, bool, int]
"""A series of a chunked subquery: labels, drop_name, and which of equal ones it is."""


@dataclass(slots=True)
class SubqueryPoints:
    """A nested subquery's inner points over its inner steps first_ms..last_ms.

    Kept between the chunks of an enclosing subquery: the next chunk's windows overlap this
    chunk's, and only the inner steps after last_ms are evaluated again.
    """

    keys: list[SeriesKey]
    offsets: I64
    timestamps_ms: I64
    values: F64
    first_ms: int
    last_ms: int


@dataclass(slots=True)
class SampleTally:
    """Sample counts of a subquery evaluated in chunks, accumulated per counting site.

    Unchunked, each node counts the samples of its whole result once. Chunked, the same
    node counts once per chunk, so the counts are added up (or, for per-step peaks, their
    maximum taken) per site, a site being the node being evaluated (`frames`, a stack of
    [node id, counts made so far]) and the rank of the count within it. This keeps
    max_samples and the peak statistic what one evaluation over all steps gives.
    """

    counts: dict[tuple[int, int], int] = field(default_factory=dict)
    spans: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    frames: list[list[int]] = field(default_factory=list)
    reuse: dict[int, SubqueryPoints] = field(default_factory=dict)
    """Points of nested subqueries by node id, for the next chunk (see SubqueryPoints)."""

    def _site(self) -> tuple[int, int]:
        if not self.frames:
            return (0, 0)
        frame = self.frames[-1]
        frame[1] += 1
        return (frame[0], frame[1])

    def add(self, n: int, *, per_step_peak: bool) -> int:
        """Accumulates a count at the current site; returns the site's total so far."""
        site = self._site()
        old = self.counts.get(site, 0)
        total = max(old, n) if per_step_peak else old + n
        self.counts[site] = total
        return total

    def add_span(self, first_ms: int, last_ms: int, interval_ms: int) -> int:
        """Accumulates a nested subquery's inner steps; returns how many the union holds."""
        site = self._site()
        old = self.spans.get(site)
        if old is not None:
            first_ms, last_ms = min(first_ms, old[0]), max(last_ms, old[1])
        self.spans[site] = (first_ms, last_ms)
        return (last_ms - first_ms) // interval_ms + 1


@dataclass(slots=True)
class EvalContext:
    """What every node evaluation shares: steps, limits, storage and annotations."""

    queryable: Queryable
    start_ms: int
    end_ms: int
    step_ms: int
    lookback_ms: int
    max_samples: int
    deadline: float
    delayed_name_removal: bool
    default_subquery_step_ms: int
    stats: QueryStats
    steps: I64 = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    query_start_ms: int = 0
    query_end_ms: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    """Warning texts, each with where its node starts in the query (-1: no position)."""
    infos: dict[str, int] = field(default_factory=dict)
    """Info texts, each with where its node starts in the query (-1: no position)."""
    per_step: I64 | None = None
    """Samples loaded per step of the query (top level only; None inside subqueries)."""
    tally: SampleTally | None = None
    """Set while a subquery is evaluated in chunks (see `SampleTally`)."""

    @property
    def n_steps(self) -> int:
        """The number of evaluation steps."""
        return len(self.steps)

    def check_deadline(self) -> None:
        """Raises QueryTimeoutError when the query ran past its timeout."""
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError("query execution")

    def count_samples(self, n: int, *, per_step_peak: bool = False) -> None:
        """Checks `n` samples held at once against max_samples and records the peak.

        `per_step_peak` says `n` is a maximum over steps rather than a total (it matters
        only to chunked subqueries).
        """
        if self.tally is not None:
            n = self.tally.add(n, per_step_peak=per_step_peak)
        self._check_samples(n)

    def count_subquery_steps(self, first_ms: int, last_ms: int, interval_ms: int) -> None:
        """Counts a subquery's inner steps, first_ms..last_ms, as samples held at once."""
        n = (last_ms - first_ms) // interval_ms + 1
        if self.tally is not None:
            n = self.tally.add_span(first_ms, last_ms, interval_ms)
        self._check_samples(n)

    def _check_samples(self, n: int) -> None:
        self.stats.peak_samples = max(self.stats.peak_samples, n)
        if n > self.max_samples:
            raise TooManySamplesError()

    def add_samples(self, per_step: npt.NDArray[np.integer]) -> None:
        """Counts loaded samples per step for the query's stats (totalQueryableSamples)."""
        counts = np.asarray(per_step, dtype=np.int64)
        self.stats.total_queryable_samples += int(counts.sum())
        if self.per_step is not None and counts.shape == self.per_step.shape:
            self.per_step += counts

    def warn(self, msg: str, pos: int = -1) -> None:
        """Adds a warning annotation (msg without the "PromQL warning: " prefix).

        `pos` is where the offending node starts in the query; as in Prometheus, a repeated
        text keeps one entry and the latest position.
        """
        self.warnings["PromQL warning: " + msg] = pos

    def info(self, msg: str, pos: int = -1) -> None:
        """Adds an info annotation (msg without the "PromQL info: " prefix) at `pos`."""
        self.infos["PromQL info: " + msg] = pos

    def sub(
        self, steps: I64, *, step_ms: int | None = None, tally: SampleTally | None = None
    ) -> EvalContext:
        """A context for a subquery: the same limits and annotations over other steps.

        `step_ms` overrides the step derived from `steps` (a chunk may hold a single step);
        `tally` is given to the chunks of a subquery evaluated in chunks.
        """
        if step_ms is None:
            step_ms = int(steps[1] - steps[0]) if len(steps) > 1 else 0
        return EvalContext(
            self.queryable,
            int(steps[0]) if len(steps) else 0,
            int(steps[-1]) if len(steps) else 0,
            step_ms,
            self.lookback_ms,
            self.max_samples,
            self.deadline,
            self.delayed_name_removal,
            self.default_subquery_step_ms,
            self.stats,
            steps,
            self.query_start_ms,
            self.query_end_ms,
            self.warnings,
            self.infos,
            tally=tally if tally is not None else self.tally,
        )


def arg_pos(call: ast.Call, i: int) -> int:
    """Where a call's i-th argument starts, as Prometheus reports it (parentheses stripped)."""
    return ast.unwrap_parens(call.args[i]).pos


def drop_name(vec: VectorV, ctx: EvalContext) -> VectorV:
    """Drops (or, with delayed name removal, flags) the metric name of every series."""
    if ctx.delayed_name_removal:
        return VectorV(vec.labels, vec.values, vec.present, np.ones(len(vec.labels), np.bool_))
    labels = strip_names(vec.labels)
    return merge_same_labels(
        VectorV(labels, vec.values, vec.present, np.zeros(len(labels), np.bool_))
    )


def merge_same_labels(vec: VectorV) -> VectorV:
    """Merges series with equal labels; raises when two have a sample at the same step."""
    first: dict[Labels, int] = {}
    dup = False
    for i, lb in enumerate(vec.labels):
        if lb in first:
            dup = True
        else:
            first[lb] = i
    if not dup:
        return vec
    groups: dict[Labels, list[int]] = {}
    for i, lb in enumerate(vec.labels):
        groups.setdefault(lb, []).append(i)
    rows: list[int] = []
    values = vec.values.copy()
    present = vec.present.copy()
    for members in groups.values():
        head = members[0]
        rows.append(head)
        if len(members) == 1:
            continue
        count = vec.present[members].sum(axis=0)
        if (count > 1).any():
            raise EvaluationError(DUPLICATE_LABELSET)
        for m in members[1:]:
            mask = vec.present[m]
            values[head, mask] = vec.values[m, mask]
            present[head] |= mask
    idx = np.asarray(rows, dtype=np.intp)
    return VectorV([vec.labels[i] for i in rows], values[idx], present[idx], vec.drop_name[idx])


def finalize_names(vec: VectorV) -> VectorV:
    """Applies delayed name removal: strips flagged names, then merges equal label sets."""
    if not vec.drop_name.any():
        return vec
    labels = [
        labels_without(lb, NAME_LABELS) if d else lb
        for lb, d in zip(vec.labels, vec.drop_name.tolist(), strict=True)
    ]
    return merge_same_labels(
        VectorV(labels, vec.values, vec.present, np.zeros(len(labels), np.bool_))
    )


def _wrong(kind: str, value: object) -> EvaluationError:
    return EvaluationError(f"internal error: expected {kind}, got {type(value).__name__}")


def as_vector(value: object) -> VectorV:
    """Narrows an evaluated value to an instant vector (the parser's type checks ensure it)."""
    if not isinstance(value, VectorV):
        raise _wrong("instant vector", value)
    return value


def as_scalar(value: object) -> ScalarV:
    """Narrows an evaluated value to a scalar."""
    if not isinstance(value, ScalarV):
        raise _wrong("scalar", value)
    return value


def as_matrix(value: object) -> MatrixV:
    """Narrows an evaluated value to a range vector."""
    if not isinstance(value, MatrixV):
        raise _wrong("range vector", value)
    return value


def as_string(value: object) -> StringV:
    """Narrows an evaluated value to a string."""
    if not isinstance(value, StringV):
        raise _wrong("string", value)
    return value
