"""Our exposition parser against the real Prometheus 3.5: same series, same values."""

from __future__ import annotations

import http.server
import json
import math
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.model.exposition import parse_exposition
from watchkeeper.testing.peers import peer_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT_BODY = (
    "# HELP req_total Requests.\n"
    "# TYPE req_total counter\n"
    'req_total{code="200",path="C:\\\\dir\\\\x",msg="a \\"quoted\\" word\\nnext"} 1027\n'
    'req_total{code = "500" , path="/",}\t3\n'
    "\n"
    "# TYPE lat histogram\n"
    'lat_bucket{le="0.5"} 1\n'
    'lat_bucket{le="1"} 2\n'
    'lat_bucket{le="+Inf"} 3\n'
    "lat_sum 1.5e3\n"
    "lat_count 3\n"
    "# TYPE q summary\n"
    'q{quantile="0.50"} NaN\n'
    'q{quantile="1"} -Inf\n'
    '{"my.dotted.metric","ünï label"="ÿes"} 42\n'
    "# A free comment.\n"
    "plain 0.000001\n"
)

OM_BODY = (
    "# TYPE foo_seconds counter\n"
    "# UNIT foo_seconds seconds\n"
    '# HELP foo_seconds Help with \\"quotes\\".\n'
    'foo_seconds_total{a="b"} 17.5 # {trace_id="abc"} 1.0 1700000000.5\n'
    'foo_seconds_created{a="b"} 1700000000\n'
    "# TYPE g gauge\n"
    'g{x="1"} +Inf\n'
    "# TYPE h histogram\n"
    'h_bucket{le="1"} 0\n'
    'h_bucket{le="+Inf"} 4\n'
    "h_count 4\n"
    "h_sum 2\n"
    "# EOF\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def target() -> Iterator[tuple[str, dict[str, tuple[str, bytes]]]]:
    """A tiny HTTP server whose /metrics body and content type a test sets."""
    state: dict[str, tuple[str, bytes]] = {"body": ("text/plain; version=0.0.4", b"")}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body = state["body"]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _prometheus(tmp_path: Path, target_addr: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("the reference prometheus binary is not installed (../shared/peers)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: t\n    static_configs:\n"
        f"      - targets: ['{target_addr}']\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def _query(url: str, query: str) -> list[dict[str, object]]:
    params = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=5) as resp:
        body = json.loads(resp.read())
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def _scraped(url: str, n: int) -> dict[frozenset[tuple[str, str]], str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            result = _query(url, '{job="t",__name__!~"up|scrape_.*"}')
        except (urllib.error.URLError, ConnectionError):
            result = []
        if len(result) >= n:
            out = {}
            for r in result:
                metric = dict(r["metric"])  # type: ignore[call-overload]
                metric.pop("job")
                metric.pop("instance")
                out[frozenset(metric.items())] = r["value"][1]  # type: ignore[index]
            return out
        time.sleep(0.3)
    pytest.fail("prometheus did not scrape the target")


def _ours(body: bytes, content_type: str) -> dict[frozenset[tuple[str, str]], str]:
    parsed = parse_exposition(body, content_type)
    out = {}
    for lbls, value in zip(parsed.labels(), parsed.values.tolist(), strict=True):
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "+Inf" if value > 0 else "-Inf"
        else:
            text = repr(value)
        out[frozenset(lbls.pairs)] = text
    return out


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain; version=0.0.4; charset=utf-8", TEXT_BODY.encode()),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", OM_BODY.encode()),
    ],
    ids=["text", "openmetrics"],
)
def test_prometheus_ingests_the_same_series_and_values(
    tmp_path: Path,
    target: tuple[str, dict[str, tuple[str, bytes]]],
    content_type: str,
    body: bytes,
) -> None:
    addr, state = target
    state["body"] = (content_type, body)
    ours = _ours(body, content_type)
    proc, url = _prometheus(tmp_path, addr)
    try:
        theirs = _scraped(url, len(ours))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert set(theirs) == set(ours)
    for key, text in theirs.items():
        assert float(text) == float(ours[key]) or (text == "NaN" and ours[key] == "NaN")
