"""Exposition formats: text 0.0.4 and OpenMetrics 1.0 (parsing, writing), protobuf (parsing)."""

from watchkeeper.model.exposition.parser import (
    OPENMETRICS_MEDIA_TYPE,
    SCRAPE_PROTOCOL_HEADERS,
    TEXT_MEDIA_TYPE,
    ExpositionParser,
    media_type_for,
    parse_exposition,
)
from watchkeeper.model.exposition.protobuf import (
    PROTOBUF_CONTENT_TYPE,
    encode_delimited,
    parse_protobuf,
)
from watchkeeper.model.exposition.series import parse_series_text
from watchkeeper.model.exposition.types import (
    METRIC_TYPES,
    NO_TIMESTAMP,
    Exemplar,
    ExpositionParseError,
    MetricFamily,
    MetricMetadata,
    ParsedExposition,
    Sample,
)
from watchkeeper.model.exposition.writer import (
    DEFAULT_SCRAPE_PROTOCOLS,
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Writer,
    negotiate,
    scrape_accept_header,
    write_openmetrics,
    write_text,
)

__all__ = [
    "DEFAULT_SCRAPE_PROTOCOLS",
    "METRIC_TYPES",
    "NO_TIMESTAMP",
    "OPENMETRICS_CONTENT_TYPE",
    "OPENMETRICS_MEDIA_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "SCRAPE_PROTOCOL_HEADERS",
    "TEXT_CONTENT_TYPE",
    "TEXT_MEDIA_TYPE",
    "Exemplar",
    "ExpositionParseError",
    "ExpositionParser",
    "MetricFamily",
    "MetricMetadata",
    "ParsedExposition",
    "Sample",
    "Writer",
    "encode_delimited",
    "media_type_for",
    "negotiate",
    "parse_exposition",
    "parse_protobuf",
    "parse_series_text",
    "scrape_accept_header",
    "write_openmetrics",
    "write_text",
]
