"""The remote-write receiver and /federate in process."""

from __future__ import annotations

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN, STALE_NAN_BITS
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.web import StaticConfigInfo, encode_write_request, make_api_deps
from watchkeeper.web.app import WebOptions, create_app

Client = TestClient[web.Request, web.Application]
HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


async def _client(
    aiohttp_client: AiohttpClient, db: MemoryStorage, *, receiver: bool = False
) -> Client:
    deps = make_api_deps(db, clock=ManualClock(10_000))
    deps.config = StaticConfigInfo(external=Labels.from_dict({"replica": "a", "job": "ext"}))
    options = WebOptions(enable_remote_write_receiver=receiver)
    return await aiohttp_client(create_app(deps, options))


def _all(db: MemoryStorage) -> dict[Labels, tuple[list[int], list[int]]]:
    from watchkeeper.model.matchers import Matcher, MatchType

    with db.querier(-(2**62), 2**62) as q:
        ss = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
    out = {}
    for i in range(len(ss)):
        lbl, ts, vals = ss.series(i)
        out[lbl] = (ts.tolist(), vals.view(np.uint64).tolist())
    return out


async def test_remote_write_stores_samples_with_exact_bits(aiohttp_client: AiohttpClient) -> None:
    db = MemoryStorage()
    client = await _client(aiohttp_client, db, receiver=True)
    lbl = Labels.from_dict({"__name__": "m", "a": "1"})
    body = encode_write_request([(lbl, [1000, 2000, 3000], [0.1, STALE_NAN, -0.0])])
    resp = await client.post("/api/v1/write", data=body, headers=HEADERS)
    assert resp.status == 204, await resp.text()
    ts, bits = _all(db)[lbl]
    assert ts == [1000, 2000, 3000]
    assert bits == [
        np.float64(0.1).view(np.uint64),
        STALE_NAN_BITS,
        np.float64(-0.0).view(np.uint64),
    ]


async def test_remote_write_is_refused_unless_enabled(aiohttp_client: AiohttpClient) -> None:
    client = await _client(aiohttp_client, MemoryStorage())
    resp = await client.post("/api/v1/write", data=b"", headers=HEADERS)
    assert resp.status == 404


async def test_remote_write_refuses_bad_bodies_and_media_types(
    aiohttp_client: AiohttpClient,
) -> None:
    db = MemoryStorage()
    client = await _client(aiohttp_client, db, receiver=True)
    resp = await client.post("/api/v1/write", data=b"\xff\xff\xff garbage", headers=HEADERS)
    assert resp.status == 400
    resp = await client.post("/api/v1/write", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    proto2 = {
        **HEADERS,
        "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    }
    resp = await client.post("/api/v1/write", data=b"x", headers=proto2)
    assert resp.status == 415
    assert _all(db) == {}


async def test_out_of_order_samples_roll_the_request_back_with_400(
    aiohttp_client: AiohttpClient,
) -> None:
    db = MemoryStorage()
    client = await _client(aiohttp_client, db, receiver=True)
    a = Labels.from_dict({"__name__": "a"})
    b = Labels.from_dict({"__name__": "b"})
    resp = await client.post(
        "/api/v1/write", data=encode_write_request([(a, [5000], [1.0])]), headers=HEADERS
    )
    assert resp.status == 204
    late = encode_write_request([(b, [1000], [1.0]), (a, [1000], [2.0])])
    resp = await client.post("/api/v1/write", data=late, headers=HEADERS)
    assert (resp.status, await resp.text()) == (400, "out of order sample\n")
    assert b not in _all(db) or _all(db)[b] == ([], [])


async def test_federate_answers_latest_samples_with_external_labels(
    aiohttp_client: AiohttpClient,
) -> None:
    db = MemoryStorage()
    with db.appender() as app:
        up1 = Labels.from_dict({"__name__": "up", "job": "api", "instance": "x"})
        up2 = Labels.from_dict({"__name__": "up", "job": "web"})
        gone = Labels.from_dict({"__name__": "up", "job": "gone"})
        old = Labels.from_dict({"__name__": "up", "job": "old"})
        app.append_series([up1, up1], [1000, 9000], [0.0, 1.0])
        app.append_series([up2], [8000], [2.5e-7])
        app.append_series([gone, gone], [8000, 9000], [1.0, STALE_NAN])
        app.append_series([old], [-400_000], [1.0])
        other = Labels.from_dict({"__name__": "aaa"})
        app.append_series([other], [9500], [3.0])
    client = await _client(aiohttp_client, db)
    resp = await client.get("/federate", params=[("match[]", "up"), ("match[]", "aaa")])
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert await resp.text() == (
        "# TYPE aaa untyped\n"
        'aaa{job="ext",replica="a"} 3 9500\n'
        "# TYPE up untyped\n"
        'up{instance="x",job="api",replica="a"} 1 9000\n'
        'up{job="web",replica="a"} 2.5e-07 8000\n'
    )
    resp = await client.get("/federate", params={"match[]": "up{"})
    assert resp.status == 400
