"""The lexer of Go's text/template: text and actions between {{ and }} as items."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

SPACE_CHARS: Final = " \t\r\n"
KEYWORDS: Final = frozenset(
    ("block", "break", "continue", "define", "else", "end", "if", "range", "template", "with")
)


class T(enum.Enum):
    """Item types."""

    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    SPACE = "space"
    IDENT = "identifier"
    FIELD = "field"
    VARIABLE = "variable"
    STRING = "string"
    RAW_STRING = "raw string"
    CHAR = "char constant"
    NUMBER = "number"
    BOOL = "bool"
    NIL = "nil"
    DOT = "."
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    DECLARE = ":="
    ASSIGN = "="
    COMMA = ","
    KEYWORD = "keyword"
    EOF = "EOF"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Item:
    """One lexed item: type, text, byte-ish position (str index) and line."""

    typ: T
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ is T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return f"{go_q(self.val[:10])}..."
        return go_q(self.val)


def go_q(s: str) -> str:
    """Quotes like Go's %q for the short strings in error messages."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def lex(text: str, left: str = "{{", right: str = "}}") -> list[Item]:
    """Splits template text into items; a lexing problem ends the list with an ERROR item."""
    return _Lexer(text, left, right).run()


class _Lexer:
    def __init__(self, text: str, left: str, right: str) -> None:
        self.text = text
        self.left = left
        self.right = right
        self.items: list[Item] = []
        self.pos = 0
        self.line = 1
        self.paren = 0

    def emit(self, typ: T, start: int, end: int) -> None:
        val = self.text[start:end]
        self.items.append(Item(typ, val, start, self.line))
        self.line += val.count("\n")

    def error(self, msg: str) -> None:
        self.items.append(Item(T.ERROR, msg, self.pos, self.line))

    def run(self) -> list[Item]:
        text = self.text
        trim_next = False
        while True:
            start = self.pos
            i = text.find(self.left, start)
            end = len(text) if i < 0 else i
            body_start = start
            if trim_next:
                while body_start < end and text[body_start] in SPACE_CHARS:
                    body_start += 1
                self.line += text.count("\n", start, body_start)
            trim_left = (
                i >= 0
                and text.startswith("-", i + len(self.left))
                and text[i + len(self.left) + 1 : i + len(self.left) + 2] in tuple(SPACE_CHARS)
                and i + len(self.left) + 1 < len(text)
            )
            text_end = end
            if trim_left:
                while text_end > body_start and text[text_end - 1] in SPACE_CHARS:
                    text_end -= 1
            if text_end > body_start:
                self.emit(T.TEXT, body_start, text_end)
            self.line += text.count("\n", text_end, end)
            if i < 0:
                self.pos = len(text)
                self.items.append(Item(T.EOF, "", self.pos, self.line))
                return self.items
            self.pos = i + len(self.left) + (2 if trim_left else 0)
            # Comments: {{/* ... */}}.
            if text.startswith("/*", self.pos):
                done = self.comment(i)
                if done is None:
                    return self.items
                trim_next = done
                continue
            self.items.append(Item(T.LEFT, self.left, i, self.line))
            result = self.inside_action()
            if result is None:
                return self.items
            trim_next = result

    def comment(self, delim_pos: int) -> bool | None:
        text = self.text
        end = text.find("*/", self.pos + 2)
        if end < 0:
            self.error("unclosed comment")
            return None
        self.line += text.count("\n", self.pos, end)
        self.pos = end + 2
        trim = text.startswith(" -" + self.right, self.pos)
        if trim:
            self.pos += 2
        if not text.startswith(self.right, self.pos):
            self.error("comment ends before closing delimiter")
            return None
        self.pos += len(self.right)
        del delim_pos
        return trim

    def at_right(self) -> tuple[bool, bool]:
        text = self.text
        if text.startswith(" -" + self.right, self.pos):
            return True, True
        return text.startswith(self.right, self.pos), False

    def inside_action(self) -> bool | None:
        """Lexes one action; returns whether it ends with a trim marker, or None on error."""
        text = self.text
        n = len(text)
        while True:
            at, trim = self.at_right()
            if at:
                if self.paren:
                    self.error("unclosed left paren")
                    return None
                if trim:
                    self.pos += 2
                self.items.append(Item(T.RIGHT, self.right, self.pos, self.line))
                self.pos += len(self.right)
                return trim
            if self.pos >= n:
                self.error("unclosed action")
                return None
            c = text[self.pos]
            start = self.pos
            if c in SPACE_CHARS:
                while self.pos < n and text[self.pos] in SPACE_CHARS:
                    if text.startswith(" -" + self.right, self.pos):
                        break
                    self.pos += 1
                if self.pos > start:
                    self.emit(T.SPACE, start, self.pos)
                continue
            if c == "=":
                self.pos += 1
                self.emit(T.ASSIGN, start, self.pos)
            elif c == ":":
                if not text.startswith(":=", self.pos):
                    self.error("expected :=")
                    return None
                self.pos += 2
                self.emit(T.DECLARE, start, self.pos)
            elif c == "|":
                self.pos += 1
                self.emit(T.PIPE, start, self.pos)
            elif c == '"':
                if not self.quoted('"', "unterminated quoted string", T.STRING):
                    return None
            elif c == "`":
                end = text.find("`", self.pos + 1)
                if end < 0:
                    self.error("unterminated raw quoted string")
                    return None
                self.pos = end + 1
                self.emit(T.RAW_STRING, start, self.pos)
            elif c == "'":
                if not self.quoted("'", "unterminated character constant", T.CHAR):
                    return None
            elif c == "$":
                self.pos += 1
                while self.pos < n and _is_alnum(text[self.pos]):
                    self.pos += 1
                self.emit(T.VARIABLE, start, self.pos)
                if not self.fields():
                    return None
            elif c == "." and self.pos + 1 < n and text[self.pos + 1].isdigit():
                if not self.number():
                    return None
            elif c == ".":
                if not self.fields():
                    return None
            elif c in "+-" or c.isdigit():
                if not self.number():
                    return None
            elif _is_alnum(c):
                while self.pos < n and _is_alnum(text[self.pos]):
                    self.pos += 1
                word = text[start : self.pos]
                if not self.at_terminator():
                    self.error(f"bad character {_u(text[self.pos])}")
                    return None
                if word in KEYWORDS:
                    self.emit(T.KEYWORD, start, self.pos)
                elif word in ("true", "false"):
                    self.emit(T.BOOL, start, self.pos)
                elif word == "nil":
                    self.emit(T.NIL, start, self.pos)
                else:
                    self.emit(T.IDENT, start, self.pos)
                    if not self.fields():
                        return None
            elif c == "(":
                self.pos += 1
                self.paren += 1
                self.emit(T.LPAREN, start, self.pos)
            elif c == ")":
                self.pos += 1
                self.paren -= 1
                if self.paren < 0:
                    self.error("unexpected right paren")
                    return None
                self.emit(T.RPAREN, start, self.pos)
                if not self.fields():
                    return None
            elif c == ",":
                self.pos += 1
                self.emit(T.COMMA, start, self.pos)
            else:
                self.error(f"bad character {_u(c)}")
                return None

    def fields(self) -> bool:
        """Lexes `.Name` fields directly following the current position (a chain)."""
        text = self.text
        n = len(text)
        while self.pos < n and text[self.pos] == ".":
            start = self.pos
            self.pos += 1
            if self.pos < n and _is_alnum(text[self.pos]) and not text[self.pos].isdigit():
                while self.pos < n and _is_alnum(text[self.pos]):
                    self.pos += 1
                if not self.at_terminator():
                    self.error(f"bad character {_u(text[self.pos])}")
                    return False
                self.emit(T.FIELD, start, self.pos)
            else:
                self.emit(T.DOT, start, self.pos)
                if self.pos < n and text[self.pos].isdigit():
                    self.error(f"bad number syntax: {go_q(text[start : self.pos + 1])}")
                    return False
        return True

    def at_terminator(self) -> bool:
        if self.pos >= len(self.text):
            return True
        c = self.text[self.pos]
        if c in SPACE_CHARS or c in ".,|:()=":
            return True
        return self.text.startswith(self.right, self.pos)

    def quoted(self, quote: str, unterminated: str, typ: T) -> bool:
        text = self.text
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                self.error(unterminated)
                return False
            c = text[self.pos]
            if c == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if c == quote:
                break
        self.emit(typ, start, self.pos)
        return True

    def number(self) -> bool:
        text = self.text
        n = len(text)
        start = self.pos
        if self.pos < n and text[self.pos] in "+-":
            self.pos += 1
        digits = "0123456789_"
        if text.startswith(("0x", "0X"), self.pos):
            self.pos += 2
            digits = "0123456789abcdefABCDEF_"
        elif text.startswith(("0o", "0O"), self.pos):
            self.pos += 2
            digits = "01234567_"
        elif text.startswith(("0b", "0B"), self.pos):
            self.pos += 2
            digits = "01_"
        while self.pos < n and text[self.pos] in digits:
            self.pos += 1
        if self.pos < n and text[self.pos] == ".":
            self.pos += 1
            while self.pos < n and text[self.pos] in digits:
                self.pos += 1
        exps = "pP" if len(digits) == 23 else "eEpP"
        if self.pos < n and text[self.pos] in exps:
            self.pos += 1
            if self.pos < n and text[self.pos] in "+-":
                self.pos += 1
            while self.pos < n and text[self.pos] in "0123456789_":
                self.pos += 1
        if self.pos < n and text[self.pos] == "i":
            self.pos += 1
        if self.pos < n and _is_alnum(text[self.pos]):
            self.pos += 1
            self.error(f"bad number syntax: {go_q(text[start : self.pos])}")
            return False
        self.emit(T.NUMBER, start, self.pos)
        return True


def _u(ch: str) -> str:
    """Formats a rune as Go's %#U: U+0040 '@'."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"
