"""The HTTP API v1, federation and the web UI."""
