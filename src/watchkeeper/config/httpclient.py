"""HTTP client settings shared by scrape, service discovery, alerting and remote configs.

These mirror prometheus/common's `HTTPClientConfig`, inlined into the configs that use it:
basic_auth, authorization, oauth2, bearer_token, tls_config, proxy settings,
follow_redirects, enable_http2 and http_headers. File paths are joined with the directory of
the config file by `with_directory`; `new_authorizer` gives a client its Authorization
headers (watchkeeper.config.oauth2).
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from watchkeeper.config.oauth2 import JWT_BEARER_GRANT, RequestAuthorizer
from watchkeeper.config.types import ConfigModel, Secret
from watchkeeper.model.clock import SYSTEM_CLOCK, Clock

TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
"""The TLS versions a tls_config may name."""

SIGNATURE_ALGORITHMS = ("RS256", "RS384", "RS512")
"""The JWT signature algorithms an oauth2 block may name."""


def join_dir(directory: Path, path: str) -> str:
    """Joins a relative path with the config directory, as Prometheus's JoinDir does."""
    if not path or Path(path).is_absolute():
        return path
    return str(directory / path)


class TLSConfig(ConfigModel):
    """Client TLS: CA, client certificate, server name and minimum version."""

    ca: str = ""
    cert: str = ""
    key: Secret = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    ca_ref: str = ""
    cert_ref: str = ""
    key_ref: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False
    min_version: str = ""
    max_version: str = ""

    always_print: ClassVar[frozenset[str]] = frozenset({"insecure_skip_verify"})

    @field_validator("min_version", "max_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value and value not in TLS_VERSIONS:
            raise ValueError(f"unknown TLS version: {value}")
        return value

    @model_validator(mode="after")
    def _one_source_each(self) -> Self:
        if sum(bool(x) for x in (self.ca, self.ca_file, self.ca_ref)) > 1:
            raise ValueError("at most one of ca, ca_file & ca_ref must be configured")
        if sum(bool(x) for x in (self.cert, self.cert_file, self.cert_ref)) > 1:
            raise ValueError("at most one of cert, cert_file & cert_ref must be configured")
        if sum(bool(x) for x in (self.key, self.key_file, self.key_ref)) > 1:
            raise ValueError("at most one of key and key_file must be configured")
        has_cert = bool(self.cert or self.cert_file or self.cert_ref)
        has_key = bool(self.key or self.key_file or self.key_ref)
        if has_cert and not has_key:
            raise ValueError(
                "exactly one of key or key_file must be configured when a client certificate "
                "is configured"
            )
        if has_key and not has_cert:
            raise ValueError(
                "exactly one of cert or cert_file must be configured when a client key is "
                "configured"
            )
        if (
            self.min_version
            and self.max_version
            and TLS_VERSIONS.index(self.max_version) < TLS_VERSIONS.index(self.min_version)
        ):
            raise ValueError(
                "tls_config.max_version must be greater than or equal to "
                "tls_config.min_version if both are specified"
            )
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """Builds the client TLS context.

        Raises:
            OSError, ssl.SSLError: when a CA, certificate or key cannot be loaded.
        """
        ctx = ssl.create_default_context()
        if self.ca_file or self.ca:
            ctx = ssl.create_default_context(cafile=self.ca_file or None, cadata=self.ca or None)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file or None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        versions = {
            "TLS10": ssl.TLSVersion.TLSv1,
            "TLS11": ssl.TLSVersion.TLSv1_1,
            "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3,
        }
        if self.min_version:
            ctx.minimum_version = versions[self.min_version]
        if self.max_version:
            ctx.maximum_version = versions[self.max_version]
        return ctx

    def with_directory(self, directory: Path) -> None:
        """Joins relative file paths with the config directory (in place)."""
        self.ca_file = join_dir(directory, self.ca_file)
        self.cert_file = join_dir(directory, self.cert_file)
        self.key_file = join_dir(directory, self.key_file)


class BasicAuth(ConfigModel):
    """HTTP basic authentication."""

    username: str = ""
    username_file: str = ""
    username_ref: str = ""
    password: Secret = ""
    password_file: str = ""
    password_ref: str = ""


class Authorization(ConfigModel):
    """An Authorization header: type (default Bearer) and credentials."""

    type: str = "Bearer"
    credentials: Secret = ""
    credentials_file: str = ""
    credentials_ref: str = ""


class OAuth2(ConfigModel):
    """OAuth 2.0 client credentials, with their own TLS and proxy settings for token_url.

    The JWT bearer grant (RFC 7523) fields are validated as prometheus/common does, but only
    the client-credentials grant is implemented (watchkeeper.config.oauth2).
    """

    client_id: str = ""
    client_secret: Secret = ""
    client_secret_file: str = ""
    client_secret_ref: str = ""
    client_certificate_key_id: str = ""
    client_certificate_key: Secret = ""
    client_certificate_key_file: str = ""
    client_certificate_key_ref: str = ""
    grant_type: str = ""
    signature_algorithm: str = ""
    iss: str = ""
    audience: str = ""
    claims: dict[str, Any] = Field(default_factory=dict)
    scopes: list[str] = Field(default_factory=list)
    token_url: str = ""
    endpoint_params: dict[str, str] = Field(default_factory=dict)
    tls_config: TLSConfig | None = None
    proxy_url: str = ""
    no_proxy: str = ""
    proxy_from_environment: bool = False
    proxy_connect_header: dict[str, list[Secret]] = Field(default_factory=dict)

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str) -> str:
        return _check_url(value, "proxy_url")

    @model_validator(mode="after")
    def _validate_proxy(self) -> Self:
        _check_proxy(
            self.proxy_url, self.no_proxy, self.proxy_from_environment, self.proxy_connect_header
        )
        return self


