"""Go's fmt for template values: %v printing and printf verbs with flags, width, precision.

Python values stand for Go's: bool, int, float (float64), complex, str, None (nil),
list/tuple (slices), dicts (maps), datetime (time.Time), timedelta (time.Duration).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from watchkeeper.model.exposition.floats import format_go_float, go_quote


def go_type(value: Any) -> str:
    """Go's name of the type a Python value stands for (for error texts)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "*time.Time"
    if isinstance(value, dt.timedelta):
        return "*time.Duration"
    if isinstance(value, Mapping):
        if all(isinstance(v, str) for v in value.values()):
            return "map[string]string"
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    go_name = getattr(value, "GO_TYPE", None)
    if isinstance(go_name, str):
        return go_name
    if callable(value):
        return "func"
    return f"*{type(value).__name__}"


def format_duration(delta: dt.timedelta) -> str:
    """Formats like Go's time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return format_duration_ns(ns)


def format_duration_ns(ns: int) -> str:
    """Formats nanoseconds like Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return sign + _trim(f"{ns / 1000:.3f}") + "µs"
    if ns < 1_000_000_000:
        return sign + _trim(f"{ns / 1_000_000:.6f}") + "ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs, frac = divmod(rest, 10**9)
    s = f"{secs}" + (("." + f"{frac:09d}".rstrip("0")) if frac else "") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{s}"
    if minutes:
        return f"{sign}{minutes}m{s}"
    return sign + s


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_time(value: dt.datetime) -> str:
    """Formats like Go's time.Time.String() for UTC times."""
    frac = ""
    if value.microsecond:
        frac = "." + f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset() or dt.timedelta(0)
    zone = value.tzname() or "UTC"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    hh, mm = divmod(abs(total) // 60, 60)
    return f"{value:%Y-%m-%d %H:%M:%S}{frac} {sign}{hh:02d}{mm:02d} {zone}"


def format_v(value: Any) -> str:
    """Formats a value as Go's %v (fmt.Sprint of one operand)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, complex):
        return f"({format_go_float(value.real)}{format_go_float(value.imag):+}i)".replace("++", "+")
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{format_v(k)}:{format_v(v)}" for k, v in items) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_v(v) for v in value) + "]"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    return (1, str(key))


def sprint(*args: Any) -> str:
    """Go's fmt.Sprint: spaces between operands when neither side is a string."""
    out = []
    prev_string = True
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_v(a))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """Go's fmt.Sprintln: spaces between all operands and a final newline."""
    return " ".join(format_v(a) for a in args) + "\n"


_VERB_RE: Final = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+)?)?(.?)", re.DOTALL)


def _bad(verb: str, value: Any) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(value)}={format_v(value)})"


