"""PromQL result values and query results: what the engine returns to the API and rules.

Vectors and matrices are columnar: labels in a list, samples in numpy arrays. A matrix is
ragged like `storage.SeriesSet`: series i owns samples offsets[i] up to offsets[i+1].
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels


class ValueType(enum.Enum):
    """The four PromQL result types, named as the HTTP API names them."""

    SCALAR = "scalar"
    STRING = "string"
    VECTOR = "vector"
    MATRIX = "matrix"


@dataclass(frozen=True, slots=True)
class Scalar:
    """A single float at a timestamp."""

    timestamp_ms: int
    value: float

    type = ValueType.SCALAR


@dataclass(frozen=True, slots=True)
class String:
    """A string at a timestamp."""

    timestamp_ms: int
    value: str

    type = ValueType.STRING


@dataclass(slots=True)
class Vector:
    """An instant vector: one sample per series, all at `timestamp_ms`.

    `timestamps_ms` holds the sample time of each element: the evaluation time, except for
    functions such as `timestamp()` that keep it; the API reports the evaluation time.
    """

    labels: list[Labels]
    values: npt.NDArray[np.float64]
    timestamp_ms: int

    type = ValueType.VECTOR

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(slots=True)
class Matrix:
    """A range vector or range-query result: series i owns offsets[i]:offsets[i+1]."""

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    type = ValueType.MATRIX

    def __len__(self) -> int:
        return len(self.labels)

    def series(self, i: int) -> tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Returns series i as (labels, timestamps, values) views."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.labels[i], self.timestamps_ms[lo:hi], self.values[lo:hi]

    @classmethod
    def empty(cls) -> Matrix:
        """A matrix with no series."""
        return cls(
            [],
            np.zeros(1, dtype=np.int64),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.float64),
        )


Value = Scalar | String | Vector | Matrix
"""Any PromQL result value."""


@dataclass(slots=True)
class QueryStats:
    """Timings and sample counts in the shape of Prometheus's `stats=all` output."""

    total_time_s: float = 0.0
    exec_queue_time_s: float = 0.0
    inner_eval_time_s: float = 0.0
    query_preparation_time_s: float = 0.0
    result_sort_time_s: float = 0.0
    exec_total_time_s: float = 0.0
    total_queryable_samples: int = 0
    peak_samples: int = 0
    samples_per_step: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class QueryResult:
    """A query's value with the annotations Prometheus returns beside it.

    `warnings` and `infos` hold full annotation strings, with their prefix ("PromQL info: ...",
    "PromQL warning: ...") as Prometheus writes them.
    """

    value: Value
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    stats: QueryStats = field(default_factory=QueryStats)
    positions: dict[str, int] = field(default_factory=dict)
    """For annotations raised by a query node: where that node starts in the query text."""

    def annotation_strings(
        self, query: str, max_warnings: int = 10, max_infos: int = 10
    ) -> tuple[list[str], list[str]]:
        """Warnings and infos as Prometheus's HTTP API shows them.

        Each annotation raised by a node gets " (line:column)" of that node in `query`, and
        beyond `max_warnings`/`max_infos` (0: no limit) the rest is summed up in one
        "N more ... annotations omitted" line, as Prometheus's `AsStrings` does.
        """
        warnings = self._limited(query, self.warnings, max_warnings, "warning")
        return warnings, self._limited(query, self.infos, max_infos, "info")

    def _limited(self, query: str, texts: list[str], limit: int, kind: str) -> list[str]:
        shown = texts if limit <= 0 else texts[:limit]
        out = [self._with_position(query, t) for t in shown]
        if len(texts) > len(shown):
            out.append(f"{len(texts) - len(shown)} more {kind} annotations omitted")
        return out

    def _with_position(self, query: str, text: str) -> str:
        pos = self.positions.get(text, -1)
        if pos < 0 or not query:
            return text
        return f"{text} ({position_text(query, pos)})"


def position_text(query: str, pos: int) -> str:
    """Prometheus's "line:column" for a str index into `query` (columns count UTF-8 bytes)."""
    if pos > len(query):
        return "invalid position"
    line_start = query.rfind("\n", 0, pos) + 1
    column = len(query[line_start:pos].encode("utf-8", "surrogatepass")) + 1
    line = query.count("\n", 0, pos) + 1
    return f"{line}:{column}"
