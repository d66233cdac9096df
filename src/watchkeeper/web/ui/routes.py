"""Serves the built UI and the dashboards API on an aiohttp application.

UI pages (/query, /alerts, /targets, ...) all answer the same HTML shell; the browser-side
router draws the page. The assets come from `dist/`, built from npm by `make ui`; when they
are missing the shell says how to build them, and the API keeps working.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

import orjson
from aiohttp import web

from watchkeeper.web.ui.dashboards import DashboardError, DashboardStore, import_grafana

DIST_DIR: Final = Path(__file__).resolve().parent / "dist"
UI_PATHS: Final = (
    "/query",
    "/graph",
    "/alerts",
    "/targets",
    "/rules",
    "/service-discovery",
    "/status",
    "/config",
    "/flags",
    "/tsdb-status",
    "/runtimeinfo",
    "/buildinfo",
    "/dashboards",
)
_MAX_DASHBOARD_BYTES: Final = 5 << 20
_NOT_BUILT: Final = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
</head><body><h1>{title}</h1><p>The web UI was not built (npm was not available when it was
installed). Run <code>make ui</code>. The HTTP API works: try
<a href="{prefix}/api/v1/query?query=up">{prefix}/api/v1/query?query=up</a>.</p></body></html>"""


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps({"status": "success", "data": data}),
        status=status,
        content_type="application/json",
    )


def _error(message: str, status: int = 400) -> web.Response:
    return web.Response(
        body=orjson.dumps({"status": "error", "errorType": "bad_data", "error": message}),
        status=status,
        content_type="application/json",
    )


def add_ui_routes(
    app: web.Application, *, prefix: str, page_title: str, dashboards: DashboardStore
) -> None:
    """Adds the UI pages, static assets and /api/wk/dashboards to `app`."""
    prefix = prefix.rstrip("/")
    index_path = DIST_DIR / "index.html"

    def shell() -> str:
        title = html.escape(page_title)
        if not index_path.exists():
            return _NOT_BUILT.format(title=title, prefix=html.escape(prefix))
        return (
            index_path.read_text(encoding="utf-8")
            .replace("__PAGE_TITLE__", title)
            .replace("__PREFIX__", html.escape(prefix))
        )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=shell(), content_type="text/html")

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{prefix}/query")

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = (DIST_DIR / name).resolve()
        if DIST_DIR.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def list_dashboards(request: web.Request) -> web.Response:
        return _json(dashboards.list())

    async def get_dashboard(request: web.Request) -> web.Response:
        try:
            model = dashboards.get(request.match_info["uid"])
        except DashboardError as exc:
            return _error(str(exc))
        if model is None:
            return _error("dashboard not found", 404)
        return _json(model)

    async def read_json(request: web.Request) -> object:
        body = await request.content.read(_MAX_DASHBOARD_BYTES + 1)
        if len(body) > _MAX_DASHBOARD_BYTES:
            raise DashboardError("request body: larger than 5 MiB")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DashboardError(f"request body: invalid JSON: {exc}") from exc

    async def put_dashboard(request: web.Request) -> web.Response:
        try:
            model = dashboards.put(request.match_info["uid"], await read_json(request))
        except DashboardError as exc:
            return _error(str(exc))
        return _json(model)

    async def delete_dashboard(request: web.Request) -> web.Response:
        try:
            found = dashboards.delete(request.match_info["uid"])
        except DashboardError as exc:
            return _error(str(exc))
        return _json(None) if found else _error("dashboard not found", 404)

    async def import_dashboard(request: web.Request) -> web.Response:
        try:
            result = import_grafana(await read_json(request))
            uid = result.dashboard["uid"]
            if dashboards.get(uid) is not None:
                uid = result.dashboard["uid"] = f"{uid}-imported"[:100]
            dashboards.put(uid, result.dashboard)
        except DashboardError as exc:
            return _error(str(exc))
        return _json({"dashboard": result.dashboard, "unsupported": result.unsupported})

    router = app.router
    router.add_get(f"{prefix}/", root)
    if prefix:
        router.add_get(prefix, root)
    for path in UI_PATHS:
        router.add_get(f"{prefix}{path}", page)
    router.add_get(prefix + "/dashboards/{uid}", page)
    router.add_get(prefix + "/static/{name}", static)
    router.add_get(f"{prefix}/api/wk/dashboards", list_dashboards)
    router.add_post(f"{prefix}/api/wk/dashboards/import-grafana", import_dashboard)
    router.add_get(prefix + "/api/wk/dashboards/{uid}", get_dashboard)
    router.add_put(prefix + "/api/wk/dashboards/{uid}", put_dashboard)
    router.add_delete(prefix + "/api/wk/dashboards/{uid}", delete_dashboard)
