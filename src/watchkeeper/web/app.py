"""The web server's application: the API v1, /federate, /metrics, lifecycle and health.

`create_app(deps, options)` builds an aiohttp Application; `serve(app, options)` binds it
(with TLS from web-config.yml when configured). Every handler under /api answers JSON,
errors included (never an HTML traceback); responses are gzipped when the client asks.
Admin and lifecycle endpoints answer as Prometheus does when their flags are off. While
the server is not ready, the API and /federate answer 503 except the paths Prometheus
keeps serving (notifications, WAL replay status). CORS headers are added when a response
is prepared, so streamed answers carry them too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlparse

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_response import ContentCoding

from watchkeeper.config.webconfig import (
    WebConfig,
    WebConfigSite,
    install_web_config,
    load_web_config,
)
from watchkeeper.model.labels import EMPTY_LABELS
from watchkeeper.web.api.v1.api import Api, ApiOptions, error_body
from watchkeeper.web.api.v1.deps import ApiDeps, ReadyStatus
from watchkeeper.web.api.v1.errors import ApiError
from watchkeeper.web.federate import federate_handler
from watchkeeper.web.metrics import federation_errors, instrument_app
from watchkeeper.web.write import remote_write_handler

log = logging.getLogger(__name__)

DEPS_KEY: Final = web.AppKey("watchkeeper_deps", ApiDeps)
"""Where the app keeps its ApiDeps (for the UI and other routes added later)."""
OPTIONS_KEY: Final = web.AppKey("watchkeeper_web_options", object)
"""Where the app keeps its WebOptions."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CORS_KEY: Final = web.RequestKey("watchkeeper_cors", bool)
"""Set on requests whose responses carry CORS headers (the routes Prometheus wraps)."""
_SERVED_WHILE_NOT_READY: Final = ("/status/walreplay", "/notifications", "/notifications/live")
"""API v1 paths Prometheus registers without its readiness check (web/api/v1 Register)."""
_WITHOUT_CORS: Final = ("/write", "/read", "/otlp/v1/metrics")
"""API v1 paths whose Prometheus handlers set no CORS headers."""
_CORS_HEADERS: Final = {
    "Access-Control-Allow-Headers": "Accept, Authorization, Content-Type, Origin",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Expose-Headers": "Date",
}


@dataclass(frozen=True, slots=True)
class WebOptions:
    """The --web.* flags of Prometheus that shape the HTTP server."""

    listen_address: str = "0.0.0.0:9090"
    external_url: str = ""
    route_prefix: str | None = None
    enable_lifecycle: bool = False
    enable_admin_api: bool = False
    enable_remote_write_receiver: bool = False
    read_timeout_s: float = 300.0
    max_connections: int = 512
    page_title: str = "Prometheus Time Series Collection and Processing Server"
    web_config_file: str | None = None
    cors_origin: str = ".*"
    app_name: str = "Prometheus Server"
    lookback_delta_ms: int = 300_000
    query_timeout_s: float = 120.0
    max_request_bytes: int = 64 << 20

    @property
    def prefix(self) -> str:
        """The route prefix without a trailing slash ("" for the root)."""
        prefix = self.route_prefix
        if prefix is None:
            prefix = urlparse(self.external_url).path if self.external_url else "/"
        return "/" + prefix.strip("/") if prefix.strip("/") else ""


