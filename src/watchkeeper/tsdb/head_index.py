"""The head's series index: postings (a roaring bitmap of refs per label pair).

Matchers resolve to bitmaps exactly as Prometheus's `PostingsForMatchers`: a matcher that
matches the empty value also selects series that lack the label.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from pyroaring import BitMap

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import Matcher, MatchType, literal_alternatives

FILTER_SERIES_BELOW: Final = 64
"""Up to this many candidate series, matchers are checked on labels rather than postings."""


def _satisfies(labels: Labels | None, matchers: Sequence[Matcher]) -> bool:
    return labels is not None and all(m.matches(labels.get(m.name)) for m in matchers)


class PostingsIndex:
    """Label pairs to bitmaps of series refs. Not thread-safe: the head locks around it."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[str, BitMap]] = {}
        self.all = BitMap()

    def add(self, ref: int, labels: Labels) -> None:
        """Indexes a series."""
        self.all.add(ref)
        for name, value in labels.pairs:
            values = self._postings.get(name)
            if values is None:
                values = self._postings[name] = {}
            bm = values.get(value)
            if bm is None:
                values[value] = BitMap([ref])
            else:
                bm.add(ref)

    def remove(self, ref: int, labels: Labels) -> None:
        """Removes a series from the index."""
        self.all.discard(ref)
        for name, value in labels.pairs:
            values = self._postings.get(name)
            if values is None:
                continue
            bm = values.get(value)
            if bm is None:
                continue
            bm.discard(ref)
            if not bm:
                del values[value]
                if not values:
                    del self._postings[name]

    def _values_matching(self, m: Matcher, *, want: bool) -> Iterable[BitMap]:
        values = self._postings.get(m.name, {})
        if m.type in (MatchType.EQUAL, MatchType.NOT_EQUAL):
            hit = (m.type is MatchType.EQUAL) == want
            if hit:
                bm = values.get(m.value)
                return [bm] if bm is not None else []
            return [bm for v, bm in values.items() if v != m.value]
        literals = literal_alternatives(m.value)
        if literals is not None:
            hit = (m.type is MatchType.REGEX) == want
            if hit:
                return [values[v] for v in literals if v in values]
            return [bm for v, bm in values.items() if v not in literals]
        return [bm for v, bm in values.items() if m.matches(v) == want]

    def postings_for_matcher(self, m: Matcher) -> BitMap:
        """Returns the refs of series that satisfy one matcher."""
        if m.matches_empty():
            excluded = BitMap.union(BitMap(), *self._values_matching(m, want=False))
            return self.all - excluded
        return BitMap.union(BitMap(), *self._values_matching(m, want=True))

    def select(
        self,
        matchers: Sequence[Matcher],
        labels_of: Callable[[int], Labels | None] | None = None,
    ) -> BitMap:
        """Returns the refs of series that satisfy every matcher (all series for none).

        With `labels_of`, once the equality matchers leave a few series, the other
        matchers are checked on those series' labels instead of scanning every value of
        their label (a regex over thousands of values for one series).
        """
        if not matchers:
            return BitMap(self.all)
        # NB: cheap, selective matchers first so that the intersection shrinks early.
        ordered = sorted(matchers, key=lambda m: (m.matches_empty(), m.type is not MatchType.EQUAL))
        result: BitMap | None = None
        for i, m in enumerate(ordered):
            if (
                labels_of is not None
                and result is not None
                and m.type is not MatchType.EQUAL
                and len(result) <= FILTER_SERIES_BELOW
            ):
                return BitMap(r for r in result if _satisfies(labels_of(r), ordered[i:]))
            bm = self.postings_for_matcher(m)
            result = bm if result is None else result & bm
            if not result:
                break
        return result if result is not None else BitMap()

    def label_names(self, refs: BitMap | None = None) -> list[str]:
        """Returns sorted label names (of the given series, when given)."""
        if refs is None:
            return sorted(self._postings)
        return sorted(
            name
            for name, values in self._postings.items()
            if any(bm.intersect(refs) for bm in values.values())
        )

    def label_values(self, name: str, refs: BitMap | None = None) -> list[str]:
        """Returns sorted values of a label (over the given series, when given)."""
        values = self._postings.get(name, {})
        if refs is None:
            return sorted(values)
        return sorted(v for v, bm in values.items() if bm.intersect(refs))

    def num_label_pairs(self) -> int:
        """The number of distinct label pairs."""
        return sum(len(v) for v in self._postings.values())

    def stats(self, limit: int = 10) -> dict[str, list[tuple[str, int]]]:
        """Cardinality statistics as /api/v1/status/tsdb reports them (top `limit` each)."""
        metrics = [(v, len(bm)) for v, bm in self._postings.get(METRIC_NAME, {}).items()]
        value_counts: list[tuple[str, int]] = []
        memory: list[tuple[str, int]] = []
        pairs: list[tuple[str, int]] = []
        for name, values in self._postings.items():
            value_counts.append((name, len(values)))
            size = 0
            for v, bm in values.items():
                n = len(bm)
                size += len(v.encode()) * n
                pairs.append((f"{name}={v}", n))
            memory.append((name, size))

        def top(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
            return heapq.nlargest(limit, items, key=lambda kv: (kv[1], kv[0]))

        return {
            "seriesCountByMetricName": top(metrics),
            "labelValueCountByLabelName": top(value_counts),
            "memoryInBytesByLabelName": top(memory),
            "seriesCountByLabelValuePair": top(pairs),
        }
