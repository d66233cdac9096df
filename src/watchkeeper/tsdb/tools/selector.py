"""A series selector parser for the tools' --match flags: `name{label="v", other=~"re"}`.

Accepts what `promtool tsdb dump --match` accepts for plain selectors: an optional metric
name and label matchers with "..." or '...' strings (Go escapes), `=`, `!=`, `=~`, `!~`.
Unlike a PromQL query, a selector that matches everything (`{__name__=~".*"}`) is allowed.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from watchkeeper.model.labels import METRIC_NAME
from watchkeeper.model.matchers import InvalidMatcherError, Matcher, MatchType

_NAME: Final = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
_LABEL: Final = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*|\"(?:[^\"\\]|\\.)*\")\s*(=~|!~|!=|=)\s*")
_STRING: Final = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'")
_OPS: Final = {op.value: op for op in MatchType}


class SelectorError(ValueError):
    """Raised when a selector does not parse; the message names the position."""


def _unescape(body: str) -> str:
    try:
        return codecs.decode(body.encode("utf-8"), "unicode_escape").encode("latin-1").decode()
    except (UnicodeDecodeError, UnicodeEncodeError):
        return codecs.decode(body, "unicode_escape")


def parse_selector(text: str) -> list[Matcher]:
    """Parses a selector into matchers.

    Example:
        >>> [str(m) for m in parse_selector('up{job!="api"}')]
        ['__name__="up"', 'job!="api"']

    Raises:
        SelectorError: when the text is not a selector or a regex is invalid.
    """
    matchers: list[Matcher] = []
    pos = 0
    m = _NAME.match(text, pos)
    if m:
        matchers.append(Matcher(MatchType.EQUAL, METRIC_NAME, m.group(1)))
        pos = m.end()
    rest = text[pos:].strip()
    if rest.startswith("{"):
        pos = text.index("{", pos) + 1
        while True:
            close = re.compile(r"\s*\}").match(text, pos)
            if close:
                pos = close.end()
                break
            lm = _LABEL.match(text, pos)
            if not lm:
                raise SelectorError(f"1:{pos + 1}: parse error: unexpected input in selector")
            name = lm.group(1)
            if name.startswith('"'):
                name = _unescape(name[1:-1])
            pos = lm.end()
            sm = _STRING.match(text, pos)
            if not sm:
                raise SelectorError(f"1:{pos + 1}: parse error: expected a quoted label value")
            raw = sm.group(1) if sm.group(1) is not None else sm.group(2)
            try:
                matchers.append(Matcher(_OPS[lm.group(2)], name, _unescape(raw)))
            except InvalidMatcherError as exc:
                raise SelectorError(str(exc)) from None
            pos = sm.end()
            comma = re.compile(r"\s*,").match(text, pos)
            if comma:
                pos = comma.end()
            elif not re.compile(r"\s*\}").match(text, pos):
                raise SelectorError(f"1:{pos + 1}: parse error: expected ',' or '}}'")
    if text[pos:].strip():
        raise SelectorError(f"1:{pos + 1}: parse error: unexpected {text[pos:].strip()!r}")
    if not matchers:
        raise SelectorError(f"parse error: empty selector {text!r}")
    return matchers
