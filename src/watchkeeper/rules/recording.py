"""Recording rules: evaluate an expression and store the result under a new metric name."""

from __future__ import annotations

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.rules.rule import BaseRule, InstantVector, QueryFunc, RuleError


class RecordingRule(BaseRule):
    """`record: NAME` with `expr` and optional extra `labels`.

    Example:
        >>> RecordingRule("job:up:sum", "sum by (job) (up)", Labels()).name
        'job:up:sum'
    """

    rule_type = "recording"
    _relabeled: dict[Labels, Labels] = {}  # noqa: RUF012 - replaced per instance by eval
    _relabeled_key: tuple[str, Labels] | None = None

    def eval(self, ts_ms: int, query: QueryFunc, limit: int = 0) -> InstantVector:
        """Evaluates the rule at `ts_ms` and returns the samples to record.

        Raises:
            RuleError: on duplicate output label sets or when `limit` is exceeded.
            PromQLError: when the query fails.
        """
        result = query(self.query, ts_ms)
        key = (self.name, self.labels)
        prev = self._relabeled if self._relabeled_key == key else {}
        extra: dict[str, str] | None = None
        # Rules see the same series every interval: last evaluation's output label sets are
        # reused, and only new input series are relabeled.
        cache: dict[Labels, Labels] = {}
        out: list[Labels] = []
        for lbls in result.labels:
            new = prev.get(lbls)
            if new is None:
                if extra is None:
                    extra = dict(self.labels.pairs)
                    extra[METRIC_NAME] = self.name
                new = lbls.with_mapping(extra)
            cache[lbls] = new
            out.append(new)
        if len(set(out)) != len(out):
            raise RuleError(
                "vector contains metrics with the same labelset after applying rule labels"
            )
        self._relabeled, self._relabeled_key = cache, key
        if limit > 0 and len(out) > limit:
            raise RuleError(f"exceeded limit of {limit} with {len(out)} series")
        return InstantVector(out, result.values, result.timestamp_ms)

    def definition(self) -> tuple[object, ...]:
        """What identifies the rule's definition (for keeping state across reloads)."""
        return ("record", self.name, self.query, self.labels)
