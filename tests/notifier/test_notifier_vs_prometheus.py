"""The notifier's counters against Prometheus 3.5's, with an Alertmanager that comes up late.

Both servers run one always-firing alert (resent every second) to an Alertmanager on a
closed port; the real Alertmanager is started on that port once both have failed a few
times. Batches sent before discovery reported are lost without a count, failed ones count
as sent, errors and dropped, and nothing stays queued, on both servers alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port, http_get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.peers]

CONFIG = """
global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
"""

RULES = """
groups:
  - name: g
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
"""

_COUNTER = re.compile(r"^prometheus_notifications_(sent|errors|dropped)_total(?:\{.*\})? (\S+)$")


def _counters(port: int) -> dict[str, float]:
    """sent, errors and dropped totals (one Alertmanager, so one series each) and the queue."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    counters: dict[str, float] = {}
    for line in body.decode().splitlines():
        if match := _COUNTER.match(line):
            counters[match[1]] = float(match[2])
        elif line.startswith("prometheus_notifications_queue_length "):
            counters["queue"] = float(line.split()[1])
    return counters


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[dict[str, int], int]]:
    """Prometheus and Watchkeeper, ready, sending to a closed port; yields ports and that port."""
    binary = peer_binary("prometheus")
    if binary is None or peer_binary("alertmanager") is None:
        pytest.skip("the reference prometheus and alertmanager binaries are not installed")
    am_port = free_port()
    ports = {"prometheus": free_port(), "watchkeeper": free_port()}
    procs: list[ServerProcess] = []
    try:
        for name, port in ports.items():
            workdir = tmp_path / name
            workdir.mkdir()
            (workdir / "prometheus.yml").write_text(CONFIG.format(am_port=am_port))
            (workdir / "rules.yml").write_text(RULES)
            args = [
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--rules.alert.resend-delay=1s",
            ]
            command = [str(binary)] if name == "prometheus" else None
            proc = ServerProcess(args if command else ["server", *args], workdir, command=command)
            procs.append(proc.start())
        for proc, port in zip(procs, ports.values(), strict=True):
            proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
        yield ports, am_port
    finally:
        for proc in procs:
            proc.stop()


def test_failed_and_early_batches_count_as_prometheus_counts_them(
    servers: tuple[dict[str, int], int], tmp_path: Path
) -> None:
    ports, am_port = servers

    def failing_consistently(port: int) -> bool:
        counters = _counters(port)
        return (
            counters.get("sent", 0) >= 2
            and counters["errors"] == counters["sent"] == counters["dropped"]
            and counters["queue"] == 0
        )

    for name, port in ports.items():
        assert wait_until(lambda port=port: failing_consistently(port), timeout_s=20), (
            name,
            _counters(port),
        )

    binary = peer_binary("alertmanager")
    assert binary is not None
    (tmp_path / "alertmanager.yml").write_text(
        "route: {receiver: none}\nreceivers: [{name: none}]\n"
    )
    alertmanager = ServerProcess(
        [
            "--config.file=alertmanager.yml",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        tmp_path,
        command=[str(binary)],
    )
    with alertmanager.start():
        alertmanager.wait_ready(f"http://127.0.0.1:{am_port}/-/ready")

        def delivering(port: int) -> bool:
            counters = _counters(port)
            return (
                counters["sent"] >= counters["errors"] + 2
                and counters["dropped"] == counters["errors"]
                and counters["queue"] == 0
            )

        for name, port in ports.items():
            assert wait_until(lambda port=port: delivering(port), timeout_s=20), (
                name,
                _counters(port),
            )
        status, body = http_get(f"http://127.0.0.1:{am_port}/api/v2/alerts")
        assert status == 200
        assert b'"alertname":"AlwaysFiring"' in body
