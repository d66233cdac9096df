"""Dashboards: validation with named fields, storage in a folder, Grafana import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchkeeper.web.ui.dashboards import (
    DashboardError,
    DashboardStore,
    import_grafana,
    validate_dashboard,
)

GRAFANA_DASHBOARD = {
    "title": "Node Overview",
    "uid": "node-overview",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {
        "list": [
            {
                "name": "instance",
                "type": "query",
                "query": {"query": "label_values(node_uname_info, instance)"},
            },
            {"name": "ds", "type": "datasource", "query": "prometheus"},
        ]
    },
    "panels": [
        {
            "type": "row",
            "title": "CPU",
            "panels": [
                {
                    "type": "timeseries",
                    "title": "CPU",
                    "gridPos": {"w": 12, "h": 8},
                    "fieldConfig": {
                        "defaults": {"unit": "percent", "custom": {"stacking": {"mode": "normal"}}}
                    },
                    "targets": [
                        {
                            "expr": "rate(node_cpu_seconds_total[$__rate_interval])",
                            "legendFormat": "{{mode}}",
                        }
                    ],
                },
            ],
        },
        {
            "type": "stat",
            "title": "Uptime",
            "targets": [{"expr": "node_time_seconds"}],
            "fieldConfig": {
                "defaults": {
                    "thresholds": {
                        "steps": [{"value": None, "color": "red"}, {"value": 60, "color": "green"}]
                    }
                }
            },
        },
        {"type": "heatmap", "title": "Latency heatmap", "targets": [{"expr": "x"}]},
        {"type": "text", "title": "Notes"},
        {"type": "table", "title": "Disks", "targets": [{"refId": "A"}]},
    ],
}


def test_grafana_import_converts_supported_panels_and_lists_the_rest() -> None:
    result = import_grafana({"dashboard": GRAFANA_DASHBOARD})
    dash = result.dashboard
    assert dash["uid"] == "node-overview"
    assert [p["type"] for p in dash["panels"]] == ["graph", "stat", "table"]
    graph = dash["panels"][0]
    assert graph["targets"] == [{"expr": "rate(node_cpu_seconds_total[5m])", "legend": "{{mode}}"}]
    assert graph["stacked"] is True
    assert graph["unit"] == "percent"
    assert dash["panels"][1]["thresholds"] == [{"value": 60, "color": "green"}]
    assert dash["variables"] == [
        {
            "name": "instance",
            "label": "instance",
            "query": "label_values(node_uname_info, instance)",
        }
    ]
    assert "panel 'Latency heatmap': type 'heatmap'" in result.unsupported
    assert "panel 'Notes': type 'text'" in result.unsupported
    assert "panel 'Disks': a target without a PromQL expr" in result.unsupported
    assert any(u.startswith("variable 'ds'") for u in result.unsupported)
    validate_dashboard(dash)


def test_invalid_dashboards_are_refused_naming_the_field() -> None:
    with pytest.raises(DashboardError, match=r"panels\[0\]\.type"):
        validate_dashboard({"uid": "a", "title": "A", "panels": [{"type": "pie"}]})
    with pytest.raises(DashboardError, match="uid"):
        validate_dashboard({"uid": "../etc", "title": "A"})
    with pytest.raises(DashboardError, match="title"):
        validate_dashboard({"uid": "a", "title": ""})


def test_store_installs_builtins_and_saves_edits(tmp_path: Path) -> None:
    store = DashboardStore(tmp_path / "dashboards")
    store.install_builtins()
    listed = {d["uid"]: d for d in store.list()}
    assert {"watchkeeper", "node-exporter"} <= set(listed)
    assert listed["node-exporter"]["builtin"] is True
    model = store.get("watchkeeper")
    assert model is not None
    model["title"] = "Edited"
    store.put("watchkeeper", model)
    assert json.loads((tmp_path / "dashboards/watchkeeper.json").read_text())["title"] == "Edited"
    store.install_builtins()
    edited = store.get("watchkeeper")
    assert edited is not None
    assert edited["title"] == "Edited"
    assert store.delete("watchkeeper")
    assert store.get("watchkeeper") is None


def test_builtin_dashboards_are_valid() -> None:
    folder = Path(__file__).resolve().parents[3] / "src/watchkeeper/web/ui/dashboards"
    for path in folder.glob("*.json"):
        validate_dashboard(json.loads(path.read_text()))
