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
