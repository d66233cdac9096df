"""Benchmark: scraping many targets, ours versus real Prometheus 3.5, side by side.

A real nginx on 127.0.0.1 serves one static exposition file per target (one port per
target, so `instance` differs). Our ScrapeManager (in a worker process, ingesting into the
TSDB) and Prometheus scrape the same targets with the same prometheus.yml; Prometheus is
started once every target has been scraped twice by us (series creation is our slow part
and would otherwise steal Prometheus's CPU), then both measure a window of the same length.
Printed: CPU seconds per million samples ingested (process CPU time over the window divided
by prometheus_tsdb_head_samples_appended_total's increase) for both and their ratio, missed
scrapes (expected minus prometheus_target_interval_length_seconds_count's increase), its
quantiles, RSS, and how long our first two scrapes of every target took.

Run: .venv/bin/python benchmarks/scrape.py [--quick] [--skip-large | --only-large]
  scenario 1: 200 targets x 1,000 series every 5 s for 180 s (30 s with --quick)
  scenario 2: 1,000 targets x 1,000 series every 15 s for 120 s (45 s with --quick)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from watchkeeper.config.prometheus import load_config
from watchkeeper.instrument.metrics import Registry
from watchkeeper.scrape.manager import ScrapeManager
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.testing.peers import peer_binary

NGINX = Path("/usr/sbin/nginx")
QUANTILES = ("0.01", "0.5", "0.99")


@dataclass
class Result:
    cpu_s: float
    samples: float
    scrapes: float
    expected_scrapes: float
    interval_quantiles: dict[str, float]
    rss_mb: float
    storage: str = ""
    warmup_s: float = 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_s / (self.samples / 1e6) if self.samples else float("inf")

    @property
    def missed(self) -> float:
        return max(self.expected_scrapes - self.scrapes, 0.0)


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(int(s.getsockname()[1]))
    finally:
        for s in socks:
            s.close()
    return ports


def exposition(series: int) -> bytes:
    lines = []
    per_family = 100
    for f in range(max(series // per_family, 1)):
        name = f"bench_requests_{f}_total"
        lines.append(f"# HELP {name} Requests handled, by handler and code.")
        lines.append(f"# TYPE {name} counter")
        lines.extend(
            f'{name}{{handler="/api/v1/item/{i}",code="{200 + i % 4}",method="get"}} {1000 * f + i}'
            for i in range(min(per_family, series))
        )
    return ("\n".join(lines) + "\n").encode()


def start_nginx(root: Path, ports: list[int], series: int) -> subprocess.Popen[bytes]:
    body = root / "body.txt"
    body.write_bytes(exposition(series))
    for p in ports:
        d = root / "www" / str(p)
        d.mkdir(parents=True)
        os.link(body, d / "metrics")
    listens = "\n".join(f"    listen 127.0.0.1:{p} reuseport backlog=4096;" for p in ports)
    conf = root / "nginx.conf"
    conf.write_text(
        f"""worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 120s;
  types {{ }}
  default_type "text/plain; version=0.0.4; charset=utf-8";
  server {{
{listens}
    root {root}/www/$server_port;
    location / {{ }}
  }}
}}
"""
    )
    proc = subprocess.Popen([str(NGINX), "-p", str(root), "-c", str(conf), "-g", "daemon off;"])
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", ports[-1]), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start; see " + str(root / "error.log"))


def write_config(path: Path, ports: list[int], interval_s: int) -> None:
    targets = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    path.write_text(
        f"""global:
  scrape_interval: {interval_s}s
  scrape_timeout: {min(interval_s, 10)}s
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: [{targets}]
"""
    )


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def metric_values(text: str, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def parse_quantiles(text: str, interval: str) -> tuple[dict[str, float], float]:
    qs: dict[str, float] = {}
    count = 0.0
    for key, value in metric_values(text, "prometheus_target_interval_length_seconds").items():
        if f'interval="{interval}"' not in key:
            continue
        m = re.search(r'quantile="([^"]+)"', key)
        if m and m.group(1) in QUANTILES:
            qs[m.group(1)] = value
        if "_count" in key:
            count = value
    return qs, count


# Our side: a worker process, so its CPU time is ours alone.


async def run_ours(config: Path, data_dir: Path, warmup_s: float, window_s: float) -> Result:
    registry = Registry()
    storage_name = "TSDB"
    try:
        from watchkeeper.tsdb.db import TSDB

        storage: Any = TSDB.open(data_dir, registry=registry)
    except ImportError:
        from watchkeeper.testing.storage import MemoryStorage

        storage, storage_name = MemoryStorage(), "MemoryStorage"
    cfg = load_config(config)
    sc = cfg.scrape_configs[0]
    interval = f"{sc.scrape_interval // 1000}s"
    manager = ScrapeManager(
        storage, registry, options=ScrapeOptions(discovery_update_interval_s=0.1)
    )
    await manager.apply_config(cfg)
    task = asyncio.create_task(manager.run())
    started = time.monotonic()
    await asyncio.sleep(warmup_s)
    # NB: every target's first scrape creates its series (the costly part in Python); the
    # window measures the steady state, after each target has been scraped twice.
    while min((lp.scrapes for lp in _loops(manager)), default=0) < 2:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    warm_s = time.monotonic() - started
    print("WARM", flush=True)
    _, count0 = parse_quantiles(registry.render().decode(), interval)
    samples0 = _samples(registry, manager)
    cpu0 = _cpu()
    await asyncio.sleep(window_s)
    cpu1 = _cpu()
    qs, count1 = parse_quantiles(registry.render().decode(), interval)
    samples1 = _samples(registry, manager)
    rss = psutil.Process().memory_info().rss / 2**20
    task.cancel()
    await manager.stop()
    storage.close()
    targets = len(sc.static_configs[0].targets)
    return Result(
        cpu_s=cpu1 - cpu0,
        samples=samples1 - samples0,
        scrapes=count1 - count0,
        expected_scrapes=targets * window_s / (sc.scrape_interval / 1000),
        interval_quantiles=qs,
        rss_mb=rss,
        storage=storage_name,
        warmup_s=warm_s,
    )


def _loops(manager: ScrapeManager) -> list[Any]:
    return [lp for pool in manager.pools().values() for lp in pool.loops()]


def _samples(registry: Registry, manager: ScrapeManager) -> float:
    """Samples ingested: the TSDB's counter, else scraped samples plus 5 report series each."""
    text = registry.render().decode()
    appended = metric_values(text, "prometheus_tsdb_head_samples_appended_total")
    if appended:
        return sum(appended.values())
    return float(sum((lp.target.last_samples + 5) * lp.scrapes for lp in _loops(manager)))


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# Prometheus's side.


