"""The process_* metrics Prometheus exports about itself, read from this very process."""

from __future__ import annotations

import os
import resource
from pathlib import Path

from watchkeeper.instrument.metrics import Registry
from watchkeeper.instrument.process import network_bytes, register_process_metrics

NET_DEV = (
    "Inter-|   Receive                    |  Transmit\n"
    " face |bytes packets errs drop fifo frame compressed multicast|bytes packets ...\n"
    "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
    "  eth0: 52000 300 0 0 0 0 0 0 7000 90 0 0 0 0 0 0\n"
)


def _values(registry: Registry) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in registry.render().decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_network_bytes_sum_every_interface_of_the_namespace(tmp_path: Path) -> None:
    net_dev = tmp_path / "dev"
    net_dev.write_text(NET_DEV)
    assert network_bytes(net_dev) == (53000.0, 8000.0)


def test_network_bytes_are_zero_without_proc(tmp_path: Path) -> None:
    assert network_bytes(tmp_path / "missing") == (0.0, 0.0)


def test_the_process_metrics_describe_this_process() -> None:
    registry = Registry()
    register_process_metrics(registry, start_time_s=1234.5)
    values = _values(registry)
    soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert values["process_start_time_seconds"] == 1234.5
    assert values["process_max_fds"] == (
        float(2**64 - 1) if soft_nofile == resource.RLIM_INFINITY else soft_nofile
    )
    assert 0 < values["process_open_fds"] <= values["process_max_fds"]
    assert values["process_resident_memory_bytes"] > 0
    assert values["process_virtual_memory_max_bytes"] > 0
    assert values["process_cpu_seconds_total"] > 0
    if os.path.exists("/proc/self/net/dev"):
        assert values["process_network_receive_bytes_total"] >= 0
    text = registry.render().decode()
    assert "# TYPE process_network_transmit_bytes_total counter" in text
    assert "# TYPE process_max_fds gauge" in text
