"""The PromQL lexer: text to tokens, with Prometheus's lexer errors and Go string escapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from watchkeeper.model.duration import DurationError, parse_duration_ms
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.signatures import AGGREGATIONS

KEYWORDS: Final = frozenset(  # the words that cannot start a metric name here
    {
        "and",
        "or",
        "unless",
        "atan2",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
    }
)
PRECEDENCE: Final = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    "<=": 3,
    "<": 3,
    ">=": 3,
    ">": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}
_DURATION_RE: Final = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+(?![A-Za-z0-9_])")
_DURATION_PART_RE: Final = re.compile(r"([0-9]+)(ms|[smhdwy])")
_HEX_RE: Final = re.compile(r"0[xX][0-9a-fA-F]+(?![A-Za-z0-9_:.])")
_FLOAT_RE: Final = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
IDENT_RE: Final = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_UNIT_MS: Final = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
_OPERATORS: Final = (
    "==",
    "!=",
    "<=",
    ">=",
    "=~",
    "!~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "<",
    ">",
    "=",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "@",
)
MAX_TIMESTAMP_S: Final = 9223372036854775.807
_OPENERS: Final = frozenset("([{")
_CLOSERS: Final = {
    ")": ("(", "right parenthesis"),
    "]": ("[", "right bracket"),
    "}": ("{", "right brace"),
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token; `kind` is "num", "dur", "str", "ident", "op", "eof" or "error"."""

    kind: str
    text: str
    pos: int
    value: float = 0.0
    sval: str = ""


def _position(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"{line}:{col}"


def syntax_error(text: str, pos: int, msg: str) -> ParseError:
    """Builds Prometheus's "line:col: parse error: msg" for a position in the text."""
    return ParseError(f"{_position(text, pos)}: parse error: {msg}")


def duration_ms(text: str) -> int:
    """Converts a duration token ("1m30s") to milliseconds."""
    return sum(int(n) * _UNIT_MS[u] for n, u in _DURATION_PART_RE.findall(text))


_SIMPLE_ESCAPES: Final = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
}


def unquote(body: str, quote: str) -> str:
    """Decodes a Go-quoted string body; invalid UTF-8 bytes become surrogate escapes.

    Raises:
        ValueError: on an invalid escape sequence.
    """
    if quote == "`":
        return body
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("invalid syntax")
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES:
            if e in "'\"" and e != quote:
                raise ValueError("invalid syntax")
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            if len(body[i + 2 : i + 4]) != 2:
                raise ValueError("invalid syntax")
            i += 4
        elif e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid syntax")
            val = int(digits, 8)
            if val > 255:
                raise ValueError("invalid syntax")
            out.append(val)
            i += 4
        elif e in "uU":
            width = 4 if e == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width:
                raise ValueError("invalid syntax")
            out += chr(int(digits, 16)).encode("utf-8", "surrogatepass")
            i += 2 + width
        else:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", "surrogateescape")


