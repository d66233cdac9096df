"""`watchkeeper demo`: the server with a ready config, plus a small service to watch.

The demo service on 127.0.0.1:9091 serves request counters and latency histograms that
change over time (with a burst of errors every few minutes), so graphs, recording rules
and alerts have something to show on a fresh machine.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
from importlib import resources
from pathlib import Path

from aiohttp import web

from watchkeeper.cli.eventloop import run_server
from watchkeeper.instrument.metrics import Registry

DEMO_FILES = ("prometheus.yml", "rules.yml")


def build_demo_service(rng: random.Random) -> tuple[web.Application, Registry]:
    """Builds the demo service: a /metrics endpoint whose numbers move."""
    registry = Registry()
    requests = registry.counter(
        "demo_http_requests_total",
        "Requests served by the demo service.",
        ["method", "path", "code"],
    )
    latency = registry.histogram(
        "demo_http_request_duration_seconds",
        "Request latency of the demo service.",
        ["path"],
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    inflight = registry.gauge("demo_http_requests_in_flight", "Requests being served.")

    async def traffic(app: web.Application) -> None:
        tick = 0
        while True:
            tick += 1
            wave = 1.0 + 0.5 * math.sin(tick / 60.0)
            error_burst = (tick // 120) % 3 == 2
            for path in ("/", "/api/cart", "/api/pay"):
                for _ in range(int(rng.uniform(5, 15) * wave)):
                    code = "500" if error_burst and rng.random() < 0.05 else "200"
                    requests.labels("GET", path, code).inc()
                    latency.labels(path).observe(rng.lognormvariate(-3.0, 0.8))
            inflight.set(rng.randint(0, 8))
            await asyncio.sleep(1.0)

    async def start_traffic(app: web.Application) -> None:
        app["traffic"] = asyncio.create_task(traffic(app))

    async def stop_traffic(app: web.Application) -> None:
        app["traffic"].cancel()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=registry.render(),
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type": "version=0.0.4"},
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(start_traffic)
    app.on_cleanup.append(stop_traffic)
    return app, registry


def prepare_demo_dir(target: Path) -> Path:
    """Copies the demo config and rules into `target` (kept if already there)."""
    target.mkdir(parents=True, exist_ok=True)
    source = resources.files("watchkeeper.cli").joinpath("demo_files")
    for name in DEMO_FILES:
        dest = target / name
        if not dest.exists():
            with resources.as_file(source.joinpath(name)) as src:
                shutil.copyfile(src, dest)
    return target / "prometheus.yml"


async def _run_demo(args: argparse.Namespace) -> int:
    from watchkeeper.cli import server as server_cli

    config = prepare_demo_dir(Path(args.dir))
    app, _ = build_demo_service(random.Random(0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 9091).start()
    print("Demo service on http://127.0.0.1:9091/metrics")
    print("Watchkeeper on http://127.0.0.1:9090 (Ctrl-C to stop)")
    try:
        return await server_cli.run_server_async(
            [
                f"--config.file={config}",
                f"--storage.tsdb.path={args.data}",
                "--web.listen-address=127.0.0.1:9090",
                "--web.enable-lifecycle",
                "--enable-feature=promql-experimental-functions",
            ]
        )
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    """Runs the demo until interrupted."""
    try:
        return run_server(_run_demo(args))
    except KeyboardInterrupt:
        return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `watchkeeper demo`."""
    parser = subparsers.add_parser("demo", help="Run the server with a demo service to watch.")
    parser.add_argument("--dir", default="demo", help="Folder for the demo's config files.")
    parser.add_argument("--data", default="data", help="Folder for the demo's data.")
    parser.set_defaults(func=run)
