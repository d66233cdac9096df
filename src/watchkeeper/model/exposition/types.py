"""Value types of the exposition formats: parse results, families, metadata and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels

NO_TIMESTAMP: Final = int(np.iinfo(np.int64).min)
"""The timestamp of a sample that carries none (the scraper substitutes the scrape time)."""

METRIC_TYPES: Final = (
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
    "unknown",
)
"""Metric types as Prometheus names them (the text format's "untyped" becomes "unknown")."""


class ExpositionParseError(ValueError):
    """Raised when an exposition body, or one series text, is malformed.

    Attributes:
        line: the 1-based line of the problem (0 when not known, e.g. for one series text).
        reason: Prometheus's wording of the problem.
    """

    def __init__(self, reason: str, line: int = 0) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"{reason} (line {line})" if line else reason)


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """TYPE, HELP and UNIT of one metric family ("" when not given)."""

    type: str = "unknown"
    help: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Exemplar:
    """An OpenMetrics exemplar attached to one sample."""

    labels: Labels
    value: float
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedExposition:
    """A whole parsed body, column by column; sample i is (series_text[i], values[i], ...).

    `series_text` is the series as written (metric name and labels, whitespace removed) and is
    the scrape cache key: turn it into labels with `parse_series_text` on a cache miss.
    `timestamps_ms` holds NO_TIMESTAMP where the line had no timestamp. `exemplars` maps a
    sample index to its exemplar. `created_timestamps_ms` (OpenMetrics `_created` lines) is
    None when the body has none, else NO_TIMESTAMP where a sample has none.
    `skipped_native_histograms` counts native histograms of a protobuf body: Prometheus counts
    them in scrape_samples_scraped but stores nothing for them without native histograms.
    """

    series_text: list[str]
    values: npt.NDArray[np.float64]
    timestamps_ms: npt.NDArray[np.int64]
    metadata: dict[str, MetricMetadata]
    exemplars: dict[int, Exemplar] = field(default_factory=dict)
    created_timestamps_ms: npt.NDArray[np.int64] | None = None
    content_type: str = "text/plain"
    warnings: tuple[str, ...] = ()
    skipped_native_histograms: int = 0

    def __len__(self) -> int:
        return len(self.series_text)

    def labels(self) -> list[Labels]:
        """Returns the labels of every sample (validating each series text).

        Raises:
            ExpositionParseError: when a series text has duplicate or invalid label names.
        """
        from watchkeeper.model.exposition.series import parse_series_text

        cache: dict[str, Labels] = {}
        out = []
        for text in self.series_text:
            lbls = cache.get(text)
            if lbls is None:
                lbls = cache[text] = parse_series_text(text)
            out.append(lbls)
        return out


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a family for the writers: full labels (including __name__)."""

    labels: Labels
    value: float
    timestamp_ms: int | None = None
    exemplar: Exemplar | None = None


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """A metric family to expose: name, type, help, unit and its samples."""

    name: str
    type: str = "unknown"
    help: str = ""
    unit: str = ""
    samples: tuple[Sample, ...] = ()
