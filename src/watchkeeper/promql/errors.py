"""PromQL errors, each mapped to the API's errorType and HTTP status as Prometheus maps them."""

from __future__ import annotations


class PromQLError(Exception):
    """The base of every PromQL error. `error_type` and `http_status` are what the API sends."""

    error_type = "execution"
    http_status = 422


class ParseError(PromQLError):
    """Raised when a query does not parse or fails type checks ("bad_data", 400).

    The message is Prometheus's text, e.g. "1:5: parse error: unexpected <EOF>".
    """

    error_type = "bad_data"
    http_status = 400


class EvaluationError(PromQLError):
    """Raised when evaluation fails, e.g. many-to-many matching ("execution", 422)."""


class TooManySamplesError(EvaluationError):
    """Raised when a query would load more than --query.max-samples samples."""

    def __init__(self, where: str = "query execution") -> None:
        super().__init__(f"query processing would load too many samples into memory in {where}")


class QueryTimeoutError(PromQLError):
    """Raised when a query runs past --query.timeout ("timeout", 503)."""

    error_type = "timeout"
    http_status = 503

    def __init__(self, where: str = "query execution") -> None:
        super().__init__(f"query timed out in {where}")


class QueryCanceledError(PromQLError):
    """Raised when a query is canceled ("canceled", 503)."""

    error_type = "canceled"
    http_status = 503
