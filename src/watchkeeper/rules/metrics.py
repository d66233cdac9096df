"""The rule manager's self-metrics, under Prometheus's names (label rule_group="file;group")."""

from __future__ import annotations

from watchkeeper.instrument.metrics import Registry

EVALUATION_QUANTILES = (0.5, 0.9, 0.99)
"""The quantiles Prometheus exports for single rule evaluations."""

GROUP_QUANTILES = (0.01, 0.05, 0.5, 0.9, 0.99)
"""The quantiles Prometheus exports for whole rule group evaluations."""


class TemplateMetrics:
    """Counts Go-template expansions of alert labels and annotations, as Prometheus does."""

    def __init__(self, registry: Registry) -> None:
        self.expansions = registry.counter(
            "prometheus_template_text_expansions_total",
            "The total number of template text expansions.",
        )
        self.failures = registry.counter(
            "prometheus_template_text_expansion_failures_total",
            "The total number of template text expansion failures.",
        )

    def expanded(self, *, failed: bool) -> None:
        """Counts one expansion."""
        self.expansions.inc()
        if failed:
            self.failures.inc()


class RuleMetrics:
    """Registers and holds every prometheus_rule_* metric."""

    def __init__(self, registry: Registry) -> None:
        g = ("rule_group",)
        self.templates = TemplateMetrics(registry)
        self.evaluation_duration = registry.summary(
            "prometheus_rule_evaluation_duration_seconds",
            "The duration for a rule to execute.",
            objectives=EVALUATION_QUANTILES,
        )
        self.group_duration = registry.summary(
            "prometheus_rule_group_duration_seconds",
            "The duration of rule group evaluations.",
            objectives=GROUP_QUANTILES,
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
        self.group_last_rule_duration_sum = registry.gauge(
            "prometheus_rule_group_last_rule_duration_sum_seconds",
            "The sum of time in seconds it took to evaluate each rule in the group regardless of "
            "concurrency. This should be higher than the group duration if rules are evaluated "
            "concurrently.",
            g,
        )
        self.group_last_restore_duration = registry.gauge(
            "prometheus_rule_group_last_restore_duration_seconds",
            "The duration of the last alert rules alerts restoration using the `ALERTS_FOR_STATE` "
            "series.",
            g,
        )

    def init_group(self, key: str) -> None:
        """Creates a new group's series at zero, so they exist before anything happens."""
        for metric in (
            self.group_missed,
            self.group_iterations,
            self.evaluations,
            self.evaluation_failures,
        ):
            metric.labels(key)
        for gauge in (
            self.group_last_duration,
            self.group_last_eval_timestamp,
            self.group_last_samples,
            self.group_last_rule_duration_sum,
        ):
            gauge.labels(key)

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
            self.group_last_rule_duration_sum,
            self.group_last_restore_duration,
        ):
            gauge.remove(key)
