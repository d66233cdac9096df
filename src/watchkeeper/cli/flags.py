"""The server's command-line flags, named and defaulted as Prometheus 3.5's.

Values are validated here so a bad flag is refused before anything starts, with the flag
named in the message (durations as "15d", sizes as "512MB" in base-2 units).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Final

from watchkeeper.model.duration import DurationError, parse_duration_ms

KNOWN_FEATURES: Final = frozenset(
    {
        "promql-experimental-functions",
        "promql-delayed-name-removal",
        "promql-duration-expr",
        "extra-scrape-metrics",
        "exemplar-storage",
        "memory-snapshot-on-shutdown",
        "auto-gomaxprocs",
        "auto-gomemlimit",
        "concurrent-rule-eval",
        "created-timestamp-zero-ingestion",
        "native-histograms",
        "otlp-deltatocumulative",
        "old-ui",
        "metadata-wal-records",
        "delayed-compaction",
        "auto-reload-config",
    }
)
_SIZE_RE: Final = re.compile(r"^(\d+)(B|KB|MB|GB|TB|PB|EB)?$", re.IGNORECASE)
_SIZE_UNITS: Final = {
    "b": 1,
    "kb": 1 << 10,
    "mb": 1 << 20,
    "gb": 1 << 30,
    "tb": 1 << 40,
    "pb": 1 << 50,
    "eb": 1 << 60,
}


class FlagError(ValueError):
    """Raised when a flag value is invalid; the message names the flag."""


def parse_size_bytes(text: str, flag: str) -> int:
    """Parses a size such as "512MB" (base-2 units, as Prometheus's units.Base2Bytes)."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise FlagError(f"{flag}: invalid size {text!r} (e.g. 512MB, 10GB)")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "B").lower()]


def _duration(text: str, flag: str) -> int:
    try:
        return parse_duration_ms(text)
    except DurationError as exc:
        raise FlagError(f"{flag}: {exc}") from exc


@dataclass(slots=True)
class ServerFlags:
    """Validated server settings."""

    config_file: str = "prometheus.yml"
    storage_path: str = "data/"
    retention_ms: int = 15 * 24 * 3600 * 1000
    retention_bytes: int = 0
    min_block_duration_ms: int = 2 * 3600 * 1000
    max_block_duration_ms: int | None = None
    listen_address: str = "0.0.0.0:9090"
    external_url: str = ""
    route_prefix: str = ""
    enable_lifecycle: bool = False
    enable_admin_api: bool = False
    enable_remote_write_receiver: bool = False
    web_config_file: str = ""
    read_timeout_ms: int = 5 * 60 * 1000
    max_connections: int = 512
    max_notifications_subscribers: int = 16
    page_title: str = "Watchkeeper"
    cors_origin: str = ".*"
    lookback_delta_ms: int = 5 * 60 * 1000
    query_timeout_ms: int = 2 * 60 * 1000
    query_max_samples: int = 50_000_000
    query_max_concurrency: int = 20
    features: frozenset[str] = field(default_factory=frozenset)
    unknown_features: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "logfmt"
    for_outage_tolerance_ms: int = 3600 * 1000
    for_grace_period_ms: int = 10 * 60 * 1000
    resend_delay_ms: int = 60 * 1000
    notification_queue_capacity: int = 10000
    raw: dict[str, str] = field(default_factory=dict)
    """Every flag and its value as given or defaulted, for /api/v1/status/flags."""


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the Prometheus-named server flags to a parser."""
    add = parser.add_argument
    add(
        "--config.file",
        dest="config_file",
        default="prometheus.yml",
        help="Prometheus configuration file path.",
    )
    add(
        "--storage.tsdb.path",
        dest="storage_path",
        default="data/",
        help="Base path for metrics storage.",
    )
    add(
        "--storage.tsdb.retention.time",
        dest="retention_time",
        default="15d",
        help="How long to retain samples in storage.",
    )
    add(
        "--storage.tsdb.retention.size",
        dest="retention_size",
        default="0B",
        help="Maximum number of bytes that can be stored for blocks (0 disables).",
    )
    add(
        "--storage.tsdb.min-block-duration",
        dest="min_block_duration",
        default="2h",
        help="Minimum duration of a data block before being persisted.",
    )
    add(
        "--storage.tsdb.max-block-duration",
        dest="max_block_duration",
        default="",
        help="Maximum duration compacted blocks may span (default: 10%% of retention).",
    )
    add(
        "--web.listen-address",
        dest="listen_address",
        default="0.0.0.0:9090",
        help="Address to listen on for UI, API, and telemetry.",
    )
    add(
        "--web.external-url",
        dest="external_url",
        default="",
        help="The URL under which Watchkeeper is externally reachable.",
    )
    add(
        "--web.route-prefix",
        dest="route_prefix",
        default="",
        help="Prefix for the internal routes of web endpoints.",
    )
    add(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Enable shutdown and reload via HTTP request.",
    )
    add(
        "--web.enable-admin-api",
        dest="enable_admin_api",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Enable API endpoints for admin control actions.",
    )
    add(
        "--web.enable-remote-write-receiver",
        dest="enable_remote_write_receiver",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Enable API endpoint accepting remote write requests.",
    )
    add(
        "--web.config.file",
        dest="web_config_file",
        default="",
        help="Path to configuration file that can enable TLS or authentication.",
    )
    add(
        "--web.read-timeout",
        dest="read_timeout",
        default="5m",
        help="Maximum duration before timing out read of the request.",
    )
    add(
        "--web.max-connections",
        dest="max_connections",
        type=int,
        default=512,
        help="Maximum number of simultaneous connections.",
    )
    add(
        "--web.max-notifications-subscribers",
        dest="max_notifications_subscribers",
        type=int,
        default=16,
        help="How many clients may follow /api/v1/notifications/live at once; "
        "more are answered 204 No Content until one leaves.",
    )
    add(
        "--web.page-title",
        dest="page_title",
        default="Watchkeeper",
        help="Document title of the web UI.",
    )
    add(
        "--web.cors.origin",
        dest="cors_origin",
        default=".*",
        help="Regex for CORS origin. It is fully anchored.",
    )
    add(
        "--query.lookback-delta",
        dest="lookback_delta",
        default="5m",
        help="The maximum lookback duration for retrieving metrics during expression evaluations.",
    )
    add(
        "--query.timeout",
        dest="query_timeout",
        default="2m",
        help="Maximum time a query may take before being aborted.",
    )
    add(
        "--query.max-samples",
        dest="query_max_samples",
        type=int,
        default=50_000_000,
        help="Maximum number of samples a single query can load into memory.",
    )
    add(
        "--query.max-concurrency",
        dest="query_max_concurrency",
        type=int,
        default=20,
        help="Maximum number of queries executed concurrently.",
    )
    add(
        "--enable-feature",
        dest="enable_feature",
        action="append",
        default=[],
        help="Comma separated feature names to enable (e.g. promql-experimental-functions).",
    )
    add(
        "--log.level",
        dest="log_level",
        default="info",
        help="Only log messages with the given severity or above (debug, info, warn, error).",
    )
    add(
        "--log.format",
        dest="log_format",
        default="logfmt",
        help="Output format of log messages (logfmt, json).",
    )
    add(
        "--rules.alert.for-outage-tolerance",
        dest="for_outage_tolerance",
        default="1h",
        help='Max time to tolerate prometheus outage for restoring "for" state of alert.',
    )
    add(
        "--rules.alert.for-grace-period",
        dest="for_grace_period",
        default="10m",
        help='Minimum duration between alert and restored "for" state.',
    )
    add(
        "--rules.alert.resend-delay",
        dest="resend_delay",
        default="1m",
        help="Minimum amount of time to wait before resending an alert to Alertmanager.",
    )
    add(
        "--alertmanager.notification-queue-capacity",
        dest="notification_queue_capacity",
        type=int,
        default=10000,
        help="The capacity of the queue for pending Alertmanager notifications.",
    )


_RAW_NAMES: Final = {
    "config_file": "config.file",
    "storage_path": "storage.tsdb.path",
    "retention_time": "storage.tsdb.retention.time",
    "retention_size": "storage.tsdb.retention.size",
    "min_block_duration": "storage.tsdb.min-block-duration",
    "max_block_duration": "storage.tsdb.max-block-duration",
    "listen_address": "web.listen-address",
    "external_url": "web.external-url",
    "route_prefix": "web.route-prefix",
    "enable_lifecycle": "web.enable-lifecycle",
    "enable_admin_api": "web.enable-admin-api",
    "enable_remote_write_receiver": "web.enable-remote-write-receiver",
    "web_config_file": "web.config.file",
    "read_timeout": "web.read-timeout",
    "max_connections": "web.max-connections",
    "max_notifications_subscribers": "web.max-notifications-subscribers",
    "page_title": "web.page-title",
    "cors_origin": "web.cors.origin",
    "lookback_delta": "query.lookback-delta",
    "query_timeout": "query.timeout",
    "query_max_samples": "query.max-samples",
    "query_max_concurrency": "query.max-concurrency",
    "log_level": "log.level",
    "log_format": "log.format",
    "for_outage_tolerance": "rules.alert.for-outage-tolerance",
    "for_grace_period": "rules.alert.for-grace-period",
    "resend_delay": "rules.alert.resend-delay",
    "notification_queue_capacity": "alertmanager.notification-queue-capacity",
}


def flags_from_args(args: argparse.Namespace) -> ServerFlags:
    """Validates parsed arguments into ServerFlags.

    Raises:
        FlagError: naming the first invalid flag.
    """
    features: set[str] = set()
    for item in args.enable_feature:
        features.update(f.strip() for f in item.split(",") if f.strip())
    retention_ms = _duration(args.retention_time, "--storage.tsdb.retention.time")
    if args.retention_time == "0" or retention_ms == 0:
        retention_ms = 15 * 24 * 3600 * 1000
    max_block = (
        _duration(args.max_block_duration, "--storage.tsdb.max-block-duration")
        if args.max_block_duration
        else None
    )
    for name in (
        "query_max_samples",
        "query_max_concurrency",
        "max_connections",
        "notification_queue_capacity",
    ):
        if getattr(args, name) < 0:
            raise FlagError(f"--{_RAW_NAMES[name]}: must not be negative")
    if args.listen_address.rpartition(":")[1] != ":":
        raise FlagError(f"--web.listen-address: address {args.listen_address!r} needs a port")
    raw: dict[str, str] = {}
    for dest, name in _RAW_NAMES.items():
        value = getattr(args, dest)
        raw[name] = str(value).lower() if isinstance(value, bool) else str(value)
    raw["enable-feature"] = ",".join(sorted(features))
    return ServerFlags(
        config_file=args.config_file,
        storage_path=args.storage_path,
        retention_ms=retention_ms,
        retention_bytes=parse_size_bytes(args.retention_size, "--storage.tsdb.retention.size"),
        min_block_duration_ms=_duration(
            args.min_block_duration, "--storage.tsdb.min-block-duration"
        ),
        max_block_duration_ms=max_block,
        listen_address=args.listen_address,
        external_url=args.external_url,
        route_prefix=args.route_prefix,
        enable_lifecycle=args.enable_lifecycle,
        enable_admin_api=args.enable_admin_api,
        enable_remote_write_receiver=args.enable_remote_write_receiver,
        web_config_file=args.web_config_file,
        read_timeout_ms=_duration(args.read_timeout, "--web.read-timeout"),
        max_connections=args.max_connections,
        max_notifications_subscribers=args.max_notifications_subscribers,
        page_title=args.page_title,
        cors_origin=args.cors_origin,
        lookback_delta_ms=_duration(args.lookback_delta, "--query.lookback-delta"),
        query_timeout_ms=_duration(args.query_timeout, "--query.timeout"),
        query_max_samples=args.query_max_samples,
        query_max_concurrency=args.query_max_concurrency,
        features=frozenset(features & KNOWN_FEATURES),
        unknown_features=tuple(sorted(features - KNOWN_FEATURES)),
        log_level=args.log_level,
        log_format=args.log_format,
        for_outage_tolerance_ms=_duration(
            args.for_outage_tolerance, "--rules.alert.for-outage-tolerance"
        ),
        for_grace_period_ms=_duration(args.for_grace_period, "--rules.alert.for-grace-period"),
        resend_delay_ms=_duration(args.resend_delay, "--rules.alert.resend-delay"),
        notification_queue_capacity=args.notification_queue_capacity,
        raw=raw,
    )
