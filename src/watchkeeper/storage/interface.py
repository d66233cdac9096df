"""The storage interfaces: how stages write samples and read series.

Scrape, rules and the remote-write receiver write through an `Appender`; PromQL, the API
and federation read through a `Querier`. Samples travel as numpy arrays, never as one
Python object per sample. Timestamps are int64 milliseconds since the Unix epoch; values
are float64 and keep their exact bits (the staleness marker included).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import NewType, Protocol, Self

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher

SeriesRef = NewType("SeriesRef", int)
"""A storage-assigned number that stands for one series for the life of the process."""


class StorageError(Exception):
    """The base of every storage error."""


class OutOfOrderSampleError(StorageError):
    """Raised when a sample is older than the newest sample of its series (and no OOO window)."""


class DuplicateSampleError(StorageError):
    """Raised when a sample has the timestamp of an existing one with a different value."""


class OutOfBoundsError(StorageError):
    """Raised when a sample is older than the head can accept (before the head's min time)."""


class TooOldSampleError(StorageError):
    """Raised when out-of-order support is on but the sample is outside the allowed window."""


class ReadOnlyError(StorageError):
    """Raised when writing to storage that is closed or read-only."""


@dataclass(slots=True)
class AppendResult:
    """What one `Appender.append` call accepted and rejected, by reason.

    The mask `accepted` has one entry per appended sample.
    """

    accepted: npt.NDArray[np.bool_]
    out_of_order: int = 0
    duplicate: int = 0
    out_of_bounds: int = 0
    too_old: int = 0

    @property
    def rejected(self) -> int:
        """The number of samples rejected for any reason."""
        return self.out_of_order + self.duplicate + self.out_of_bounds + self.too_old


class Appender(abc.ABC):
    """A write transaction: samples become visible to readers on `commit`.

    Use it as a context manager: it commits on success and rolls back on error. An appender
    must be committed or rolled back once and then discarded. It is not thread-safe: one
    appender belongs to one writer (one scrape loop, one rule group).
    """

    @abc.abstractmethod
    def refs(self, series: Sequence[Labels]) -> npt.NDArray[np.uint64]:
        """Returns the series refs of label sets, creating series that do not exist yet.

        Callers cache refs (by raw series text in scrape) so that a known series costs a
        dictionary lookup. Refs stay valid while the process lives.
        """

    @abc.abstractmethod
    def append(
        self,
        refs: npt.NDArray[np.uint64],
        timestamps_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> AppendResult:
        """Appends a batch of samples: refs[i] gets (timestamps_ms[i], values[i]).

        Samples that break ordering rules are rejected and counted in the result, the rest
        are kept; nothing is visible before `commit`.
        """

    @abc.abstractmethod
    def commit(self) -> None:
        """Makes the appended samples durable (WAL) and visible."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discards the appended samples."""

    def append_series(
        self,
        series: Sequence[Labels],
        timestamps_ms: npt.ArrayLike,
        values: npt.ArrayLike,
    ) -> AppendResult:
        """Appends samples given by label sets rather than refs (one label set per sample)."""
        return self.append(
            self.refs(series),
            np.asarray(timestamps_ms, dtype=np.int64),
            np.asarray(values, dtype=np.float64),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()


class Appendable(Protocol):
    """Something that hands out appenders."""

    def appender(self) -> Appender:
        """Returns a new write transaction."""
        ...


@dataclass(frozen=True, slots=True)
class SelectHints:
    """Optional hints that let storage skip work; storage may ignore them.

    Times are inclusive milliseconds. `func` is the PromQL function around the selector
    ("series" for metadata-only selects that need no samples).
    """

    start_ms: int
    end_ms: int
    step_ms: int = 0
    range_ms: int = 0
    func: str = ""


@dataclass(slots=True)
class SeriesSet:
    """Series as ragged arrays: series i owns samples offsets[i] up to offsets[i+1].

    `labels` is sorted by label set; each series' timestamps ascend. `warnings` carries
    non-fatal problems (for example a remote read that failed) for the API to report.

    Example:
        >>> s = SeriesSet.empty()
        >>> len(s), s.offsets.tolist()
        (0, [0])
    """

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> SeriesSet:
        """Returns a set with no series."""
        return cls(
            [],
            np.zeros(1, dtype=np.int64),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def series(self, i: int) -> tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Returns series i as (labels, timestamps, values) views."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.labels[i], self.timestamps_ms[lo:hi], self.values[lo:hi]

    @property
    def sample_count(self) -> int:
        """The total number of samples in the set."""
        return int(self.offsets[-1])


class ClosedOnExit:
    """`with x:` closes x when the block ends, whatever happens in it."""

    def close(self) -> None:
        """Releases what the object holds (nothing unless a subclass says otherwise)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Querier(ClosedOnExit, abc.ABC):
    """Reads series over a fixed, inclusive time range [mint_ms, maxt_ms].

    A querier sees a consistent snapshot taken when it was created. Close it when done so
    storage can release what it holds (blocks that compaction wants to delete).
    """

    @abc.abstractmethod
    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        """Returns the series that satisfy every matcher, with their samples in range.

        Series with no sample in range are left out. The result is sorted by label set.
        """

    @abc.abstractmethod
    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted label names of series in range (that satisfy the matchers)."""

    @abc.abstractmethod
    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Returns the sorted values of a label over series in range (satisfying matchers)."""

    def close(self) -> None:
        """Releases what the querier holds."""


class Queryable(Protocol):
    """Something that hands out queriers."""

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        """Returns a querier over the inclusive range [mint_ms, maxt_ms]."""
        ...


class Storage(Appendable, Queryable, Protocol):
    """Local or remote storage: both appendable and queryable."""

    def close(self) -> None:
        """Flushes and releases everything."""
        ...
