"""Our remote write encoder against the real Prometheus 3.5 receiver."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.remote.codec import WRITE_HEADERS, WriteBatch, encode_write_request
from watchkeeper.testing.peers import peer_binary

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("the reference prometheus binary is not installed (../shared/peers)")
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("prometheus did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _query(url: str, query: str, at_ms: int) -> list[dict[str, object]]:
    params = urllib.parse.urlencode({"query": query, "time": f"{at_ms / 1000:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success"
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def test_prometheus_accepts_our_write_request_and_returns_the_same_samples(
    prometheus: str,
) -> None:
    now = int(time.time() * 1000) // 1000 * 1000
    t = [now - 60_000, now - 45_000, now - 30_000, now - 15_000]
    cpu = Labels.from_dict({"__name__": "wk_cpu_seconds_total", "cpu": "0", "mode": "idle"})
    odd = Labels.from_dict({"__name__": "wk_odd", "path": 'C:\\dir\n"quoted" ünï'})
    gone = Labels.from_dict({"__name__": "wk_gone", "job": "x"})
    batch = WriteBatch.from_series(
        [
            (cpu, t, [1.5, 2.25, 1e300, -0.0]),
            (odd, t[:2], [math.inf, -math.inf]),
            (gone, t[:3], [7.0, 8.0, STALE_NAN]),
        ]
    )
    req = urllib.request.Request(
        f"{prometheus}/api/v1/write",
        data=encode_write_request(batch),
        headers={**WRITE_HEADERS, "User-Agent": "watchkeeper-test"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204

    raw = _query(prometheus, "wk_cpu_seconds_total[5m]", now)
    assert len(raw) == 1
    assert raw[0]["metric"] == cpu.as_dict()
    assert raw[0]["values"] == [
        [t[0] / 1000, "1.5"],
        [t[1] / 1000, "2.25"],
        [t[2] / 1000, "1e+300"],
        [t[3] / 1000, "-0"],
    ]
    raw = _query(prometheus, "wk_odd[5m]", now)
    assert raw[0]["metric"] == odd.as_dict()
    assert [v for _, v in raw[0]["values"]] == ["+Inf", "-Inf"]  # type: ignore[attr-defined]
    # The staleness marker hides the series from instant queries after it...
    assert _query(prometheus, "wk_gone", t[2] + 1000) == []
    # ...while the samples before it are still there.
    before = _query(prometheus, "wk_gone", t[1] + 1000)
    assert before[0]["value"] == [(t[1] + 1000) / 1000, "8"]
    raw = _query(prometheus, "wk_gone[5m]", now)
    assert [v for _, v in raw[0]["values"]] == ["7", "8"]  # type: ignore[attr-defined]
