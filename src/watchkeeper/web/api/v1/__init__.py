"""Prometheus's HTTP API v1: the same endpoints, parameters, JSON shapes and errors."""
