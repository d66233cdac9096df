"""Groups evaluate same-shaped rules as one query and record exactly what rules alone would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.value import QueryResult
from watchkeeper.rules.alerting import AlertingRule
from watchkeeper.rules.group import Group, GroupOptions
from watchkeeper.rules.manager import engine_query_func, vector_from_result
from watchkeeper.rules.metrics import RuleMetrics
from watchkeeper.rules.recording import RecordingRule
from watchkeeper.rules.rule import InstantVector, RuleHealth
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.storage import MemoryStorage

MIN = 60_000
SHARDS = 20


class CountingEngine(Engine):
    """An engine that counts the expressions it evaluates."""

    evaluated = 0

    def eval_expr(self, expr: Any, time_ms: int, **kw: Any) -> QueryResult:
        self.evaluated += 1
        return super().eval_expr(expr, time_ms, **kw)


def _data() -> MemoryStorage:
    db = MemoryStorage()
    rng = np.random.default_rng(7)
    with db.appender() as app:
        for shard in range(SHARDS):
            for i in range(1 + shard % 3):
                lbls = Labels.from_strings(
                    "__name__", "req", "shard", str(shard), "instance", f"h{i}", "job", f"j{i % 2}"
                )
                values = np.cumsum(rng.integers(0, 50, 11)).astype(np.float64)
                app.append_series([lbls] * 11, [t * MIN for t in range(11)], values.tolist())
    return db


def _recorded(db: MemoryStorage, name: str) -> dict[Labels, list[tuple[int, bytes]]]:
    """A recorded metric's samples, values as their bits (so NaN equals NaN)."""
    with db.querier(0, 10**13) as q:
        sset = q.select([Matcher.equal("__name__", name)])
        out = {}
        for i in range(len(sset)):
            lbls, ts, vals = sset.series(i)
            out[lbls] = [
                (t, np.float64(v).tobytes()) for t, v in zip(ts.tolist(), vals, strict=True)
            ]
    return out


def _group(db: MemoryStorage, query: Any, rules: list[RecordingRule | AlertingRule]) -> Group:
    opts = GroupOptions(db, db, query, RuleMetrics(Registry()), ManualClock())
    return Group("g", "f.yml", MIN, rules, opts)


def _shard_rules(template: str) -> list[RecordingRule | AlertingRule]:
    return [
        RecordingRule(f"shard:req:{s}", template.replace("S", str(s)), Labels())
        for s in range(SHARDS)
    ]


@pytest.mark.parametrize(
    "template",
    [
        'sum by (job) (rate(req{shard="S"}[5m]))',
        'rate(req{shard="S"}[5m]) * 60',
        'max without (instance) (req{shard="S"})',
        'topk(1, increase(req{shard="S"}[3m]))',
    ],
)
def test_a_batched_group_records_what_rules_evaluated_alone_record(template: str) -> None:
    batched_db, alone_db = _data(), _data()
    engine = CountingEngine(batched_db)
    batched = _group(batched_db, engine_query_func(engine), _shard_rules(template))
    plain = Engine(alone_db)
    alone = _group(
        alone_db,
        lambda text, t: vector_from_result(plain.instant_query(text, t)),
        _shard_rules(template),
    )
    for t in (5 * MIN, 6 * MIN, 7 * MIN):
        batched.eval(t)
        alone.eval(t)
    assert engine.evaluated == 3  # one query per iteration for the twenty rules
    for s in range(SHARDS):
        assert _recorded(batched_db, f"shard:req:{s}") == _recorded(alone_db, f"shard:req:{s}")
    assert all(r.health is RuleHealth.OK for r in batched.rules)
    durations = [r.evaluation_seconds for r in batched.rules]
    assert min(durations) > 0
    # Each member reports a share of the batch: none carries most of it.
    assert max(durations) < 0.5 * sum(durations)


def test_a_batch_that_fails_falls_back_so_only_the_failing_rule_reports_the_error() -> None:
    db = _data()
    engine = CountingEngine(db)
    # Shards with three instances (two of them in job j0) collapse into duplicate label sets.
    rules = _shard_rules('label_replace(req{shard="S"}, "instance", "same", "", "")')
    group = _group(db, engine_query_func(engine), rules)
    group.eval(5 * MIN)
    assert engine.evaluated == 1 + SHARDS
    for s, rule in enumerate(group.rules):
        if s % 3 != 2:
            assert rule.health is RuleHealth.OK
            assert len(_recorded(db, f"shard:req:{s}")) == 1 + s % 3
        else:
            assert rule.health is RuleHealth.ERR
            assert "same labelset" in rule.last_error


def test_a_batch_over_the_sample_limit_falls_back_to_rules_alone() -> None:
    db = _data()
    engine = CountingEngine(db, EngineOptions(max_samples=40))
    group = _group(db, engine_query_func(engine), _shard_rules('rate(req{shard="S"}[5m])'))
    group.eval(5 * MIN)
    assert engine.evaluated == 1 + SHARDS
    assert all(r.health is RuleHealth.OK for r in group.rules)


def test_rules_reading_what_their_group_records_are_not_batched() -> None:
    db = _data()
    engine = CountingEngine(db)
    rules: list[RecordingRule | AlertingRule] = [
        RecordingRule("req", 'req{shard="0"} * 0 + 1', Labels()),
        *_shard_rules('sum(req{shard="S"})'),
        AlertingRule("Down", 'ALERTS{alertname="x"} > 0'),
        AlertingRule("Down2", 'ALERTS{alertname="y"} > 0'),
    ]
    group = _group(db, engine_query_func(engine), rules)
    group.eval(5 * MIN)
    assert engine.evaluated == len(rules)
    assert group._batches() == []


def test_alerting_rules_of_one_shape_are_batched_and_fire_alone() -> None:
    db = _data()
    engine = CountingEngine(db)
    rules: list[RecordingRule | AlertingRule] = [
        AlertingRule(f"Busy{s}", f'rate(req{{shard="{s}"}}[5m]) > 0.2') for s in range(SHARDS)
    ]
    group = _group(db, engine_query_func(engine), rules)
    group.eval(5 * MIN)
    assert engine.evaluated == 1
    plain = Engine(db)
    for s, rule in enumerate(group.rules):
        assert isinstance(rule, AlertingRule)
        alone = vector_from_result(plain.instant_query(rule.query, 5 * MIN))
        assert sorted(str(a.labels) for a in rule.active_alerts()) == sorted(
            str(lb.with_labels(alertname=f"Busy{s}")) for lb in _without_name(alone)
        )


def _without_name(v: InstantVector) -> list[Labels]:
    return [lb.without("__name__") for lb in v.labels]
