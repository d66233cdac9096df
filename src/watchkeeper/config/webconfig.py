"""web-config.yml, the exporter toolkit's file for TLS, basic auth and response headers.

Every server of the stack (Prometheus, Alertmanager, Pushgateway, exporters) reads the same
file, so it lives in this low layer: `load_web_config` parses and validates it (errors name
file, line and field), `build_ssl_context` turns `tls_server_config` into an
`ssl.SSLContext`, `WebConfigSite` serves it (refusing client certificates outside
`client_allowed_sans`), and `install_web_config` enforces `rate_limit` (429) and
`basic_auth_users` (bcrypt hashes, 401 with WWW-Authenticate) and adds
`http_server_config.headers` to every response. Relative file names are resolved against
the directory of the config file. docs/security.md says where Python's ssl falls short of Go.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import math
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Middleware

from watchkeeper.config.yamlsource import ConfigError, LineDict, load_yaml

log = logging.getLogger(__name__)

_CLIENT_AUTH: Final = {
    "": ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS: Final = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's names of the TLS 1.0-1.2 suites it supports, mapped to OpenSSL's names.
_CIPHERS: Final = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# TLS 1.3 suites: Go accepts their names but, like OpenSSL's cipher list, never lets them be
# restricted, so they are valid and change nothing.
_TLS13_CIPHERS: Final = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)
# Go's curve names, mapped to OpenSSL's.
_CURVES: Final = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
_ALLOWED_HEADERS: Final = {
    "strict-transport-security": "Strict-Transport-Security",
    "x-content-type-options": "X-Content-Type-Options",
    "x-frame-options": "X-Frame-Options",
    "x-xss-protection": "X-XSS-Protection",
    "content-security-policy": "Content-Security-Policy",
}
_TOP_FIELDS: Final = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_FIELDS: Final = (
    "cert_file",
    "key_file",
    "cert",
    "key",
    "client_auth_type",
    "client_ca_file",
    "client_ca",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_HTTP_FIELDS: Final = ("http2", "headers")
_RATE_LIMIT_FIELDS: Final = ("interval", "burst")


@dataclass(frozen=True, slots=True)
class TlsServerConfig:
    """tls_server_config: the server certificate and the client certificate policy."""

    cert_file: Path | None = None
    key_file: Path | None = None
    cert: str = ""
    key: str = ""
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    client_ca: str = ""
    client_allowed_sans: tuple[str, ...] | None = None
    """None when unset; an empty list (as in Go) lets no client certificate through."""
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """rate_limit: a token bucket of `burst` requests refilled with one every `interval_s`."""

    interval_s: float
    burst: int


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A parsed web-config.yml. `tls` is None when the server speaks plain HTTP."""

    tls: TlsServerConfig | None = None
    basic_auth_users: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    http2: bool = True
    rate_limit: RateLimitConfig | None = None
    """None when the interval is unset or 0, as the toolkit then installs no limiter."""
    source: str = ""


def _fail(source: str, doc: Any, key: str, where: str, reason: str) -> ConfigError:
    line = doc.key_lines.get(key) if isinstance(doc, LineDict) else None
    if line is None:
        line = getattr(doc, "line", None)
    loc = f"{source}:{line}" if line else source
    return ConfigError(f"{loc}: {where}: {reason}")