class HeaderValues(ConfigModel):
    """The values of one custom HTTP header (plain, secret or read from files)."""

    values: list[str] = Field(default_factory=list)
    secrets: list[Secret] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)


RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version",
        "x-prometheus-scrape-timeout-seconds",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def _check_proxy(
    proxy_url: str, no_proxy: str, from_environment: bool, connect_header: dict[str, list[str]]
) -> None:
    """Refuses contradictory proxy settings, as prometheus/common's ProxyConfig does.

    Raises:
        ValueError: naming the conflicting fields.
    """
    if connect_header and not (proxy_url or from_environment):
        raise ValueError(
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment must "
            "also be configured"
        )
    if from_environment and proxy_url:
        raise ValueError(
            "if proxy_from_environment is configured, proxy_url must not be configured"
        )
    if from_environment and no_proxy:
        raise ValueError("if proxy_from_environment is configured, no_proxy must not be configured")
    if no_proxy and not proxy_url:
        raise ValueError("if no_proxy is configured, proxy_url must also be configured")


def _check_url(value: str, what: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if not parts.scheme and not parts.netloc:
        raise ValueError(f"{what}: invalid URL {value!r}")
    return value


class HTTPClientConfig(ConfigModel):
    """The inlined HTTP client settings of prometheus/common."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    oauth2: OAuth2 | None = None
    bearer_token: Secret = ""
    bearer_token_file: str = ""
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    follow_redirects: bool = True
    enable_http2: bool = True
    proxy_url: str = ""
    no_proxy: str = ""
    proxy_from_environment: bool = False
    proxy_connect_header: dict[str, list[Secret]] = Field(default_factory=dict)
    http_headers: dict[str, HeaderValues] | None = None

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str) -> str:
        return _check_url(value, "proxy_url")

    @field_validator("http_headers")
    @classmethod
    def _headers(cls, value: dict[str, HeaderValues] | None) -> dict[str, HeaderValues] | None:
        for name in value or {}:
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"setting header {name!r} is not allowed")
        return value

    @model_validator(mode="after")
    def _validate_http_client(self) -> Self:
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("at most one of bearer_token & bearer_token_file must be configured")
        ba = self.basic_auth
        if (ba is not None or self.oauth2 is not None) and (
            self.bearer_token or self.bearer_token_file
        ):
            raise ValueError(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be "
                "configured"
            )
        if ba is not None:
            if sum(bool(x) for x in (ba.username, ba.username_file, ba.username_ref)) > 1:
                raise ValueError(
                    "at most one of basic_auth username, username_file & username_ref must be "
                    "configured"
                )
            if sum(bool(x) for x in (ba.password, ba.password_file, ba.password_ref)) > 1:
                raise ValueError(
                    "at most one of basic_auth password, password_file & password_ref must be "
                    "configured"
                )
        auth = self.authorization
        if auth is not None:
            if self.bearer_token or self.bearer_token_file:
                raise ValueError(
                    "authorization is not compatible with bearer_token & bearer_token_file"
                )
            if auth.credentials and auth.credentials_file:
                raise ValueError(
                    "at most one of authorization credentials & credentials_file must be configured"
                )
            auth.type = auth.type.strip() or "Bearer"
            if auth.type.lower() == "basic":
                raise ValueError(
                    'authorization type cannot be set to "basic", use "basic_auth" instead'
                )
            if ba is not None or self.oauth2 is not None:
                raise ValueError(
                    "at most one of basic_auth, oauth2 & authorization must be configured"
                )
        if self.bearer_token or self.bearer_token_file:
            # NB: prometheus/common turns bearer_token into an authorization block.
            self.authorization = Authorization(
                credentials=self.bearer_token, credentials_file=self.bearer_token_file
            )
            self.bearer_token = ""
            self.bearer_token_file = ""
        o = self.oauth2
        if o is not None:
            if ba is not None:
                raise ValueError(
                    "at most one of basic_auth, oauth2 & authorization must be configured"
                )
            if not o.client_id:
                raise ValueError("oauth2 client_id must be configured")
            if not o.token_url:
                raise ValueError("oauth2 token_url must be configured")
            if o.grant_type == JWT_BEARER_GRANT:
                keys = (
                    o.client_certificate_key,
                    o.client_certificate_key_file,
                    o.client_certificate_key_ref,
                )
                if sum(bool(x) for x in keys) > 1:
                    raise ValueError(
                        "at most one of oauth2 client_certificate_key, client_certificate_key_file "
                        "& client_certificate_key_ref must be configured using "
                        f"grant-type={JWT_BEARER_GRANT}"
                    )
                if o.signature_algorithm and o.signature_algorithm not in SIGNATURE_ALGORITHMS:
                    raise ValueError("valid signature algorithms are RS256, RS384 and RS512")
            elif (
                sum(bool(x) for x in (o.client_secret, o.client_secret_file, o.client_secret_ref))
                > 1
            ):
                raise ValueError(
                    "at most one of oauth2 client_secret, client_secret_file & client_secret_ref "
                    "must be configured using grant-type=client_credentials"
                )
        _check_proxy(
            self.proxy_url, self.no_proxy, self.proxy_from_environment, self.proxy_connect_header
        )
        return self

    def authorization_header(self) -> str | None:
        """The Authorization header value, reading credential files now (they may rotate).

        Raises:
            OSError: when a credentials or password file cannot be read.
        """
        if self.basic_auth is not None:
            ba = self.basic_auth
            user = _read(ba.username_file) if ba.username_file else ba.username
            password = _read(ba.password_file) if ba.password_file else ba.password
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            return f"Basic {token}"
        if self.authorization is not None:
            auth = self.authorization
            creds = _read(auth.credentials_file) if auth.credentials_file else auth.credentials
            return f"{auth.type} {creds}"
        return None

    def ssl_context(self) -> ssl.SSLContext:
        """Builds the client TLS context from tls_config.

        Raises:
            OSError, ssl.SSLError: when a CA, certificate or key cannot be loaded.
        """
        return self.tls_config.ssl_context()

    def new_authorizer(self, *, clock: Clock = SYSTEM_CLOCK) -> RequestAuthorizer:
        """A new authorizer for one HTTP client (with oauth2 it holds the token cache)."""
        return RequestAuthorizer(self, clock=clock)

    def extra_headers(self) -> dict[str, str]:
        """Custom headers from http_headers (first value of each; files read now)."""
        out: dict[str, str] = {}
        for name, hv in (self.http_headers or {}).items():
            values = [*hv.values, *hv.secrets, *(_read(f) for f in hv.files)]
            if values:
                out[name] = values[0]
        return out

    def with_directory(self, directory: Path) -> None:
        """Joins relative file paths with the config directory (in place)."""
        self.tls_config.with_directory(directory)
        if self.basic_auth is not None:
            self.basic_auth.password_file = join_dir(directory, self.basic_auth.password_file)
            self.basic_auth.username_file = join_dir(directory, self.basic_auth.username_file)
        if self.authorization is not None:
            self.authorization.credentials_file = join_dir(
                directory, self.authorization.credentials_file
            )
        if self.oauth2 is not None:
            self.oauth2.client_secret_file = join_dir(directory, self.oauth2.client_secret_file)
            if self.oauth2.tls_config is not None:
                self.oauth2.tls_config.with_directory(directory)


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()
