"""Service discovery configs: static_configs, file_sd_configs, http_sd_configs, dns_sd_configs.

The `discovery` stage builds providers from these; `ServiceDiscoveryConfigs` is inherited
by scrape configs and Alertmanager configs, which carry SD configs inline as Prometheus's do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Final, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from watchkeeper.config.httpclient import HTTPClientConfig, join_dir
from watchkeeper.config.types import ConfigModel, DurationMs

_FILE_SD_NAME_RE: Final = re.compile(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$")


class StaticConfig(ConfigModel):
    """A target group written in the config: targets (host:port) and common labels."""

    targets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    always_print: ClassVar[frozenset[str]] = frozenset({"targets"})

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name:
                raise ValueError(f'"{name}" is not a valid label name')
        return value


class FileSDConfig(ConfigModel):
    """Target groups read from JSON or YAML files (globs in the last path element)."""

    files: list[str] = Field(default_factory=list)
    refresh_interval: DurationMs = 5 * 60 * 1000

    always_print: ClassVar[frozenset[str]] = frozenset({"files"})

    @model_validator(mode="after")
    def _check_files(self) -> Self:
        if not self.files:
            raise ValueError("file service discovery config must contain at least one path name")
        for name in self.files:
            if not _FILE_SD_NAME_RE.match(name):
                raise ValueError(f'path name "{name}" is not valid for file discovery')
        return self


class HTTPSDConfig(HTTPClientConfig):
    """Target groups fetched as JSON from a URL."""

    refresh_interval: DurationMs = 60 * 1000
    url: str = ""

    @model_validator(mode="after")
    def _check_url(self) -> Self:
        if not self.url:
            raise ValueError("URL is missing")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("URL scheme must be 'http' or 'https'")
        if not parts.hostname:
            raise ValueError("host is missing in URL")
        return self


DNS_SD_TYPES: Final = ("SRV", "A", "AAAA", "MX", "NS")
"""The record types dns_sd_configs may query."""


class DNSSDConfig(ConfigModel):
    """Targets from DNS records: SRV (host and port) or A/AAAA/MX/NS with a fixed port."""

    names: list[str] = Field(default_factory=list)
    refresh_interval: DurationMs = 30 * 1000
    type: str = "SRV"
    port: int = 0

    always_print: ClassVar[frozenset[str]] = frozenset({"names", "type", "port"})

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.names:
            raise ValueError("DNS-SD config must contain at least one SRV record name")
        self.type = self.type.upper()
        if self.type not in DNS_SD_TYPES:
            raise ValueError(f"invalid DNS-SD records type {self.type}")
        if self.type != "SRV" and self.port == 0:
            raise ValueError("a port is required in DNS-SD configs for all record types except SRV")
        return self


class ServiceDiscoveryConfigs(ConfigModel):
    """The SD configs a scrape or Alertmanager config carries inline."""

    dns_sd_configs: list[DNSSDConfig] = Field(default_factory=list)
    file_sd_configs: list[FileSDConfig] = Field(default_factory=list)
    http_sd_configs: list[HTTPSDConfig] = Field(default_factory=list)
    static_configs: list[StaticConfig] = Field(default_factory=list)

    def sd_with_directory(self, directory: Path) -> None:
        """Joins relative file_sd paths and HTTP client files with the config directory."""
        for fc in self.file_sd_configs:
            fc.files = [join_dir(directory, f) for f in fc.files]
        for hc in self.http_sd_configs:
            hc.with_directory(directory)

    def check_static_targets(self) -> None:
        """Refuses static targets that look like URLs (Prometheus's checkStaticTargets).

        Raises:
            ValueError: naming the bad target.
        """
        for sc in self.static_configs:
            for target in sc.targets:
                if "/" in target:
                    raise ValueError(f'"{target}" is not a valid hostname')
