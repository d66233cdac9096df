"""ExpositionParser: repeated bodies of one target parse exactly as parse_exposition does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.model.exposition import (
    ExpositionParseError,
    ExpositionParser,
    ParsedExposition,
    parse_exposition,
)

TEXT = "text/plain; version=0.0.4"
OM = "application/openmetrics-text; version=1.0.0"

_VALUES = [
    *("1", "-2.5", "NaN", "+Inf", "-Inf", "1e3", "0", ".5", "-0", "+5", "1.5E+06", "5."),
    *("nan", "Inf", "1e999", "-1e999", "0x10", "1_0", "", "1 2", "x", "1\t", "é", "+NaN"),
]


def _outcome(parse: object, body: bytes, ct: str, validate: bool) -> object:
    """The result's columns, or the error, in comparable form."""
    try:
        r = parse(body, ct, validate_series=validate)  # type: ignore[operator]
    except ExpositionParseError as exc:
        return ("error", str(exc))
    assert isinstance(r, ParsedExposition)
    return (
        r.series_text,
        r.values.tobytes(),
        r.timestamps_ms.tobytes(),
        r.metadata,
        r.exemplars,
        None if r.created_timestamps_ms is None else r.created_timestamps_ms.tobytes(),
        r.content_type,
        r.warnings,
    )


def _body(lines: list[str], values: list[str], om: bool) -> bytes:
    out = []
    k = 0
    for line in lines:
        if line.endswith(" V"):
            out.append(line[:-1] + values[k % len(values)])
            k += 1
        else:
            out.append(line)
    if om:
        out.append("# EOF")
    return ("\n".join(out) + "\n").encode()


_LINES = st.sampled_from(
    [
        "# HELP req_total Requests.",
        "# TYPE req_total counter",
        "# TYPE lat histogram",
        "# TYPE q summary",
        'req_total{code="200"} V',
        'req_total{code="500",path="/a b"} V',
        'lat_bucket{le="1"} V',
        'lat_bucket{le="+Inf"} V',
        'q{quantile="0.50"} V',
        "up V",
        "up  V",
        "x 1 123",
        "",
        "# free comment",
    ]
)


@given(
    st.lists(_LINES, max_size=10),
    st.lists(st.lists(st.sampled_from(_VALUES), min_size=1, max_size=4), min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
)
def test_successive_bodies_parse_exactly_as_a_fresh_parse(
    lines: list[str], value_rounds: list[list[str]], om: bool, validate: bool
) -> None:
    ct = OM if om else TEXT
    parser = ExpositionParser()
    for values in value_rounds:
        body = _body(lines, values, om)
        assert _outcome(parser.parse, body, ct, validate) == _outcome(
            parse_exposition, body, ct, validate
        )


def test_steady_bodies_reuse_the_series_texts_and_parse_new_values() -> None:
    lines = ["# TYPE lat histogram", 'lat_bucket{le="1"} V', 'lat_bucket{le="+Inf"} V']
    parser = ExpositionParser()
    first = parser.parse(_body(lines, ["1", "2"], False), TEXT, validate_series=False)
    second = parser.parse(_body(lines, ["3", "NaN"], False), TEXT, validate_series=False)
    assert (
        second.series_text == first.series_text == ['lat_bucket{le="1.0"}', 'lat_bucket{le="+Inf"}']
    )
    assert second.series_text[0] is first.series_text[0]
    assert second.values[0] == 3.0
    assert np.isnan(second.values[1])


@pytest.mark.parametrize(
    "changed",
    [
        b'a{x="1"} 1\nb 2\n',  # a new series
        b"# TYPE a gauge\na 1\nb 2\n",  # new metadata
        b"a 1\nb 2 1000\n",  # a timestamp appears
        b"a 1\nb 0x2\n",  # a bad value: the error must name its line
        b"a 1\n",  # fewer lines
    ],
)
def test_a_changed_body_gets_the_full_parse(changed: bytes) -> None:
    parser = ExpositionParser()
    parser.parse(b"a 1\nb 2\n", TEXT)
    assert _outcome(parser.parse, changed, TEXT, True) == _outcome(
        parse_exposition, changed, TEXT, True
    )