def _pad(text: str, flags: str, width: int | None, *, numeric: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+- " else ""
        body = text[len(sign) :]
        return sign + body.rjust(width - len(sign), "0")
    return text.rjust(width)


def _sign(text: str, flags: str, negative: bool) -> str:
    if negative:
        return text
    if "+" in flags:
        return "+" + text
    if " " in flags:
        return " " + text
    return text


def _float(verb: str, value: float, flags: str, prec: int | None) -> str:
    if math.isnan(value):
        return "NaN" if "+" not in flags else "+NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    neg = math.copysign(1.0, value) < 0
    if verb in "gG" and prec is None:
        text = format_go_float(value)
        text = text.upper() if verb == "G" else text
    else:
        p = 6 if prec is None else prec
        if verb in "gG" and p == 0:
            p = 1
        text = f"{value:{'#' if '#' in flags else ''}.{p}{verb}}"
        if verb in "gG" and "#" not in flags and "e" in text.lower():
            mant, _, exp = text.lower().partition("e")
            text = f"{mant}{'E' if verb == 'G' else 'e'}{exp}"
    return _sign(text, flags, neg)


def _one(verb: str, flags: str, width: int | None, prec: int | None, value: Any) -> str:
    numeric = False
    if verb == "v":
        if isinstance(value, float) and not isinstance(value, bool):
            text = _float("g", value, flags, prec)
            numeric = True
        elif isinstance(value, int) and not isinstance(value, bool):
            text = _sign(str(value), flags, value < 0)
            numeric = True
        elif "#" in flags and isinstance(value, str):
            text = go_quote(value)
        else:
            text = format_v(value)
    elif verb == "s":
        if isinstance(value, str):
            text = value if prec is None else value[:prec]
        elif isinstance(value, (list, tuple)):
            text = "[" + " ".join(_one("s", "", None, None, v) for v in value) + "]"
        elif isinstance(value, Mapping):
            items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
            inner = " ".join(
                f"{_one('s', '', None, None, k)}:{_one('s', '', None, None, v)}" for k, v in items
            )
            text = f"map[{inner}]"
        elif isinstance(value, (dt.datetime, dt.timedelta)):
            text = format_v(value)
        elif value is None or isinstance(value, (bool, int, float, complex)):
            return _bad(verb, value)
        else:
            text = str(value)
    elif verb == "q":
        if isinstance(value, str):
            text = go_quote(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            text = "'" + go_quote(chr(value))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        else:
            return _bad(verb, value)
    elif verb == "t":
        if not isinstance(value, bool):
            return _bad(verb, value)
        text = "true" if value else "false"
    elif verb in "dboOxXcU":
        if isinstance(value, int) and not isinstance(value, bool):
            numeric = True
            neg = value < 0
            mag = abs(value)
            if verb == "d":
                text = str(mag)
            elif verb == "b":
                text = f"{mag:b}"
            elif verb == "o":
                text = ("0" if "#" in flags else "") + f"{mag:o}"
            elif verb == "O":
                text = f"0o{mag:o}"
            elif verb == "x":
                text = ("0x" if "#" in flags else "") + f"{mag:x}"
            elif verb == "X":
                text = ("0X" if "#" in flags else "") + f"{mag:X}"
            elif verb == "c":
                return _pad(chr(value), flags, width)
            else:
                return _pad(f"U+{value:04X}", flags, width)
            if prec is not None:
                text = text.rjust(prec, "0")
            text = _sign(("-" if neg else "") + text, flags, neg)
        elif isinstance(value, str) and verb in "xX":
            data = value.encode()
            text = data.hex() if verb == "x" else data.hex().upper()
        elif isinstance(value, (list, tuple)):
            text = "[" + " ".join(_one(verb, flags, None, prec, v) for v in value) + "]"
        else:
            return _bad(verb, value)
    elif verb in "eEfFgG":
        if isinstance(value, float):
            text = _float(verb, value, flags, prec)
            numeric = True
        elif isinstance(value, (list, tuple)):
            text = "[" + " ".join(_one(verb, flags, None, prec, v) for v in value) + "]"
        else:
            return _bad(verb, value)
    else:
        return _bad(verb, value)
    return _pad(text, flags, width, numeric=numeric)


def sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use, with Go's %!verb(...) error texts."""
    out: list[str] = []
    argi = 0
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _VERB_RE.match(fmt, j)
        if m is None:  # pragma: no cover - the pattern always matches "%"
            break
        flags, width_s, prec_s, verb = m.groups()
        i = m.end()
        if verb == "%" and not flags and width_s is None:
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                width = args[argi]
                if width < 0:
                    flags += "-"
                    width = -width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        elif width_s:
            width = int(width_s)
        if prec_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                prec = max(args[argi], 0)
            else:
                out.append("%!(BADPREC)")
            argi += 1
        elif prec_s is not None:
            prec = int(prec_s)
        elif "." in m.group(0):
            prec = 0
        if not verb:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_one(verb, flags, width, prec, args[argi]))
        argi += 1
    if argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type(a)}={format_v(a)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def seq_or_map(value: Any) -> bool:
    """Tells whether a value is a Go slice or map stand-in."""
    return isinstance(value, (list, tuple, Mapping)) and not isinstance(value, str)


__all__ = ["Sequence", "format_v", "go_type", "sprint", "sprintf", "sprintln"]
