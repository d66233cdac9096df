"""prometheus.yml as typed, validated models, with Prometheus 3.5's defaults and errors.

`load_config(path)` reads a file (and its scrape_config_files), fills defaults from `global`
the way Prometheus does (scrape_timeout = min(global timeout, interval), limits, protocols),
joins relative paths with the file's directory, and raises `ConfigError` with one
"file:line: field: reason" line per problem. `PrometheusConfig.as_yaml()` prints the loaded
config with secrets masked, for /api/v1/status/config.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from watchkeeper.config.httpclient import HTTPClientConfig, TLSConfig, join_dir
from watchkeeper.config.remote import RemoteReadConfig, RemoteWriteConfig
from watchkeeper.config.sd import ServiceDiscoveryConfigs
from watchkeeper.config.types import (
    ConfigModel,
    DurationMs,
    SizeBytes,
    UInt,
    is_valid_utf8_label_name,
)
from watchkeeper.config.yamlsource import (
    ConfigError,
    describe_validation_error,
    format_loc,
    line_of,
    load_yaml,
    parse_yaml,
)
from watchkeeper.model.relabel import DEFAULT_REGEX, RelabelConfig

SCRAPE_PROTOCOL_HEADERS: Final = {
    "PrometheusProto": (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    ),
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
    "PrometheusText1.0.0": "text/plain;version=1.0.0",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
}
"""Scrape protocol names and the media types they stand for."""

DEFAULT_SCRAPE_PROTOCOLS: Final = (
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
)
"""The protocols offered when a config names none, most wanted first."""

_DEFAULT_SCRAPE_INTERVAL_MS: Final = 60_000
_DEFAULT_SCRAPE_TIMEOUT_MS: Final = 10_000
_DEFAULT_EVALUATION_INTERVAL_MS: Final = 60_000
_PATH_PATTERN_RE: Final = re.compile(r"^[^*]*(\*[^/]*)?$")
_ENV_RE: Final = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+)|(\$))")
_VALIDATION_SCHEMES: Final = ("legacy", "utf8")
_ESCAPING_SCHEMES: Final = ("allow-utf-8", "underscores", "dots", "values")


def _check_protocols(protocols: list[str]) -> None:
    if not protocols:
        raise ValueError("scrape_protocols cannot be empty")
    seen: set[str] = set()
    for p in protocols:
        if p.lower() in seen:
            raise ValueError(
                f"duplicated protocol in scrape_protocols, got [{' '.join(protocols)}]"
            )
        if p not in SCRAPE_PROTOCOL_HEADERS:
            names = " ".join(sorted(SCRAPE_PROTOCOL_HEADERS))
            raise ValueError(f"scrape_protocols: unknown scrape protocol {p}, supported: [{names}]")
        seen.add(p.lower())


class GlobalConfig(ConfigModel):
    """The `global` block: defaults for every scrape config and rule group."""

    scrape_interval: DurationMs = 0
    scrape_timeout: DurationMs = 0
    scrape_protocols: list[str] | None = None
    evaluation_interval: DurationMs = 0
    rule_query_offset: DurationMs = 0
    query_log_file: str = ""
    scrape_failure_log_file: str = ""
    external_labels: dict[str, str] = Field(default_factory=dict)
    body_size_limit: SizeBytes = 0
    sample_limit: UInt = 0
    target_limit: UInt = 0
    label_limit: UInt = 0
    label_name_length_limit: UInt = 0
    label_value_length_limit: UInt = 0
    keep_dropped_targets: UInt = 0
    metric_name_validation_scheme: str = ""
    metric_name_escaping_scheme: str = ""
    convert_classic_histograms_to_nhcb: bool = False
    always_scrape_classic_histograms: bool = False

    always_print: ClassVar[frozenset[str]] = frozenset()

    @field_validator("external_labels")
    @classmethod
    def _external_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not is_valid_utf8_label_name(name):
                raise ValueError(f'"{name}" is not a valid label name')
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Self:
        if self.scrape_interval == 0:
            self.scrape_interval = _DEFAULT_SCRAPE_INTERVAL_MS
        if self.scrape_timeout > self.scrape_interval:
            raise ValueError("global scrape timeout greater than scrape interval")
        if self.scrape_timeout == 0:
            self.scrape_timeout = min(_DEFAULT_SCRAPE_TIMEOUT_MS, self.scrape_interval)
        if self.evaluation_interval == 0:
            self.evaluation_interval = _DEFAULT_EVALUATION_INTERVAL_MS
        if self.scrape_protocols is None:
            self.scrape_protocols = list(DEFAULT_SCRAPE_PROTOCOLS)
        try:
            _check_protocols(self.scrape_protocols)
        except ValueError as exc:
            raise ValueError(f"{exc} for global config") from None
        return self


class ScrapeConfig(HTTPClientConfig, ServiceDiscoveryConfigs):
    """One `scrape_configs` entry: a job, how to scrape it, and where its targets come from.

    After `load_config`, every optional field holds its effective value (globals applied).
    """

    job_name: str = ""
    honor_labels: bool = False
    honor_timestamps: bool = True
    track_timestamps_staleness: bool = False
    params: dict[str, list[str]] = Field(default_factory=dict)
    scrape_interval: DurationMs = 0
    scrape_timeout: DurationMs = 0
    scrape_protocols: list[str] | None = None
    fallback_scrape_protocol: str = ""
    always_scrape_classic_histograms: bool | None = None
    convert_classic_histograms_to_nhcb: bool | None = None
    scrape_failure_log_file: str = ""
    metrics_path: str = "/metrics"
    scheme: str = "http"
    enable_compression: bool = True
    body_size_limit: SizeBytes = 0
    sample_limit: UInt = 0
    target_limit: UInt = 0
    label_limit: UInt = 0
    label_name_length_limit: UInt = 0
    label_value_length_limit: UInt = 0
    native_histogram_bucket_limit: UInt = 0
    native_histogram_min_bucket_factor: float = 0.0
    keep_dropped_targets: UInt = 0
    metric_name_validation_scheme: str = ""
    metric_name_escaping_scheme: str = ""
    relabel_configs: list[RelabelConfig] = Field(default_factory=list)
    metric_relabel_configs: list[RelabelConfig] = Field(default_factory=list)

    always_print: ClassVar[frozenset[str]] = frozenset(
        {
            "job_name",
            "honor_timestamps",
            "track_timestamps_staleness",
            "enable_compression",
            "follow_redirects",
            "enable_http2",
            "always_scrape_classic_histograms",
            "convert_classic_histograms_to_nhcb",
        }
    )
    print_order: ClassVar[tuple[str, ...]] = (
        "job_name",
        "honor_labels",
        "honor_timestamps",
        "track_timestamps_staleness",
        "params",
        "scrape_interval",
        "scrape_timeout",
        "scrape_protocols",
        "fallback_scrape_protocol",
        "always_scrape_classic_histograms",
        "convert_classic_histograms_to_nhcb",
        "scrape_failure_log_file",
        "metrics_path",
        "scheme",
        "enable_compression",
        "body_size_limit",
        "sample_limit",
        "target_limit",
        "label_limit",
        "label_name_length_limit",
        "label_value_length_limit",
        "native_histogram_bucket_limit",
        "native_histogram_min_bucket_factor",
        "keep_dropped_targets",
        "metric_name_validation_scheme",
        "metric_name_escaping_scheme",
        "basic_auth",
        "authorization",
        "oauth2",
        "tls_config",
        "follow_redirects",
        "enable_http2",
        "proxy_url",
        "no_proxy",
        "proxy_from_environment",
        "proxy_connect_header",
        "http_headers",
        "relabel_configs",
        "metric_relabel_configs",
        "dns_sd_configs",
        "file_sd_configs",
        "http_sd_configs",
        "static_configs",
    )

    @field_validator("scrape_protocols")
    @classmethod
    def _protocols_not_empty(cls, value: list[str] | None) -> list[str] | None:
        return value

    @model_validator(mode="after")
    def _check_scrape(self) -> Self:
        if not self.job_name:
            raise ValueError("job_name is empty")
        if not self.relabel_configs:
            self.check_static_targets()
        return self

    def apply_globals(self, g: GlobalConfig) -> None:
        """Fills unset fields from the global block and validates the result (in place).

        Raises:
            ValueError: with Prometheus's message when the combination is invalid.
        """
        if self.scrape_interval == 0:
            self.scrape_interval = g.scrape_interval
        if self.scrape_timeout > self.scrape_interval:
            raise ValueError(
                "scrape timeout greater than scrape interval for scrape config with job name "
                f'"{self.job_name}"'
            )
        if self.scrape_timeout == 0:
            self.scrape_timeout = min(g.scrape_timeout, self.scrape_interval)
        for name in (
            "body_size_limit",
            "sample_limit",
            "target_limit",
            "label_limit",
            "label_name_length_limit",
            "label_value_length_limit",
            "keep_dropped_targets",
        ):
            if getattr(self, name) == 0:
                setattr(self, name, getattr(g, name))
        if not self.scrape_failure_log_file:
            self.scrape_failure_log_file = g.scrape_failure_log_file
        if self.scrape_protocols is None:
            self.scrape_protocols = list(g.scrape_protocols or DEFAULT_SCRAPE_PROTOCOLS)
        try:
            _check_protocols(self.scrape_protocols)
        except ValueError as exc:
            raise ValueError(f'{exc} for scrape config with job name "{self.job_name}"') from None
        if self.fallback_scrape_protocol and (
            self.fallback_scrape_protocol not in SCRAPE_PROTOCOL_HEADERS
        ):
            names = " ".join(sorted(SCRAPE_PROTOCOL_HEADERS))
            raise ValueError(
                "invalid fallback_scrape_protocol for scrape config with job name "
                f'"{self.job_name}": unknown scrape protocol {self.fallback_scrape_protocol}, '
                f"supported: [{names}]"
            )
        global_scheme = g.metric_name_validation_scheme or "utf8"
        if global_scheme not in _VALIDATION_SCHEMES:
            # NB: Prometheus checks the global scheme only when a scrape config uses it.
            raise ValueError(
                "unknown global name validation method specified, must be either 'legacy' or "
                f"'utf8', got {global_scheme}"
            )
        if not self.metric_name_validation_scheme:
            self.metric_name_validation_scheme = global_scheme
        elif self.metric_name_validation_scheme not in _VALIDATION_SCHEMES:
            raise ValueError(
                "unknown scrape config name validation method specified, must be either "
                f"'legacy' or 'utf8', got {self.metric_name_validation_scheme}"
            )
        global_escaping = g.metric_name_escaping_scheme or (
            "underscores" if global_scheme == "legacy" else "allow-utf-8"
        )
        if global_escaping not in _ESCAPING_SCHEMES:
            raise ValueError(
                "unknown global name escaping method specified, must be one of 'allow-utf-8', "
                f"'underscores', 'dots', or 'values', got {global_escaping}"
            )
        if not self.metric_name_escaping_scheme:
            self.metric_name_escaping_scheme = global_escaping
        if self.metric_name_escaping_scheme == "allow-utf-8":
            if self.metric_name_validation_scheme != "utf8":
                raise ValueError(
                    "utf8 metric names requested but validation scheme is not set to UTF8"
                )
        elif self.metric_name_escaping_scheme not in _ESCAPING_SCHEMES:
            raise ValueError(
                "unknown scrape config name escaping method specified, must be one of "
                "'allow-utf-8', 'underscores', 'dots', or 'values', got "
                f"{self.metric_name_escaping_scheme}"
            )
        if self.convert_classic_histograms_to_nhcb is None:
            self.convert_classic_histograms_to_nhcb = g.convert_classic_histograms_to_nhcb
        if self.always_scrape_classic_histograms is None:
            self.always_scrape_classic_histograms = g.always_scrape_classic_histograms

    def with_directory(self, directory: Path) -> None:
        """Joins relative file paths with the config directory (in place)."""
        super().with_directory(directory)
        self.sd_with_directory(directory)
        self.scrape_failure_log_file = join_dir(directory, self.scrape_failure_log_file)


class AlertmanagerConfig(HTTPClientConfig, ServiceDiscoveryConfigs):
    """One `alerting.alertmanagers` entry."""

    sigv4: dict[str, Any] | None = None
    scheme: str = "http"
    path_prefix: str = ""
    timeout: DurationMs = 10_000
    api_version: str = "v2"
    relabel_configs: list[RelabelConfig] = Field(default_factory=list)
    alert_relabel_configs: list[RelabelConfig] = Field(default_factory=list)

    always_print: ClassVar[frozenset[str]] = frozenset(
        {"follow_redirects", "enable_http2", "api_version"}
    )
    print_order: ClassVar[tuple[str, ...]] = (
        "basic_auth",
        "authorization",
        "oauth2",
        "tls_config",
        "follow_redirects",
        "enable_http2",
        "proxy_url",
        "http_headers",
        "sigv4",
        "scheme",
        "path_prefix",
        "timeout",
        "api_version",
        "relabel_configs",
        "alert_relabel_configs",
        "dns_sd_configs",
        "file_sd_configs",
        "http_sd_configs",
        "static_configs",
    )

    @model_validator(mode="after")
    def _check_am(self) -> Self:
        if self.api_version != "v2":
            raise ValueError(
                f"expected Alertmanager api version to be one of [v2] but got {self.api_version}"
            )
        auth = self.basic_auth or self.authorization or self.oauth2
        if auth is not None and self.sigv4 is not None:
            raise ValueError(
                "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured"
            )
        if not self.relabel_configs:
            self.check_static_targets()
        return self


class AlertingConfig(ConfigModel):
    """The `alerting` block: alert relabelling and the Alertmanagers to send to."""

    alert_relabel_configs: list[RelabelConfig] = Field(default_factory=list)
    alertmanagers: list[AlertmanagerConfig] = Field(default_factory=list)

    always_print: ClassVar[frozenset[str]] = frozenset()


class TSDBConfig(ConfigModel):
    """`storage.tsdb`: runtime-reloadable TSDB options."""

    out_of_order_time_window: DurationMs = 0

    always_print: ClassVar[frozenset[str]] = frozenset()


class ExemplarsConfig(ConfigModel):
    """`storage.exemplars`: the exemplar buffer size."""

    max_exemplars: int = 100_000

    always_print: ClassVar[frozenset[str]] = frozenset()


class StorageConfig(ConfigModel):
    """The `storage` block."""

    tsdb: TSDBConfig | None = None
    exemplars: ExemplarsConfig | None = None

    always_print: ClassVar[frozenset[str]] = frozenset()


class TracingConfig(ConfigModel):
    """The `tracing` block (accepted and validated; spans are not exported yet)."""

    client_type: str = "grpc"
    endpoint: str = ""
    sampling_fraction: float = 0.0
    insecure: bool = False
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    headers: dict[str, str] = Field(default_factory=dict)
    compression: str = ""
    timeout: DurationMs = 0

    always_print: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _check_tracing(self) -> Self:
        if self.client_type not in ("http", "grpc"):
            raise ValueError(
                f"expected tracing client type to be to be http or grpc, but got {self.client_type}"
            )
        if not self.endpoint:
            raise ValueError("tracing endpoint must be set")
        if self.compression and self.compression != "gzip":
            raise ValueError(
                f"invalid compression type {self.compression} provided, valid options: gzip"
            )
        return self


class RuntimeConfig(ConfigModel):
    """The `runtime` block (Go GC tuning in Prometheus; accepted and ignored)."""

    gogc: int = 75

    always_print: ClassVar[frozenset[str]] = frozenset()


class OTLPConfig(ConfigModel):
    """The `otlp` block (accepted; there is no OTLP receiver)."""

    promote_resource_attributes: list[str] = Field(default_factory=list)
    promote_all_resource_attributes: bool = False
    ignore_resource_attributes: list[str] = Field(default_factory=list)
    translation_strategy: str = "UnderscoreEscapingWithSuffixes"
    keep_identifying_resource_attributes: bool = False
    convert_histograms_to_nhcb: bool = False
    promote_scope_metadata: bool = False

    always_print: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _check_otlp(self) -> Self:
        known = ("UnderscoreEscapingWithSuffixes", "NoUTF8EscapingWithSuffixes", "NoTranslation")
        if self.translation_strategy not in known:
            raise ValueError(f'unsupported OTLP translation strategy "{self.translation_strategy}"')
        return self


class PrometheusConfig(ConfigModel):
    """The whole prometheus.yml. Build it with `load_config` or `parse_config`."""

    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    rule_files: list[str] = Field(default_factory=list)
    scrape_config_files: list[str] = Field(default_factory=list)
    scrape_configs: list[ScrapeConfig] = Field(default_factory=list)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    tracing: TracingConfig | None = None
    remote_write: list[RemoteWriteConfig] = Field(default_factory=list)
    remote_read: list[RemoteReadConfig] = Field(default_factory=list)
    otlp: OTLPConfig = Field(default_factory=OTLPConfig)

    always_print: ClassVar[frozenset[str]] = frozenset({"global"})

    @field_validator("rule_files")
    @classmethod
    def _rule_files(cls, value: list[str]) -> list[str]:
        for rf in value:
            if not _PATH_PATTERN_RE.match(rf):
                raise ValueError(f'invalid rule file path "{rf}"')
        return value

    @field_validator("scrape_config_files")
    @classmethod
    def _scrape_config_files(cls, value: list[str]) -> list[str]:
        for sf in value:
            if not _PATH_PATTERN_RE.match(sf):
                raise ValueError(f'invalid scrape config file path "{sf}"')
        return value

    @property
    def global_config(self) -> GlobalConfig:
        """The `global` block with its defaults filled in."""
        return self.global_

    def rule_file_paths(self) -> list[str]:
        """The rule files that `rule_files` names: globs expanded, sorted, no duplicates.

        Relative patterns were already joined with the config file's directory on load.
        """
        return sorted({f for pattern in self.rule_files for f in glob.glob(pattern)})

    def scrape_config(self, job_name: str) -> ScrapeConfig | None:
        """Returns the scrape config of a job, or None."""
        for sc in self.scrape_configs:
            if sc.job_name == job_name:
                return sc
        return None

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data, the way Prometheus prints it (defaults in, secrets masked)."""
        return _printable(self, self.model_dump(mode="json", by_alias=True))

    def as_yaml(self) -> str:
        """The config as YAML for /api/v1/status/config."""
        return yaml.safe_dump(
            self.as_dict(), sort_keys=False, default_flow_style=False, allow_unicode=True
        )


