"""Recording and alerting rules, groups and the manager, driven by a scripted query function."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher
from watchkeeper.model.value import stale_mask
from watchkeeper.promql.engine import Engine
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.rules.alerting import AlertingRule, AlertState, TemplateContext
from watchkeeper.rules.files import RuleLoadError
from watchkeeper.rules.group import Group, GroupOptions, xxhash64
from watchkeeper.rules.manager import (
    RuleManager,
    RuleManagerOptions,
    engine_query_func,
    to_notifier_alerts,
)
from watchkeeper.rules.metrics import RuleMetrics
from watchkeeper.rules.recording import RecordingRule
from watchkeeper.rules.rule import InstantVector, RuleError, RuleHealth
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.storage import MemoryStorage

MIN = 60_000


class ScriptedQuery:
    """Answers each expression with the samples last set for it (or an error)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.errors: dict[str, str] = {}
        self.calls: list[tuple[str, int]] = []

    def set(self, expr: str, *samples: tuple[dict[str, str], float]) -> None:
        self.answers[expr] = list(samples)
        self.errors.pop(expr, None)

    def fail(self, expr: str, message: str) -> None:
        self.errors[expr] = message

    def __call__(self, expr: str, time_ms: int) -> InstantVector:
        self.calls.append((expr, time_ms))
        if expr in self.errors:
            raise EvaluationError(self.errors[expr])
        samples = self.answers.get(expr, [])
        return InstantVector(
            [Labels(d.items()) for d, _ in samples],
            np.array([v for _, v in samples], dtype=np.float64),
            time_ms,
        )


def _series(storage: MemoryStorage, name: str) -> dict[Labels, list[tuple[int, float]]]:
    out: dict[Labels, list[tuple[int, float]]] = {}
    with storage.querier(0, 10**13) as q:
        sset = q.select([Matcher.equal("__name__", name)])
        for i in range(len(sset)):
            lbls, ts, vals = sset.series(i)
            out[lbls] = list(zip(ts.tolist(), vals.tolist(), strict=True))
    return out


def test_an_alert_goes_pending_then_firing_after_its_for_duration() -> None:
    q = ScriptedQuery()
    q.set("up == 0", ({"__name__": "up", "instance": "a"}, 0.0))
    rule = AlertingRule(
        "Down", "up == 0", hold_ms=2 * MIN, labels=Labels.from_strings("severity", "page")
    )
    rule.eval(0, q)
    (alert,) = rule.active_alerts()
    assert alert.state == AlertState.PENDING
    assert alert.labels == Labels.from_strings(
        "alertname", "Down", "instance", "a", "severity", "page"
    )
    rule.eval(MIN, q)
    assert rule.state() == AlertState.PENDING
    out = rule.eval(2 * MIN, q)
    assert rule.state() == AlertState.FIRING
    assert alert.fired_at_ms == 2 * MIN
    assert {str(lbl): v for lbl, v in zip(out.labels, out.values.tolist(), strict=True)} == {
        'ALERTS{alertname="Down", alertstate="firing", instance="a", severity="page"}': 1.0,
        'ALERTS_FOR_STATE{alertname="Down", instance="a", severity="page"}': 0.0,
    }


def test_a_resolved_alert_is_kept_for_fifteen_minutes_and_a_pending_one_is_dropped() -> None:
    q = ScriptedQuery()
    q.set("x", ({"i": "1"}, 1.0))
    rule = AlertingRule("A", "x")
    rule.eval(0, q)
    assert rule.state() == AlertState.FIRING
    q.set("x")
    out = rule.eval(MIN, q)
    assert len(out) == 0
    (resolved,) = rule.active.values()
    assert resolved.state == AlertState.INACTIVE
    assert resolved.resolved_at_ms == MIN
    rule.eval(MIN + 15 * MIN, q)
    assert len(rule.active) == 1
    rule.eval(MIN + 16 * MIN, q)
    assert rule.active == {}
    pending = AlertingRule("P", "x", hold_ms=10 * MIN)
    q.set("x", ({"i": "1"}, 1.0))
    pending.eval(0, q)
    q.set("x")
    pending.eval(MIN, q)
    assert pending.active == {}