def lex(text: str) -> list[Token]:
    """Splits a query into tokens; unbalanced brackets end the list with an error token.

    Raises:
        ParseError: for bad numbers, durations and strings.
    """
    tokens: list[Token] = []
    i = 0
    n = len(text)
    depth = {"(": 0, "[": 0, "{": 0}
    while i < n:
        c = text[i]
        if c in _OPENERS:
            depth[c] += 1
        elif c in _CLOSERS:
            opener, what = _CLOSERS[c]
            if depth[opener] == 0:
                # As Prometheus's lexer: an unbalanced closer is an error just after it.
                tokens.append(Token("error", f"unexpected {what} {c!r}", i + 1))
                return tokens
            depth[opener] -= 1
        elif c == ":" and depth["["] > 0:
            tokens.append(Token("op", ":", i))
            i += 1
            continue
        if c in " \t\r\n":
            i += 1
            continue
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "\"'`":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\" and c != "`":
                    j += 1
                elif text[j] == "\n" and c != "`":
                    raise syntax_error(text, i, "unterminated quoted string")
                j += 1
            if j >= n:
                raise syntax_error(text, i, "unterminated quoted string")
            body = text[i + 1 : j]
            try:
                sval = unquote(body, c)
            except (ValueError, IndexError) as exc:
                raise syntax_error(
                    text, i, f"error unquoting string {text[i : j + 1]!r}: invalid syntax"
                ) from exc
            tokens.append(Token("str", text[i : j + 1], i, sval=sval))
            i = j + 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _DURATION_RE.match(text, i)
            if m:
                try:
                    parse_duration_ms(m.group())
                except DurationError as exc:
                    bad = m.group()[:-1]
                    raise syntax_error(text, i, f'bad number or duration syntax: "{bad}"') from exc
                ms = duration_ms(m.group())
                tokens.append(Token("dur", m.group(), i, value=ms / 1000.0))
                i = m.end()
                continue
            m = _HEX_RE.match(text, i)
            if m:
                tokens.append(Token("num", m.group(), i, value=float(int(m.group(), 16))))
                i = m.end()
                continue
            m = _FLOAT_RE.match(text, i)
            if m is None:  # pragma: no cover - a digit or ".digit" always matches
                raise syntax_error(text, i, "bad number")
            end = m.end()
            if end < n and (text[end].isalpha() or text[end] == "_"):
                raise syntax_error(text, i, f'bad number or duration syntax: "{text[i:end]}"')
            tokens.append(Token("num", m.group(), i, value=float(m.group())))
            i = end
            continue
        m = IDENT_RE.match(text, i)
        if m:
            word = m.group()
            low = word.lower()
            if low in ("inf", "nan"):
                tokens.append(Token("num", word, i, value=float(low)))
            else:
                tokens.append(Token("ident", word, i))
            i = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, i))
                i += len(op)
                break
        else:
            if c == "!":
                raise syntax_error(
                    text, i, "unexpected character after '!': " + repr(text[i + 1 : i + 2])
                )
            raise syntax_error(text, i, f"unexpected character: {c!r}")
    if depth["{"]:
        tokens.append(Token("error", "unexpected end of input inside braces", n))
    elif depth["("]:
        tokens.append(Token("error", "unclosed left parenthesis", n))
    elif depth["["]:
        tokens.append(Token("error", "unclosed left bracket", n))
    else:
        tokens.append(Token("eof", "", n))
    return tokens


def regex_error(pattern: str, exc: Exception) -> str:
    """Words a bad regex as Go's regexp package does, for the common mistakes."""
    cause = exc.__cause__
    text = str(cause) if cause is not None else str(exc)
    if "missing ), unterminated subpattern" in text:
        return f"error parsing regexp: missing closing ): `{pattern}`"
    if "unbalanced parenthesis" in text:
        return f"error parsing regexp: unexpected ): `{pattern}`"
    if "unterminated character set" in text:
        return f"error parsing regexp: missing closing ]: `{pattern[pattern.find('[') :]}`"
    if "multiple repeat" in text:
        return "error parsing regexp: invalid nested repetition operator"
    if "nothing to repeat" in text:
        return "error parsing regexp: missing argument to repetition operator"
    return f"error parsing regexp: {text}"


def describe(tok: Token) -> str:
    """Names a token the way Prometheus's parser errors do, e.g. <op:*>."""
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "num":
        return f"number {tok.text!r}".replace("'", '"')
    if tok.kind == "dur":
        return f'duration "{tok.text}"'
    if tok.kind == "str":
        return f"string {tok.text}"
    if tok.kind == "ident":
        if tok.text.lower() in KEYWORDS or tok.text in AGGREGATIONS:
            return f"<{tok.text}>"
        return f'identifier "{tok.text}"'
    if tok.text == ":":
        return "colon ':'"
    if tok.text in "()[]{},=":
        return f'"{tok.text}"'
    return f"<op:{tok.text}>"
