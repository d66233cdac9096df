"""The rule manager's self-metrics, under Prometheus's names (label rule_group="file;group")."""

from __future__ import annotations

from watchkeeper.instrument.metrics import Registry


class RuleMetrics:
    """Registers and holds every prometheus_rule_* metric."""

    def __init__(self, registry: Registry) -> None:
        g = ("rule_group",)
        self.evaluation_duration = registry.summary(
            "prometheus_rule_evaluation_duration_seconds", "The duration for a rule to execute."
        )
        self.group_duration = registry.summary(
            "prometheus_rule_group_duration_seconds", "The duration of rule group evaluations."
        )
        self.group_missed = registry.counter(
            "prometheus_rule_group_iterations_missed_total",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            g,
        )
        self.group_iterations = registry.counter(
            "prometheus_rule_group_iterations_total",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            g,
        )
        self.evaluations = registry.counter(
            "prometheus_rule_evaluations_total", "The total number of rule evaluations.", g
        )
        self.evaluation_failures = registry.counter(
            "prometheus_rule_evaluation_failures_total",
            "The total number of rule evaluation failures.",
            g,
        )
        self.group_interval = registry.gauge(
            "prometheus_rule_group_interval_seconds", "The interval of a rule group.", g
        )
        self.group_last_duration = registry.gauge(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            g,
        )
        self.group_last_eval_timestamp = registry.gauge(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            g,
        )
        self.group_rules = registry.gauge("prometheus_rule_group_rules", "The number of rules.", g)
        self.group_last_samples = registry.gauge(
            "prometheus_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation.",
            g,
        )

    def forget(self, key: str) -> None:
        """Drops the per-group series of a removed group."""
        for metric in (
            self.group_missed,
            self.group_iterations,
            self.evaluations,
            self.evaluation_failures,
        ):
            metric.remove(key)
        for gauge in (
            self.group_interval,
            self.group_last_duration,
            self.group_last_eval_timestamp,
            self.group_rules,
            self.group_last_samples,
        ):
            gauge.remove(key)
