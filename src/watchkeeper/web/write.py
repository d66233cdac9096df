"""POST /api/v1/write: the remote-write 1.0 receiver.

The body is a snappy-compressed `prometheus.WriteRequest`, decoded in columns by the
remote stage's `watchkeeper.remote.codec.decode_write_request`. Samples keep their exact
float bits (staleness markers included); series without a metric name or with a repeated
label name are skipped. As in Prometheus, one rejected sample (out
of order, duplicate, out of bounds, too old) rolls the whole request back and answers
400 with the reason, so the sender does not retry; success is 204.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiohttp import web

from watchkeeper.remote.codec import RemoteCodecError, decode_write_request
from watchkeeper.storage.interface import Appendable, StorageError


def _rejection(result: Any) -> str:
    if result.out_of_order:
        return "out of order sample"
    if result.duplicate:
        return "duplicate sample for timestamp"
    if result.out_of_bounds:
        return "out of bounds"
    return "too old sample"


async def remote_write_handler(request: web.Request, sink: Appendable) -> web.StreamResponse:
    """Handles one remote-write 1.0 request into `sink`."""
    content_type = request.headers.get("Content-Type", "application/x-protobuf")
    media, _, params = content_type.partition(";")
    if media.strip() != "application/x-protobuf":
        return web.Response(
            status=415,
            text=f"expected application/x-protobuf as the first (media) part, got {content_type} "
            "content-type\n",
        )
    proto = ""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key == "proto":
            proto = value
    if proto and proto != "prometheus.WriteRequest":
        return web.Response(
            status=415,
            text=f"unknown remote write protobuf message {proto}, "
            "supported: prometheus.WriteRequest\n",
        )
    encoding = request.headers.get("Content-Encoding", "snappy")
    if encoding != "snappy":
        return web.Response(
            status=415,
            text=f"{encoding} encoding (compression) is not accepted by this server; "
            "only snappy is acceptable\n",
        )
    body = await request.read()
    try:
        batch = await asyncio.to_thread(decode_write_request, body)
    except RemoteCodecError as exc:
        return web.Response(status=400, text=f"{exc}\n")
    if not batch.labels:
        return web.Response(status=204)
    counts = np.diff(batch.offsets)
    # NB: as in Prometheus, a series without a metric name is skipped, not an error.
    valid = np.fromiter((bool(lbl.name) for lbl in batch.labels), dtype=np.bool_)
    valid[list(batch.invalid_series)] = False
    sample_mask = np.repeat(valid, counts)
    app = sink.appender()
    try:
        refs = app.refs([lbl for lbl, ok in zip(batch.labels, valid.tolist(), strict=True) if ok])
        sample_refs = np.repeat(refs, counts[valid])
        ts = batch.timestamps_ms[sample_mask]
        vals = batch.values[sample_mask]
        result = app.append(sample_refs, ts, vals)
        if result.rejected:
            app.rollback()
            return web.Response(status=400, text=f"{_rejection(result)}\n")
        app.commit()
    except StorageError as exc:
        app.rollback()
        return web.Response(status=500, text=f"{exc}\n")
    return web.Response(status=204)
