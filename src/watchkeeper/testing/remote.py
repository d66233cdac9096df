"""Sending remote-write requests in tests, to our receiver or to a real Prometheus."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Final

REMOTE_WRITE_HEADERS: Final = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
"""The headers of a remote-write 1.0 request (the body is a snappy-compressed WriteRequest)."""


def post_remote_write(url: str, body: bytes, *, timeout_s: float = 30.0) -> int:
    """POSTs an encoded WriteRequest to `url` and returns the HTTP status, errors included."""
    req = urllib.request.Request(url, data=body, headers=REMOTE_WRITE_HEADERS, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