def test_keep_firing_for_holds_a_firing_alert_after_its_condition_clears() -> None:
    q = ScriptedQuery()
    q.set("x", ({"i": "1"}, 1.0))
    rule = AlertingRule("K", "x", keep_firing_for_ms=2 * MIN)
    rule.eval(0, q)
    q.set("x")
    rule.eval(MIN, q)
    (alert,) = rule.active.values()
    assert alert.state == AlertState.FIRING
    assert alert.keep_firing_since_ms == MIN
    rule.eval(2 * MIN, q)
    assert alert.state == AlertState.FIRING
    rule.eval(3 * MIN, q)
    assert rule.active_alerts() == []
    assert alert.resolved_at_ms == 3 * MIN


def test_templates_expand_labels_value_and_external_labels() -> None:
    q = ScriptedQuery()
    q.set("x", ({"instance": "h1"}, 3.0))
    rule = AlertingRule(
        "T",
        "x",
        labels=Labels.from_strings("where", "{{ $labels.instance }}"),
        annotations=Labels.from_strings(
            "summary", "{{ $labels.instance }} is {{ $value }} in {{ $externalLabels.dc }}"
        ),
    )
    rule.eval(0, q, ctx=TemplateContext({"dc": "eu"}, "http://x", q))
    (alert,) = rule.active_alerts()
    assert alert.labels.get("where") == "h1"
    assert alert.annotations.get("summary") == "h1 is 3 in eu"


def test_templates_see_the_metric_name_but_the_alert_labels_do_not() -> None:
    q = ScriptedQuery()
    q.set("x", ({"__name__": "up", "instance": "h1"}, 0.0))
    rule = AlertingRule(
        "Down", "x", annotations=Labels.from_strings("summary", "{{ $labels.__name__ }} is 0")
    )
    rule.eval(0, q, ctx=TemplateContext({}, "http://x", q))
    (alert,) = rule.active_alerts()
    assert alert.annotations.get("summary") == "up is 0"
    assert alert.labels.as_dict() == {"alertname": "Down", "instance": "h1"}


def test_a_template_that_fails_puts_the_error_in_the_annotation_and_the_alert_still_fires() -> None:
    q = ScriptedQuery()
    q.set("x", ({"instance": "h1"}, 3.0))
    rule = AlertingRule("T", "x", annotations=Labels.from_strings("s", "{{ $labels.x "))
    rule.eval(0, q)
    (alert,) = rule.active_alerts()
    assert alert.state == AlertState.FIRING
    assert alert.annotations.get("s").startswith("<error expanding template: ")


def test_duplicate_alert_label_sets_and_limits_are_errors() -> None:
    q = ScriptedQuery()
    q.set("x", ({"__name__": "a", "i": "1"}, 1.0), ({"__name__": "b", "i": "1"}, 1.0))
    rule = AlertingRule("D", "x")
    with pytest.raises(RuleError, match="same labelset after applying alert labels"):
        rule.eval(0, q)
    q.set("x", ({"i": "1"}, 1.0), ({"i": "2"}, 1.0))
    with pytest.raises(RuleError, match="exceeded limit of 1 with 2 alerts"):
        rule.eval(0, q, limit=1)
    rec = RecordingRule("r", "x", Labels())
    with pytest.raises(RuleError, match="exceeded limit of 1 with 2 series"):
        rec.eval(0, q, limit=1)


def test_alerts_are_resent_after_the_resend_delay_and_resolved_ones_at_once() -> None:
    q = ScriptedQuery()
    q.set("x", ({"i": "1"}, 1.0))
    rule = AlertingRule("S", "x")
    rule.eval(0, q)
    assert len(rule.alerts_to_send(0, MIN, 15_000)) == 1
    assert rule.alerts_to_send(15_000, MIN, 15_000) == []
    (sent,) = rule.alerts_to_send(MIN, MIN, 15_000)
    assert sent.valid_until_ms == MIN + 4 * MIN
    q.set("x")
    rule.eval(75_000, q)
    (resolved,) = rule.alerts_to_send(75_000, MIN, 15_000)
    (na,) = to_notifier_alerts("x > 0", [resolved], "http://prom:9090/")
    assert na.ends_at_ms == 75_000
    assert na.generator_url == "http://prom:9090/graph?g0.expr=x+%3E+0&g0.tab=1"


