"""Labels from one series text (`name{a="b"}`), called by the scraper on a cache miss.

Example:
    >>> str(parse_series_text('http_requests_total{method="get",code="200"}'))
    'http_requests_total{code="200", method="get"}'
"""

from __future__ import annotations

import re
from typing import Final

from watchkeeper.model.exposition.floats import go_quote
from watchkeeper.model.exposition.lines import _parse_labels, _series, split_pair, unescape
from watchkeeper.model.exposition.types import ExpositionParseError
from watchkeeper.model.labels import METRIC_NAME, Labels

_SIMPLE_RE: Final = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*)\})?'
)
_PAIR_RE: Final = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"')


def _check_unique(pairs: list[tuple[str, str]], text: str) -> Labels:
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise ExpositionParseError(
                    f"label name {go_quote(n)} is not unique while parsing: {go_quote(text)}"
                )
            seen.add(n)
    return Labels(pairs)


def simple_series_pairs(text: str) -> list[tuple[str, str]] | None:
    """The (name, raw value) pairs of a plain series text (no escapes), __name__ first.

    The scraper's fast path on cache misses; None when the text is not plain (then
    `parse_series_text` decides). Duplicates and empty values are left in: callers check.
    """
    m = _SIMPLE_RE.fullmatch(text)
    if m is None:
        return None
    body = m.group(2)
    if not body:
        return [(METRIC_NAME, m.group(1))]
    pairs: list[tuple[str, str]] = _PAIR_RE.findall(body)
    pairs.insert(0, (METRIC_NAME, m.group(1)))
    return pairs


def parse_series_text(text: str) -> Labels:
    """Returns the labels (including __name__) of one series text from `ParsedExposition`.

    Raises:
        ExpositionParseError: when the text is malformed, a label name repeats, or a name is
            empty (line is 0: the caller knows which sample it was).
    """
    m = _SIMPLE_RE.fullmatch(text)
    if m is not None:
        body = m.group(2)
        pairs = [(METRIC_NAME, m.group(1))]
        if body:
            pairs.extend(_PAIR_RE.findall(body))
        return _check_unique(pairs, text)
    try:
        end, _ = _series(text, 0, om=False)
        if end != len(text):
            raise ValueError(f"unexpected text after series while parsing: {go_quote(text)}")
        name_m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text)
        pairs = []
        if name_m is not None:
            pairs.append((METRIC_NAME, name_m.group()))
        brace = text.find("{")
        if brace >= 0:
            _, parts, quoted = _parse_labels(text, brace + 1, om=False, exemplar=False)
            for part in parts:
                if part == ",":
                    continue
                if part == quoted:
                    pairs.append((METRIC_NAME, unescape(quoted[1:-1])))
                    continue
                lname, raw = split_pair(part)
                pairs.append((lname, unescape(raw[1:-1])))
    except ValueError as exc:
        raise ExpositionParseError(str(exc)) from None
    for lname, _ in pairs:
        if not lname:
            raise ExpositionParseError(f"invalid metric name or label names: {go_quote(text)}")
    return _check_unique(pairs, text)
