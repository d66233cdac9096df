"""Dashboards kept as JSON files in a folder, and import of Grafana dashboard JSON.

A dashboard is a JSON object: uid, title, time.from ("now-1h"), variables (name, label,
query "label_values(metric, label)") and panels (type graph|stat|gauge|table, title,
gridPos {w, h} on a 24-column grid, targets [{expr, legend}], unit, stacked, min, max,
thresholds [{value, color}]). Built-in dashboards ship with the package and are copied into
the folder on first start, after which they are ordinary, editable files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

PANEL_TYPES: Final = frozenset({"graph", "stat", "gauge", "table"})
_UID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_GRAFANA_TYPES: Final = {
    "graph": "graph",
    "timeseries": "graph",
    "stat": "stat",
    "singlestat": "stat",
    "gauge": "gauge",
    "bargauge": "gauge",
    "table": "table",
    "table-old": "table",
}
_GRAFANA_UNITS: Final = {
    "percent": "percent",
    "percentunit": "percentunit",
    "bytes": "bytes",
    "decbytes": "bytes",
    "s": "seconds",
    "ms": "ms",
}


class DashboardError(ValueError):
    """Raised when a dashboard is invalid; the message names the field."""


def validate_dashboard(model: Any) -> dict[str, Any]:
    """Checks a dashboard model and returns it; raises DashboardError naming the bad field."""
    if not isinstance(model, dict):
        raise DashboardError("dashboard: expected a JSON object")
    uid = model.get("uid")
    if not isinstance(uid, str) or not _UID_RE.match(uid):
        raise DashboardError("uid: must be 1-100 letters, digits, '.', '_' or '-'")
    if not isinstance(model.get("title"), str) or not model["title"].strip():
        raise DashboardError("title: must be a non-empty string")
    panels = model.get("panels", [])
    if not isinstance(panels, list):
        raise DashboardError("panels: expected a list")
    for i, panel in enumerate(panels):
        if not isinstance(panel, dict):
            raise DashboardError(f"panels[{i}]: expected an object")
        if panel.get("type") not in PANEL_TYPES:
            raise DashboardError(
                f"panels[{i}].type: must be one of {', '.join(sorted(PANEL_TYPES))}"
            )
        targets = panel.get("targets", [])
        if not isinstance(targets, list) or not all(
            isinstance(t, dict) and isinstance(t.get("expr"), str) for t in targets
        ):
            raise DashboardError(f"panels[{i}].targets: expected a list of {{expr, legend}}")
    variables = model.get("variables", [])
    if not isinstance(variables, list) or not all(
        isinstance(v, dict) and isinstance(v.get("name"), str) for v in variables
    ):
        raise DashboardError("variables: expected a list of {name, query}")
    return model


@dataclass(slots=True)
class GrafanaImport:
    """The result of converting a Grafana dashboard: our model and what was left out."""

    dashboard: dict[str, Any]
    unsupported: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower()
    return slug[:90] or "imported"


def _grafana_expr(expr: str) -> str:
    """Maps Grafana's built-in interval variables to fixed ranges we understand."""
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("${__rate_interval}", "5m")
        .replace("$__interval", "1m")
        .replace("${__interval}", "1m")
        .replace("$__range", "1h")
        .replace("${__range}", "1h")
    )


