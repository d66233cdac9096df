"""The process_* metrics of client_golang's process collector, read when rendered."""

from __future__ import annotations

import resource
from pathlib import Path

from watchkeeper.instrument.metrics import Registry

RLIM_INFINITY_AS_GO = float(2**64 - 1)
"""How Go reports an unlimited rlimit (the unsigned RLIM_INFINITY)."""


def _soft_limit(kind: int) -> float:
    soft = resource.getrlimit(kind)[0]
    return RLIM_INFINITY_AS_GO if soft == resource.RLIM_INFINITY else float(soft)


def network_bytes(net_dev: Path = Path("/proc/self/net/dev")) -> tuple[float, float]:
    """Bytes received and sent on every interface of the process's network namespace.

    This is what client_golang reports as process_network_{receive,transmit}_bytes_total.
    (0, 0) where /proc is absent.
    """
    try:
        lines = net_dev.read_text().splitlines()[2:]
    except OSError:
        return 0.0, 0.0
    received = sent = 0.0
    for line in lines:
        _, _, counters = line.partition(":")
        fields = counters.split()
        if len(fields) >= 9:
            received += float(fields[0])
            sent += float(fields[8])
    return received, sent


def register_process_metrics(registry: Registry, start_time_s: float) -> None:
    """Registers the process_* gauges and counters Prometheus exports about itself."""
    import psutil  # Imported here: only servers need it, and it is slow to import.

    proc = psutil.Process()
    registry.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        callback=lambda: start_time_s,
    )
    registry.gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        callback=lambda: float(proc.memory_info().rss),
    )
    registry.gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        callback=lambda: float(proc.memory_info().vms),
    )
    registry.gauge(
        "process_virtual_memory_max_bytes",
        "Maximum amount of virtual memory available in bytes.",
        callback=lambda: _soft_limit(resource.RLIMIT_AS),
    )
    registry.counter(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        callback=lambda: sum(proc.cpu_times()[:2]),
    )
    registry.gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        callback=lambda: float(proc.num_fds()),
    )
    registry.gauge(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        callback=lambda: _soft_limit(resource.RLIMIT_NOFILE),
    )
    registry.gauge(
        "process_threads",
        "Number of OS threads in the process.",
        callback=lambda: float(proc.num_threads()),
    )
    registry.counter(
        "process_network_receive_bytes_total",
        "Number of bytes received by the process over the network.",
        callback=lambda: network_bytes()[0],
    )
    registry.counter(
        "process_network_transmit_bytes_total",
        "Number of bytes sent by the process over the network.",
        callback=lambda: network_bytes()[1],
    )


__all__ = ["network_bytes", "register_process_metrics"]
