"""Go's predefined template functions (and, or, not, len, index, slice, print, eq, ...)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final

from watchkeeper.template.errors import GoFuncError
from watchkeeper.template.gofmt import format_v, go_type, sprint, sprintf, sprintln


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    if isinstance(value, str):
        return "string"
    return "other"


def _incompatible(a: Any, b: Any) -> GoFuncError:
    return GoFuncError(f"incompatible types for comparison: {go_type(a)} and {go_type(b)}")


def _eq_one(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        if ka == "nil" or kb == "nil":
            return False
        raise _incompatible(a, b)
    if ka == "other":
        if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            raise GoFuncError(f"non-comparable type {format_v(b)}: {go_type(b)}")
        return bool(a == b)
    return bool(a == b)


def go_eq(arg1: Any, *args: Any) -> bool:
    """eq: arg1 == arg2 || arg1 == arg3 ... with Go's comparison rules."""
    if not args:
        raise GoFuncError("missing argument for comparison")
    return any(_eq_one(arg1, a) for a in args)


def go_ne(a: Any, b: Any) -> bool:
    """ne: not equal."""
    return not _eq_one(a, b)


def go_lt(a: Any, b: Any) -> bool:
    """lt: a < b for basic types of the same kind."""
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string", "bool", "complex") or kb not in (
        "int",
        "float",
        "string",
        "bool",
        "complex",
    ):
        raise GoFuncError("invalid type for comparison")
    if ka != kb:
        raise _incompatible(a, b)
    if ka in ("bool", "complex"):
        raise GoFuncError("invalid type for comparison")
    if ka != kb:
        raise _incompatible(a, b)
    return bool(a < b)


def go_le(a: Any, b: Any) -> bool:
    """le: a <= b."""
    return go_lt(a, b) or _eq_one(a, b)


def go_gt(a: Any, b: Any) -> bool:
    """gt: a > b."""
    return not go_le(a, b)


def go_ge(a: Any, b: Any) -> bool:
    """ge: a >= b."""
    return not go_lt(a, b)


def go_not(value: Any) -> bool:
    """not: the negation of the argument's truth."""
    from watchkeeper.template.exec import is_true

    return not is_true(value)


def go_len(value: Any) -> int:
    """len: length of a string (bytes), slice or map."""
    if value is None:
        raise GoFuncError("len of nil pointer")
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, tuple, Mapping)):
        return len(value)
    raise GoFuncError(f"len of type {go_type(value)}")


def _int_index(value: Any, cap: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GoFuncError(f"cannot index slice/array with type {go_type(value)}")
    if value < 0 or value >= cap:
        raise GoFuncError(f"index out of range: {value}")
    return value


def go_index(item: Any, *indices: Any) -> Any:
    """index: item[i][j]... for slices, strings (bytes) and maps (missing key: zero value)."""
    if item is None:
        raise GoFuncError("index of untyped nil")
    for idx in indices:
        if isinstance(item, Mapping):
            if idx in item:
                item = item[idx]
            else:
                item = "" if all(isinstance(v, str) for v in item.values()) else None
        elif isinstance(item, str):
            data = item.encode()
            item = data[_int_index(idx, len(data))]
        elif isinstance(item, (list, tuple)):
            item = item[_int_index(idx, len(item))]
        elif item is None:
            raise GoFuncError("index of nil pointer")
        else:
            raise GoFuncError(f"can't index item of type {go_type(item)}")
    return item


def go_slice(item: Any, *indices: Any) -> Any:
    """slice: item[i:j(:k)] for strings and slices."""
    if not isinstance(item, (str, list, tuple)):
        raise GoFuncError(f"can't slice item of type {go_type(item)}")
    if len(indices) > 3:
        raise GoFuncError(f"too many slice indexes: {len(indices)}")
    if isinstance(item, str) and len(indices) == 3:
        raise GoFuncError("cannot 3-index slice a string")
    cap = len(item)
    idx = [_int_index(i, cap + 1) for i in indices]
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else cap
    if lo > hi:
        raise GoFuncError(f"invalid slice index: {lo} > {hi}")
    return item[lo:hi]


def html_escape(text: str) -> str:
    """Go's template.HTMLEscapeString."""
    return (
        text.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("\0", "\ufffd")
    )


def js_escape(text: str) -> str:
    """Go's template.JSEscapeString."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == '"':
            out.append('\\"')
        elif ch in "<>&=" or ord(ch) < 0x20 or not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*args)


def go_html(*args: Any) -> str:
    """html: HTML-escaped text of the arguments."""
    return html_escape(_eval_args(args))


def go_js(*args: Any) -> str:
    """js: JavaScript-escaped text of the arguments."""
    return js_escape(_eval_args(args))


def go_urlquery(*args: Any) -> str:
    """urlquery: query-escaped text of the arguments (space becomes +)."""
    return urllib.parse.quote_plus(_eval_args(args), safe="-_.~")


def go_printf(fmt: Any, *args: Any) -> str:
    """printf: fmt.Sprintf."""
    if not isinstance(fmt, str):
        raise GoFuncError(f"wrong type for value; expected string; got {go_type(fmt)}")
    return sprintf(fmt, *args)


def go_call(fn: Any, *args: Any) -> Any:
    """call: calls a function value with arguments."""
    if fn is None:
        raise GoFuncError("call of nil")
    if not callable(fn):
        raise GoFuncError(f"non-function of type {go_type(fn)}")
    return fn(*args)


def _logic_placeholder(*args: Any) -> Any:  # pragma: no cover - the executor short-circuits
    return args[-1] if args else None


BUILTINS: Final[Mapping[str, Callable[..., Any]]] = {
    "and": _logic_placeholder,
    "or": _logic_placeholder,
    "not": go_not,
    "len": go_len,
    "index": go_index,
    "slice": go_slice,
    "print": sprint,
    "printf": go_printf,
    "println": sprintln,
    "eq": go_eq,
    "ne": go_ne,
    "lt": go_lt,
    "le": go_le,
    "gt": go_gt,
    "ge": go_ge,
    "html": go_html,
    "js": go_js,
    "urlquery": go_urlquery,
    "call": go_call,
}
"""Go's predefined functions by name."""
