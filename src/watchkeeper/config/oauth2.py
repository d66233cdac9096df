"""OAuth 2.0 client credentials for every HTTP client: scrape, service discovery, notifier.

`RequestAuthorizer` gives each request of one client its Authorization header. With an
`oauth2` block it fetches a token from token_url with the client-credentials grant, as Go's
golang.org/x/oauth2/clientcredentials does for prometheus/common: a form POST with the
client id and secret in a basic-auth header first and, if that fails, in the form (the
working style is remembered); the token is reused until 10 s before it expires; a
client_secret_file is re-read on every request and a changed secret fetches a new token.
Errors are `OAuth2Error`, an `aiohttp.ClientError` worded as Go words them.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import ipaddress
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import aiohttp
from multidict import CIMultiDict

from watchkeeper.model.clock import SYSTEM_CLOCK, Clock
from watchkeeper.model.exposition.floats import go_quote

if TYPE_CHECKING:
    from watchkeeper.config.httpclient import HTTPClientConfig, OAuth2

EXPIRY_DELTA_MS: Final = 10_000
"""A token this close to its expiry is renewed first (x/oauth2's defaultExpiryDelta)."""

JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""The RFC 7523 grant type, accepted by the config but not implemented here."""

_MAX_TOKEN_BODY: Final = 1 << 20
_MAX_EXPIRES_IN_S: Final = 2**31 - 1


class OAuth2Error(aiohttp.ClientError):
    """Raised when a request cannot get a token; the message is what Prometheus reports."""


class _AuthStyle(enum.Enum):
    """Where the client id and secret go in a token request."""

    IN_HEADER = "header"
    IN_PARAMS = "params"


@dataclass(frozen=True, slots=True)
class _Token:
    """An access token and when it stops being usable (0: never)."""

    header: str
    expiry_ms: int

    def is_valid_at(self, now_ms: int) -> bool:
        return self.expiry_ms == 0 or self.expiry_ms - EXPIRY_DELTA_MS >= now_ms


class OAuth2TokenSource:
    """Fetches and caches the client-credentials token of one `oauth2` block.

    One source per HTTP client; it is safe for concurrent requests on one event loop (only
    one token request is in flight at a time).
    """

    def __init__(self, cfg: OAuth2, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._cfg = cfg
        self._clock = clock
        self._lock = asyncio.Lock()
        self._secret: str | None = None
        self._token: _Token | None = None
        self._style: _AuthStyle | None = None

    async def authorization_header(self, *, user_agent: str = "") -> str:
        """The Authorization header value, fetching a token when none is valid.

        Raises:
            OAuth2Error: when the secret cannot be read or the token endpoint fails.
        """
        secret = self._read_secret()
        async with self._lock:
            if secret != self._secret:
                # NB: a new secret starts over, auth style probing included, as Prometheus
                # rebuilds its token source when the secret changes.
                self._secret = secret
                self._token = None
                self._style = None
            token = self._token
            if token is None or not token.is_valid_at(self._clock.now_ms()):
                token = await self._retrieve(secret, user_agent)
                self._token = token
            return token.header

    def _read_secret(self) -> str:
        cfg = self._cfg
        if cfg.grant_type == JWT_BEARER_GRANT:
            raise OAuth2Error(f"oauth2 grant_type {JWT_BEARER_GRANT} is not supported")
        if cfg.client_secret:
            return cfg.client_secret
        if cfg.client_secret_file:
            try:
                return Path(cfg.client_secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise OAuth2Error(
                    "unable to read oauth2 client secret: unable to read file "
                    f"{cfg.client_secret_file}: {_os_error_text(exc)}"
                ) from None
        if cfg.client_secret_ref:
            raise OAuth2Error("unable to use client secret: cannot use secret ref without manager")
        return ""

    async def _retrieve(self, secret: str, user_agent: str) -> _Token:
        form = self._form()
        if self._style is not None:
            return await self._request(form, secret, self._style, user_agent)
        try:
            token = await self._request(form, secret, _AuthStyle.IN_HEADER, user_agent)
        except OAuth2Error:
            token = await self._request(form, secret, _AuthStyle.IN_PARAMS, user_agent)
            self._style = _AuthStyle.IN_PARAMS
        else:
            self._style = _AuthStyle.IN_HEADER
        return token

    def _form(self) -> dict[str, list[str]]:
        cfg = self._cfg
        form: dict[str, list[str]] = {"grant_type": ["client_credentials"]}
        if cfg.scopes:
            form["scope"] = [" ".join(cfg.scopes)]
        for name, value in cfg.endpoint_params.items():
            # NB: only grant_type may be overridden (for non-compliant servers).
            if name in form and name != "grant_type":
                raise OAuth2Error(f'oauth2: cannot overwrite parameter "{name}"')
            form[name] = [value]
        return form

    async def _request(
        self, form: dict[str, list[str]], secret: str, style: _AuthStyle, user_agent: str
    ) -> _Token:
        cfg = self._cfg
        headers: CIMultiDict[str] = CIMultiDict(
            {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if user_agent:
            headers["User-Agent"] = user_agent
        if style is _AuthStyle.IN_HEADER:
            pair = f"{quote_plus(cfg.client_id, safe='')}:{quote_plus(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form = dict(form)
            if cfg.client_id:
                form["client_id"] = [cfg.client_id]
            if secret:
                form["client_secret"] = [secret]
        body = urlencode(sorted(form.items()), doseq=True)
        try:
            connector = aiohttp.TCPConnector(ssl=self._ssl_context())
        except (OSError, ssl.SSLError) as exc:
            raise OAuth2Error(f"unable to load oauth2 tls_config: {exc}") from None
        proxy, proxy_headers = self._proxy()
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, trust_env=cfg.proxy_from_environment
                ) as session,
                session.post(
                    cfg.token_url,
                    data=body.encode(),
                    headers=headers,
                    proxy=proxy,
                    proxy_headers=proxy_headers,
                    server_hostname=self._server_name(),
                ) as resp,
            ):
                raw = await _read_limited(resp)
                status = f"{resp.status} {resp.reason or ''}".rstrip()
                return self._parse(resp.status, status, resp.content_type, raw)
        except aiohttp.ClientSSLError as exc:
            raise OAuth2Error(f'Post "{cfg.token_url}": {exc}') from None
        except aiohttp.ClientConnectorError as exc:
            raise OAuth2Error(f'Post "{cfg.token_url}": {_dial_error_text(exc)}') from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(exc, OAuth2Error):
                raise
            raise OAuth2Error(f'Post "{cfg.token_url}": {str(exc) or type(exc).__name__}') from None

    def _ssl_context(self) -> ssl.SSLContext | bool:
        tls = self._cfg.tls_config
        if tls is None or not self._cfg.token_url.lower().startswith("https"):
            return True
        return tls.ssl_context()

    def _server_name(self) -> str | None:
        tls = self._cfg.tls_config
        return (tls.server_name or None) if tls is not None else None

    def _proxy(self) -> tuple[str | None, CIMultiDict[str] | None]:
        cfg = self._cfg
        if not cfg.proxy_url:
            return None, _connect_headers(cfg)
        if cfg.no_proxy and _bypasses_proxy(cfg.token_url, cfg.no_proxy):
            return None, None
        return cfg.proxy_url, _connect_headers(cfg)

    def _parse(self, status_code: int, status: str, content_type: str, raw: bytes) -> _Token:
        failed = not 200 <= status_code <= 299
        text = raw.decode("utf-8", "replace")
        fetch_failure = OAuth2Error(f"oauth2: cannot fetch token: {status}\nResponse: {text}")
        fields: dict[str, str] = {}
        expires_in_s = 0
        if content_type in ("application/x-www-form-urlencoded", "text/plain"):
            values = parse_qs(text, keep_blank_values=True)
            fields = {k: v[0] for k, v in values.items()}
            try:
                expires_in_s = int(fields.get("expires_in", "0"))
            except ValueError:
                expires_in_s = 0
        else:
            try:
                fields, expires_in_s = _json_fields(text)
            except ValueError as exc:
                if failed:
                    raise fetch_failure from None
                raise OAuth2Error(f"oauth2: cannot parse json: {exc}") from None
        code = fields.get("error", "")
        if code:
            message = f"oauth2: {go_quote(code)}"
            for extra in (fields.get("error_description", ""), fields.get("error_uri", "")):
                if extra:
                    message += f" {go_quote(extra)}"
            raise OAuth2Error(message)
        if failed:
            raise fetch_failure
        access_token = fields.get("access_token", "")
        if not access_token:
            raise OAuth2Error("oauth2: server response missing access_token")
        expiry_ms = 0
        if expires_in_s:
            expiry_ms = self._clock.now_ms() + min(expires_in_s, _MAX_EXPIRES_IN_S) * 1000
        return _Token(f"{_token_type(fields.get('token_type', ''))} {access_token}", expiry_ms)


class RequestAuthorizer:
    """The Authorization header of each request of one HTTP client.

    Static credentials (basic_auth, authorization, bearer_token) are read from their files
    on every request; oauth2 tokens are cached by an `OAuth2TokenSource`.
    """

    def __init__(self, cfg: HTTPClientConfig, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._cfg = cfg
        self.oauth2 = OAuth2TokenSource(cfg.oauth2, clock=clock) if cfg.oauth2 else None
        """The token source when the client uses oauth2, else None."""

    async def authorization_header(self, *, user_agent: str = "") -> str | None:
        """The Authorization header value, or None when the client sends none.

        Raises:
            OSError: when a basic_auth or authorization file cannot be read.
            OAuth2Error: when an oauth2 token cannot be had.
        """
        if self.oauth2 is not None:
            return await self.oauth2.authorization_header(user_agent=user_agent)
        return self._cfg.authorization_header()


async def _read_limited(resp: aiohttp.ClientResponse) -> bytes:
    """The first MiB of the body, as x/oauth2 reads no more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MAX_TOKEN_BODY:
            break
    return b"".join(chunks)[:_MAX_TOKEN_BODY]


def _json_fields(text: str) -> tuple[dict[str, str], int]:
    """The string fields and expires_in of a JSON token response.

    Raises:
        ValueError: when the body is not a JSON object of the expected types.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"cannot unmarshal {type(data).__name__} into a token response")
    fields: dict[str, str] = {}
    for name in ("access_token", "token_type", "error", "error_description", "error_uri"):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(
                f"cannot unmarshal {json.dumps(value)} into field {name} of type string"
            )
        fields[name] = value
    expires_in = data.get("expires_in")
    # NB: some servers (PayPal) send expires_in as a string; x/oauth2 accepts both.
    if expires_in is None:
        return fields, 0
    if isinstance(expires_in, str):
        try:
            return fields, int(expires_in)
        except ValueError:
            raise ValueError(f"invalid expires_in {expires_in!r}") from None
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise ValueError(f"invalid expires_in {json.dumps(expires_in)}")
    return fields, expires_in


def _token_type(name: str) -> str:
    """The Authorization scheme for a token_type, spelled as x/oauth2 spells it."""
    for known in ("Bearer", "MAC", "Basic"):
        if name.lower() == known.lower():
            return known
    return name or "Bearer"


def _bypasses_proxy(url: str, no_proxy: str) -> bool:
    """Tells whether no_proxy exempts the URL's host, as Go's httpproxy reads NO_PROXY.

    Entries are "*", IP addresses, CIDR ranges, or domain names (matching the name and its
    subdomains; with a leading "." or "*." only subdomains), each with an optional port.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]")
        if name.startswith("*."):
            name = name[1:]
        if name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def _connect_headers(cfg: OAuth2) -> CIMultiDict[str] | None:
    if not cfg.proxy_connect_header:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for name, values in cfg.proxy_connect_header.items():
        for value in values:
            headers.add(name, value)
    return headers


def _os_error_text(exc: OSError) -> str:
    """Go's wording of a failed open: "open <path>: no such file or directory"."""
    if exc.errno is None:
        return str(exc)
    reason = os.strerror(exc.errno)
    return f"open {exc.filename}: {reason[:1].lower()}{reason[1:]}"


def _dial_error_text(exc: aiohttp.ClientConnectorError) -> str:
    """Go's wording of a failed connection: "dial tcp h:p: connect: connection refused"."""
    reason = exc.os_error.strerror or str(exc.os_error)
    if exc.os_error.errno:
        text = os.strerror(exc.os_error.errno)
        reason = text[:1].lower() + text[1:]
    return f"dial tcp {exc.host}:{exc.port}: connect: {reason}"
