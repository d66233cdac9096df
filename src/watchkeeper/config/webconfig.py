"""web-config.yml, the exporter toolkit's file for TLS, basic auth and response headers.

Every server of the stack (Prometheus, Alertmanager, Pushgateway, exporters) reads the same
file, so it lives in this low layer: `load_web_config` parses and validates it (errors name
file, line and field), `build_ssl_context` turns `tls_server_config` into an
`ssl.SSLContext`, and `web_config_middleware` enforces `basic_auth_users` (bcrypt hashes,
401 with WWW-Authenticate) and adds `http_server_config.headers` to every response.
Relative file names are resolved against the directory of the config file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Middleware

from watchkeeper.config.yamlsource import ConfigError, LineDict, load_yaml

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


@dataclass(frozen=True, slots=True)
class TlsServerConfig:
    """tls_server_config: the server certificate and the client certificate policy."""

    cert_file: Path | None = None
    key_file: Path | None = None
    cert: str = ""
    key: str = ""
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A parsed web-config.yml. `tls` is None when the server speaks plain HTTP."""

    tls: TlsServerConfig | None = None
    basic_auth_users: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    http2: bool = True
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
    return WebConfig(tls=tls, basic_auth_users=users, headers=headers, http2=http2, source=source)


def _parse_tls(source: str, doc: Any, base_dir: Path) -> TlsServerConfig:
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
    if not (cert_file or cert):
        raise _fail(source, doc, "key_file", where, "missing cert_file")
    if not (key_file or key):
        raise _fail(source, doc, "cert_file", where, "missing key_file")
    auth = _text(source, doc, "client_auth_type", where) or "NoClientCert"
    if auth not in _CLIENT_AUTH:
        raise _fail(
            source,
            doc,
            "client_auth_type",
            f"{where}.client_auth_type",
            f"Invalid ClientAuth: {auth}",
        )
    if ca_file is not None and auth == "NoClientCert":
        raise _fail(
            source,
            doc,
            "client_ca_file",
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
    ciphers: list[str] = []
    for name in doc.get("cipher_suites") or []:
        if name not in _CIPHERS:
            raise _fail(
                source, doc, "cipher_suites", f"{where}.cipher_suites", f"unknown cipher: {name}"
            )
        ciphers.append(str(name))
    sans = tuple(str(s) for s in doc.get("client_allowed_sans") or [])
    for p in (cert_file, key_file, ca_file):
        if p is not None and not p.is_file():
            raise _fail(source, doc, "cert_file", where, f"cannot read file {p}")
    return TlsServerConfig(
        cert_file=cert_file,
        key_file=key_file,
        cert=cert,
        key=key,
        client_auth_type=auth,
        client_ca_file=ca_file,
        client_allowed_sans=sans,
        min_version=versions["min_version"] or "TLS12",
        max_version=versions["max_version"],
        cipher_suites=tuple(ciphers),
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

    Raises:
        ConfigError: when the certificate, key or CA cannot be loaded.
    """
    tls = config.tls
    if tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[tls.min_version]
    if tls.max_version:
        ctx.maximum_version = _TLS_VERSIONS[tls.max_version]
    if tls.cipher_suites:
        ctx.set_ciphers(":".join(_CIPHERS[c] for c in tls.cipher_suites))
    try:
        if tls.cert_file is not None and tls.key_file is not None:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        else:
            ctx.load_cert_chain(*_inline_files(tls.cert, tls.key))
        ctx.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
        if tls.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.client_ca_file))
        elif ctx.verify_mode != ssl.CERT_NONE:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{config.source}: tls_server_config: {exc}") from exc
    return ctx


def _inline_files(cert: str, key: str) -> tuple[str, str]:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="watchkeeper-tls-"))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_text(cert)
    key_path.touch(mode=0o600)
    key_path.write_text(key)
    return str(cert_path), str(key_path)


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


def web_config_middleware(config: WebConfig) -> Middleware:
    """Returns an aiohttp middleware that refuses requests without valid basic auth (401)."""
    auth = _BasicAuth(config.basic_auth_users) if config.basic_auth_users else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if auth is not None and not await auth.allowed(request.headers.get("Authorization", "")):
            return web.Response(
                status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"}
            )
        return await handler(request)

    return middleware


def install_web_config(app: web.Application, config: WebConfig) -> None:
    """Puts basic auth in front of every handler and adds the configured response headers."""
    if config.basic_auth_users:
        app.middlewares.insert(0, web_config_middleware(config))
    headers = dict(config.headers)
    if headers:

        async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
            for name, value in headers.items():
                response.headers.setdefault(name, value)

        app.on_response_prepare.append(add_headers)
