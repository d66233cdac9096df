"""Sends alerts to Alertmanagers over API v2."""
