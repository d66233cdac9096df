"""http_sd_configs: target groups fetched as a JSON list from a URL every refresh_interval.

A failed refresh (connection error, non-200 status, wrong content type, bad JSON) counts
`prometheus_sd_http_failures_total` and keeps the last good groups. Every group gets
`__meta_url`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Final

import aiohttp

from watchkeeper import __version__
from watchkeeper.discovery.provider import HTTPSDConfigLike, SDMetrics, SendGroups
from watchkeeper.discovery.targetgroup import TargetGroup, TargetGroupError, groups_from_data

log = logging.getLogger(__name__)

URL_LABEL: Final = "__meta_url"
"""The label that names the URL a group came from."""

_JSON_CONTENT_TYPE: Final = re.compile(r"^(?i:application/json(;\s*charset=(\"utf-8\"|utf-8))?)$")


class HTTPSDError(Exception):
    """Raised when one HTTP SD refresh fails."""


class HTTPProvider:
    """Polls one http_sd_config URL."""

    def __init__(self, config: HTTPSDConfigLike, metrics: SDMetrics) -> None:
        self._config = config
        self._metrics = metrics
        self._groups: list[TargetGroup] = []
        self._authorizer = config.new_authorizer()

    async def fetch(self, session: aiohttp.ClientSession) -> list[TargetGroup]:
        """Fetches and decodes the groups once.

        Raises:
            HTTPSDError: naming the reason.
        """
        cfg = self._config
        headers = {
            "User-Agent": f"Watchkeeper/{__version__}",
            "Accept": "application/json",
            "X-Prometheus-Refresh-Interval-Seconds": f"{cfg.refresh_interval / 1000:g}",
            **cfg.extra_headers(),
        }
        timeout = aiohttp.ClientTimeout(total=max(cfg.refresh_interval / 1000, 1.0))
        try:
            try:
                auth = await self._authorizer.authorization_header(user_agent=headers["User-Agent"])
            except OSError as exc:
                raise HTTPSDError(f"unable to read credentials: {exc}") from exc
            if auth:
                headers["Authorization"] = auth
            async with session.get(
                cfg.url,
                headers=headers,
                allow_redirects=cfg.follow_redirects,
                timeout=timeout,
                proxy=cfg.proxy_url or None,
            ) as resp:
                if resp.status != 200:
                    raise HTTPSDError(f"server returned HTTP status {resp.status} {resp.reason}")
                ctype = resp.headers.get("Content-Type", "").strip()
                if not _JSON_CONTENT_TYPE.match(ctype):
                    raise HTTPSDError(f'unsupported content type "{ctype}"')
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HTTPSDError(f"{type(exc).__name__}: {exc}") from exc
        try:
            groups = groups_from_data(json.loads(body), cfg.url)
        except (ValueError, TargetGroupError) as exc:
            raise HTTPSDError(str(exc)) from exc
        for g in groups:
            g.labels[URL_LABEL] = cfg.url
        return groups

    async def run(self, send: SendGroups) -> None:
        """Refreshes every refresh_interval until cancelled."""
        ssl_ctx = self._config.ssl_context() if self._config.url.startswith("https") else None
        connector = aiohttp.TCPConnector(ssl=ssl_ctx) if ssl_ctx is not None else None
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    groups = await self.fetch(session)
                except HTTPSDError as exc:
                    self._metrics.http_failures.inc()
                    log.error("Unable to refresh target groups from %s: %s", self._config.url, exc)
                else:
                    # NB: groups that vanished are sent as empty so consumers drop them.
                    self._groups = groups
                    send(list(groups))
                await asyncio.sleep(self._config.refresh_interval / 1000)
