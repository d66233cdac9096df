"""HTTP API benchmark: a big query_range end to end, ours against Prometheus 3.5.

Both servers hold the same data (S series x P points of a gauge at 60 s). Prometheus gets
it from `promtool tsdb create-blocks-from openmetrics`; ours is a child process that loads
the same samples into the Watchkeeper TSDB (watchkeeper.tsdb.db.TSDB, one append per
scrape step) and serves it with `watchkeeper.web.app.create_app` and the real PromQL
engine. The client POSTs the query as Grafana does, reads the whole body (no gzip) and
parses it with orjson (garbage collection paused); the figure is the median wall time of
several runs, with the time until the last byte arrived beside it.

    .venv/bin/python benchmarks/api.py            # 10,000 series x 1,440 points
    .venv/bin/python benchmarks/api.py --quick    # 1,000 series x 1,440 points
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import orjson

STEP_S = 60


def _grid(points: int, end_s: int = 0) -> tuple[int, int]:
    """Returns (start_s, end_s): aligned, ending two hours ago (inside retention)."""
    end = end_s or (int(time.time()) // 3600 - 2) * 3600
    return end - (points - 1) * STEP_S, end


def _values(series: int, points: int) -> np.ndarray:
    rng = np.random.default_rng(42)
    return np.round(rng.random((points, series)) * 100.0, 2)


def _labels(i: int) -> str:
    return f'instance="host-{i:05d}",job="bench"'


def _write_openmetrics(path: Path, series: int, points: int, end_s: int) -> None:
    start, _ = _grid(points, end_s)
    vals = _values(series, points)
    stamps = [str(start + k * STEP_S) for k in range(points)]
    with path.open("w") as out:
        out.write("# TYPE bench_metric gauge\n")
        for i in range(series):
            name = f"bench_metric{{{_labels(i)}}} "
            col = vals[:, i].tolist()
            out.write("".join(f"{name}{v} {t}\n" for v, t in zip(col, stamps, strict=True)))
        out.write("# EOF\n")


def serve_ours(series: int, points: int, port: int, data_dir: str, end_s: int) -> None:
    """The child process: loads the data into our TSDB and serves the API until killed."""
    from watchkeeper.cli.eventloop import run_server
    from watchkeeper.model.labels import Labels
    from watchkeeper.promql.engine import Engine, EngineOptions
    from watchkeeper.testing.web import StaticConfigInfo
    from watchkeeper.tsdb.db import TSDB
    from watchkeeper.web.api.v1.deps import ApiDeps
    from watchkeeper.web.app import WebOptions, create_app, serve

    db = TSDB.open(Path(data_dir))
    start, _ = _grid(points, end_s)
    vals = _values(series, points)
    labels = [
        Labels.from_dict({"__name__": "bench_metric", "instance": f"host-{i:05d}", "job": "bench"})
        for i in range(series)
    ]
    with db.appender() as app:
        refs = app.refs(labels)
    for k in range(points):
        with db.appender() as app:
            app.append(refs, np.full(series, (start + k * STEP_S) * 1000, dtype=np.int64), vals[k])
    deps = ApiDeps(queryable=db, engine=Engine(db, EngineOptions()), config=StaticConfigInfo())
    options = WebOptions(listen_address=f"127.0.0.1:{port}")

    async def main() -> None:
        await serve(create_app(deps, options), options)
        print("ready", flush=True)
        await asyncio.Event().wait()

    run_server(main())  # the event loop `watchkeeper server` runs on


def _query(base: str, start: int, end: int) -> tuple[float, float, int, bytes]:
    body = urllib.parse.urlencode(
        {"query": "bench_metric", "start": str(start), "end": str(end), "step": str(STEP_S)}
    ).encode()
    req = urllib.request.Request(
        base + "/api/v1/query_range",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept-Encoding": "identity",
        },
    )
    began = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as resp:
        raw = resp.read()
    received = time.perf_counter() - began
    gc.disable()
    try:
        parsed = orjson.loads(raw)
    finally:
        gc.enable()
    took = time.perf_counter() - began
    return took, received, len(parsed["data"]["result"]), raw


def _wait(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    """Runs the benchmark and prints the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 series instead of 10,000")
    parser.add_argument("--series", type=int, default=0)
    parser.add_argument("--points", type=int, default=1440)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve-ours", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    series = args.series or (1000 if args.quick else 10_000)
    if args.serve_ours:
        port, data_dir, end_s = args.serve_ours
        serve_ours(series, args.points, int(port), data_dir, int(end_s))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from watchkeeper.testing.peers import peer_binary

    prometheus, promtool = peer_binary("prometheus"), peer_binary("promtool")
    if prometheus is None or promtool is None:
        print("prometheus/promtool not found: run ../shared/peers/fetch-peers.sh")
        return 1
    start, end = _grid(args.points)
    with tempfile.TemporaryDirectory(prefix="wk-bench-api-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        om = root / "data.om"
        _write_openmetrics(om, series, args.points, end)
        subprocess.run(
            [
                str(promtool),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(om),
                str(root / "prom"),
            ],
            check=True,
            capture_output=True,
        )
        om.unlink()
        print(f"prometheus data ready in {time.perf_counter() - t0:.1f}s")
        (root / "prometheus.yml").write_text("global: {}\n")
        prom_port, our_port = _free_port(), _free_port()
        prom = subprocess.Popen(
            [
                str(prometheus),
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'prom'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ours = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--series",
                str(series),
                "--points",
                str(args.points),
                "--serve-ours",
                str(our_port),
                str(root / "ours"),
                str(end),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            t0 = time.perf_counter()
            _wait(f"http://127.0.0.1:{prom_port}/-/ready", 300)
            assert ours.stdout is not None
            line = ours.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError("our server did not start")
            print(f"servers ready in {time.perf_counter() - t0:.1f}s")
            results: dict[str, list[float]] = {"prometheus": [], "watchkeeper": []}
            served: dict[str, list[float]] = {"prometheus": [], "watchkeeper": []}
            bodies: dict[str, bytes] = {}
            servers = [("prometheus", prom_port), ("watchkeeper", our_port)]
            for run in range(args.runs):
                # NB: the order alternates so neither server always meets a warmer client.
                for name, port in servers if run % 2 == 0 else servers[::-1]:
                    took, received, count, raw = _query(f"http://127.0.0.1:{port}", start, end)
                    if count != series:
                        raise RuntimeError(f"{name} returned {count} series, expected {series}")
                    results[name].append(took)
                    served[name].append(received)
                    if run == 0:
                        bodies[name] = raw
                    del raw
                    gc.collect()
            same = orjson.loads(bodies["prometheus"]) == orjson.loads(bodies["watchkeeper"])
            size = len(bodies["watchkeeper"]) / 1e6
            bodies.clear()
            mp = statistics.median(results["prometheus"])
            mw = statistics.median(results["watchkeeper"])
            print(
                f"query_range {series} series x {args.points} points ({size:.0f} MB JSON), "
                f"median of {args.runs}:"
            )
            sp = statistics.median(served["prometheus"])
            sw = statistics.median(served["watchkeeper"])
            print("                  end to end   (last byte received)")
            print(f"  prometheus 3.5  {mp:8.2f} s   ({sp:.2f} s)")
            print(f"  watchkeeper     {mw:8.2f} s   ({sw:.2f} s)")
            print(f"  ratio ours/prometheus {mw / mp:.2f}   (last byte {sw / sp:.2f})")
            print(f"  identical JSON: {same}")
        finally:
            prom.terminate()
            ours.terminate()
            prom.wait(30)
            ours.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
