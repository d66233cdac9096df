"""Target groups: what service discovery produces and scrape consumes.

A group is a list of targets (label sets that hold at least `__address__`) plus labels
common to all of them, named by a `source` that is unique within its provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ADDRESS_LABEL = "__address__"
"""The label that holds a target's host:port."""


class TargetGroupError(ValueError):
    """Raised when a target group read from a file or an HTTP response is malformed."""


@dataclass(slots=True)
class TargetGroup:
    """Targets that share labels and a source (e.g. "file.json:0")."""

    targets: list[dict[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    source: str = ""


def _check_labels(labels: Any, where: str) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise TargetGroupError(f"{where}: labels must be a mapping of label names to values")
    out: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not name:
            raise TargetGroupError(f'{where}: "{name}" is not a valid label name')
        if not isinstance(value, str):
            raise TargetGroupError(f"{where}: label {name}: value must be a string")
        out[name] = value
    return out


def groups_from_data(data: Any, source_prefix: str) -> list[TargetGroup]:
    """Builds groups from decoded JSON or YAML: a list of {targets: [...], labels: {...}}.

    Sources are "<source_prefix>:<index>", as Prometheus names them.

    Raises:
        TargetGroupError: naming the group and the problem.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise TargetGroupError("expected a list of target groups")
    groups: list[TargetGroup] = []
    for i, item in enumerate(data):
        where = f"target group {i}"
        if item is None:
            raise TargetGroupError("nil target group item found")
        if not isinstance(item, dict):
            raise TargetGroupError(f"{where}: expected a mapping with targets and labels")
        unknown = set(item) - {"targets", "labels"}
        if unknown:
            raise TargetGroupError(f"{where}: unknown field {min(unknown)!r}")
        targets = item.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise TargetGroupError(f"{where}: targets must be a list of strings")
        groups.append(
            TargetGroup(
                targets=[{ADDRESS_LABEL: t} for t in targets],
                labels=_check_labels(item.get("labels"), where),
                source=f"{source_prefix}:{i}",
            )
        )
    return groups