def measure_prometheus(
    proc: psutil.Process, port: int, *, targets: int, interval_s: int, window_s: float
) -> Result:
    url = f"http://127.0.0.1:{port}/metrics"
    t0 = proc.cpu_times()
    text0 = get_text(url)
    start = time.monotonic()
    time.sleep(window_s)
    t1 = proc.cpu_times()
    text1 = get_text(url)
    elapsed = time.monotonic() - start
    samples0 = sum(metric_values(text0, "prometheus_tsdb_head_samples_appended_total").values())
    samples1 = sum(metric_values(text1, "prometheus_tsdb_head_samples_appended_total").values())
    interval = f"{interval_s}s"
    _, count0 = parse_quantiles(text0, interval)
    qs, count1 = parse_quantiles(text1, interval)
    return Result(
        cpu_s=(t1.user + t1.system) - (t0.user + t0.system),
        samples=samples1 - samples0,
        scrapes=count1 - count0,
        expected_scrapes=targets * elapsed / interval_s,
        interval_quantiles=qs,
        rss_mb=proc.memory_info().rss / 2**20,
    )


def run_scenario(
    name: str, tmp: Path, *, targets: int, series: int, interval_s: int, window_s: float
) -> dict[str, Any]:
    prometheus = peer_binary("prometheus")
    root = tmp / re.sub(r"[^A-Za-z0-9]+", "-", name)
    root.mkdir()
    ports = free_ports(targets)
    nginx = start_nginx(root, ports, series)
    config = root / "prometheus.yml"
    write_config(config, ports, interval_s)
    warmup = interval_s * 2 + 2
    prom_proc: subprocess.Popen[bytes] | None = None
    try:
        worker = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(config),
                str(root / "ours"),
                str(warmup),
                str(window_s),
            ],
            stdout=subprocess.PIPE,
        )
        theirs: Result | None = None
        assert worker.stdout is not None
        # NB: Prometheus starts once our series exist, so neither measures the other's start.
        for line in worker.stdout:
            if line.strip() == b"WARM":
                break
        if prometheus is not None:
            prom_port = free_ports(1)[0]
            prom_proc = subprocess.Popen(
                [
                    str(prometheus),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'prom'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(warmup)
            theirs = measure_prometheus(
                psutil.Process(prom_proc.pid),
                prom_port,
                targets=targets,
                interval_s=interval_s,
                window_s=window_s,
            )
        out, _ = worker.communicate(timeout=warmup + window_s + 600)
        ours = Result(**json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        if prom_proc is not None:
            prom_proc.send_signal(signal.SIGTERM)
            prom_proc.wait(timeout=60)
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=30)
    return {"name": name, "ours": ours, "theirs": theirs, "targets": targets, "series": series}


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | who | CPU s / 1M samples | samples | scrapes (expected) | missed | "
        "interval q0.01 / q0.5 / q0.99 (s) | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for who, res in (
            ("watchkeeper (" + r["ours"].storage + ")", r["ours"]),
            ("prometheus 3.5", r["theirs"]),
        ):
            if res is None:
                continue
            q = " / ".join(f"{res.interval_quantiles.get(k, float('nan')):.3f}" for k in QUANTILES)
            lines.append(
                f"| {r['name']} | {who} | {res.cpu_per_million:.2f} | {res.samples:,.0f} | "
                f"{res.scrapes:,.0f} ({res.expected_scrapes:,.0f}) | {res.missed:,.0f} | {q} | "
                f"{res.rss_mb:,.0f} |"
            )
        lines.append(
            f"| {r['name']} | watchkeeper: first two scrapes of every target done after | "
            f"{r['ours'].warmup_s:.0f} s | | | | | |"
        )
        if r["theirs"] is not None:
            ratio = r["ours"].cpu_per_million / r["theirs"].cpu_per_million
            lines.append(f"| {r['name']} | ratio ours/theirs | {ratio:.2f} | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows (30 s and 45 s)")
    parser.add_argument("--skip-large", action="store_true", help="only scenario 1")
    parser.add_argument("--only-large", action="store_true", help="only scenario 2")
    parser.add_argument("--worker", nargs=4, metavar=("CONFIG", "DATA", "WARMUP", "WINDOW"))
    args = parser.parse_args()
    if args.worker:
        config, data, warmup, window = args.worker
        res = asyncio.run(run_ours(Path(config), Path(data), float(warmup), float(window)))
        print(json.dumps(asdict(res)))
        return
    if not NGINX.exists():
        sys.exit("nginx is not installed at /usr/sbin/nginx")
    if peer_binary("prometheus") is None:
        print("prometheus not found: measuring watchkeeper only", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="wk-bench-scrape-") as tmp:
        # NB: nginx workers drop privileges; they must be able to read the files.
        Path(tmp).chmod(0o755)
        if not args.only_large:
            results.append(
                run_scenario(
                    "200x1000 @5s",
                    Path(tmp),
                    targets=200,
                    series=1000,
                    interval_s=5,
                    window_s=30 if args.quick else 180,
                )
            )
            print(report(results), flush=True)
        if not args.skip_large:
            results.append(
                run_scenario(
                    "1000x1000 @15s",
                    Path(tmp),
                    targets=1000,
                    series=1000,
                    interval_s=15,
                    window_s=45 if args.quick else 120,
                )
            )
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(report(results))


if __name__ == "__main__":
    main()
