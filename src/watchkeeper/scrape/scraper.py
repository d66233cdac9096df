"""The HTTP side of a scrape: one GET with Prometheus's headers, limits and error texts.

The body is streamed (and gunzipped by aiohttp) so `body_size_limit` stops a huge body
early; the timeout covers the whole request.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Final

import aiohttp

from watchkeeper import __version__
from watchkeeper.config.prometheus import SCRAPE_PROTOCOL_HEADERS, ScrapeConfig

USER_AGENT: Final = f"Prometheus/3.5.3 (Watchkeeper {__version__})"
_ESCAPING_PROTOCOLS: Final = ("PrometheusText1.0.0", "OpenMetricsText1.0.0")
_CHUNK: Final = 1 << 16


class ScrapeError(Exception):
    """Raised when a scrape fails; the message is the target's last error."""


class BodySizeLimitError(ScrapeError):
    """Raised when the uncompressed body is larger than body_size_limit."""


def accept_header(protocols: list[str], escaping: str = "allow-utf-8") -> str:
    """Builds the Accept header Prometheus sends for scrape_protocols, most wanted first.

    Example:
        >>> accept_header(["PrometheusText0.0.4"])
        'text/plain;version=0.0.4;q=0.6,*/*;q=0.5'
    """
    vals = []
    weight = len(SCRAPE_PROTOCOL_HEADERS) + 1
    for p in protocols:
        val = SCRAPE_PROTOCOL_HEADERS[p]
        if p in _ESCAPING_PROTOCOLS:
            val += f";escaping={escaping}"
        vals.append(f"{val};q=0.{weight}")
        weight -= 1
    vals.append(f"*/*;q=0.{weight}")
    return ",".join(vals)


@dataclass(frozen=True, slots=True)
class ScrapeResponse:
    """A successful scrape's body and content type."""

    body: bytes
    content_type: str


class Scraper:
    """Fetches targets of one scrape config over one shared aiohttp session."""

    def __init__(self, cfg: ScrapeConfig, session: aiohttp.ClientSession) -> None:
        self._cfg = cfg
        self._session = session
        escaping = cfg.metric_name_escaping_scheme or "allow-utf-8"
        self._accept = accept_header(list(cfg.scrape_protocols or ()), escaping)
        self._server_name = cfg.tls_config.server_name or None
        self._authorizer = cfg.new_authorizer()

    async def scrape(self, url: str, timeout_s: float) -> ScrapeResponse:
        """GETs the URL and reads the body within the timeout and size limit.

        Raises:
            ScrapeError: with Prometheus's wording of the failure.
        """
        cfg = self._cfg
        headers = {
            "Accept": self._accept,
            "Accept-Encoding": "gzip" if cfg.enable_compression else "identity",
            "User-Agent": USER_AGENT,
            "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout_s:g}",
            **cfg.extra_headers(),
        }
        limit = cfg.body_size_limit
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    # NB: an oauth2 token request counts against the scrape timeout.
                    auth = await self._authorizer.authorization_header(user_agent=USER_AGENT)
                except OSError as exc:
                    raise ScrapeError(f"unable to read credentials: {exc}") from exc
                if auth:
                    headers["Authorization"] = auth
                async with self._session.get(
                    url,
                    headers=headers,
                    allow_redirects=cfg.follow_redirects,
                    proxy=cfg.proxy_url or None,
                    server_hostname=self._server_name,
                ) as resp:
                    if resp.status != 200:
                        status = f"{resp.status} {resp.reason or ''}".rstrip()
                        raise ScrapeError(f"server returned HTTP status {status}")
                    content_type = resp.headers.get("Content-Type", "")
                    if limit <= 0:
                        body = await resp.read()
                    else:
                        chunks: list[bytes] = []
                        size = 0
                        async for chunk in resp.content.iter_chunked(_CHUNK):
                            size += len(chunk)
                            if size > limit:
                                raise BodySizeLimitError("body size limit exceeded")
                            chunks.append(chunk)
                        body = b"".join(chunks)
        except TimeoutError:
            raise ScrapeError(f'Get "{url}": context deadline exceeded') from None
        except aiohttp.ClientPayloadError as exc:
            raise ScrapeError(f"unexpected EOF: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ScrapeError(f'Get "{url}": {_describe(exc)}') from None
        return ScrapeResponse(body, content_type)


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error)
        if exc.os_error.errno:
            # NB: Go spells errno texts in lower case ("connection refused"); asyncio's own
            # strerror ("Connect call failed (...)") would differ in the failure log.
            text = os.strerror(exc.os_error.errno)
            reason = text[:1].lower() + text[1:]
        return f"dial tcp {exc.host}:{exc.port}: connect: {reason}"
    return str(exc) or type(exc).__name__
