"""Alerting rules: inactive → pending → firing, `for`, `keep_firing_for`, ALERTS series.

The state machine follows Prometheus's AlertingRule.Eval: an alert is keyed by its label
set after templating; a firing alert that disappears is resolved and kept for 15 minutes so
Alertmanager hears about it; a pending one is simply dropped.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.rules import templating
from watchkeeper.rules.metrics import TemplateMetrics
from watchkeeper.rules.rule import BaseRule, InstantVector, QueryFunc, RuleError

log = logging.getLogger(__name__)

RESOLVED_RETENTION_MS: Final = 15 * 60 * 1000
"""How long a resolved alert is kept (and re-sent) after it resolves."""

ALERT_METRIC: Final = "ALERTS"
ALERT_FOR_STATE_METRIC: Final = "ALERTS_FOR_STATE"


class AlertState(enum.Enum):
    """The state of one alert instance."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(slots=True)
class Alert:
    """One alert instance of a rule: its labels, annotations and timeline (ms, 0 = unset).

    `last_sent_at_ms` is None until the alert is first sent.
    """

    labels: Labels
    annotations: Labels
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int = 0
    resolved_at_ms: int = 0
    last_sent_at_ms: int | None = None
    valid_until_ms: int = 0
    keep_firing_since_ms: int = 0
    sub_ms_ns: int = 0

    @property
    def active_at_ns(self) -> int:
        """ActiveAt in nanoseconds, as Prometheus reports it (its clock is finer than ms)."""
        return self.active_at_ms * 1_000_000 + self.sub_ms_ns

    def needs_sending(self, ts_ms: int, resend_delay_ms: int) -> bool:
        """Tells whether the alert should go to Alertmanager now (Prometheus's needsSending)."""
        if self.state == AlertState.PENDING:
            return False
        if self.last_sent_at_ms is None or self.resolved_at_ms > self.last_sent_at_ms:
            return True
        return self.last_sent_at_ms + resend_delay_ms <= ts_ms


@dataclass(frozen=True, slots=True)
class TemplateContext:
    """What templates may use besides the alert: external labels, URL, and PromQL."""

    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    query: QueryFunc | None = None
    metrics: TemplateMetrics | None = None