def _check_fields(source: str, doc: Any, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping")
    for key in doc:
        if key not in allowed:
            raise _fail(
                source,
                doc,
                key,
                f"{where}.{key}" if where else key,
                f"field {key} not found in type",
            )


def _text(source: str, doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _fail(source, doc, key, f"{where}.{key}", "expected a string")
    return str(value)


def parse_web_config(document: Any, source: str, base_dir: Path) -> WebConfig:
    """Validates a loaded web-config document.

    Raises:
        ConfigError: "file:line: field: reason" for the first problem found.
    """
    if document is None:
        return WebConfig(source=source)
    _check_fields(source, document, _TOP_FIELDS, "")
    tls = None
    tls_doc = document.get("tls_server_config")
    if tls_doc is not None:
        tls = _parse_tls(source, tls_doc, base_dir)
    headers: dict[str, str] = {}
    http2 = True
    http_doc = document.get("http_server_config")
    if http_doc is not None:
        _check_fields(source, http_doc, _HTTP_FIELDS, "http_server_config")
        if "http2" in http_doc:
            if not isinstance(http_doc["http2"], bool):
                raise _fail(
                    source, http_doc, "http2", "http_server_config.http2", "expected a boolean"
                )
            http2 = http_doc["http2"]
        raw_headers = http_doc.get("headers") or {}
        if not isinstance(raw_headers, dict):
            raise _fail(
                source, http_doc, "headers", "http_server_config.headers", "expected a mapping"
            )
        for name, value in raw_headers.items():
            where = f"http_server_config.headers.{name}"
            canonical = _ALLOWED_HEADERS.get(str(name).lower())
            if canonical is None:
                raise _fail(
                    source, raw_headers, name, where, f'HTTP header "{name}" can not be configured'
                )
            text = str(value)
            if canonical == "X-Content-Type-Options" and text.lower() != "nosniff":
                raise _fail(
                    source,
                    raw_headers,
                    name,
                    where,
                    f"invalid value for {canonical}. "
                    f'Expected one of: ["nosniff"], but got: "{text}"',
                )
            if canonical == "X-Frame-Options" and text.lower() not in ("deny", "sameorigin"):
                raise _fail(
                    source,
                    raw_headers,
                    name,
                    where,
                    f"invalid value for {canonical}. "
                    f'Expected one of: ["deny" "sameorigin"], but got: "{text}"',
                )
            headers[canonical] = text
    users: dict[str, str] = {}
    users_doc = document.get("basic_auth_users")
    if users_doc is not None:
        if not isinstance(users_doc, dict):
            raise _fail(
                source, document, "basic_auth_users", "basic_auth_users", "expected a mapping"
            )
        for user, hashed in users_doc.items():
            text = str(hashed) if hashed is not None else ""
            if not text.startswith(("$2a$", "$2b$", "$2y$")):
                raise _fail(
                    source, users_doc, user, f"basic_auth_users.{user}", "not a bcrypt hash"
                )
            users[str(user)] = text
    rate_limit = None
    if document.get("rate_limit") is not None:
        rate_limit = _parse_rate_limit(source, document["rate_limit"])
    return WebConfig(
        tls=tls,
        basic_auth_users=users,
        headers=headers,
        http2=http2,
        rate_limit=rate_limit,
        source=source,
    )


_GO_DURATION_UNITS_NS: Final = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_GO_DURATION_PART: Final = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_go_time_duration_ns(text: str) -> int:
    """Parses a Go `time.Duration` ("1.5s", "1h30m", "300us", "-2m") into nanoseconds.

    These are Go's durations, not Prometheus's: no "d", "w" or "y", fractions allowed.

    Raises:
        ValueError: when the text is not a Go duration.
    """
    negative = text.startswith("-")
    rest = text[1:] if text[:1] in ("-", "+") else text
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    while rest:
        match = _GO_DURATION_PART.match(rest)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        whole, fraction, unit = match.groups()
        if not (whole or fraction) or unit not in _GO_DURATION_UNITS_NS:
            raise ValueError(f"invalid duration {text!r}")
        number = float(f"{whole or '0'}.{fraction or '0'}")
        total += number * _GO_DURATION_UNITS_NS[unit]
        rest = rest[match.end() :]
    return -int(total) if negative else int(total)


def _parse_rate_limit(source: str, doc: Any) -> RateLimitConfig | None:
    where = "rate_limit"
    _check_fields(source, doc, _RATE_LIMIT_FIELDS, where)
    interval = doc.get("interval")
    if interval is None:
        interval_ns = 0
    elif isinstance(interval, int) and not isinstance(interval, bool):
        interval_ns = interval  # NB: a bare YAML integer is nanoseconds, as Go decodes it.
    else:
        try:
            interval_ns = parse_go_time_duration_ns(str(interval))
        except ValueError:
            raise _fail(
                source,
                doc,
                "interval",
                f"{where}.interval",
                f"cannot unmarshal !!str `{interval}` into time.Duration",
            ) from None
    burst = doc.get("burst", 0)
    if burst is None:
        burst = 0
    if not isinstance(burst, int) or isinstance(burst, bool):
        raise _fail(source, doc, "burst", f"{where}.burst", f"cannot unmarshal `{burst}` into int")
    if interval_ns == 0:
        return None
    return RateLimitConfig(interval_s=interval_ns / 1e9, burst=burst)


def _bool(source: str, doc: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(source, doc, key, f"{where}.{key}", "expected a boolean")
    return value


def _names(source: str, doc: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(source, doc, key, f"{where}.{key}", "expected a list")
    return tuple(str(item) for item in value)


def _parse_tls(source: str, doc: Any, base_dir: Path) -> TlsServerConfig | None:
    where = "tls_server_config"
    _check_fields(source, doc, _TLS_FIELDS, where)

    def path(key: str) -> Path | None:
        text = _text(source, doc, key, where)
        if not text:
            return None
        p = Path(text)
        return p if p.is_absolute() else base_dir / p

    cert_file, key_file, ca_file = path("cert_file"), path("key_file"), path("client_ca_file")
    cert, key = _text(source, doc, "cert", where), _text(source, doc, "key", where)
    client_ca = _text(source, doc, "client_ca", where)
    auth = _text(source, doc, "client_auth_type", where)
    if not (cert_file or cert or key_file or key or ca_file or client_ca or auth):
        # NB: as in the toolkit, a section without certificates or client policy means
        # plain HTTP (e.g. one that only sets min_version).
        return None
    if not (cert_file or cert):
        raise _fail(source, doc, "key_file", where, "missing cert_file")
    if not (key_file or key):
        raise _fail(source, doc, "cert_file", where, "missing key_file")
    auth = auth or "NoClientCert"
    if auth not in _CLIENT_AUTH:
        raise _fail(
            source,
            doc,
            "client_auth_type",
            f"{where}.client_auth_type",
            f"Invalid ClientAuth: {auth}",
        )
    if (ca_file is not None or client_ca) and auth == "NoClientCert":
        raise _fail(
            source,
            doc,
            "client_ca_file" if ca_file is not None else "client_ca",
            f"{where}.client_ca_file",
            "Client CA's have been configured without a Client Auth Policy",
        )
    versions = {}
    for key_name in ("min_version", "max_version"):
        value = _text(source, doc, key_name, where)
        if value and value not in _TLS_VERSIONS:
            raise _fail(
                source, doc, key_name, f"{where}.{key_name}", f"unknown TLS version: {value}"
            )
        versions[key_name] = value
    ciphers = _names(source, doc, "cipher_suites", where) or ()
    for name in ciphers:
        if name not in _CIPHERS and name not in _TLS13_CIPHERS:
            raise _fail(
                source, doc, "cipher_suites", f"{where}.cipher_suites", f"unknown cipher: {name}"
            )
    curves = _names(source, doc, "curve_preferences", where) or ()
    for name in curves:
        if name not in _CURVES:
            raise _fail(
                source,
                doc,
                "curve_preferences",
                f"{where}.curve_preferences",
                f"unknown curve: {name}",
            )
    prefer_server_order = _bool(source, doc, "prefer_server_cipher_suites", where, default=True)
    allowed_sans = _names(source, doc, "client_allowed_sans", where)
    for key_name, p in (
        ("cert_file", cert_file),
        ("key_file", key_file),
        ("client_ca_file", ca_file),
    ):
        if p is not None and not p.is_file():
            raise _fail(source, doc, key_name, f"{where}.{key_name}", f"cannot read file {p}")
    return TlsServerConfig(
        cert_file=cert_file,
        key_file=key_file,
        cert=cert,
        key=key,
        client_auth_type=auth,
        client_ca_file=ca_file,
        client_ca=client_ca,
        client_allowed_sans=allowed_sans,
        min_version=versions["min_version"] or "TLS12",
        max_version=versions["max_version"] or "TLS13",
        cipher_suites=ciphers,
        prefer_server_cipher_suites=prefer_server_order,
        curve_preferences=curves,
    )


def load_web_config(path: str | Path) -> WebConfig:
    """Reads and validates a web-config.yml file.

    Raises:
        ConfigError: when the file cannot be read, parsed or validated.
    """
    p = Path(path)
    return parse_web_config(load_yaml(p), str(p), p.resolve().parent)


def build_ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    """Builds the server-side TLS context, or None when the config has no TLS section.

    `client_allowed_sans` is not in the context (Python's ssl has no verify callback):
    `WebConfigSite` checks it once the handshake is done.

    Raises:
        ConfigError: when the certificate, key, CA or curves cannot be loaded.
    """
    tls = config.tls
    if tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = _TLS_VERSIONS[tls.max_version]
    # NB: OpenSSL's list covers TLS 1.2 and below only, like Go's CipherSuites.
    legacy_suites = [_CIPHERS[c] for c in tls.cipher_suites if c in _CIPHERS]
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # HTTP/2 is never served, whatever http_server_config.http2 says.
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        if legacy_suites:
            ctx.set_ciphers(":".join(legacy_suites))
        if tls.curve_preferences:
            _set_curve(ctx, tls.curve_preferences)
        if tls.cert_file is not None and tls.key_file is not None:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        else:
            _load_inline_cert_chain(ctx, tls)
        ctx.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
        if tls.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.client_ca_file))
        elif tls.client_ca:
            ctx.load_verify_locations(cadata=tls.client_ca)
        elif ctx.verify_mode != ssl.CERT_NONE:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{config.source}: tls_server_config: {exc}") from exc
    return ctx


def _set_curve(ctx: ssl.SSLContext, preferences: tuple[str, ...]) -> None:
    """Offers the first curve of `preferences` this OpenSSL knows (ssl can set only one)."""
    for name in preferences:
        try:
            ctx.set_ecdh_curve(_CURVES[name])
        except (ValueError, ssl.SSLError):
            continue
        return
    raise ValueError(f"curve_preferences: none of {list(preferences)} is supported by OpenSSL")


def _load_inline_cert_chain(ctx: ssl.SSLContext, tls: TlsServerConfig) -> None:
    """Loads `cert`/`key` given inline (ssl reads only files: a private temporary folder)."""
    folder = Path(tempfile.mkdtemp(prefix="watchkeeper-tls-"))
    try:
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_text(tls.cert if tls.cert_file is None else tls.cert_file.read_text())
        key_path.write_text(tls.key if tls.key_file is None else tls.key_file.read_text())
        ctx.load_cert_chain(cert_path, key_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def certificate_sans(peercert: Mapping[str, Any] | None) -> list[str]:
    """The SAN values Go compares with client_allowed_sans: DNS, email, IP and URI.

    IP addresses are written as Go writes them ("10.0.0.1", "2001:db8::1"), not as
    OpenSSL does ("2001:DB8:0:0:0:0:0:1").
    """
    if not peercert:
        return []
    values = []
    for kind, value in peercert.get("subjectAltName", ()):
        if kind in ("DNS", "email", "URI"):
            values.append(str(value))
        elif kind == "IP Address":
            try:
                ip = ipaddress.ip_address(str(value).strip())
            except ValueError:
                continue
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            values.append(str(ip))
    return values


class _ClientSanGate(asyncio.Protocol):
    """Hands a TLS connection to HTTP only if the client certificate has an allowed SAN.

    Otherwise it is closed before any request is read, as the toolkit's
    VerifyPeerCertificate fails the handshake.
    """

    def __init__(
        self, make_inner: Callable[[], asyncio.BaseProtocol], allowed_sans: tuple[str, ...]
    ) -> None:
        self._make_inner = make_inner
        self._allowed = frozenset(allowed_sans)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Checks the verified client certificate, then steps out of the way."""
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(f"a TLS stream transport was expected, got {transport!r}")
        sans = certificate_sans(transport.get_extra_info("peercert"))
        if not self._allowed.intersection(sans):
            log.warning(
                "refused TLS client %s: its certificate has none of the client_allowed_sans "
                "%s (its SANs: %s)",
                transport.get_extra_info("peername"),
                sorted(self._allowed),
                sans,
            )
            transport.abort()
            return
        inner = self._make_inner()
        transport.set_protocol(inner)
        inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to do: a refused connection never reached the HTTP protocol."""


class WebConfigSite(web.BaseSite):
    """A TCP site that serves what web-config.yml says: TLS with its client policy.

    Use it in place of `web.TCPSite` so `client_allowed_sans` is enforced too.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        config: WebConfig | None,
        backlog: int = 128,
    ) -> None:
        """Builds the TLS context now, so a bad certificate fails before anything binds.

        Raises:
            ConfigError: when the certificate, key, CA or curves cannot be loaded.
        """
        ssl_context = build_ssl_context(config) if config is not None else None
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        tls = config.tls if config is not None else None
        # NB: Go only calls VerifyPeerCertificate when it asked for a certificate.
        self._allowed_sans = (
            tls.client_allowed_sans
            if tls is not None and tls.client_auth_type != "NoClientCert"
            else None
        )

    @property
    def name(self) -> str:
        """The URL the site serves, e.g. https://127.0.0.1:9090."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        """Binds the socket and starts accepting connections."""
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("call runner.setup() before starting a site")
        allowed = self._allowed_sans
        factory: Callable[[], asyncio.BaseProtocol] = server
        if allowed is not None:

            def factory() -> asyncio.BaseProtocol:
                return _ClientSanGate(server, allowed)

        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog
        )


class RateLimiter:
    """A token bucket as golang.org/x/time/rate.

    It starts full with `burst` tokens and gains one every `interval_s`; a request that
    finds no whole token is refused and takes none.
    """

    def __init__(
        self, interval_s: float, burst: int, *, now_s: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_s = math.inf if interval_s <= 0 else 1.0 / interval_s
        self._burst = burst
        self._tokens = float(max(burst, 0))
        self._now_s = now_s
        self._last_s = now_s()

    def allow(self) -> bool:
        """Takes a token if there is one."""
        if self._per_s == math.inf:
            return True
        now = self._now_s()
        tokens = min(float(self._burst), self._tokens + (now - self._last_s) * self._per_s)
        if tokens < 1.0:
            return False
        self._tokens, self._last_s = tokens - 1.0, now
        return True


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _BasicAuth:
    """Checks basic auth against bcrypt hashes, caching verdicts (bcrypt is slow on purpose)."""

    _DUMMY: Final = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=4))

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        self._cache: dict[bytes, bool] = {}

    async def allowed(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, sep, password = (
                base64.b64decode(header[6:], validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = self.users.get(user)
        key = hashlib.sha256(f"{user}\x00{password}\x00{hashed}".encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        target = hashed.encode() if hashed is not None else self._DUMMY
        ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), target)
        ok = ok and hashed is not None
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[key] = ok
        return ok


REFUSED_BY_WEB_CONFIG: Final = web.RequestKey("watchkeeper_refused_by_web_config", bool)
"""Set on a request the rate limit refused: its 429 carries none of the configured headers."""


def web_config_middleware(config: WebConfig) -> Middleware:
    """Returns an aiohttp middleware for `rate_limit` (429) and `basic_auth_users` (401).

    As in the toolkit, the rate limit is checked first and counts every request, whoever
    sends it; the 429 is answered before the configured headers are added.
    """
    auth = _BasicAuth(config.basic_auth_users) if config.basic_auth_users else None
    limit = config.rate_limit
    limiter = RateLimiter(limit.interval_s, limit.burst) if limit is not None else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if limiter is not None and not limiter.allow():
            request[REFUSED_BY_WEB_CONFIG] = True
            return web.Response(
                status=429,
                text="Too Many Requests\n",
                headers={"X-Content-Type-Options": "nosniff"},
            )
        if auth is not None and not await auth.allowed(request.headers.get("Authorization", "")):
            return web.Response(
                status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"}
            )
        return await handler(request)

    return middleware


def install_web_config(app: web.Application, config: WebConfig) -> None:
    """Puts the rate limit and basic auth in front of every handler; adds the headers.

    The configured headers are added when a response is prepared, so streamed responses
    carry them too.
    """
    if config.basic_auth_users or config.rate_limit is not None:
        app.middlewares.insert(0, web_config_middleware(config))
    headers = dict(config.headers)
    if headers:

        async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
            if request.get(REFUSED_BY_WEB_CONFIG):
                return
            for name, value in headers.items():
                response.headers.setdefault(name, value)

        app.on_response_prepare.append(add_headers)
