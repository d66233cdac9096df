"""Label sets: the identity of a series.

A `Labels` value is an immutable, name-sorted tuple of (name, value) pairs, hashable and
ordered the way Prometheus orders label sets (`labels.Compare`): pair by pair, name then
value, a prefix first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

METRIC_NAME: Final = "__name__"
"""The reserved label that holds the metric name."""


class Labels:
    """An immutable, sorted set of label pairs.

    Example:
        >>> lbls = Labels.from_dict({"job": "api", "__name__": "up"})
        >>> str(lbls)
        'up{job="api"}'
        >>> lbls.get("job")
        'api'
    """

    __slots__ = ("_hash", "_pairs")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        """Builds a label set from pairs; empty values are dropped, as in Prometheus."""
        self._pairs: tuple[tuple[str, str], ...] = tuple(sorted(p for p in pairs if p[1] != ""))
        self._hash = hash(self._pairs)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, str]) -> Labels:
        """Builds a label set from a mapping of name to value."""
        return cls(mapping.items())

    @classmethod
    def from_strings(cls, *names_and_values: str) -> Labels:
        """Builds a label set from alternating names and values: ("a", "1", "b", "2")."""
        if len(names_and_values) % 2:
            raise ValueError("from_strings needs an even number of arguments")
        it = iter(names_and_values)
        return cls(zip(it, it, strict=True))

    @classmethod
    def from_sorted_pairs(cls, pairs: tuple[tuple[str, str], ...]) -> Labels:
        """Wraps pairs that are already sorted by name and free of empty values (no checks)."""
        obj = cls.__new__(cls)
        obj._pairs = pairs
        obj._hash = hash(pairs)
        return obj

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The (name, value) pairs, sorted by name."""
        return self._pairs

    @property
    def name(self) -> str:
        """The metric name, or "" when there is none."""
        return self.get(METRIC_NAME)

    def get(self, name: str) -> str:
        """Returns the value of a label, or "" when it is not set."""
        for n, v in self._pairs:
            if n == name:
                return v
        return ""

    def has(self, name: str) -> bool:
        """Tells whether the label is set."""
        return any(n == name for n, _ in self._pairs)

    def as_dict(self) -> dict[str, str]:
        """Returns a new dict of name to value."""
        return dict(self._pairs)

    def names(self) -> tuple[str, ...]:
        """Returns the label names in order."""
        return tuple(n for n, _ in self._pairs)

    def with_labels(self, **updates: str) -> Labels:
        """Returns a copy with labels set (an empty value removes the label)."""
        return self.with_mapping(updates)

    def with_mapping(self, updates: Mapping[str, str]) -> Labels:
        """Returns a copy with the given labels set (an empty value removes the label)."""
        merged = dict(self._pairs)
        merged.update(updates)
        return Labels(merged.items())

    def without(self, *names: str) -> Labels:
        """Returns a copy without the named labels."""
        drop = set(names)
        return Labels.from_sorted_pairs(tuple(p for p in self._pairs if p[0] not in drop))

    def keep(self, *names: str) -> Labels:
        """Returns a copy with only the named labels."""
        keep = set(names)
        return Labels.from_sorted_pairs(tuple(p for p in self._pairs if p[0] in keep))

    def without_name(self) -> Labels:
        """Returns a copy without the metric name."""
        return self.without(METRIC_NAME)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Labels):
            return NotImplemented
        return self._hash == other._hash and self._pairs == other._pairs

    def __lt__(self, other: Labels) -> bool:
        return self._pairs < other._pairs

    def __le__(self, other: Labels) -> bool:
        return self._pairs <= other._pairs

    def __repr__(self) -> str:
        return f"Labels({self})"

    def __str__(self) -> str:
        """Formats as Prometheus does: name{a="b", c="d"} (names that need it are quoted)."""
        name = ""
        parts = []
        for n, v in self._pairs:
            if n == METRIC_NAME and is_valid_legacy_metric_name(v):
                name = v
            else:
                parts.append(f"{_format_label_name(n)}={_quote(v)}")
        return f"{name}{{{', '.join(parts)}}}" if parts or not name else name


EMPTY_LABELS: Final = Labels()
"""The empty label set."""


def _quote(value: str) -> str:
    """Quotes a string as Go's strconv.Quote does for printable text."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def _format_label_name(name: str) -> str:
    return name if is_valid_legacy_label_name(name) else _quote(name)


def is_valid_legacy_metric_name(name: str) -> bool:
    """Tells whether `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*."""
    if not name:
        return False
    first = name[0]
    if not (first.isascii() and (first.isalpha() or first in "_:")):
        return False
    return all(c.isascii() and (c.isalnum() or c in "_:") for c in name[1:])


def is_valid_legacy_label_name(name: str) -> bool:
    """Tells whether `name` matches [a-zA-Z_][a-zA-Z0-9_]*."""
    if not name:
        return False
    first = name[0]
    if not (first.isascii() and (first.isalpha() or first == "_")):
        return False
    return all(c.isascii() and (c.isalnum() or c == "_") for c in name[1:])
