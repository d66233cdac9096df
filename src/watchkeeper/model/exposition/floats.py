"""Floats as Go's strconv reads and writes them (the exposition formats are defined by Go).

Example:
    >>> format_go_float(1e6), format_go_float(0.25), format_go_float(float("inf"))
    ('1e+06', '0.25', '+Inf')
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Final

GO_FLOAT_PATTERN: Final = (
    r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN]"
)
"""Decimal syntax accepted by Go's strconv.ParseFloat (hex floats need 'p': never valid here)."""

_GO_FLOAT_RE: Final = re.compile(GO_FLOAT_PATTERN)


def parse_go_float(text: str) -> float:
    """Parses a float as Prometheus's textparse does (strconv.ParseFloat, no 'p' or '_').

    Raises:
        ValueError: with Go's message, e.g. `strconv.ParseFloat: parsing "x": invalid syntax`.
    """
    if any(c in text for c in "pP_"):
        raise ValueError("unsupported character in float")
    if _GO_FLOAT_RE.fullmatch(text) is None:
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    value = float(text)
    if math.isinf(value) and "n" not in text and "N" not in text:
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


def go_quote(text: str) -> str:
    r"""Quotes a string as Go's strconv.Quote (%q) does.

    U+FFFD, which Python's decoders put where input was not UTF-8, is escaped rather than
    printed, as Go shows the bad byte escaped.

    Example:
        >>> print(go_quote('a"b\n\x07\u00e9\U0001f600\x7f'))
        "a\"b\n\aé😀\x7f"
    """
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable() and ch != "\ufffd":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _shortest_digits(value: float) -> tuple[str, int]:
    """Returns the shortest round-trip digits of |value| > 0 and the decimal point position."""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + exponent - (len(whole + frac) - len((whole + frac).lstrip("0")))
    return digits.rstrip("0") or "0", point


def format_go_float(value: float) -> str:
    """Formats like Go's strconv.FormatFloat(v, 'g', -1, 64), with +Inf/-Inf/NaN spelt so."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(value)
    exp = point - 1
    if exp < -4 or exp >= 6:
        # NB: shortest %g in Go decides by a precision of 6, so 1234567 prints as 1.234567e+06.
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_go_positional(value: float) -> str:
    """Formats like Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, no exponent.

    Example:
        >>> format_go_positional(1e21), format_go_positional(1.5e-7), format_go_positional(-0.0)
        ('1000000000000000000000', '0.00000015', '-0')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0")


def format_go_json_float(value: float) -> str:
    """Formats a finite float as Go's encoding/json does (exponent below 1e-6 and from 1e21).

    Example:
        >>> format_go_json_float(0.0), format_go_json_float(2.3255e-5), format_go_json_float(8e-7)
        ('0', '0.000023255', '8e-7')
    """
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        mantissa, _, exponent = repr(value).partition("e")
        mantissa = mantissa.removesuffix(".0")
        return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0')}"
    return format_go_positional(value)


def format_openmetrics_float(value: float) -> str:
    """Formats like Go's 'g' but appends ".0" when there is neither "." nor "e" (le, quantile)."""
    text = format_go_float(value)
    if text in ("NaN", "+Inf", "-Inf") or "." in text or "e" in text:
        return text
    return text + ".0"