def _group(
    storage: MemoryStorage, q: ScriptedQuery, rules: list[RecordingRule | AlertingRule]
) -> Group:
    opts = GroupOptions(
        appendable=storage,
        queryable=storage,
        query=q,
        metrics=RuleMetrics(Registry()),
        clock=ManualClock(),
    )
    return Group("g", "f.yml", MIN, rules, opts)


def test_a_group_records_results_and_marks_vanished_series_stale() -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()
    q.set("sum(up)", ({"job": "a"}, 2.0), ({"job": "b"}, 1.0))
    group = _group(storage, q, [RecordingRule("job:up", "sum(up)", Labels.from_strings("x", "y"))])
    group.eval(MIN)
    q.set("sum(up)", ({"job": "a"}, 3.0))
    group.eval(2 * MIN)
    series = _series(storage, "job:up")
    a = Labels.from_strings("__name__", "job:up", "job", "a", "x", "y")
    b = Labels.from_strings("__name__", "job:up", "job", "b", "x", "y")
    assert series[a] == [(MIN, 2.0), (2 * MIN, 3.0)]
    assert series[b][0] == (MIN, 1.0)
    assert bool(stale_mask(np.array([series[b][1][1]]))[0])
    assert group.rules[0].health == RuleHealth.OK


def test_a_failing_rule_reports_err_health_and_the_next_rule_still_runs() -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()
    q.fail("bad", "boom")
    q.set("good", ({"k": "v"}, 1.0))
    group = _group(
        storage, q, [RecordingRule("r1", "bad", Labels()), RecordingRule("r2", "good", Labels())]
    )
    group.eval(MIN)
    assert group.rules[0].health == RuleHealth.ERR
    assert group.rules[0].last_error == "boom"
    assert group.rules[1].health == RuleHealth.OK
    assert _series(storage, "r2")


def test_query_offset_moves_query_and_sample_time_back() -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()
    q.set("x", ({"k": "v"}, 1.0))
    group = _group(storage, q, [RecordingRule("r", "x", Labels())])
    group.query_offset_ms = 30_000
    group.eval(2 * MIN)
    assert q.calls == [("x", 90_000)]
    assert next(iter(_series(storage, "r").values())) == [(90_000, 1.0)]


def test_evaluation_timestamps_are_aligned_to_the_interval_with_a_per_group_offset() -> None:
    storage = MemoryStorage()
    group = _group(storage, ScriptedQuery(), [])
    t1 = group.eval_timestamp_ms(1_000_000_000)
    assert t1 <= 1_000_000_000 < t1 + MIN
    assert group.eval_timestamp_ms(1_000_000_000 + MIN) == t1 + MIN
    assert xxhash64(b"") == 0xEF46DB3751D8E999
    assert xxhash64(b"abc") == 0x44BC2CF5AD770999


def test_for_state_is_restored_from_alerts_for_state_after_a_restart() -> None:
    storage = MemoryStorage()
    active_at_s = 1000.0
    with storage.appender() as app:
        app.append_series(
            [Labels.from_strings("__name__", "ALERTS_FOR_STATE", "alertname", "R", "i", "1")] * 2,
            [1_000_000, 1_060_000],
            [active_at_s, active_at_s],
        )
    q = ScriptedQuery()
    q.set("x", ({"i": "1"}, 1.0))
    rule = AlertingRule("R", "x", hold_ms=30 * MIN)
    opts = GroupOptions(storage, storage, q, RuleMetrics(Registry()), ManualClock())
    group = Group("g", "f", MIN, [rule], opts, should_restore=True)
    now = 1_060_000 + 5 * MIN
    group.eval(now)
    assert rule.restored is False
    group.restore_for_state(now)
    (alert,) = rule.active_alerts()
    # Pending for 60 s before the outage: the 5 minutes of downtime do not count.
    assert alert.active_at_ms == 1_000_000 + 5 * MIN
    assert rule.restored


RULES = """\
groups:
  - name: g
    interval: 1s
    rules:
      - record: r
        expr: x
      - alert: A
        expr: x
        for: 1h
"""