def _printable(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    """Applies Go's omitempty and field order to a JSON dump of a model."""
    cls = type(model)
    always: frozenset[str] = getattr(cls, "always_print", frozenset())
    order: tuple[str, ...] = getattr(cls, "print_order", ()) or tuple(cls.model_fields)
    out: dict[str, Any] = {}
    for name in order:
        info = cls.model_fields.get(name)
        if info is None:
            continue
        key = info.alias or name
        value = getattr(model, name)
        jvalue = dumped.get(key)
        if isinstance(value, BaseModel):
            if key not in always and _is_zero(value):
                continue
            jvalue = _printable(value, jvalue or {})
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            jvalue = [_printable(v, j) for v, j in zip(value, jvalue or [], strict=True)]
        elif _omitted(model, name, value, always):
            continue
        out[key] = jvalue
    return out


def _omitted(model: BaseModel, name: str, value: Any, always: frozenset[str]) -> bool:
    if not value and name not in always:
        return True
    return isinstance(model, RelabelConfig) and name == "regex" and value == DEFAULT_REGEX


def _is_zero(model: BaseModel) -> bool:
    """Tells whether every field is zero, so Go's omitempty would leave the struct out."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            if not _is_zero(value):
                return False
        elif value:
            return False
    return True


def _expand_env(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        return os.environ.get(m.group(1) if m.group(1) is not None else m.group(2), "")

    return _ENV_RE.sub(repl, value)


def _fail(source: str, document: Any, loc: list[int | str], msg: str) -> ConfigError:
    line = line_of(document, loc)
    where = f"{source}:{line}" if line else source
    field = format_loc(loc)
    return ConfigError(f"{where}: {field}: {msg}" if field else f"{where}: {msg}")


def _validate(document: Any, source: str) -> PrometheusConfig:
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: parsing YAML file {source}: the document is not a mapping")
    try:
        cfg = PrometheusConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_validation_error(exc, document, source))) from None
    return cfg


def _finish(cfg: PrometheusConfig, document: Any, source: str, directory: Path) -> None:
    """Applies globals, checks job names, joins paths and reads scrape_config_files."""
    g = cfg.global_
    g.external_labels = {k: _expand_env(v) for k, v in g.external_labels.items()}
    jobs: dict[str, str] = {}
    for i, sc in enumerate(cfg.scrape_configs):
        try:
            sc.apply_globals(g)
        except ValueError as exc:
            raise _fail(source, document, ["scrape_configs", i], str(exc)) from None
        if sc.job_name in jobs:
            raise _fail(
                source,
                document,
                ["scrape_configs", i, "job_name"],
                f'found multiple scrape configs with job name "{sc.job_name}"',
            )
        jobs[sc.job_name] = "main config file"
    names: set[str] = set()
    for i, rw in enumerate(cfg.remote_write):
        if rw.name and rw.name in names:
            raise _fail(
                source,
                document,
                ["remote_write", i, "name"],
                f'found multiple remote write configs with job name "{rw.name}"',
            )
        names.add(rw.name)
    names = set()
    for i, rr in enumerate(cfg.remote_read):
        if rr.name and rr.name in names:
            raise _fail(
                source,
                document,
                ["remote_read", i, "name"],
                f'found multiple remote read configs with job name "{rr.name}"',
            )
        names.add(rr.name)
    # Paths are joined last, after the checks above, exactly as Prometheus's SetDirectory.
    g.query_log_file = join_dir(directory, g.query_log_file)
    g.scrape_failure_log_file = join_dir(directory, g.scrape_failure_log_file)
    cfg.rule_files = [join_dir(directory, f) for f in cfg.rule_files]
    cfg.scrape_config_files = [join_dir(directory, f) for f in cfg.scrape_config_files]
    for sc in cfg.scrape_configs:
        sc.with_directory(directory)
    for am in cfg.alerting.alertmanagers:
        am.with_directory(directory)
        am.sd_with_directory(directory)
    for rw in cfg.remote_write:
        rw.with_directory(directory)
    for rr in cfg.remote_read:
        rr.with_directory(directory)
    if cfg.tracing is not None:
        cfg.tracing.tls_config.with_directory(directory)
    for pattern in cfg.scrape_config_files:
        for filename in sorted(glob.glob(pattern)):
            extra = _load_scrape_config_file(filename, g)
            for sc in extra:
                if sc.job_name in jobs:
                    raise ConfigError(
                        f"{filename}: found multiple scrape configs with job name "
                        f'"{sc.job_name}", first found in {jobs[sc.job_name]}'
                    )
                jobs[sc.job_name] = f'"{filename}"'
                cfg.scrape_configs.append(sc)


class _ScrapeConfigsFile(ConfigModel):
    scrape_configs: list[ScrapeConfig] = Field(default_factory=list)


def _load_scrape_config_file(filename: str, g: GlobalConfig) -> list[ScrapeConfig]:
    document = load_yaml(filename)
    if document is None:
        return []
    try:
        parsed = _ScrapeConfigsFile.model_validate(document)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_validation_error(exc, document, filename))) from None
    for i, sc in enumerate(parsed.scrape_configs):
        try:
            sc.apply_globals(g)
        except ValueError as exc:
            raise _fail(filename, document, ["scrape_configs", i], str(exc)) from None
        sc.with_directory(Path(filename).parent)
    return parsed.scrape_configs


def parse_config(
    text: str, source: str = "prometheus.yml", *, directory: Path | None = None
) -> PrometheusConfig:
    """Parses prometheus.yml text; relative paths are joined with `directory` when given.

    Raises:
        ConfigError: one "source:line: field: reason" line per problem.
    """
    document = parse_yaml(text, source)
    cfg = _validate(document, source)
    _finish(cfg, document, source, directory if directory is not None else Path())
    return cfg


def load_config(path: str | Path) -> PrometheusConfig:
    """Loads and validates a prometheus.yml file (and its scrape_config_files).

    Raises:
        ConfigError: one "file:line: field: reason" line per problem; nothing is applied.
    """
    document = load_yaml(path)
    cfg = _validate(document, str(path))
    _finish(cfg, document, str(path), Path(path).parent)
    return cfg


def _file_problems(cfg: PrometheusConfig) -> list[str]:
    """Files that the config names and that must exist, as promtool checks them."""
    problems: list[str] = []

    def check(kind: str, path: str) -> None:
        if path and not Path(path).exists():
            problems.append(
                f"error checking {kind} {path!r}: stat {path}: no such file or directory"
            )

    clients: list[HTTPClientConfig] = [*cfg.scrape_configs, *cfg.alerting.alertmanagers]
    clients += cfg.remote_write
    clients += cfg.remote_read
    for sc in cfg.scrape_configs:
        clients.extend(sc.http_sd_configs)
    for c in clients:
        if c.authorization is not None:
            check(
                "authorization credentials or bearer token file", c.authorization.credentials_file
            )
        if c.basic_auth is not None:
            check("basic auth password file", c.basic_auth.password_file)
        check("CA file", c.tls_config.ca_file)
        check("client certificate file", c.tls_config.cert_file)
        check("client key file", c.tls_config.key_file)
    return problems


def check_config_file(path: str | Path) -> list[str]:
    """Checks a config file as `promtool check config` does.

    Returns:
        promtool-like lines: "Checking p.yml", then " SUCCESS: ..." lines, or "  FAILED: ..."
        lines when the file is refused (see `check_failed`).
    """
    messages = [f"Checking {path}"]
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        messages.extend(f"  FAILED: {line}" for line in str(exc).splitlines())
        return messages
    problems = _file_problems(cfg)
    if problems:
        messages.extend(f"  FAILED: {p}" for p in problems)
        return messages
    for sc in cfg.scrape_configs:
        for fc in sc.file_sd_configs:
            messages.extend(
                f"  WARNING: file {p!r} for file_sd in scrape job {sc.job_name!r} does not exist"
                for p in fc.files
                if not glob.glob(p)
            )
    rule_files = cfg.rule_file_paths()
    messages.append(f"  SUCCESS: {len(rule_files)} rule files found")
    messages.append(f" SUCCESS: {path} is valid prometheus config file syntax")
    return messages


def check_failed(messages: list[str]) -> bool:
    """Tells whether `check_config_file` refused the file."""
    return any(m.startswith("  FAILED:") for m in messages)
