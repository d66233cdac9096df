"""PromQL benchmark: query latency and peak RSS of our engine vs Prometheus 3.5 on one data set.

Run `python benchmarks/promql.py [--quick]`. It generates the series of Prometheus's
promql/bench_test.go (a_X, b_X, h_X with 11 `le` buckets, and `sparse`, X = one, hundred and
twok for 1, 100 and 2,000 series, 10 s interval) plus a 10,000-series dashboard data set
(HTTP counters and latency histograms, CPU counters, memory gauges, up and build_info; 6 h at
15 s; seeded) as OpenMetrics. Prometheus loads it with `promtool tsdb create-blocks-from
openmetrics` and serves it; ours imports the same file with our importer and answers through
`watchkeeper server` when that command exists, else through the Engine over our TSDB in a
child process (labelled engine-only: no HTTP or JSON). It runs bench_test.go's range-query
cases (1, 100 and 1,000 steps) and dashboard queries (range at 15 s and 60 s steps over 6 h,
and instant), prints the median latency of each, the ratio ours/Prometheus, the geometric
mean of the ratios (target <= 1.5), and the peak RSS of both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from watchkeeper.testing.peers import peer_binary

END_S = 1_767_268_800
"""2026-01-01T12:00:00Z: the last sample of both data sets."""


@dataclass(frozen=True)
class Size:
    """The scale of one run."""

    bench_sizes: dict[str, int]
    bench_points: int
    dash_instances: int
    dash_hours: int
    repeats: int


FULL = Size({"one": 1, "hundred": 100, "twok": 2000}, 720, 182, 6, 3)
QUICK = Size({"one": 1, "hundred": 100}, 360, 18, 2, 3)


@dataclass(frozen=True)
class Case:
    """One benchmark query: a range query (start, end, step) or an instant query (end only)."""

    group: str
    expr: str
    start_s: int
    end_s: int
    step_s: int

    @property
    def label(self) -> str:
        if self.step_s == 0:
            return f"{self.expr} [instant]"
        steps = (self.end_s - self.start_s) // self.step_s + 1
        return f"{self.expr} [{steps} steps of {self.step_s}s]"


# ---------------------------------------------------------------------------------------------
# Data.


def _write_family(
    out: IO[str], name: str, labels: list[str], times_s: np.ndarray, values: np.ndarray
) -> int:
    """Writes one metric family: labels[i] is series i's `{...}` text; values (series, t)."""
    t_text = [str(int(t)) for t in times_s]
    for i, lb in enumerate(labels):
        prefix = f"{name}{lb} "
        row = values[i]
        keep = ~np.isnan(row)
        vals = [repr(v) for v in row[keep].tolist()]
        ts = [t for t, k in zip(t_text, keep.tolist(), strict=True) if k]
        out.write("".join(f"{prefix}{v} {t}\n" for v, t in zip(vals, ts, strict=True)))
    return int(np.count_nonzero(~np.isnan(values)))


