"""What every rule shares: health, last error, timings, and the query function it calls."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels

QueryFunc = Callable[[str, int], "InstantVector"]
"""Evaluates a PromQL expression at a time (ms) and returns an instant vector.

Scalars come back as one sample with no labels, as Prometheus's EngineQueryFunc does.
Raises `watchkeeper.promql.errors.PromQLError` when the query fails.
"""


@dataclass(slots=True)
class InstantVector:
    """An instant vector at `timestamp_ms`: labels[i] has values[i]."""

    labels: list[Labels]
    values: npt.NDArray[np.float64]
    timestamp_ms: int

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls, timestamp_ms: int) -> InstantVector:
        """A vector with no samples."""
        return cls([], np.empty(0, dtype=np.float64), timestamp_ms)


class RuleHealth(enum.Enum):
    """The outcome of a rule's last evaluation, as /api/v1/rules reports it."""

    UNKNOWN = "unknown"
    OK = "ok"
    ERR = "err"


class RuleError(Exception):
    """Raised when a rule's output breaks a rule constraint (duplicate label sets, limit)."""


class BaseRule:
    """Bookkeeping shared by recording and alerting rules."""

    def __init__(self, name: str, query: str, labels: Labels) -> None:
        self.name = name
        self.query = query
        self.labels = labels
        self.health = RuleHealth.UNKNOWN
        self.last_error = ""
        self.evaluation_seconds = 0.0
        self.last_evaluation_ms = 0
        self.last_samples = 0

    def record_evaluation(self, ts_ms: int, duration_s: float, error: str, samples: int) -> None:
        """Stores the outcome of one evaluation for the API and metrics."""
        self.last_evaluation_ms = ts_ms
        self.evaluation_seconds = duration_s
        self.last_error = error
        self.health = RuleHealth.ERR if error else RuleHealth.OK
        self.last_samples = samples


def format_go_exp(value: float) -> str:
    """Formats a float as Go's strconv.FormatFloat(v, 'e', -1, 64) ("1e+00"), as /api/v1/alerts."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    digits = np.format_float_scientific(value, unique=True, trim="-", exp_digits=2)
    mantissa, exp = digits.split("e")
    return f"{mantissa.removesuffix('.')}e{exp}"
