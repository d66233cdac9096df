"""What a server answers while it drains after SIGTERM, ours against Prometheus 3.5's.

Each server evaluates one slow recording rule; SIGTERM lands just after an evaluation began,
and shutting down waits for it, so the web server still answers for a while: its 503s must
say `X-Prometheus-Stopping: true`, while /-/healthy stays 200.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port, http_get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.peers]

SLOW_QUERY = {
    # About a second of work for each engine.
    "prometheus": "sum_over_time(vector(1)[2h:1ms])",
    "watchkeeper": "sum_over_time(vector(1)[2h:1ms])",
}

CONFIG = """
global:
  evaluation_interval: 1s
rule_files: [rules.yml]
"""

RULES = """
groups:
  - name: slow
    rules:
      - record: slow
        expr: {query}
"""


def _queries_running(port: int) -> float:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith("prometheus_engine_queries "):
            return float(line.split()[1])
    raise AssertionError("prometheus_engine_queries is not exported")


def _get(url: str) -> tuple[int, dict[str, str], bytes] | None:
    """Status, headers and body; None once the server no longer accepts connections."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.parametrize("server", ["prometheus", "watchkeeper"])
def test_a_draining_server_says_it_is_stopping_in_its_503s(server: str, tmp_path: Path) -> None:
    binary = peer_binary("prometheus")
    if server == "prometheus" and binary is None:
        pytest.skip("the reference prometheus binary is not installed (../shared/peers)")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(CONFIG)
    (tmp_path / "rules.yml").write_text(RULES.format(query=SLOW_QUERY[server]))
    args = [
        "--config.file=prometheus.yml",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    command = [str(binary)] if server == "prometheus" else None
    proc = ServerProcess(args if command else ["server", *args], tmp_path, command=command)
    with proc.start():
        proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
        # SIGTERM right after an evaluation starts, so the drain lasts about a second.
        assert wait_until(lambda: _queries_running(port) == 0, timeout_s=20, interval_s=0.01)
        assert wait_until(lambda: _queries_running(port) >= 1, timeout_s=20, interval_s=0.01)
        proc.signal(signal.SIGTERM)
        ready = _get(f"http://127.0.0.1:{port}/-/ready")
        while ready is not None and ready[0] == 200:  # The signal may take a moment.
            time.sleep(0.01)
            ready = _get(f"http://127.0.0.1:{port}/-/ready")
        answers = {
            "/-/ready": ready,
            "/-/healthy": _get(f"http://127.0.0.1:{port}/-/healthy"),
            "/api/v1/query?query=1": _get(f"http://127.0.0.1:{port}/api/v1/query?query=1"),
        }
        assert ready is not None, f"no answer while stopping\n{proc.log()}"
    # NB: the drain may end between two requests (the slow evaluation finishing early on a
    # busy machine); an answer that never came is then no answer at all, not a wrong one.
    for path in ("/-/ready", "/api/v1/query?query=1"):
        answer = answers[path]
        if answer is None:
            continue
        status, headers, body = answer
        assert (status, body) == (503, b"Service Unavailable"), path
        assert headers.get("X-Prometheus-Stopping") == "true", path
    healthy = answers["/-/healthy"]
    if healthy is not None:
        assert healthy[0] == 200
        assert "X-Prometheus-Stopping" not in healthy[1]
