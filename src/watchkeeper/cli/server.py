"""`watchkeeper server`: the Prometheus-compatible server process.

Wires the stages together (config → discovery → scrape → TSDB ← PromQL ← web, rules →
notifier), reloads on SIGHUP and POST /-/reload (a bad config keeps the running one), and
shuts down cleanly on SIGTERM: scrapes and rules stop, the head is flushed to the WAL and
the data directory is closed, so nothing that was acknowledged is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from watchkeeper import __version__
from watchkeeper.cli.adapters import (
    Alertmanagers,
    RuleGroups,
    ScrapeTargets,
    ServerInfo,
    TsdbAdministration,
)
from watchkeeper.cli.eventloop import run_server
from watchkeeper.cli.flags import FlagError, ServerFlags, add_server_flags, flags_from_args
from watchkeeper.config.prometheus import PrometheusConfig, load_config
from watchkeeper.config.yamlsource import ConfigError
from watchkeeper.discovery.manager import DiscoveryManager
from watchkeeper.instrument.log import setup_logging
from watchkeeper.instrument.metrics import Registry
from watchkeeper.instrument.process import register_process_metrics
from watchkeeper.model.clock import SYSTEM_CLOCK
from watchkeeper.model.duration import format_duration_ms
from watchkeeper.model.exposition.floats import go_quote
from watchkeeper.model.labels import Labels
from watchkeeper.notifier.manager import NotifierManager, NotifierOptions
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.querylog import QueryLogFile, QueryLogOpenError
from watchkeeper.rules.manager import (
    RuleManager,
    RuleManagerOptions,
    engine_query_func,
    send_alerts_func,
)
from watchkeeper.scrape.manager import ScrapeManager
from watchkeeper.scrape.metrics import sd_metrics
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.options import TsdbOptions
from watchkeeper.web import notifications
from watchkeeper.web.api.v1.deps import ApiDeps, ReadyStatus
from watchkeeper.web.app import WebOptions, create_app, serve
from watchkeeper.web.ui.dashboards import DashboardStore
from watchkeeper.web.ui.routes import add_ui_routes

log = logging.getLogger("watchkeeper.server")

MAINTENANCE_INTERVAL_S = 60.0
PROCESS_METRICS_PREFIX = "process_"


class Server:
    """One running server: owns every stage and their lifecycles."""

    def __init__(self, flags: ServerFlags) -> None:
        self.flags = flags
        self.registry = Registry()
        self.clock = SYSTEM_CLOCK
        self.start_time_s = time.time()
        self.info = ServerInfo(flags.raw, self.start_time_s)
        self.info.storage_retention = format_duration_ms(flags.retention_ms)
        self._stop_requested = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._ready = False
        self.external_url = flags.external_url or f"http://{_host_for_url(flags.listen_address)}"
        self._register_process_metrics()
        self.notifications = notifications.NotificationHub(
            max_subscribers=flags.max_notifications_subscribers, registry=self.registry
        )
        self.notifications.add(notifications.STARTING_UP)
        self.reload_ok = self.registry.gauge(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        self.reload_time = self.registry.gauge(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        )
        self.registry.gauge(
            "prometheus_ready",
            "Whether Prometheus startup was fully completed and the server is ready for normal "
            "operation.",
            callback=lambda: 1.0 if self._ready else 0.0,
        )
        self.registry.gauge(
            "prometheus_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, goversion "
            "from which prometheus was built, and the goos and goarch for the build.",
            ["branch", "goarch", "goos", "goversion", "revision", "tags", "version"],
        ).labels("", "", sys.platform, f"python{sys.version.split()[0]}", "", "", __version__).set(
            1
        )

    def _register_process_metrics(self) -> None:
        register_process_metrics(self.registry, self.start_time_s)

    # Start-up.

    async def start(self) -> None:
        """Loads the config, opens the TSDB, starts every stage and the web server.

        Raises:
            ConfigError: when the configuration file is invalid (nothing is started).
            OSError: when the data directory or the listen address cannot be used.
        """
        flags = self.flags
        cfg = await asyncio.to_thread(load_config, flags.config_file)
        tsdb_options = TsdbOptions(
            retention_ms=flags.retention_ms,
            retention_bytes=flags.retention_bytes,
            min_block_duration_ms=flags.min_block_duration_ms,
            max_block_duration_ms=flags.max_block_duration_ms,
            out_of_order_time_window_ms=(
                cfg.storage.tsdb.out_of_order_time_window if cfg.storage.tsdb else 0
            ),
        )
        log.info("Starting Watchkeeper", extra={"kv": {"version": __version__}})
        self.db = await asyncio.to_thread(
            TSDB.open, Path(flags.storage_path), tsdb_options, registry=self.registry
        )
        log.info("TSDB started", extra={"kv": {"path": flags.storage_path}})
        self.engine = Engine(
            self.db,
            EngineOptions(
                lookback_delta_ms=flags.lookback_delta_ms,
                timeout_s=flags.query_timeout_ms / 1000,
                max_samples=flags.query_max_samples,
                max_concurrency=flags.query_max_concurrency,
                enable_experimental_functions="promql-experimental-functions" in flags.features,
                enable_delayed_name_removal="promql-delayed-name-removal" in flags.features,
                enable_duration_expressions="promql-duration-expr" in flags.features,
            ),
            registry=self.registry,
        )
        self.notifier = NotifierManager(
            DiscoveryManager(sd_metrics(self.registry), name="notify"),
            NotifierOptions(queue_capacity=flags.notification_queue_capacity),
            self.registry,
        )
        self.rules = RuleManager(
            self.db,
            self.db,
            engine_query_func(self.engine),
            self.registry,
            notify=send_alerts_func(self.notifier, self.external_url),
            options=RuleManagerOptions(
                resend_delay_ms=flags.resend_delay_ms,
                outage_tolerance_ms=flags.for_outage_tolerance_ms,
                for_grace_period_ms=flags.for_grace_period_ms,
                external_url=self.external_url,
            ),
        )
        self.scrape = ScrapeManager(
            self.db,
            self.registry,
            options=ScrapeOptions(
                extra_scrape_metrics="extra-scrape-metrics" in flags.features,
            ),
        )
        await self.apply_config(cfg)
        self.reload_ok.set(1)
        self.reload_time.set(time.time())
        await self._start_web()
        self._tasks.append(asyncio.create_task(self.scrape.run(), name="scrape"))
        self._tasks.append(asyncio.create_task(self._maintenance_loop(), name="maintenance"))
        self.notifier.start()
        self._ready = True
        self.notifications.delete(notifications.STARTING_UP)
        log.info("Server is ready to receive web requests.")

    async def _start_web(self) -> None:
        flags = self.flags
        deps = ApiDeps(
            queryable=self.db,
            engine=self.engine,
            targets=ScrapeTargets(self.scrape),
            rules=RuleGroups(self.rules),
            alertmanagers=Alertmanagers(self.notifier),
            tsdb=TsdbAdministration(self.db),
            remote_write_sink=self.db,
            config=self.info,
            reloader=self.reload,
            quit=self.request_stop,
            notifications=self.notifications,
            registry=self.registry,
            ready=lambda: ReadyStatus.of(self._ready, stopping=self._stop_requested.is_set()),
        )
        options = WebOptions(
            listen_address=flags.listen_address,
            external_url=self.external_url,
            route_prefix=flags.route_prefix,
            enable_lifecycle=flags.enable_lifecycle,
            enable_admin_api=flags.enable_admin_api,
            enable_remote_write_receiver=flags.enable_remote_write_receiver,
            web_config_file=flags.web_config_file or None,
            read_timeout_s=flags.read_timeout_ms / 1000,
            max_connections=flags.max_connections,
            page_title=flags.page_title,
            cors_origin=flags.cors_origin,
            query_timeout_s=flags.query_timeout_ms / 1000,
            lookback_delta_ms=flags.lookback_delta_ms,
            app_name="Watchkeeper",
        )
        app = create_app(deps, options)
        dashboards = DashboardStore(Path(flags.storage_path) / "dashboards")
        await asyncio.to_thread(dashboards.install_builtins)
        add_ui_routes(
            app, prefix=options.prefix, page_title=flags.page_title, dashboards=dashboards
        )
        self._runner, _ = await serve(app, options)
        log.info("Start listening for connections", extra={"kv": {"address": flags.listen_address}})

    # Configuration.

    async def apply_config(self, cfg: PrometheusConfig) -> None:
        """Hands a loaded configuration to every stage.

        Raises:
            ConfigError: when the query log file cannot be opened (nothing is applied).
        """
        g = cfg.global_
        external = Labels(g.external_labels.items())
        rule_files = cfg.rule_file_paths()
        query_log = await self._open_query_log(g.query_log_file)
        try:
            await self.rules.update(
                rule_files,
                g.evaluation_interval,
                g.external_labels,
                external_url=self.external_url,
                query_offset_ms=g.rule_query_offset,
            )
            await self.scrape.apply_config(cfg)
            await self.notifier.apply_config(cfg.alerting, g.external_labels)
        except BaseException:
            if query_log is not None:
                with contextlib.suppress(OSError):
                    query_log.close()
            raise
        # NB: reopened on every reload, as Prometheus does, so a rotated file is let go.
        self.engine.set_query_log(query_log)
        self.info.config_text = cfg.as_yaml()
        self.info.external = external
        self.info.last_config_time_s = time.time()

    async def _open_query_log(self, path: str) -> QueryLogFile | None:
        """Opens the `query_log_file` of a configuration (None when it is empty).

        Raises:
            ConfigError: with Prometheus's message (the cause is logged, as Prometheus does).
        """
        if not path:
            return None
        try:
            return await asyncio.to_thread(QueryLogFile.open, path)
        except QueryLogOpenError as exc:
            log.error("Failed to apply configuration", extra={"kv": {"err": str(exc)}})
            raise ConfigError(
                "one or more errors occurred while applying the new configuration "
                f"(--config.file={go_quote(self.flags.config_file)})"
            ) from exc

    async def reload(self) -> None:
        """Reloads the config file; on error keeps the running config and re-raises.

        Raises:
            ConfigError: with file, line and reason when the new configuration is refused.
        """
        async with self._reload_lock:
            log.info(
                "Loading configuration file", extra={"kv": {"filename": self.flags.config_file}}
            )
            try:
                cfg = await asyncio.to_thread(load_config, self.flags.config_file)
                await self.apply_config(cfg)
            except Exception as exc:
                self.reload_ok.set(0)
                self.info.reload_ok = False
                self.notifications.add(notifications.CONFIGURATION_UNSUCCESSFUL)
                log.error("Error reloading config", extra={"kv": {"err": str(exc)}})
                raise
            self.reload_ok.set(1)
            self.info.reload_ok = True
            self.notifications.delete(notifications.CONFIGURATION_UNSUCCESSFUL)
            self.reload_time.set(time.time())
            log.info("Completed loading of configuration file")

    # Running and stopping.

    def request_stop(self) -> None:
        """Asks the server to shut down (SIGTERM, SIGINT, POST /-/quit)."""
        self._stop_requested.set()

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)
            try:
                await asyncio.to_thread(self.db.maintenance)
            except Exception:
                log.exception("TSDB maintenance failed")

    async def wait(self) -> None:
        """Blocks until a stop is requested."""
        await self._stop_requested.wait()

    async def stop(self) -> None:
        """Stops every stage and closes the TSDB (flushing what the WAL still buffers)."""
        self._ready = False
        self.notifications.add(notifications.SHUTTING_DOWN)
        log.info("Stopping scrape manager...")
        with contextlib.suppress(Exception):
            await self.scrape.stop()
        with contextlib.suppress(Exception):
            await self.rules.stop()
        with contextlib.suppress(Exception):
            await self.notifier.stop()
        self.engine.set_query_log(None)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.to_thread(self.db.close)
        log.info("See you next time!")


def _host_for_url(listen_address: str) -> str:
    host, _, port = listen_address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        import socket

        host = socket.gethostname()
    return f"{host}:{port}"


async def run_server_async(argv: Sequence[str]) -> int:
    """Parses server flags, runs the server until SIGTERM/SIGINT, and returns an exit code."""
    parser = argparse.ArgumentParser(prog="watchkeeper server")
    add_server_flags(parser)
    args = parser.parse_args(list(argv))
    return await _serve(args)


async def _serve(args: argparse.Namespace) -> int:
    try:
        flags = flags_from_args(args)
        setup_logging(flags.log_level, flags.log_format)
    except (FlagError, ValueError) as exc:
        print(f"watchkeeper: error: {exc}", file=sys.stderr)
        return 2
    for name in flags.unknown_features:
        log.warning("Unknown option for --enable-feature", extra={"kv": {"option": name}})
    server = Server(flags)
    try:
        await server.start()
    except ConfigError as exc:
        print(
            f'watchkeeper: error loading config from "{flags.config_file}":\n{exc}', file=sys.stderr
        )
        return 1
    except OSError as exc:
        print(f"watchkeeper: error: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)

    def on_hup() -> None:
        async def reload() -> None:
            with contextlib.suppress(Exception):
                await server.reload()

        asyncio.ensure_future(reload())  # noqa: RUF006 - fire and forget; errors are logged

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        await server.wait()
    finally:
        log.info("Received shutdown request, shutting down")
        await server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of `watchkeeper server`."""
    try:
        return run_server(_serve(args))
    except KeyboardInterrupt:
        return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `watchkeeper server`."""
    parser = subparsers.add_parser(
        "server",
        help="Run the Prometheus-compatible server.",
        description="Scrape, store, query and alert, as Prometheus does.",
    )
    add_server_flags(parser)
    parser.set_defaults(func=run)