async def test_the_manager_refuses_a_bad_reload_and_keeps_unchanged_groups_running(
    tmp_path: Path,
) -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()
    q.set("x", ({"k": "v"}, 1.0))
    registry = Registry()
    # NB: the groups also run on their own schedule; a clock held at MIN keeps those
    # iterations from moving the alert past its 1h `for` while the test looks at it.
    clock = ManualClock(MIN)
    manager = RuleManager(storage, storage, q, registry, clock=clock, options=RuleManagerOptions())
    path = tmp_path / "r.yml"
    path.write_text(RULES)
    await manager.update([str(path)], MIN)
    (group,) = manager.groups.values()
    group.eval(MIN)
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - alert: a\n    expr: up\n    for: 5x\n")
    with pytest.raises(RuleLoadError, match='unknown unit "x" in duration "5x"'):
        await manager.update([str(path), str(bad)], MIN)
    assert manager.groups[group.key] is group
    await manager.update([str(path)], MIN)
    assert manager.groups[group.key] is group
    rules = manager.api_rules()["groups"][0]
    assert rules["name"] == "g"
    assert rules["interval"] == 1.0
    assert [r["type"] for r in rules["rules"]] == ["recording", "alerting"]
    alerting = rules["rules"][1]
    assert alerting["state"] == "pending"
    assert alerting["duration"] == 3600.0
    assert alerting["alerts"][0]["value"] == "1e+00"
    assert manager.api_alerts()["alerts"][0]["labels"] == {"alertname": "A", "k": "v"}
    path.write_text(RULES.replace("for: 1h", "for: 2h"))
    await manager.update([str(path)], MIN)
    (new_group,) = manager.groups.values()
    assert new_group is not group
    assert new_group.alerting_rules()[0].active_alerts()[0].active_at_ms == MIN
    clock.advance(1_000)
    path.write_text("groups: []\n")
    await manager.update([str(path)], MIN)
    assert manager.groups == {}
    series = _series(storage, "r")
    assert bool(stale_mask(np.array([next(iter(series.values()))[-1][1]]))[0])
    await manager.stop()


async def test_groups_run_on_their_schedule_and_count_iterations(tmp_path: Path) -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()
    q.set("x", ({"k": "v"}, 1.0))
    registry = Registry()
    manager = RuleManager(storage, storage, q, registry)
    path = tmp_path / "r.yml"
    path.write_text(RULES.replace("interval: 1s", "interval: 100ms"))
    await manager.update([str(path)], MIN)
    await asyncio.sleep(0.5)
    await manager.stop()
    text = registry.render().decode()
    key = f"{path};g"
    assert f'prometheus_rule_group_interval_seconds{{rule_group="{key}"}} 0.1' in text
    assert f'prometheus_rule_group_rules{{rule_group="{key}"}} 2' in text
    iterations = manager.metrics.group_iterations.labels(key).value
    assert 2 <= iterations <= 6
    assert len(_series(storage, "r")) == 1


def test_a_later_rule_sees_an_earlier_rules_output_in_the_same_iteration() -> None:
    storage = MemoryStorage()
    with storage.appender() as app:
        app.append_series(
            [Labels.from_strings("__name__", "x", "k", "a")] * 2, [0, MIN], [1.0, 2.0]
        )
    query = engine_query_func(Engine(storage))
    rules: list[RecordingRule | AlertingRule] = [
        RecordingRule("first", "x * 10", Labels()),
        RecordingRule("independent", "x + 1", Labels()),
        RecordingRule("second", "first + 1", Labels()),
        AlertingRule("Big", "second > 5"),
        RecordingRule("alerts_seen", "count(ALERTS)", Labels()),
    ]
    opts = GroupOptions(storage, storage, query, RuleMetrics(Registry()), ManualClock())
    group = Group("g", "f", MIN, rules, opts)
    assert group._flush_points() == [True, False, True, True, False]
    group.eval(MIN)
    assert [v for _, v in next(iter(_series(storage, "second").values()))] == [21.0]
    assert [v for _, v in next(iter(_series(storage, "independent").values()))] == [3.0]
    assert [v for _, v in next(iter(_series(storage, "alerts_seen").values()))] == [1.0]


