"""API errors: each carries Prometheus's errorType and the HTTP status it maps to."""

from __future__ import annotations

from typing import Final

STATUS_BY_TYPE: Final[dict[str, int]] = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 503,
    "timeout": 503,
    "internal": 500,
    "not_found": 404,
    "unavailable": 503,
}
"""HTTP status per errorType, as Prometheus's respondError maps them."""


class ApiError(Exception):
    """Raised by a handler to answer {"status":"error","errorType":...,"error":...}."""

    def __init__(self, error_type: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status if status is not None else STATUS_BY_TYPE.get(error_type, 500)


def bad_data(message: str) -> ApiError:
    """A "bad_data" (400) error."""
    return ApiError("bad_data", message)


def invalid_param(name: str, reason: str) -> ApiError:
    """A bad_data error worded as Prometheus's invalidParamError: invalid parameter "x": ..."""
    return ApiError("bad_data", f'invalid parameter "{name}": {reason}')