def write_bench_data(out: IO[str], size: Size) -> int:
    """bench_test.go's series: a_X, b_X (plain), h_X (11 buckets per l) and sparse."""
    n_points = size.bench_points
    times = END_S - 10 * (n_points - 1) + 10 * np.arange(n_points)
    families: dict[str, list[str]] = {}
    for x, n in size.bench_sizes.items():
        ls = [f'l="{i}"' for i in range(n)] if n > 1 else [""]
        families[f"a_{x}"] = [f"{{{lb}}}" if lb else "" for lb in ls]
        families[f"b_{x}"] = list(families[f"a_{x}"])
        les = [str(j) for j in range(10)] + ["+Inf"]
        families[f"h_{x}"] = [
            "{" + ",".join(p for p in (lb, f'le="{le}"') if p) + "}" for lb in ls for le in les
        ]
    total_series = sum(len(v) for v in families.values())
    step_index = np.arange(n_points, dtype=np.float64)
    written = 0
    offset = 0
    for name, labels in families.items():
        idx = np.arange(offset, offset + len(labels), dtype=np.float64)
        values = step_index[None, :] + (idx / total_series)[:, None]
        written += _write_family(out, name, labels, times, values)
        offset += len(labels)
    per_sparse = max(1, n_points // 50)
    sparse_labels = [f'{{l="{k}"}}' for k in range(-(-n_points // per_sparse))]
    sparse = np.full((len(sparse_labels), n_points), np.nan)
    for s in range(n_points):
        sparse[s // per_sparse, s] = s / total_series
    written += _write_family(out, "sparse", sparse_labels, times, sparse)
    return written


def write_dashboard_data(out: IO[str], size: Size, rng: np.random.Generator) -> int:
    """55 series per instance (182 instances: 10,010 series).

    HTTP counters and latency histograms, CPU counters, memory gauges, up and build_info.
    """
    n_points = size.dash_hours * 240
    times = END_S - 15 * (n_points - 1) + 15 * np.arange(n_points)
    inst = [f"i{i:03d}" for i in range(size.dash_instances)]
    jobs = [f"job{i % 5}" for i in range(size.dash_instances)]
    written = 0

    def counter(n: int, rate: float) -> np.ndarray:
        inc = rng.poisson(rate, (n, n_points)).astype(np.float64)
        vals = np.cumsum(inc, axis=1)
        # Rare counter resets, as restarts cause.
        for r in np.flatnonzero(rng.random(n) < 0.05):
            cut = int(rng.integers(1, n_points))
            vals[r, cut:] -= vals[r, cut - 1]
        return vals

    labels = [
        f'{{job="{j}",instance="{i}",method="{method}",code="{code}"}}'
        for i, j in zip(inst, jobs, strict=True)
        for method in ("GET", "POST")
        for code in ("200", "404", "500")
    ]
    written += _write_family(out, "http_requests_total", labels, times, counter(len(labels), 20.0))
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
    per_job_obs = counter(size.dash_instances, 30.0)
    fractions = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 0.93, 0.98, 0.995, 1.0])
    hist_labels, hist_values = [], []
    for k, (i, j) in enumerate(zip(inst, jobs, strict=True)):
        for b, f in zip(bounds, fractions, strict=True):
            hist_labels.append(f'{{job="{j}",instance="{i}",le="{b}"}}')
            hist_values.append(np.floor(per_job_obs[k] * f))
    written += _write_family(
        out, "http_request_duration_seconds_bucket", hist_labels, times, np.array(hist_values)
    )
    base = [f'{{job="{j}",instance="{i}"}}' for i, j in zip(inst, jobs, strict=True)]
    written += _write_family(out, "http_request_duration_seconds_count", base, times, per_job_obs)
    written += _write_family(
        out, "http_request_duration_seconds_sum", base, times, per_job_obs * 0.21
    )
    cpu_labels = [
        f'{{instance="{i}",cpu="{c}",mode="{m}"}}'
        for i in inst
        for c in range(8)
        for m in ("idle", "user", "system", "iowait")
    ]
    cpu = np.cumsum(rng.random((len(cpu_labels), n_points)) * 15, axis=1)
    written += _write_family(out, "node_cpu_seconds_total", cpu_labels, times, np.round(cpu, 2))
    mem_labels = [f'{{instance="{i}",kind="{k}"}}' for i in inst for k in ("used", "cached")]
    mem = 4e9 + np.cumsum(rng.normal(0, 1e6, (len(mem_labels), n_points)), axis=1)
    written += _write_family(out, "node_memory_bytes", mem_labels, times, np.round(mem))
    written += _write_family(out, "up", base, times, np.ones((len(base), n_points)))
    info = [
        f'{{job="{j}",instance="{i}",version="1.{k % 3}"}}'
        for k, (i, j) in enumerate(zip(inst, jobs, strict=True))
    ]
    written += _write_family(out, "build_info", info, times, np.ones((len(info), n_points)))
    return written


def bench_cases(size: Size) -> list[Case]:
    """bench_test.go's range-query list, each at 1, 100 and 1,000 steps of 10 s (or its own)."""
    exprs: list[tuple[str, int | None]] = [
        ("a_X", None), ("rate(a_X[1m])", None), ("rate(a_X[1m])", 10000),
        ("rate(sparse[1m])", 10000), ("double_exponential_smoothing(a_X[1d], 0.3, 0.3)", None),
        ("changes(a_X[1d])", None), ("rate(a_X[1d])", None), ("absent_over_time(a_X[1d])", None),
        ("-a_X", None), ("a_X - b_X", None), ("a_X - b_X", 10000),
        ("a_X and b_X{l=~'.*[0-4]$'}", None), ("a_X or b_X{l=~'.*[0-4]$'}", None),
        ("a_X unless b_X{l=~'.*[0-4]$'}", None), ("a_X and b_X{l='notfound'}", None),
        ("abs(a_X)", None), ("label_replace(a_X, 'l2', '$1', 'l', '(.*)')", None),
        ("label_join(a_X, 'l2', '-', 'l', 'l')", None), ("sum(a_X)", None), ("avg(a_X)", None),
        ("sum without (l)(h_X)", None), ("sum without (le)(h_X)", None),
        ("sum by (l)(h_X)", None), ("sum by (le)(h_X)", None),
        ("count_values('value', h_X)", 100), ("topk(1, a_X)", None), ("topk(5, a_X)", None),
        ("limitk(1, a_X)", None), ("limitk(5, a_X)", None), ("limit_ratio(0.1, a_X)", None),
        ("limit_ratio(0.5, a_X)", None), ("limit_ratio(-0.5, a_X)", None),
        ("rate(a_X[1m]) + rate(b_X[1m])", None), ("sum without (l)(rate(a_X[1m]))", None),
        ("sum without (l)(rate(a_X[1m])) / sum without (l)(rate(b_X[1m]))", None),
        ("histogram_quantile(0.9, rate(h_X[5m]))", None), ("a_X + on(l) group_right a_one", None),
        ('count({__name__!=""})', 1), ('count({__name__!="",l=""})', 1), ("timestamp(a_X)", None),
    ]  # fmt: skip
    max_steps = size.bench_points
    cases: list[Case] = []
    for expr, fixed in exprs:
        names = list(size.bench_sizes) if "X" in expr else [""]
        for x in names:
            e = expr.replace("X", x) if x else expr
            for steps in [fixed] if fixed else [1, 100, 1000]:
                n = min(steps, max_steps)
                cases.append(Case("bench_test.go", e, END_S - 10 * (n - 1), END_S, 10))
    return list(dict.fromkeys(cases))


DASHBOARD = [
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    'sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))'
    " / sum by (job) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket[5m]))",
    "topk(5, sum by (instance) (rate(http_requests_total[5m])))",
    "sum by (job, version) (rate(http_requests_total[5m])"
    " * on (job, instance) group_left (version) build_info)",
    'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
    'avg_over_time(node_memory_bytes{kind="used"}[10m])',
    "max_over_time(sum by (job) (rate(http_requests_total[1m]))[30m:1m])",
    'label_replace(up, "host", "$1", "instance", "(.*)")',
    'absent(up{job="missing"})',
    "count by (job) (up == 1)",
]


def dashboard_cases(size: Size) -> list[Case]:
    """The dashboard queries as 15 s and 60 s range queries over the data and as instants."""
    start = END_S - size.dash_hours * 3600 + 600
    cases = []
    for expr in DASHBOARD:
        cases.append(Case("dashboard", expr, start, END_S, 15))
        cases.append(Case("dashboard", expr, start, END_S, 60))
        cases.append(Case("dashboard", expr, END_S, END_S, 0))
    return cases


# ---------------------------------------------------------------------------------------------
# Servers.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} did not become ready")


def peak_rss_bytes(pid: int) -> int:
    """The peak resident set size of a process (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class HttpTarget:
    """A Prometheus-compatible HTTP API (Prometheus itself, or `watchkeeper server`)."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name = name
        self.base = f"http://127.0.0.1:{port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        _wait_ready(f"{self.base}/-/ready", self.proc, name)

    def run(self, case: Case) -> tuple[float, int]:
        """Runs a query once: (seconds, number of result series)."""
        if case.step_s:
            path = "/api/v1/query_range"
            params = {
                "query": case.expr,
                "start": str(case.start_s),
                "end": str(case.end_s),
                "step": str(case.step_s),
            }
        else:
            path = "/api/v1/query"
            params = {"query": case.expr, "time": str(case.end_s)}
        body = urllib.parse.urlencode(params).encode()
        began = time.perf_counter()
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
        elapsed = time.perf_counter() - began
        doc = json.loads(raw)
        if doc.get("status") != "success":
            raise RuntimeError(f"{self.name}: {case.expr}: {doc.get('error')}")
        result = doc["data"]["result"]
        return elapsed, len(result) if isinstance(result, list) else 1

    def peak_rss(self) -> int:
        return peak_rss_bytes(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class EngineTarget:
    """Our Engine over our TSDB in a child process, fed queries as JSON lines (engine-only)."""

    name = "watchkeeper (engine-only)"

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child-engine", str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if ready.strip() != "ready":
            raise SystemExit(f"engine child failed to start: {ready!r}")

    def run(self, case: Case) -> tuple[float, int]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(case.__dict__) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {case.expr}: {answer['error']}")
        return float(answer["seconds"]), int(answer["series"])

    def peak_rss(self) -> int:
        return peak_rss_bytes(self.proc.pid)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def child_engine(data_dir: str) -> None:
    """The engine-only child: opens our TSDB and answers queries read from stdin."""
    from watchkeeper.promql.engine import Engine, EngineOptions
    from watchkeeper.promql.errors import PromQLError
    from watchkeeper.promql.value import Matrix, Vector
    from watchkeeper.tsdb.db import TSDB
    from watchkeeper.tsdb.options import TsdbOptions

    db = TSDB.open(Path(data_dir), TsdbOptions(retention_ms=0))
    engine = Engine(db, EngineOptions(enable_experimental_functions=True))
    print("ready", flush=True)
    for line in sys.stdin:
        c = json.loads(line)
        began = time.perf_counter()
        try:
            if c["step_s"]:
                res = engine.range_query(
                    c["expr"], c["start_s"] * 1000, c["end_s"] * 1000, c["step_s"] * 1000
                )
            else:
                res = engine.instant_query(c["expr"], c["end_s"] * 1000)
        except PromQLError as err:
            print(json.dumps({"error": str(err)}), flush=True)
            continue
        elapsed = time.perf_counter() - began
        value = res.value
        n = len(value) if isinstance(value, Matrix | Vector) else 1
        print(json.dumps({"seconds": elapsed, "series": n}), flush=True)
    db.close()


def watchkeeper_server_argv(data_dir: Path, config: Path, port: int) -> list[str] | None:
    """The `watchkeeper server` command line, if that command exists and takes these flags."""
    exe = Path(sys.executable).parent / "watchkeeper"
    try:
        text = subprocess.run(
            [str(exe), "server", "--help"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    needed = ("--storage.tsdb.path", "--web.listen-address", "--config.file")
    if not all(flag in text for flag in needed):
        return None
    return [
        str(exe),
        "server",
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=100y",
        "--enable-feature=promql-experimental-functions",
    ]


# ---------------------------------------------------------------------------------------------
# Main.


def measure(target: HttpTarget | EngineTarget, cases: list[Case], repeats: int) -> dict[Case, Any]:
    """Median latency (s) and series count per case; a failed case records its error."""
    out: dict[Case, Any] = {}
    for case in cases:
        try:
            target.run(case)  # warm-up (caches, page cache)
            times = []
            n = 0
            for _ in range(repeats):
                t, n = target.run(case)
                times.append(t)
            out[case] = (statistics.median(times), n)
        except RuntimeError as err:
            out[case] = str(err)
        print(f"  {target.name}: {case.label[:100]} {out[case]!r:.80}", file=sys.stderr, flush=True)
    return out


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:10.2f}"


def report(
    cases: list[Case], prom: dict[Case, Any], ours: dict[Case, Any], ours_name: str
) -> Iterator[str]:
    """Lines of the result table and the geometric means per group."""
    yield f"{'query':90} {'Prometheus ms':>13} {'ours ms':>10} {'ratio':>7}"
    ratios: dict[str, list[float]] = {}
    for case in cases:
        p, o = prom.get(case), ours.get(case)
        if isinstance(p, tuple) and isinstance(o, tuple):
            ratio = o[0] / p[0] if p[0] > 0 else math.inf
            ratios.setdefault(case.group, []).append(ratio)
            note = "" if p[1] == o[1] else f"  (series: {p[1]} vs {o[1]})"
            yield f"{case.label[:90]:90} {_fmt_ms(p[0]):>13} {_fmt_ms(o[0])} {ratio:7.2f}{note}"
        else:
            yield f"{case.label[:90]:90} error: Prometheus={p!r:.60} ours={o!r:.60}"
    every = [r for rs in ratios.values() for r in rs]
    for group, rs in [*ratios.items(), ("all", every)]:
        if rs:
            gm = math.exp(sum(math.log(max(r, 1e-9)) for r in rs) / len(rs))
            yield f"geometric mean of ratios ({group}, {len(rs)} queries, {ours_name}): {gm:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and fewer repeats")
    parser.add_argument("--child-engine", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--only", default="", help="run only cases whose query contains this")
    args = parser.parse_args()
    if args.child_engine:
        child_engine(args.child_engine)
        return
    size = QUICK if args.quick else FULL
    prometheus, promtool = peer_binary("prometheus"), peer_binary("promtool")
    if prometheus is None or promtool is None:
        raise SystemExit("prometheus/promtool not found (see ../shared/peers/fetch-peers.sh)")
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-promql-"))
    targets: list[HttpTarget | EngineTarget] = []
    try:
        om = tmp / "data.om"
        began = time.perf_counter()
        with om.open("w") as out:
            n_bench = write_bench_data(out, size)
            n_dash = write_dashboard_data(out, size, np.random.default_rng(0))
            out.write("# EOF\n")
        print(
            f"data: {n_bench:,} bench_test.go samples + {n_dash:,} dashboard samples "
            f"({time.perf_counter() - began:.0f} s to generate)",
            flush=True,
        )
        prom_dir, our_dir = tmp / "prometheus", tmp / "ours"
        began = time.perf_counter()
        subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(om), str(prom_dir)],
            check=True,
            capture_output=True,
        )
        print(f"promtool import: {time.perf_counter() - began:.0f} s", flush=True)
        from watchkeeper.tsdb.tools.importer import import_openmetrics

        began = time.perf_counter()
        import_openmetrics(om, our_dir)
        print(f"our import: {time.perf_counter() - began:.0f} s", flush=True)
        om.unlink()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 15s\nstorage:\n  tsdb:\n    out_of_order_time_window: 0s\n"
        )
        cases = bench_cases(size) + dashboard_cases(size)
        if args.only:
            cases = [c for c in cases if args.only in c.expr]

        port = _free_port()
        prom = HttpTarget(
            "prometheus",
            [
                str(prometheus),
                f"--config.file={config}",
                f"--storage.tsdb.path={prom_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=100y",
                "--enable-feature=promql-experimental-functions",
            ],
            port,
            tmp / "prometheus.log",
        )
        targets.append(prom)
        prom_results = measure(prom, cases, size.repeats)
        prom_rss = prom.peak_rss()
        prom.close()
        targets.remove(prom)

        port = _free_port()
        argv = watchkeeper_server_argv(our_dir, config, port)
        ours: HttpTarget | EngineTarget
        if argv is None:
            ours = EngineTarget(our_dir)
        else:
            try:
                ours = HttpTarget("watchkeeper server", argv, port, tmp / "watchkeeper.log")
            except SystemExit as err:
                log = (tmp / "watchkeeper.log").read_text()[-1500:]
                print(f"{err}; falling back to engine-only. Server log tail:\n{log}")
                ours = EngineTarget(our_dir)
        targets.append(ours)
        our_results = measure(ours, cases, size.repeats)
        our_rss = ours.peak_rss()
        ours.close()
        targets.remove(ours)

        print(f"\nPromQL benchmark ({'quick' if args.quick else 'full'}), ours = {ours.name}")
        for line in report(cases, prom_results, our_results, ours.name):
            print(line)
        print(
            f"peak RSS: Prometheus {prom_rss / 2**20:.0f} MiB, "
            f"{ours.name} {our_rss / 2**20:.0f} MiB"
        )
    finally:
        for t in targets:
            t.close()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
        else:
            print(f"kept {tmp}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