class AlertingRule(BaseRule):
    """`alert: NAME` with `expr`, `for`, `keep_firing_for`, labels and annotations."""

    rule_type = "alerting"

    def __init__(
        self,
        name: str,
        query: str,
        *,
        hold_ms: int = 0,
        keep_firing_for_ms: int = 0,
        labels: Labels | None = None,
        annotations: Labels | None = None,
        restored: bool = True,
    ) -> None:
        super().__init__(name, query, labels or Labels())
        self.hold_ms = hold_ms
        self.keep_firing_for_ms = keep_firing_for_ms
        self.annotations = annotations or Labels()
        self.active: dict[Labels, Alert] = {}
        self.restored = restored
        self.sub_ms_ns = 0

    def definition(self) -> tuple[object, ...]:
        """What identifies the rule's definition (for keeping state across reloads)."""
        return (
            "alert",
            self.name,
            self.query,
            self.hold_ms,
            self.keep_firing_for_ms,
            self.labels,
            self.annotations,
        )

    def state(self) -> AlertState:
        """The highest state among the rule's alerts (inactive when it has none)."""
        best = AlertState.INACTIVE
        for a in self.active.values():
            if a.state == AlertState.FIRING:
                return AlertState.FIRING
            if a.state == AlertState.PENDING:
                best = AlertState.PENDING
        return best

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (not resolved ones), sorted by labels."""
        return sorted(
            (a for a in self.active.values() if a.state != AlertState.INACTIVE),
            key=lambda a: a.labels,
        )

    def _expand(
        self,
        text: str,
        sample_labels: Mapping[str, str],
        value: float,
        ctx: TemplateContext,
        ts_ms: int,
    ) -> str:
        result = templating.expand(
            text,
            name="__alert_" + self.name,
            labels=sample_labels,
            external_labels=ctx.external_labels,
            external_url=ctx.external_url,
            value=value,
            query=ctx.query,
            time_ms=ts_ms,
        )
        if ctx.metrics is not None:
            ctx.metrics.expanded(failed=result.startswith(templating.ERROR_PREFIX))
        if result.startswith(templating.ERROR_PREFIX):
            log.warning("expanding alert template failed: alert=%s err=%s", self.name, result)
        return result

    def eval(
        self,
        ts_ms: int,
        query: QueryFunc,
        *,
        query_offset_ms: int = 0,
        limit: int = 0,
        ctx: TemplateContext | None = None,
    ) -> InstantVector:
        """Evaluates the rule at `ts_ms`, updates alert states and returns ALERTS samples.

        Raises:
            RuleError: on duplicate alert label sets or when `limit` is exceeded.
            PromQLError: when the query fails.
        """
        ctx = ctx or TemplateContext(query=query)
        result = query(self.query, ts_ms - query_offset_ms)
        fresh: dict[Labels, Alert] = {}
        for lbls, value in zip(result.labels, result.values.tolist(), strict=True):
            # NB: templates see the sample's metric name as $labels.__name__, as in
            # Prometheus; the alert's own labels drop it.
            sample_labels = lbls.as_dict()
            updates = {k: self._expand(v, sample_labels, value, ctx, ts_ms) for k, v in self.labels}
            updates["alertname"] = self.name
            alert_labels = lbls.without_name().with_mapping(updates)
            annotations = Labels(
                (k, self._expand(v, sample_labels, value, ctx, ts_ms)) for k, v in self.annotations
            )
            if alert_labels in fresh:
                raise RuleError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            fresh[alert_labels] = Alert(
                alert_labels,
                annotations,
                AlertState.PENDING,
                value,
                active_at_ms=ts_ms,
                sub_ms_ns=self.sub_ms_ns,
            )
        for key, alert in fresh.items():
            current = self.active.get(key)
            if current is not None and current.state != AlertState.INACTIVE:
                current.value = alert.value
                current.annotations = alert.annotations
                continue
            self.active[key] = alert

        out_labels: list[Labels] = []
        out_values: list[float] = []
        active_pending = 0
        sample_ts = ts_ms - query_offset_ms
        for key, alert in list(self.active.items()):
            if key not in fresh:
                keep_firing = False
                if alert.state == AlertState.FIRING and self.keep_firing_for_ms > 0:
                    if alert.keep_firing_since_ms == 0:
                        alert.keep_firing_since_ms = ts_ms
                    if ts_ms - alert.keep_firing_since_ms < self.keep_firing_for_ms:
                        keep_firing = True
                if alert.state == AlertState.PENDING or (
                    alert.resolved_at_ms and ts_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS
                ):
                    del self.active[key]
                if alert.state != AlertState.INACTIVE and not keep_firing:
                    alert.state = AlertState.INACTIVE
                    alert.resolved_at_ms = ts_ms
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since_ms = 0
            active_pending += 1
            if alert.state == AlertState.PENDING and ts_ms - alert.active_at_ms >= self.hold_ms:
                alert.state = AlertState.FIRING
                alert.fired_at_ms = ts_ms
            if self.restored:
                out_labels.append(
                    alert.labels.with_mapping(
                        {METRIC_NAME: ALERT_METRIC, "alertstate": alert.state.value}
                    )
                )
                out_values.append(1.0)
                out_labels.append(alert.labels.with_mapping({METRIC_NAME: ALERT_FOR_STATE_METRIC}))
                # Whole seconds, as Prometheus's float64(ActiveAt.Unix()).
                out_values.append(float(alert.active_at_ms // 1000))
        if limit > 0 and active_pending > limit:
            self.active = {}
            raise RuleError(f"exceeded limit of {limit} with {active_pending} alerts")
        return InstantVector(out_labels, np.asarray(out_values, dtype=np.float64), sample_ts)

    def alerts_to_send(self, ts_ms: int, resend_delay_ms: int, interval_ms: int) -> list[Alert]:
        """Marks alerts as sent and returns copies to hand to the notifier."""
        out = []
        delta = max(resend_delay_ms, interval_ms)
        for alert in self.active.values():
            if alert.needs_sending(ts_ms, resend_delay_ms):
                alert.last_sent_at_ms = ts_ms
                alert.valid_until_ms = ts_ms + 4 * delta
                out.append(replace(alert))
        return out

    def copy_state_from(self, other: AlertingRule) -> None:
        """Takes over the alerts of the rule this one replaces on reload."""
        self.active = {k: replace(a) for k, a in other.active.items()}
        self.restored = other.restored

    def for_state_matchers_labels(self) -> Labels:
        """The labels every ALERTS_FOR_STATE series of this rule carries (for restoring)."""
        return Labels((k, v) for k, v in self.labels if "{{" not in v).with_mapping(
            {METRIC_NAME: ALERT_FOR_STATE_METRIC, "alertname": self.name}
        )

    def restore_for_state(
        self,
        ts_ms: int,
        series: Mapping[Labels, tuple[int, float]],
        *,
        grace_period_ms: int,
    ) -> None:
        """Restores `for` state of pending alerts from ALERTS_FOR_STATE samples.

        `series` maps alert labels to the (timestamp, value) of their newest
        ALERTS_FOR_STATE sample within the outage tolerance.
        """
        if self.hold_ms < grace_period_ms:
            return
        for key, alert in self.active.items():
            found = series.get(key)
            if found is None:
                continue
            down_at_ms, active_at_s = found
            # Prometheus works in whole seconds here (time.Unix(t/1000, 0), int64(v)).
            down_at_ms = down_at_ms // 1000 * 1000
            restored_active_ms = int(active_at_s) * 1000
            spent = down_at_ms - restored_active_ms
            remaining = self.hold_ms - spent
            if remaining <= 0:
                pass
            elif remaining < grace_period_ms:
                restored_active_ms = ts_ms + grace_period_ms - self.hold_ms
            else:
                restored_active_ms += ts_ms - down_at_ms
            alert.active_at_ms = restored_active_ms
            alert.sub_ms_ns = 0
        self.restored = True
