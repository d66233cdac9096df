"""One group iteration's queries, with same-shaped rules evaluated as one batched query.

A group plans its batches once (`plan_group_batches`); each iteration wraps the query
function in an `IterationQueries`, which evaluates a batch when the first of its members
asks and hands the other members their parts. A batch that fails is forgotten for the
iteration and its members are evaluated alone, so errors stay with the rule that has them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence, Set
from typing import Protocol, runtime_checkable

from watchkeeper.promql.batch import QueryBatch
from watchkeeper.promql.errors import PromQLError
from watchkeeper.rules.rule import InstantVector, QueryFunc

log = logging.getLogger(__name__)


@runtime_checkable
class BatchingQueryFunc(Protocol):
    """A query function that can also plan and run batches (rules.manager.EngineQueryFunc)."""

    def __call__(self, text: str, time_ms: int) -> InstantVector:
        """Evaluates one expression."""
        ...

    def plan(self, texts: Sequence[str]) -> list[QueryBatch]:
        """Batches of the given expressions (members are positions in `texts`)."""
        ...

    def run(self, batch: QueryBatch, time_ms: int) -> list[InstantVector]:
        """Each member's result, in `batch.members` order."""
        ...


def plan_group_batches(
    query: QueryFunc, texts: Sequence[str], written: Set[str]
) -> list[QueryBatch]:
    """The batches a group can use: none that read a metric the group itself writes.

    A rule may read what an earlier rule of its group recorded in the same iteration; a
    batch is evaluated before some of its members' turn, so it must not read such metrics.
    """
    if not isinstance(query, BatchingQueryFunc):
        return []
    return [b for b in query.plan(texts) if b.metric not in written]


class IterationQueries:
    """The query function for one group iteration (see the module docstring)."""

    def __init__(
        self,
        query: BatchingQueryFunc,
        batches: Sequence[QueryBatch],
        texts: Sequence[str],
        time_ms: int,
    ) -> None:
        self._query = query
        self._texts = texts
        self._time_ms = time_ms
        self._pending = {texts[m]: b for b in batches for m in b.members}
        self._results: dict[str, InstantVector] = {}
        self._adjust: dict[str, float] = {}

    def __call__(self, text: str, time_ms: int) -> InstantVector:
        """Evaluates one expression, from its batch when it has one."""
        if time_ms == self._time_ms:
            done = self._results.get(text)
            if done is not None:
                return done
            batch = self._pending.get(text)
            if batch is not None:
                done = self._run(batch, text)
                if done is not None:
                    return done
        return self._query(text, time_ms)

    def duration_adjustment(self, text: str) -> float:
        """Seconds to add to a rule's measured duration.

        Each member of a batch reports an equal share of the batch's time; the member
        that ran it measured all of it.
        """
        return self._adjust.pop(text, 0.0)

    def _run(self, batch: QueryBatch, trigger: str) -> InstantVector | None:
        texts = [self._texts[m] for m in batch.members]
        for t in texts:
            self._pending.pop(t, None)
        began = time.perf_counter()
        try:
            parts = self._query.run(batch, self._time_ms)
        except PromQLError as exc:
            log.debug("batched rule query failed, evaluating its rules alone: %s", exc)
            return None
        elapsed = time.perf_counter() - began
        share = elapsed / len(set(texts))
        for t, part in zip(texts, parts, strict=True):
            self._results[t] = part
            self._adjust[t] = share
        self._adjust[trigger] = share - elapsed
        return self._results[trigger]