async def test_a_group_slower_than_its_interval_counts_missed_iterations(tmp_path: Path) -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()

    def slow(expr: str, time_ms: int) -> InstantVector:
        time.sleep(0.25)
        return q(expr, time_ms)

    registry = Registry()
    manager = RuleManager(storage, storage, slow, registry)
    path = tmp_path / "r.yml"
    path.write_text(
        "groups:\n- name: slow\n  interval: 100ms\n  rules:\n  - record: r\n    expr: x\n"
    )
    await manager.update([str(path)], MIN)
    await asyncio.sleep(1.0)
    await manager.stop()
    key = f"{path};slow"
    assert manager.metrics.group_missed.labels(key).value >= 1
    assert manager.metrics.group_iterations.labels(key).value > len(q.calls)


async def test_the_rules_api_filters_by_type_name_and_label_matchers(tmp_path: Path) -> None:
    storage = MemoryStorage()
    manager = RuleManager(storage, storage, ScriptedQuery(), Registry())
    path = tmp_path / "r.yml"
    path.write_text(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n"
        "  - alert: A\n    expr: x\n    labels: {severity: page}\n"
        "- name: h\n  rules:\n  - record: s\n    expr: x\n"
    )
    await manager.update([str(path)], MIN)
    await manager.stop()

    def names(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
        return [(g["name"], [r["name"] for r in g["rules"]]) for g in data["groups"]]

    assert names(manager.api_rules()) == [("g", ["r", "A"]), ("h", ["s"])]
    assert names(manager.api_rules(rule_type="alert")) == [("g", ["A"])]
    assert names(manager.api_rules(rule_type="record", group_names=["h"])) == [("h", ["s"])]
    assert names(manager.api_rules(match=[[Matcher.equal("severity", "page")]])) == [("g", ["A"])]
    (alerting,) = manager.api_rules(rule_type="alert", exclude_alerts=True)["groups"][0]["rules"]
    assert "alerts" not in alerting
    assert alerting["health"] == "unknown"
    assert alerting["lastEvaluation"] == "0001-01-01T00:00:00Z"


async def test_a_restarted_manager_restores_pending_time_from_alerts_for_state(
    tmp_path: Path,
) -> None:
    storage = MemoryStorage()
    now = int(time.time() * 1000)
    old_active_s = now // 1000 - 20 * 60
    state = Labels.from_strings("__name__", "ALERTS_FOR_STATE", "alertname", "Slow", "i", "1")
    with storage.appender() as app:
        stamps = list(range(now - 20 * MIN, now - MIN + 1, MIN))
        app.append_series([state] * len(stamps), stamps, [float(old_active_s)] * len(stamps))
    q = ScriptedQuery()
    q.set("x", ({"i": "1"}, 1.0))
    manager = RuleManager(storage, storage, q, Registry())
    path = tmp_path / "r.yml"
    path.write_text(
        "groups:\n- name: g\n  interval: 100ms\n  rules:\n"
        "  - alert: Slow\n    expr: x\n    for: 1h\n"
    )
    await manager.update([str(path)], MIN)
    (rule,) = manager.alerting_rules()
    for _ in range(50):
        if rule.restored:
            break
        await asyncio.sleep(0.05)
    await manager.stop()
    assert rule.restored
    (alert,) = rule.active_alerts()
    # 19 minutes were spent pending before the "outage": they still count after the restart.
    spent_ms = int(time.time() * 1000) - alert.active_at_ms
    assert 19 * MIN - 5_000 <= spent_ms <= 19 * MIN + 5_000


def test_a_failing_evaluation_marks_nothing_stale_and_the_next_success_does() -> None:
    storage = MemoryStorage()
    q = ScriptedQuery()
    q.set("x", ({"k": "v"}, 1.0))
    group = _group(storage, q, [RecordingRule("r", "x", Labels())])
    group.eval(MIN)
    q.fail("x", "boom")
    group.eval(2 * MIN)
    (points,) = _series(storage, "r").values()
    assert points == [(MIN, 1.0)]
    q.set("x")
    group.eval(3 * MIN)
    (points,) = _series(storage, "r").values()
    assert points[-1][0] == 3 * MIN
    assert bool(stale_mask(np.array([points[-1][1]]))[0])