def _flatten_panels(panels: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        if not isinstance(panel, dict):
            continue
        if panel.get("type") == "row":
            out.extend(_flatten_panels(panel.get("panels", [])))
        else:
            out.append(panel)
    return out


def import_grafana(grafana: Any) -> GrafanaImport:
    """Converts Grafana dashboard JSON (graph/timeseries, stat, gauge, table panels).

    Panels of other types, non-Prometheus targets and unsupported variable kinds are left
    out and listed in `unsupported`.
    """
    if isinstance(grafana, dict) and isinstance(grafana.get("dashboard"), dict):
        grafana = grafana["dashboard"]
    if not isinstance(grafana, dict):
        raise DashboardError("grafana: expected a dashboard JSON object")
    title = str(grafana.get("title") or "Imported dashboard")
    result = GrafanaImport(
        {
            "uid": _slug(str(grafana.get("uid") or title)),
            "title": title,
            "time": {"from": str((grafana.get("time") or {}).get("from", "now-1h"))},
            "variables": [],
            "panels": [],
        }
    )
    rows: list[Any] = grafana.get("panels") or []
    for legacy_row in grafana.get("rows") or []:
        if isinstance(legacy_row, dict):
            rows.extend(legacy_row.get("panels") or [])
    for panel in _flatten_panels(rows):
        kind = _GRAFANA_TYPES.get(str(panel.get("type")))
        name = str(panel.get("title") or panel.get("type"))
        if kind is None:
            result.unsupported.append(f"panel {name!r}: type {panel.get('type')!r}")
            continue
        targets = []
        for target in panel.get("targets") or []:
            if not isinstance(target, dict):
                continue
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                result.unsupported.append(f"panel {name!r}: a target without a PromQL expr")
                continue
            legend = str(target.get("legendFormat") or "")
            targets.append(
                {"expr": _grafana_expr(expr), "legend": "" if legend == "__auto" else legend}
            )
        grid = panel.get("gridPos") or {}
        defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
        converted: dict[str, Any] = {
            "type": kind,
            "title": str(panel.get("title") or ""),
            "gridPos": {"w": int(grid.get("w", 12)), "h": int(grid.get("h", 8))},
            "targets": targets,
        }
        unit = _GRAFANA_UNITS.get(str(defaults.get("unit") or panel.get("format") or ""))
        if unit:
            converted["unit"] = unit
        stacking = ((defaults.get("custom") or {}).get("stacking") or {}).get("mode")
        if panel.get("stack") or stacking in ("normal", "percent"):
            converted["stacked"] = True
        for key in ("min", "max"):
            if isinstance(defaults.get(key), int | float):
                converted[key] = defaults[key]
        steps = ((defaults.get("thresholds") or {}).get("steps")) or []
        thresholds = [
            {"value": s["value"], "color": s.get("color", "green")}
            for s in steps
            if isinstance(s, dict) and isinstance(s.get("value"), int | float)
        ]
        if thresholds:
            converted["thresholds"] = thresholds
        result.dashboard["panels"].append(converted)
    for var in (grafana.get("templating") or {}).get("list") or []:
        if not isinstance(var, dict):
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if (
            var.get("type") == "query"
            and isinstance(query, str)
            and query.startswith("label_values(")
        ):
            result.dashboard["variables"].append(
                {
                    "name": str(var.get("name")),
                    "label": str(var.get("label") or var.get("name")),
                    "query": query,
                }
            )
        elif var.get("type") in ("custom", "constant") and isinstance(query, str):
            result.dashboard["variables"].append(
                {
                    "name": str(var.get("name")),
                    "label": str(var.get("label") or var.get("name")),
                    "options": [o.strip() for o in query.split(",") if o.strip()],
                }
            )
        else:
            result.unsupported.append(
                f"variable {var.get('name')!r}: type {var.get('type')!r} query {query!r}"
            )
    return result


class DashboardStore:
    """Dashboards as `<uid>.json` files in one folder; writes are atomic."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def install_builtins(self) -> None:
        """Copies the built-in dashboards into the folder where they are missing."""
        self.folder.mkdir(parents=True, exist_ok=True)
        source = resources.files("watchkeeper.web.ui").joinpath("dashboards")
        for entry in source.iterdir():
            if entry.name.endswith(".json") and not (self.folder / entry.name).exists():
                (self.folder / entry.name).write_text(
                    entry.read_text(encoding="utf-8"), encoding="utf-8"
                )

    def _path(self, uid: str) -> Path:
        if not _UID_RE.match(uid):
            raise DashboardError("uid: must be 1-100 letters, digits, '.', '_' or '-'")
        return self.folder / f"{uid}.json"

    def list(self) -> list[dict[str, Any]]:
        """Summaries of every dashboard, by title."""
        out = []
        builtin_names = {
            e.name for e in resources.files("watchkeeper.web.ui").joinpath("dashboards").iterdir()
        }
        for path in sorted(self.folder.glob("*.json")):
            try:
                model = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(model, dict):
                out.append(
                    {
                        "uid": path.stem,
                        "title": str(model.get("title", path.stem)),
                        "panels": len(model.get("panels") or []),
                        "builtin": path.name in builtin_names,
                    }
                )
        return sorted(out, key=lambda d: d["title"].lower())

    def get(self, uid: str) -> dict[str, Any] | None:
        """Returns a dashboard, or None."""
        path = self._path(uid)
        if not path.exists():
            return None
        model: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return model

    def put(self, uid: str, model: Any) -> dict[str, Any]:
        """Validates and saves a dashboard under `uid`."""
        checked = validate_dashboard(model)
        if checked["uid"] != uid:
            raise DashboardError(f"uid: the body's uid {checked['uid']!r} differs from {uid!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(checked, f, indent=2, ensure_ascii=False)
        os.replace(tmp, self._path(uid))
        return checked

    def delete(self, uid: str) -> bool:
        """Deletes a dashboard; tells whether it existed."""
        path = self._path(uid)
        if path.exists():
            path.unlink()
            return True
        return False