def _cors_signal(
    origin: re.Pattern[str],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare handler adding CORS headers as Prometheus's SetCORS does.

    `Vary: Origin` always; without an Origin header nothing else; with one, the allowed
    headers and methods, and Allow-Origin set to the origin when the pattern matches it.
    NB: Prometheus never answers "*": its anchored pattern is never the literal "^(?:.*)$"
    that SetCORS compares with.
    """

    async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
        if not request.get(_CORS_KEY):
            return
        response.headers.add("Vary", "Origin")
        value = request.headers.get("Origin")
        if not value:
            return
        response.headers.update(_CORS_HEADERS)
        if origin.fullmatch(value):
            response.headers["Access-Control-Allow-Origin"] = value

    return add_cors


def _compress(request: web.Request, response: web.StreamResponse) -> None:
    accept = request.headers.get("Accept-Encoding", "")
    if isinstance(response, web.Response) and response.body and response.status not in (204, 304):
        if "gzip" in accept:
            response.enable_compression(ContentCoding.gzip)
        elif "deflate" in accept:
            response.enable_compression(ContentCoding.deflate)


def _service_unavailable(status: ReadyStatus) -> web.Response:
    """Prometheus's 503 while not ready; only a stopping server says so in a header.

    NB: Prometheus also means to send "false" while starting, but sets it after writing the
    status line, so no header goes out then.
    """
    headers = {"X-Prometheus-Stopping": "true"} if status is ReadyStatus.STOPPING else None
    return web.Response(status=503, text="Service Unavailable", headers=headers)


def _error_middleware(prefix: str, ready: Callable[[], ReadyStatus]) -> Middleware:
    api_prefix = prefix + "/api/"
    api_v1 = prefix + "/api/v1"
    served_while_not_ready = {api_v1 + path for path in _SERVED_WHILE_NOT_READY}
    without_cors = {api_v1 + path for path in _WITHOUT_CORS}
    federate = prefix + "/federate"

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        is_api = path.startswith(api_prefix)
        # NB: unknown paths (404, 405) skip the readiness check, as Prometheus's router
        # only wraps the routes it has; OPTIONS is a route on every API path there.
        routed = request.match_info.http_exception is None or (
            is_api and request.method == "OPTIONS"
        )
        if routed and (is_api or path == federate):
            gated = request.method == "OPTIONS" or path not in served_while_not_ready
            status = ready() if gated else ReadyStatus.READY
            if status is not ReadyStatus.READY:
                return _service_unavailable(status)
            if is_api and path not in without_cors:
                request[_CORS_KEY] = True
        try:
            if is_api and request.method == "OPTIONS":
                # NB: CORS preflight on any API path, answered with no content as Prometheus.
                response: web.StreamResponse = web.Response(status=204)
            else:
                response = await handler(request)
        except ApiError as exc:
            response = web.Response(
                status=exc.status,
                body=error_body(exc.error_type, exc.message),
                content_type="application/json",
            )
        except web.HTTPException as exc:
            if exc.status == 404:
                response = web.Response(status=404, text="404 page not found\n")
            elif exc.status == 405:
                response = web.Response(status=405, text="Method Not Allowed\n")
            elif exc.status == 413:
                response = web.Response(
                    status=413, text=f"request body too large: {exc.text or ''}\n".strip() + "\n"
                )
            else:
                raise
        except Exception as exc:  # a bug must not leak an HTML traceback
            log.exception("internal error serving %s", request.path)
            if is_api:
                response = web.Response(
                    status=500,
                    body=error_body("internal", f"{type(exc).__name__}: {exc}"),
                    content_type="application/json",
                )
            else:
                response = web.Response(status=500, text=f"internal server error: {exc}\n")
        if not response.prepared:
            _compress(request, response)
        return response

    return middleware


def create_app(
    deps: ApiDeps, options: WebOptions, *, web_config: WebConfig | None = None
) -> web.Application:
    """Builds the server's aiohttp application.

    `web_config` (or options.web_config_file, loaded here) adds basic auth and headers;
    TLS is applied by `serve`.

    Raises:
        ConfigError: when the web config file is invalid.
    """
    if web_config is None and options.web_config_file:
        web_config = load_web_config(options.web_config_file)
    prefix = options.prefix
    app = web.Application(
        client_max_size=options.max_request_bytes,
        middlewares=[_error_middleware(prefix, deps.ready)],
    )
    app.on_response_prepare.append(_cors_signal(re.compile(options.cors_origin, re.DOTALL)))
    app[DEPS_KEY] = deps
    app[OPTIONS_KEY] = options
    instrument_app(app, deps.registry)
    if web_config is not None:
        install_web_config(app, web_config)
    api = Api(
        deps,
        ApiOptions(
            enable_admin_api=options.enable_admin_api, query_timeout_s=options.query_timeout_s
        ),
    )
    api.register(app, prefix + "/api/v1")
    app.router.add_post(prefix + "/api/v1/write", _write_route(deps, options))

    federate_errors = federation_errors(deps.registry)

    async def federate(request: web.Request) -> web.StreamResponse:
        ext = deps.config.external_labels() if deps.config is not None else EMPTY_LABELS
        try:
            return await federate_handler(
                request, deps.queryable, deps.clock.now_ms(), options.lookback_delta_ms, ext
            )
        except Exception as exc:
            if not isinstance(exc, web.HTTPClientError):  # A bad match[] is the client's error.
                federate_errors.inc()
            raise

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=deps.registry.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def healthy(request: web.Request) -> web.StreamResponse:
        return web.Response(text=f"{options.app_name} is Healthy.\n")

    async def ready(request: web.Request) -> web.StreamResponse:
        status = deps.ready()
        if status is not ReadyStatus.READY:
            return _service_unavailable(status)
        return web.Response(text=f"{options.app_name} is Ready.\n")

    async def reload(request: web.Request) -> web.StreamResponse:
        if request.method not in ("POST", "PUT"):
            return web.Response(status=405, text="Only POST or PUT requests allowed")
        if not options.enable_lifecycle:
            return web.Response(status=403, text="Lifecycle API is not enabled.")
        if deps.reloader is None:
            return web.Response(status=500, text="failed to reload config: no reloader\n")
        try:
            await deps.reloader()
        except Exception as exc:
            return web.Response(status=500, text=f"failed to reload config: {exc}\n")
        return web.Response(status=200)

    async def quit_(request: web.Request) -> web.StreamResponse:
        if request.method not in ("POST", "PUT"):
            return web.Response(status=405, text="Only POST or PUT requests allowed")
        if not options.enable_lifecycle:
            return web.Response(status=403, text="Lifecycle API is not enabled.")
        if deps.quit is not None:
            deps.quit()
        return web.Response(text="Requesting termination... Goodbye!")

    app.router.add_get(prefix + "/federate", federate)
    app.router.add_get(prefix + "/metrics", metrics)
    app.router.add_get(prefix + "/-/healthy", healthy)
    app.router.add_get(prefix + "/-/ready", ready)
    for path, handler in (("/-/reload", reload), ("/-/quit", quit_)):
        app.router.add_route("*", prefix + path, handler)
    return app


def _write_route(deps: ApiDeps, options: WebOptions) -> Handler:
    async def write(request: web.Request) -> web.StreamResponse:
        if not options.enable_remote_write_receiver or deps.remote_write_sink is None:
            return web.Response(
                status=404,
                text="remote write receiver needs to be enabled with "
                "--web.enable-remote-write-receiver\n",
            )
        return await remote_write_handler(request, deps.remote_write_sink)

    return write


async def serve(
    app: web.Application, options: WebOptions, *, web_config: WebConfig | None = None
) -> tuple[web.AppRunner, int]:
    """Binds the app to options.listen_address (TLS when web-config says so).

    Returns the runner (call `cleanup()` to stop) and the bound port (useful with port 0).

    Raises:
        ConfigError: when the web config or its certificates are invalid.
    """
    if web_config is None and options.web_config_file:
        web_config = load_web_config(options.web_config_file)
    host, _, port_text = options.listen_address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=options.read_timeout_s)
    await runner.setup()
    try:
        site = WebConfigSite(
            runner, host, int(port_text), config=web_config, backlog=options.max_connections
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(port_text)
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = int(address[1])
            break
    return runner, port
