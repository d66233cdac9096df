"""remote_write and remote_read configs: validated here; the senders live in `remote/`."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import Field, field_validator, model_validator

from watchkeeper.config.httpclient import RESERVED_HEADERS, HTTPClientConfig
from watchkeeper.config.types import ConfigModel, DurationMs, UInt
from watchkeeper.model.relabel import RelabelConfig


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for header in headers:
        if header.lower() == "authorization":
            raise ValueError(
                "authorization header must be changed via the basic_auth, authorization, "
                "oauth2, sigv4, azuread or google_iam parameter"
            )
        if header.lower() in RESERVED_HEADERS:
            raise ValueError(f"{header} is a reserved header. It must not be changed")
    return headers


class QueueConfig(ConfigModel):
    """How a remote write queue batches and retries."""

    capacity: int = 10000
    max_shards: int = 50
    min_shards: int = 1
    max_samples_per_send: int = 2000
    batch_send_deadline: DurationMs = 5000
    min_backoff: DurationMs = 30
    max_backoff: DurationMs = 5000
    retry_on_http_429: bool = False
    sample_age_limit: DurationMs = 0

    always_print: ClassVar[frozenset[str]] = frozenset()


class MetadataConfig(ConfigModel):
    """Whether and how often remote write sends metric metadata."""

    send: bool = True
    send_interval: DurationMs = 60_000
    max_samples_per_send: int = 2000

    always_print: ClassVar[frozenset[str]] = frozenset({"send", "send_interval"})


class RemoteWriteConfig(HTTPClientConfig):
    """One `remote_write` entry (validated here; the sender lives in `remote/`)."""

    url: str = ""
    remote_timeout: DurationMs = 30_000
    headers: dict[str, str] = Field(default_factory=dict)
    write_relabel_configs: list[RelabelConfig] = Field(default_factory=list)
    name: str = ""
    send_exemplars: bool = False
    send_native_histograms: bool = False
    round_robin_dns: bool = False
    protobuf_message: str = "prometheus.WriteRequest"
    enable_http2: bool = False
    queue_config: QueueConfig = Field(default_factory=QueueConfig)
    metadata_config: MetadataConfig = Field(default_factory=MetadataConfig)
    sigv4: dict[str, Any] | None = None
    azuread: dict[str, Any] | None = None
    google_iam: dict[str, Any] | None = None

    always_print: ClassVar[frozenset[str]] = frozenset({"url", "follow_redirects", "enable_http2"})
    print_order: ClassVar[tuple[str, ...]] = (
        "url",
        "remote_timeout",
        "headers",
        "write_relabel_configs",
        "name",
        "send_exemplars",
        "send_native_histograms",
        "round_robin_dns",
        "protobuf_message",
        "basic_auth",
        "authorization",
        "oauth2",
        "tls_config",
        "follow_redirects",
        "enable_http2",
        "proxy_url",
        "http_headers",
        "queue_config",
        "metadata_config",
        "sigv4",
        "azuread",
        "google_iam",
    )

    @field_validator("headers")
    @classmethod
    def _check_remote_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_headers(value)

    @model_validator(mode="after")
    def _check_rw(self) -> Self:
        if not self.url:
            raise ValueError("url for remote_write is empty")
        if self.protobuf_message not in (
            "prometheus.WriteRequest",
            "io.prometheus.write.v2.Request",
        ):
            raise ValueError(
                f"invalid protobuf_message value: unknown remote write protobuf message "
                f"{self.protobuf_message}, supported: prometheus.WriteRequest, "
                "io.prometheus.write.v2.Request"
            )
        configured = [
            name
            for name, value in (
                ("basic_auth", self.basic_auth),
                ("authorization", self.authorization),
                ("oauth2", self.oauth2),
                ("sigv4", self.sigv4),
                ("azuread", self.azuread),
                ("google_iam", self.google_iam),
            )
            if value is not None
        ]
        if len(configured) > 1:
            raise ValueError(
                "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam "
                f"must be configured. Currently configured: [{' '.join(configured)}]"
            )
        return self


class RemoteReadConfig(HTTPClientConfig):
    """One `remote_read` entry (validated here; the reader lives in `remote/`)."""

    url: str = ""
    remote_timeout: DurationMs = 60_000
    chunked_read_limit: UInt = 50_000_000
    headers: dict[str, str] = Field(default_factory=dict)
    read_recent: bool = False
    name: str = ""
    required_matchers: dict[str, str] = Field(default_factory=dict)
    filter_external_labels: bool = True

    always_print: ClassVar[frozenset[str]] = frozenset({"url", "follow_redirects", "enable_http2"})
    print_order: ClassVar[tuple[str, ...]] = (
        "url",
        "remote_timeout",
        "chunked_read_limit",
        "headers",
        "read_recent",
        "name",
        "basic_auth",
        "authorization",
        "oauth2",
        "tls_config",
        "follow_redirects",
        "enable_http2",
        "proxy_url",
        "http_headers",
        "required_matchers",
        "filter_external_labels",
    )

    @field_validator("headers")
    @classmethod
    def _check_remote_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_headers(value)

    @model_validator(mode="after")
    def _check_rr(self) -> Self:
        if not self.url:
            raise ValueError("url for remote_read is empty")
        return self
