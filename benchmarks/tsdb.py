"""TSDB benchmark: disk bytes/sample, append and read throughput, head RSS, vs Prometheus.

Run `python benchmarks/tsdb.py [--quick]`. It generates node_exporter-like data (counters
with resets, gauges, histogram buckets; 15 s interval; seeded), writes it as OpenMetrics,
loads it into Prometheus with `promtool tsdb create-blocks-from openmetrics` and into ours
with the same importer as `watchkeeper tsdb import openmetrics`, compacts both fully (a real
Prometheus server compacts its directory; ours runs the same leveled planner), and prints
bytes/sample on disk. It then measures append throughput into our TSDB (head + WAL, batches
of 1,000 series), read throughput of all series × the whole range from blocks into arrays,
and head RSS per active series (ours in a child process; Prometheus filled through its
remote-write receiver, time-ordered requests carrying every series). Medians of several runs.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cramjam
import numpy as np
import numpy.typing as npt
import psutil

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.remote.codec import WriteBatch, encode_write_request
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.testing.peers import peer_binary
from watchkeeper.tsdb.block import block_dirs, open_blocks, write_block
from watchkeeper.tsdb.compact import compact, exponential_ranges, plan_compaction
from watchkeeper.tsdb.tools.importer import import_openmetrics

STEP_MS = 15_000
TWO_H = 7_200_000
RANGES = [r for r in exponential_ranges(TWO_H, 10, 3) if r <= 36 * 3_600_000]  # 15d retention
ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]


@dataclass
class Family:
    name: str
    type: str
    labels: list[dict[str, str]]
    values: npt.NDArray[np.float64]  # (series, steps)
    host: npt.NDArray[np.int64]  # host index per series


def _counter(
    rng: np.random.Generator,
    shape: tuple[int, int],
    mean: float,
    decimals: int,
    resets: float = 0.0,
) -> npt.NDArray[np.float64]:
    inc = rng.gamma(4.0, mean / 4.0, size=shape)
    vals = np.cumsum(np.round(inc, decimals), axis=1) + np.round(
        rng.random((shape[0], 1)) * mean * 1e4, decimals
    )
    if resets:
        for i in np.flatnonzero(rng.random(shape[0]) < resets):
            at = int(rng.integers(1, shape[1]))
            vals[i, at:] -= vals[i, at - 1]
    return np.round(vals, decimals)


def generate(n_hosts: int, steps: int, seed: int = 0) -> list[Family]:
    """Builds node_exporter-like families for n_hosts targets."""
    rng = np.random.default_rng(seed)
    fams: list[Family] = []

    def add(
        name: str,
        mtype: str,
        per_host: list[dict[str, str]],
        make: Callable[[int], npt.NDArray[np.float64]],
    ) -> None:
        labels = [
            {"instance": f"host-{h:04d}:9100", "job": "node", **extra}
            for h in range(n_hosts)
            for extra in per_host
        ]
        host = np.repeat(np.arange(n_hosts), len(per_host))
        fams.append(Family(name, mtype, labels, make(len(labels)), host))

    modes = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"]
    cpu = [{"cpu": str(c), "mode": m} for c in range(4) for m in modes]
    add("node_cpu_seconds", "counter", cpu, lambda n: _counter(rng, (n, steps), 2.0, 2))
    for mem in [
        "MemFree",
        "MemAvailable",
        "Cached",
        "Buffers",
        "Active",
        "Inactive",
        "Dirty",
        "Slab",
    ]:
        add(
            f"node_memory_{mem}_bytes",
            "gauge",
            [{}],
            lambda n: (
                4096.0
                * np.maximum(
                    1, 2_000_000 + np.cumsum(rng.integers(-200, 201, size=(n, steps)), axis=1)
                )
            ),
        )
    for load in ["1", "5", "15"]:
        add(
            f"node_load{load}",
            "gauge",
            [{}],
            lambda n: np.round(
                np.abs(1.5 + np.cumsum(rng.normal(0, 0.05, size=(n, steps)), axis=1)), 2
            ).astype(np.float64),
        )
    devs = [{"device": d} for d in ["eth0", "eth1", "lo"]]
    for d in ["receive", "transmit"]:
        add(
            f"node_network_{d}_bytes",
            "counter",
            devs,
            lambda n: _counter(rng, (n, steps), 1e5, 0, resets=0.1),
        )
        add(
            f"node_network_{d}_packets",
            "counter",
            devs,
            lambda n: _counter(rng, (n, steps), 300, 0, resets=0.1),
        )
    disks = [{"device": d} for d in ["sda", "sdb"]]
    add("node_disk_read_bytes", "counter", disks, lambda n: _counter(rng, (n, steps), 5e4, 0))
    add("node_disk_written_bytes", "counter", disks, lambda n: _counter(rng, (n, steps), 2e5, 0))
    add("node_disk_io_time_seconds", "counter", disks, lambda n: _counter(rng, (n, steps), 0.2, 3))
    add("node_disk_reads_completed", "counter", disks, lambda n: _counter(rng, (n, steps), 20, 0))
    mounts = [{"mountpoint": m, "fstype": "ext4"} for m in ["/", "/home", "/var"]]
    add(
        "node_filesystem_size_bytes",
        "gauge",
        mounts,
        lambda n: np.repeat(4096.0 * rng.integers(10**6, 10**8, size=(n, 1)), steps, axis=1),
    )
    add(
        "node_filesystem_avail_bytes",
        "gauge",
        mounts,
        lambda n: (
            4096.0 * np.maximum(1, 5e6 + np.cumsum(rng.integers(-50, 40, size=(n, steps)), axis=1))
        ),
    )
    add(
        "node_filesystem_free_bytes",
        "gauge",
        mounts,
        lambda n: (
            4096.0 * np.maximum(1, 6e6 + np.cumsum(rng.integers(-50, 40, size=(n, steps)), axis=1))
        ),
    )
    les = [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    ]
    handlers = ["/", "/api"]
    per_host = [{"handler": h, "le": le} for h in handlers for le in les]
    per_host += [{"handler": h, "__suffix__": sfx} for h in handlers for sfx in ("_sum", "_count")]

    def hist(n: int) -> npt.NDArray[np.float64]:
        hosts = n // len(per_host)
        nh = hosts * len(handlers)
        reqs = rng.poisson(50, size=(nh, steps))
        shares = np.cumsum(rng.dirichlet(np.ones(len(les)), size=nh), axis=1)
        shares[:, -1] = 1.0
        buckets = np.cumsum(np.floor(reqs[:, None, :] * shares[:, :, None]), axis=2)
        sums = np.round(np.cumsum(rng.gamma(2, 1.5, size=(nh, steps)), axis=1), 6)
        buckets = buckets.reshape(hosts, len(handlers) * len(les), steps)
        tail = np.stack([sums, buckets.reshape(nh, len(les), steps)[:, -1, :]], axis=1)
        tail = tail.reshape(hosts, len(handlers) * 2, steps)
        return np.concatenate([buckets, tail], axis=1).reshape(n, steps)

    add("http_request_duration_seconds", "histogram", per_host, hist)
    add("up", "gauge", [{}], lambda n: np.ones((n, steps)))
    add(
        "node_boot_time_seconds",
        "gauge",
        [{}],
        lambda n: np.repeat(
            rng.integers(1_690_000_000, 1_700_000_000, size=(n, 1)).astype(float), steps, axis=1
        ),
    )
    add("scrape_duration_seconds", "gauge", [{}], lambda n: rng.gamma(4, 0.005, size=(n, steps)))
    add("scrape_samples_scraped", "gauge", [{}], lambda n: np.full((n, steps), 104.0))
    return fams


def write_openmetrics(
    fams: list[Family], path: Path, t0_ms: int, steps: int, offsets_ms: npt.NDArray[np.int64]
) -> int:
    """Writes families as OpenMetrics (series by series; timestamps in seconds)."""
    n = 0
    host_ts: dict[int, list[str]] = {}
    with path.open("w") as f:
        for fam in fams:
            base = fam.name
            suffix = "_total" if fam.type == "counter" else ""
            if fam.type == "histogram":
                f.write(f"# TYPE {base} histogram\n")
            else:
                f.write(f"# TYPE {base} {fam.type}\n")
            for i, lbls in enumerate(fam.labels):
                h = int(fam.host[i])
                if h not in host_ts:
                    ts = t0_ms + int(offsets_ms[h]) + np.arange(steps) * STEP_MS
                    host_ts[h] = [f"{t // 1000}.{t % 1000:03d}" for t in ts.tolist()]
                extra = lbls.get("__suffix__")
                name = base + (extra or "_bucket") if fam.type == "histogram" else base + suffix
                body = ",".join(f'{k}="{v}"' for k, v in lbls.items() if k != "__suffix__")
                prefix = f"{name}{{{body}}} "
                f.write(
                    "\n".join(
                        prefix + repr(v) + " " + t
                        for v, t in zip(fam.values[i].tolist(), host_ts[h], strict=True)
                    )
                )
                f.write("\n")
                n += steps
        f.write("# EOF\n")
    return n


def dir_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for d in paths for p in d.rglob("*") if p.is_file())


def compact_ours(data: Path) -> None:
    """Runs our leveled planner and compactor until there is nothing left to do."""
    while True:
        blocks = open_blocks(data)
        plan = plan_compaction([b.meta for b in blocks], RANGES)
        if not plan:
            for b in blocks:
                b.close()
            return
        chosen = [b for b in blocks if b.path in plan[0]]
        compact(chosen, data)
        for b in blocks:
            b.close()
        for b in chosen:
            shutil.rmtree(b.path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prometheus(data: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    prom = peer_binary("prometheus")
    assert prom is not None
    port = free_port()
    cfg = data.parent / f"prom-{port}.yml"
    cfg.write_text("global:\n  scrape_interval: 15s\n")
    proc = subprocess.Popen(
        [
            str(prom),
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/-/ready")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("prometheus did not become ready")


def compact_prometheus(data: Path, settle_s: float) -> None:
    """Lets a real Prometheus server compact the directory until the block set is stable."""
    proc, _ = start_prometheus(data, [])
    try:
        last: list[str] = []
        stable_since = time.monotonic()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            now = sorted(p.name for p in block_dirs_any(data))
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > settle_s:
                break
            time.sleep(2)
    finally:
        proc.terminate()
        proc.wait(60)


def block_dirs_any(data: Path) -> list[Path]:
    return sorted(
        p for p in data.iterdir() if p.is_dir() and (p / "meta.json").exists() and len(p.name) == 26
    )


def bench_disk(tmp: Path, n_hosts: int, steps: int, t0: int, report: dict[str, object]) -> None:
    fams = generate(n_hosts, steps)
    n_series = sum(len(f.labels) for f in fams)
    offsets = np.random.default_rng(1).integers(0, STEP_MS, size=n_hosts)
    om = tmp / "data.om"
    t = time.perf_counter()
    n_samples = write_openmetrics(fams, om, t0, steps, offsets)
    del fams
    gc.collect()
    print(
        f"generated {n_series} series, {n_samples} samples, {om.stat().st_size / 1e9:.2f} GB "
        f"OpenMetrics in {time.perf_counter() - t:.0f}s",
        flush=True,
    )
    report.update(series=n_series, samples=n_samples)

    promtool = peer_binary("promtool")
    prom_dir = tmp / "prom"
    if promtool is not None and peer_binary("prometheus") is not None:
        t = time.perf_counter()
        subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(om), str(prom_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        report["prometheus_import_s"] = round(time.perf_counter() - t, 1)
        report["prometheus_bytes_per_sample_2h_blocks"] = round(
            dir_bytes(block_dirs_any(prom_dir)) / n_samples, 3
        )
        compact_prometheus(prom_dir, settle_s=75)
        prom_blocks = block_dirs_any(prom_dir)
        report["prometheus_blocks_after_compaction"] = len(prom_blocks)
        report["prometheus_bytes_per_sample"] = round(dir_bytes(prom_blocks) / n_samples, 3)
    else:
        print("prometheus/promtool not found: skipping the reference side", flush=True)

    ours = tmp / "ours"
    t = time.perf_counter()
    import_openmetrics(om, ours)
    report["ours_import_s"] = round(time.perf_counter() - t, 1)
    report["ours_bytes_per_sample_2h_blocks"] = round(dir_bytes(block_dirs(ours)) / n_samples, 3)
    t = time.perf_counter()
    compact_ours(ours)
    report["ours_compaction_s"] = round(time.perf_counter() - t, 1)
    report["ours_blocks_after_compaction"] = len(block_dirs(ours))
    report["ours_bytes_per_sample"] = round(dir_bytes(block_dirs(ours)) / n_samples, 3)
    theirs = report.get("prometheus_bytes_per_sample")
    if isinstance(theirs, float):
        report["bytes_per_sample_ratio_ours_to_prometheus"] = round(
            dir_bytes(block_dirs(ours)) / n_samples / theirs, 3
        )
    om.unlink()
    print(json.dumps(report, indent=1), flush=True)

    bench_read(ours, report)
    shutil.rmtree(prom_dir, ignore_errors=True)
    shutil.rmtree(ours, ignore_errors=True)


def bench_read(ours: Path, report: dict[str, object]) -> None:
    """Read throughput: every series over the whole range, from the compacted blocks."""
    blocks = open_blocks(ours)
    rates = []
    for _ in range(5):
        gc.collect()
        t = time.perf_counter()
        total = 0
        for b in blocks:
            got = b.querier(-(1 << 62), 1 << 62).select(ALL)
            total += got.sample_count
            del got
        rates.append(total / (time.perf_counter() - t))
    for b in blocks:
        b.close()
    report["read_samples_per_s_blocks"] = round(statistics.median(rates))
    try:
        from watchkeeper.tsdb.db import TSDB
        from watchkeeper.tsdb.options import TsdbOptions

        db = TSDB.open(ours, TsdbOptions(retention_ms=0))
        rates = []
        for _ in range(3):
            gc.collect()
            t = time.perf_counter()
            with db.querier(-(1 << 62), 1 << 62) as q:
                got = q.select(ALL)
                total = got.sample_count
                del got
            rates.append(total / (time.perf_counter() - t))
        db.close()
        report["read_samples_per_s_tsdb_merged"] = round(statistics.median(rates))
    except Exception as exc:
        report["read_samples_per_s_tsdb_merged"] = f"not measured: {exc!r}"


def bench_read_only(
    tmp: Path, n_hosts: int, steps: int, t0: int, report: dict[str, object]
) -> None:
    """The read figure alone: the same data written straight into our 2 h blocks.

    Skips the OpenMetrics text and both importers (most of a full run's hour); the blocks
    are the ones `tsdb import` would write, compacted by the same planner.
    """
    fams = generate(n_hosts, steps)
    offsets = np.random.default_rng(1).integers(0, STEP_MS, size=n_hosts)
    labels: list[Labels] = []
    rows: list[npt.NDArray[np.float64]] = []
    hosts: list[int] = []
    for fam in fams:
        base = fam.name
        for i, lbls in enumerate(fam.labels):
            extra = lbls.get("__suffix__")
            if fam.type == "histogram":
                name = base + (extra or "_bucket")
            else:
                name = base + ("_total" if fam.type == "counter" else "")
            labels.append(
                Labels.from_dict(
                    {"__name__": name} | {k: v for k, v in lbls.items() if k != "__suffix__"}
                )
            )
            rows.append(fam.values[i])
            hosts.append(int(fam.host[i]))
    del fams
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    values = np.stack([rows[i] for i in order])
    host_of = np.array([hosts[i] for i in order], dtype=np.int64)
    labels = [labels[i] for i in order]
    del rows
    stamps = t0 + offsets[host_of][:, None] + np.arange(steps, dtype=np.int64)[None, :] * STEP_MS
    n = len(labels)
    report.update(series=n, samples=n * steps)
    ours = tmp / "ours"
    t = time.perf_counter()
    for lo in range(t0, t0 + steps * STEP_MS + STEP_MS, TWO_H):
        inside = (stamps >= lo) & (stamps < lo + TWO_H)
        counts = inside.sum(axis=1)
        if not counts.any():
            continue
        offs = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offs[1:])
        series = SeriesSet(labels, offs, stamps[inside], values[inside])
        write_block(ours, series, mint_ms=lo, maxt_ms=lo + TWO_H)
    report["ours_write_blocks_s"] = round(time.perf_counter() - t, 1)
    del values, stamps
    gc.collect()
    compact_ours(ours)
    report["ours_blocks_after_compaction"] = len(block_dirs(ours))
    report["ours_bytes_per_sample"] = round(dir_bytes(block_dirs(ours)) / (n * steps), 3)
    bench_read(ours, report)
    shutil.rmtree(ours, ignore_errors=True)


def series_labels(n: int) -> list[Labels]:
    return [
        Labels.from_dict(
            {
                "__name__": f"metric_{i % 100}",
                "instance": f"host-{i // 100}:9100",
                "job": "node",
                "mode": "idle",
            }
        )
        for i in range(n)
    ]


APPEND_CHILD = r"""
import gc, json, sys, time, numpy as np, psutil
from pathlib import Path
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.options import TsdbOptions
sys.path.insert(0, sys.argv[4])
from tsdb import series_labels
n, steps, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
labels = series_labels(n)
proc = psutil.Process()
db = TSDB.open(Path(path), TsdbOptions(wal_fsync_interval_ms=1000))
gc.collect(); base = proc.memory_info().rss
batch = 1000
refs = []
app = db.appender()
for a in range(0, n, batch):
    refs.append(app.refs(labels[a:a + batch]))
app.commit()
t0 = (int(time.time() * 1000) // 15000) * 15000 - steps * 15000
rng = np.random.default_rng(0)
vals = rng.poisson(5, size=n).astype(float)
start = time.perf_counter()
for s in range(steps):
    ts = t0 + s * 15000
    vals += rng.poisson(5, size=n)
    for i, r in enumerate(refs):
        app = db.appender()
        app.append(r, np.full(len(r), ts, dtype=np.int64), vals[i * batch:i * batch + len(r)])
        app.commit()
elapsed = time.perf_counter() - start
gc.collect(); rss = proc.memory_info().rss
print(json.dumps({"samples_per_s": n * steps / elapsed, "rss_per_series": (rss - base) / n}))
db.close()
"""


def run_child(n: int, steps: int, tmp: Path) -> dict[str, float]:
    d = tempfile.mkdtemp(dir=tmp)
    try:
        out = subprocess.run(
            [sys.executable, "-c", APPEND_CHILD, str(n), str(steps), d, str(Path(__file__).parent)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(d, ignore_errors=True)


class RemoteWriteTemplate:
    """A WriteRequest with one sample per series whose value/timestamp bytes are patched.

    The request is encoded once by `watchkeeper.remote.codec`; each step then only rewrites
    the fixed-width double and the 6-byte timestamp varint that end every series' message.
    """

    def __init__(self, labels: list[Labels]) -> None:
        n = len(labels)
        batch = WriteBatch(
            labels,
            np.arange(n + 1, dtype=np.int64),
            np.full(n, 1 << 35, dtype=np.int64),  # any 6-byte varint: real times are too
            np.zeros(n, dtype=np.float64),
        )
        raw = encode_write_request(batch, compress=False)
        ends = []
        pos = 0
        while pos < len(raw):  # each entry: 0x0a <varint length> <TimeSeries>
            pos += 1
            length = shift = 0
            while True:
                b = raw[pos]
                pos += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            pos += length
            ends.append(pos)
        # Every TimeSeries ends with its sample: 09 <double> 10 <6-byte varint timestamp>.
        end = np.asarray(ends, dtype=np.int64)[:, None]
        self.buf = np.frombuffer(raw, dtype=np.uint8).copy()
        self.val_idx = end - 15 + np.arange(8)
        self.ts_idx = end - 6 + np.arange(6)

    def body(self, ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> bytes:
        self.buf[self.val_idx] = values.astype("<f8").view(np.uint8).reshape(-1, 8)
        shifts = np.arange(6) * 7
        groups = ((ts_ms[:, None] >> shifts) & 0x7F).astype(np.uint8)
        groups[:, :5] |= 0x80
        self.buf[self.ts_idx] = groups
        return bytes(cramjam.snappy.compress_raw(self.buf.tobytes()))


def prometheus_head_rss(n: int, steps: int, tmp: Path) -> float | None:
    if peer_binary("prometheus") is None:
        return None
    data = tmp / "prom-head"
    proc, port = start_prometheus(data, ["--web.enable-remote-write-receiver"])
    try:
        ps = psutil.Process(proc.pid)
        time.sleep(3)
        base = ps.memory_info().rss
        labels = series_labels(n)
        tpl = RemoteWriteTemplate(labels)
        t0 = (int(time.time() * 1000) // 15000) * 15000 - steps * 15000
        rng = np.random.default_rng(0)
        vals = rng.poisson(5, size=n).astype(float)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for s in range(steps):
            vals += rng.poisson(5, size=n)
            body = tpl.body(np.full(n, t0 + s * STEP_MS, dtype=np.int64), vals)
            conn.request(
                "POST",
                "/api/v1/write",
                body,
                {
                    "Content-Encoding": "snappy",
                    "Content-Type": "application/x-protobuf",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"remote write failed: {resp.status}")
        time.sleep(5)
        return (ps.memory_info().rss - base) / n
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    ap.add_argument("--skip-disk", action="store_true")
    ap.add_argument("--skip-head", action="store_true")
    ap.add_argument(
        "--read-only",
        action="store_true",
        help="only the read figure: data written straight into our blocks (no import)",
    )
    args = ap.parse_args()
    n_hosts, hours = (10, 6) if args.quick else (97, 24)
    head_series = 20_000 if args.quick else 200_000
    steps = hours * 3600 // 15
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-tsdb-"))
    report: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "mode": "quick" if args.quick else "full",
    }
    t0 = (int(time.time() * 1000) // TWO_H) * TWO_H - hours * 3_600_000
    try:
        if args.read_only:
            bench_read_only(tmp, n_hosts, steps, t0, report)
            print(json.dumps(report, indent=1))
            return
        if not args.skip_disk:
            bench_disk(tmp, n_hosts, steps, t0, report)
        append_series = 10_000
        runs = [run_child(append_series, 100 if args.quick else 200, tmp) for _ in range(3)]
        report["append_samples_per_s"] = round(statistics.median(r["samples_per_s"] for r in runs))
        if not args.skip_head:
            child = run_child(head_series, 480, tmp)
            report["head_series"] = head_series
            report["ours_head_rss_bytes_per_series"] = round(child["rss_per_series"])
            prom = prometheus_head_rss(head_series, 480, tmp)
            if prom is not None:
                report["prometheus_head_rss_bytes_per_series"] = round(prom)
                report["head_rss_ratio_ours_to_prometheus"] = round(
                    child["rss_per_series"] / prom, 2
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
