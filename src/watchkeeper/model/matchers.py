"""Label matchers (=, !=, =~, !~) with Prometheus's fully anchored regex semantics.

Regexes are anchored at both ends and `.` matches a newline, as in Prometheus 3.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from functools import lru_cache

from watchkeeper.model.labels import Labels


class MatchType(enum.Enum):
    """The four kinds of label matcher."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class InvalidMatcherError(ValueError):
    """Raised when a matcher's regex does not compile."""


@lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compiles a Prometheus regex, anchored and with `.` matching newlines.

    Raises:
        InvalidMatcherError: when the pattern is not a valid regular expression.
    """
    try:
        return re.compile(f"(?s:{_scope_inline_flags(pattern)})")
    except re.error as exc:
        raise InvalidMatcherError(f"invalid regular expression {pattern!r}: {exc}") from exc


_INLINE_FLAGS = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)\)")


def _scope_inline_flags(pattern: str) -> str:
    """Rewrites RE2's mid-pattern flags `a(?i)b` as Python's scoped `a(?i:b)`.

    RE2 (Go) applies `(?i)` to the rest of the enclosing group; Python accepts global flags
    only at the very start, so each one becomes a group that closes with its enclosing one.
    """
    if "(?" not in pattern:
        return pattern
    out: list[str] = []
    pending: list[list[str]] = [[]]
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i : j + 1])
            i = j + 1
            continue
        m = _INLINE_FLAGS.match(pattern, i) if c == "(" else None
        if m is not None:
            flags = m.group(1).replace("U", "")
            opener = f"(?{flags}:" if flags.strip("-") else "(?:"
            out.append(opener)
            pending[-1].append(opener)
            i = m.end()
            continue
        if c == "(":
            pending.append([])
        elif c == ")" and len(pending) > 1:
            out.append(")" * len(pending.pop()))
        elif c == "|" and pending[-1]:
            # An alternation ends the flagged groups; the next branch reopens them.
            out.append(")" * len(pending[-1]) + "|" + "".join(pending[-1]))
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * len(pending[0]))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Matcher:
    """Selects label sets by one label.

    Example:
        >>> Matcher(MatchType.REGEX, "job", "api|web").matches("web")
        True
        >>> Matcher(MatchType.REGEX, "job", "api|web").matches("webx")
        False
    """

    type: MatchType
    name: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            object.__setattr__(self, "_regex", compile_anchored(self.value))

    @classmethod
    def equal(cls, name: str, value: str) -> Matcher:
        """A `name="value"` matcher."""
        return cls(MatchType.EQUAL, name, value)

    def matches(self, value: str) -> bool:
        """Tells whether a label value (the empty string when absent) satisfies the matcher."""
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert_regex = self._regex
        if assert_regex is None:  # pragma: no cover - set in __post_init__
            raise InvalidMatcherError("regex matcher without a compiled pattern")
        hit = assert_regex.fullmatch(value) is not None
        return hit if self.type is MatchType.REGEX else not hit

    def matches_empty(self) -> bool:
        """Tells whether the matcher selects series that lack the label."""
        return self.matches("")

    def matches_labels(self, labels: Labels) -> bool:
        """Tells whether a label set satisfies the matcher."""
        return self.matches(labels.get(self.name))

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.type.value}"{escaped}"'


_REGEX_SPECIALS = frozenset("\\.+*?()|[]{}^$")
"""The characters RE2's QuoteMeta escapes."""


def quote_regex(literal: str) -> str:
    r"""Escapes a string so that a regex matches exactly it (RE2's QuoteMeta).

    Example:
        >>> quote_regex("a.b|c")
        'a\\.b\\|c'
        >>> Matcher(MatchType.REGEX, "x", quote_regex("a.b")).matches("axb")
        False
    """
    return "".join("\\" + c if c in _REGEX_SPECIALS else c for c in literal)


def literal_alternatives(pattern: str) -> set[str] | None:
    r"""Returns the literals of a regex that is a plain alternation (`a|b|c`), else None.

    Escaped special characters count as literals, so `quote_regex`'s output qualifies.

    Example:
        >>> sorted(literal_alternatives("api|web") or [])
        ['api', 'web']
        >>> sorted(literal_alternatives("a\\.b|c") or [])
        ['a.b', 'c']
        >>> literal_alternatives("api.*") is None
        True
    """
    if "\\" not in pattern:
        if any(c in _REGEX_SPECIALS and c != "|" for c in pattern):
            return None
        return set(pattern.split("|"))
    out: set[str] = set()
    current: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            escaped = next(chars, "")
            if escaped not in _REGEX_SPECIALS:
                return None  # \d, \w, a trailing backslash...: not a literal
            current.append(escaped)
        elif c == "|":
            out.add("".join(current))
            current = []
        elif c in _REGEX_SPECIALS:
            return None
        else:
            current.append(c)
    out.add("".join(current))
    return out


def matches_all(matchers: tuple[Matcher, ...] | list[Matcher], labels: Labels) -> bool:
    """Tells whether a label set satisfies every matcher."""
    return all(m.matches(labels.get(m.name)) for m in matchers)
