"""The web UI: static pages built from npm at install time, and the dashboards API."""
