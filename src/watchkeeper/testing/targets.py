"""Scrape targets for tests and benchmarks: a real aiohttp server on 127.0.0.1.

Each endpoint serves a body a test can change between scrapes, and can misbehave on
purpose: hang, stream forever, cut the connection mid-body, answer with an error status.
"""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Endpoint:
    """One programmable /<name> endpoint."""

    body: bytes = b""
    content_type: str = "text/plain; version=0.0.4"
    status: int = 200
    delay_s: float = 0.0
    gzip: bool = False
    endless: bool = False
    cut_after: int = -1
    requests: list[web.Request] = field(default_factory=list)


class TargetServer:
    """Serves /<name> endpoints whose behaviour a test can change between scrapes."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.port = 0
        self._runner: web.AppRunner

    def add(self, name: str, body: str | bytes = b"", **kw: object) -> Endpoint:
        """Adds (or replaces) the endpoint /<name>."""
        data = body.encode() if isinstance(body, str) else body
        ep = Endpoint(body=data, **kw)  # type: ignore[arg-type]
        self.endpoints[name] = ep
        return ep

    @property
    def address(self) -> str:
        """host:port of the server."""
        return f"127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serves one request."""
        ep = self.endpoints.get(request.match_info["name"])
        if ep is None:
            return web.Response(status=404, text="not found")
        ep.requests.append(request)
        if ep.delay_s:
            await asyncio.sleep(ep.delay_s)
        headers = {"Content-Type": ep.content_type}
        if ep.endless or ep.cut_after >= 0:
            resp = web.StreamResponse(status=ep.status, headers=headers)
            if ep.cut_after >= 0:
                resp.content_length = len(ep.body) + 1000
            await resp.prepare(request)
            if ep.cut_after >= 0:
                await resp.write(ep.body[: ep.cut_after])
                if request.transport is not None:
                    request.transport.close()
                return resp
            chunk = b"x_metric 1\n" * 10000
            for _ in range(100_000):
                await resp.write(chunk)
            return resp
        body = ep.body
        if ep.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, status=ep.status, headers=headers)

    async def start(self) -> None:
        """Starts serving on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_get("/{name}", self.handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stops serving."""
        await self._runner.cleanup()
