"""Benchmark: recording-rule group evaluation, ours against Prometheus 3.5 on the same data.

10,000 recording rules (10 groups of 1,000) over 100,000 series, 15 s evaluation interval.
Each rule is `sum by (job) (rate(bench_requests_total{shard="<i>"}[5m]))` over 10 series.
Ours runs over the TSDB; Prometheus gets the same samples through its remote-write
receiver and reports prometheus_rule_group_last_duration_seconds.

Groups evaluate rules of one shape as one batched query (watchkeeper.promql.batch);
--no-batch evaluates every rule alone.

Run: .venv/bin/python benchmarks/rules.py [--quick] [--no-prometheus] [--no-batch]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import cramjam
import numpy as np

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.promql.engine import Engine
from watchkeeper.remote.codec import WriteBatch, encode_write_request
from watchkeeper.rules.files import load_rule_files
from watchkeeper.rules.group import GroupOptions
from watchkeeper.rules.manager import build_groups, engine_query_func
from watchkeeper.rules.metrics import RuleMetrics
from watchkeeper.rules.rule import InstantVector, QueryFunc
from watchkeeper.testing.peers import peer_binary
from watchkeeper.tsdb.db import TSDB

STEP_MS = 15_000


def write_rules(path: Path, groups: int, rules_per_group: int) -> None:
    lines = ["groups:"]
    shard = 0
    for g in range(groups):
        lines += [f"  - name: bench_{g}", "    interval: 15s", "    rules:"]
        for _ in range(rules_per_group):
            lines += [
                f"      - record: shard:bench_requests:rate5m_{shard}",
                f'        expr: sum by (job) (rate(bench_requests_total{{shard="{shard}"}}[5m]))',
            ]
            shard += 1
    path.write_text("\n".join(lines) + "\n")


def make_series(shards: int, per_shard: int) -> list[Labels]:
    return [
        Labels.from_strings(
            "__name__",
            "bench_requests_total",
            "shard",
            str(s),
            "instance",
            f"host-{i}:9100",
            "job",
            f"job-{i % 2}",
        )
        for s in range(shards)
        for i in range(per_shard)
    ]


def sample_matrix(n_series: int, points: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    stamps = end_ms - STEP_MS * np.arange(points - 1, -1, -1, dtype=np.int64)
    rng = np.random.default_rng(0)
    increments = rng.integers(0, 100, size=(n_series, points)).astype(np.float64)
    return stamps, np.cumsum(increments, axis=1)


def write_request(series: list[Labels], stamps: np.ndarray, values: np.ndarray) -> bytes:
    """An uncompressed WriteRequest: series i has `values[i]` at the shared `stamps`."""
    n, points = values.shape
    batch = WriteBatch(
        list(series),
        np.arange(n + 1, dtype=np.int64) * points,
        np.tile(np.asarray(stamps, dtype=np.int64), n),
        np.ascontiguousarray(values, dtype=np.float64).reshape(-1),
    )
    return encode_write_request(batch, compress=False)


def run_ours(  # noqa: PLR0917 - a script's helper
    tmp: Path,
    rule_file: Path,
    series: list[Labels],
    stamps: np.ndarray,
    values: np.ndarray,
    batch: bool,
) -> list[float]:
    db = TSDB.open(tmp / "ours")
    try:
        with db.appender() as app:
            refs = app.refs(series)
            for j, t in enumerate(stamps.tolist()):
                app.append(refs, np.full(len(series), t, dtype=np.int64), values[:, j].copy())
        query = engine_query_func(Engine(db))
        if not batch:
            query = _without_batching(query)
        opts = GroupOptions(
            appendable=db,
            queryable=db,
            query=query,
            metrics=RuleMetrics(Registry()),
            clock=_Clock(),
        )
        groups = build_groups(load_rule_files([str(rule_file)]), STEP_MS, opts)
        durations: list[float] = []
        eval_ts = int(stamps[-1])
        for g in groups.values():
            g.run_iteration(eval_ts - STEP_MS)  # warm-up: parses every expression once
        for g in groups.values():
            g.run_iteration(eval_ts)
            durations.append(g.evaluation_seconds)
        return durations
    finally:
        db.close()


def _without_batching(query: QueryFunc) -> QueryFunc:
    """The same query function, hiding the batch planning (every rule evaluated alone)."""

    def alone(text: str, time_ms: int) -> InstantVector:
        return query(text, time_ms)

    return alone


class _Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_prometheus(  # noqa: PLR0917 - a script's helper
    tmp: Path,
    rule_file: Path,
    series: list[Labels],
    stamps: np.ndarray,
    values: np.ndarray,
    groups: int,
) -> list[float] | None:
    binary = peer_binary("prometheus")
    if binary is None:
        print("prometheus not installed: skipping the reference run")
        return None
    port = _free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text(f"global:\n  evaluation_interval: 15s\nrule_files: [{rule_file}]\n")
    proc = subprocess.Popen(
        [
            str(binary),
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp / 'prom'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        batch = 2000
        for lo in range(0, len(series), batch):
            body = write_request(series[lo : lo + batch], stamps, values[lo : lo + batch])
            req = urllib.request.Request(
                f"{base}/api/v1/write",
                data=bytes(cramjam.snappy.compress_raw(body)),
                headers={
                    "Content-Type": "application/x-protobuf",
                    "Content-Encoding": "snappy",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            )
            with urllib.request.urlopen(req, timeout=60):
                pass
        # Wait until every group has evaluated twice after the data arrived.
        pattern = re.compile(
            r'prometheus_rule_group_last_duration_seconds\{rule_group="[^"]*"\} (\S+)'
        )
        iter_re = re.compile(r'prometheus_rule_group_iterations_total\{rule_group="[^"]*"\} (\S+)')
        start_iters: list[float] | None = None
        deadline = time.time() + 120
        while time.time() < deadline:
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
                text = r.read().decode()
            iters = [float(x) for x in iter_re.findall(text)]
            if len(iters) == groups:
                if start_iters is None:
                    start_iters = iters
                elif all(b - a >= 2 for a, b in zip(start_iters, iters, strict=True)):
                    return [float(x) for x in pattern.findall(text)]
            time.sleep(1)
        print("prometheus did not evaluate every group twice within 120 s")
        return None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 rules over 10,000 series")
    parser.add_argument("--no-prometheus", action="store_true", help="skip the reference run")
    parser.add_argument(
        "--no-batch", action="store_true", help="evaluate every rule alone (no batching)"
    )
    args = parser.parse_args()
    groups, per_group = (2, 500) if args.quick else (10, 1000)
    shards = groups * per_group
    per_shard = 10
    points = 41  # 10 minutes at 15 s
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rule_file = tmp / "rules.yml"
        write_rules(rule_file, groups, per_group)
        end_ms = (int(time.time() * 1000) // STEP_MS) * STEP_MS
        series = make_series(shards, per_shard)
        stamps, values = sample_matrix(len(series), points, end_ms)
        print(f"{shards} recording rules in {groups} groups over {len(series)} series")
        ours = run_ours(tmp, rule_file, series, stamps, values, not args.no_batch)
        print(f"ours:       {statistics.mean(ours):8.3f} s per group iteration (mean)")
        theirs = (
            None
            if args.no_prometheus
            else run_prometheus(tmp, rule_file, series, stamps, values, groups)
        )
        if theirs:
            print(f"prometheus: {statistics.mean(theirs):8.3f} s per group iteration (mean)")
            print(f"ratio ours/prometheus: {statistics.mean(ours) / statistics.mean(theirs):.1f}")


if __name__ == "__main__":
    main()
