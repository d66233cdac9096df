"""Expanding alert labels and annotations: the rules' one door to the Go template engine.

`expand` and `check_template` wrap `watchkeeper.template` (Go text/template with
Prometheus's functions) with what rules know: the evaluation time and the query function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from watchkeeper.rules.rule import InstantVector
from watchkeeper.template import check_alert_template, expand_alert_template

TemplateQuery = Callable[[str, int], InstantVector]
"""The `query` template function's backend: PromQL at a time (ms)."""

ERROR_PREFIX = "<error expanding template: "
"""How a failed expansion starts (the text then stands in for the label or annotation)."""


def check_template(name: str, text: str) -> str | None:
    """Returns the template parse error ("template: NAME:1: ...") or None when it parses."""
    return check_alert_template(name, text)


def expand(
    text: str,
    *,
    name: str,
    labels: Mapping[str, str],
    external_labels: Mapping[str, str],
    external_url: str,
    value: float,
    query: TemplateQuery | None,
    time_ms: int,
) -> str:
    """Expands one label or annotation template of an alert.

    A template that fails yields Prometheus's "<error expanding template: ...>" text.
    """
    if "{{" not in text:
        return text

    bound: Callable[[str], InstantVector] | None = None
    if query is not None:
        run = query

        def bound(expr: str) -> InstantVector:
            return run(expr, time_ms)

    return expand_alert_template(
        text,
        labels,
        external_labels,
        external_url,
        value,
        bound,
        name=name,
        timestamp_ms=time_ms,
    )
