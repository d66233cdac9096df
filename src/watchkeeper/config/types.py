"""Field types shared by config models: durations, byte sizes, secrets, label names.

Durations are integer milliseconds and print back as Prometheus durations ("1m30s"); sizes
are base-2 bytes as in Prometheus ("10MB" is 10 MiB); secrets print as "<secret>" when a
config is dumped as JSON or YAML (the /api/v1/status/config view) and keep their value in
Python.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator

from watchkeeper.model.duration import DurationError, format_duration_ms, parse_duration_ms

SECRET_MASK: Final = "<secret>"
"""What a secret prints as."""


def _parse_duration(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"cannot unmarshal {value!r} into a duration")
    if isinstance(value, int):
        # NB: Prometheus reads a bare YAML number as a duration string, which fails unless 0.
        if value == 0:
            return 0
        raise ValueError(f'not a valid duration string: "{value}"')
    if not isinstance(value, str):
        raise ValueError(f"cannot unmarshal {type(value).__name__} into a duration")
    try:
        return parse_duration_ms(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


DurationMs = Annotated[
    int,
    BeforeValidator(_parse_duration),
    PlainSerializer(format_duration_ms, return_type=str, when_used="json"),
]
"""A Prometheus duration held as integer milliseconds."""

_SIZE_UNITS: Final = {
    "b": 1,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "mb": 1 << 20,
    "mib": 1 << 20,
    "gb": 1 << 30,
    "gib": 1 << 30,
    "tb": 1 << 40,
    "tib": 1 << 40,
    "pb": 1 << 50,
    "pib": 1 << 50,
    "eb": 1 << 60,
    "eib": 1 << 60,
}
_SIZE_PART_RE: Final = re.compile(r"(\d+)([a-zA-Z]+)")


def parse_size_bytes(text: str) -> int:
    """Parses a base-2 size such as "10MB", "512KiB" or "1GB512MB" into bytes ("0" is 0).

    Raises:
        ValueError: when the text is not a size.
    """
    if text == "0":
        return 0
    pos = 0
    total = 0
    for match in _SIZE_PART_RE.finditer(text):
        if match.start() != pos:
            break
        unit = _SIZE_UNITS.get(match.group(2).lower())
        if unit is None:
            raise ValueError(f"units: unknown unit {match.group(2)} in {text}")
        total += int(match.group(1)) * unit
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"units: invalid size {text!r}")
    return total


def format_size_bytes(size: int) -> str:
    """Formats bytes the way Prometheus prints base-2 sizes ("10MiB", "0B")."""
    if size == 0:
        return "0B"
    out = ""
    for unit, scale in (("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30)):
        count, size = divmod(size, scale)
        if count:
            out += f"{count}{unit}"
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)):
        count, size = divmod(size, scale)
        if count:
            out += f"{count}{unit}"
    return out


def _parse_size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"cannot unmarshal {value!r} into a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("size must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"cannot unmarshal {type(value).__name__} into a size")
    return parse_size_bytes(value)


SizeBytes = Annotated[
    int,
    BeforeValidator(_parse_size),
    PlainSerializer(format_size_bytes, return_type=str, when_used="json"),
]
"""A base-2 byte size held as an integer."""


def _mask(value: str) -> str:
    return SECRET_MASK if value else ""


Secret = Annotated[str, PlainSerializer(_mask, return_type=str, when_used="json")]
"""A password or token: its value in Python, "<secret>" in JSON and YAML dumps."""


def _check_uint(value: Any) -> Any:
    if isinstance(value, bool) or (isinstance(value, int) and value < 0):
        raise ValueError(f"cannot unmarshal {value!r} into an unsigned integer")
    return value


UInt = Annotated[int, BeforeValidator(_check_uint)]
"""A non-negative integer (Go's uint)."""


def is_valid_utf8_label_name(name: str) -> bool:
    """Tells whether a label name is valid under Prometheus 3's UTF-8 scheme (non-empty)."""
    return name != ""


class ConfigModel(BaseModel):
    """The base of every config model: unknown fields are errors, as in strict YAML."""

    model_config = ConfigDict(
        extra="forbid", validate_default=False, populate_by_name=True, coerce_numbers_to_str=True
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        """Reads an empty YAML block as defaults and null fields as unset, as Go's yaml does."""
        if data is None:
            return {}
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data
