"""Watchkeeper: a Prometheus-compatible monitoring stack and metric-driven release controller."""

__version__ = "0.1.0"
