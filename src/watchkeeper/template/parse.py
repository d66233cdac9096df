"""The parser of Go's text/template: items to a tree of nodes, with Go's parse errors."""

from __future__ import annotations

import ast as pyast
from dataclasses import dataclass, field
from typing import Final

from watchkeeper.template.errors import TemplateParseError
from watchkeeper.template.lex import Item, T, go_q, lex

Node = object  # any of the node classes below


@dataclass(slots=True)
class TextNode:
    """Plain text."""

    pos: int
    text: str

    def __str__(self) -> str:
        return go_q(self.text)


@dataclass(slots=True)
class FieldNode:
    """`.A.B`: fields of dot."""

    pos: int
    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(slots=True)
class VariableNode:
    """`$x.A`: a variable and optional fields."""

    pos: int
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(slots=True)
class ChainNode:
    """`(pipe).A` or `fn.A`: fields of a term's value."""

    pos: int
    node: Node
    field: list[str]

    def __str__(self) -> str:
        inner = str(self.node)
        if isinstance(self.node, PipeNode):
            inner = f"({inner})"
        return inner + "".join("." + f for f in self.field)


@dataclass(slots=True)
class IdentifierNode:
    """A function name."""

    pos: int
    ident: str

    def __str__(self) -> str:
        return self.ident


@dataclass(slots=True)
class DotNode:
    """`.` itself."""

    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode:
    """`nil`."""

    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode:
    """`true` or `false`."""

    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode:
    """A number constant; `value` is int or float as Go's ideal constant rules choose."""

    pos: int
    text: str
    value: int | float | complex

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class StringNode:
    """A string constant (`quoted` is the source text)."""

    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class CommandNode:
    """One stage of a pipeline: operands, the first possibly a function."""

    pos: int
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        out = []
        for a in self.args:
            s = str(a)
            out.append(f"({s})" if isinstance(a, PipeNode) else s)
        return " ".join(out)


@dataclass(slots=True)
class PipeNode:
    """A pipeline with optional variable declarations."""

    pos: int
    line: int
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(d) for d in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


@dataclass(slots=True)
class ActionNode:
    """`{{pipeline}}`."""

    pos: int
    line: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class ListNode:
    """A sequence of nodes."""

    pos: int
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(slots=True)
class BranchNode:
    """if, range or with (kind says which)."""

    kind: str
    pos: int
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    def __str__(self) -> str:
        s = "{{" + self.kind + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            s += "{{else}}" + str(self.else_list)
        return s + "{{end}}"


@dataclass(slots=True)
class TemplateNode:
    """`{{template "name" pipeline}}`."""

    pos: int
    line: int
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        pipe = "" if self.pipe is None else " " + str(self.pipe)
        return "{{template " + go_q(self.name) + pipe + "}}"


@dataclass(slots=True)
class LoopControlNode:
    """`{{break}}` or `{{continue}}`."""

    kind: str
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


@dataclass(slots=True)
class _End:
    pos: int

    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class _Else:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{else}}"


_OPERAND_START: Final = (
    T.BOOL,
    T.CHAR,
    T.DOT,
    T.FIELD,
    T.IDENT,
    T.NUMBER,
    T.NIL,
    T.RAW_STRING,
    T.STRING,
    T.VARIABLE,
    T.LPAREN,
)


def unquote(text: str) -> str:
    """Unquotes a Go string or raw string literal.

    Raises:
        ValueError: when the literal is malformed.
    """
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    if "\\" not in text:
        return text[1:-1]
    body = text[1:-1]
    if "\\'" in body.replace("\\\\", ""):
        raise ValueError("invalid syntax")
    value = pyast.literal_eval(text)
    if not isinstance(value, str):  # pragma: no cover - a quoted literal is a str
        raise ValueError("invalid syntax")
    return value


def _number(text: str) -> int | float | complex:
    """Go's ideal constant for a number literal in a template."""
    clean = text.replace("_", "")
    if clean.endswith("i"):
        return complex(0, float(clean[:-1]))
    low = clean.lower().lstrip("+-")
    sign = -1 if clean.startswith("-") else 1
    try:
        if low.startswith(("0x", "0o", "0b")) and "p" not in low and "." not in low:
            return sign * int(low, 0)
        if low.startswith("0x"):
            return sign * float.fromhex(low)
        if any(c in low for c in ".e"):
            return float(clean)
        if len(low) > 1 and low.startswith("0"):
            return sign * int(low, 8)
        return int(clean)
    except ValueError:
        raise ValueError(f"illegal number syntax: {go_q(text)}") from None


@dataclass
class Tree:
    """One parsed template: name and root list."""

    name: str
    root: ListNode
    text: str


class _Parser:
    """Parses one text into trees (the main one and any {{define}}d ones)."""

    def __init__(self, name: str, text: str, funcs: set[str]) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = lex(text)
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.trees: dict[str, Tree] = {}
        self.last_line = 1

    # --- item access ---

    def next(self) -> Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.last_line = item.line
        if item.typ is T.ERROR:
            self.errorf(item.val)
        return item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        while True:
            item = self.next()
            if item.typ is not T.SPACE:
                return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.backup()
        return item

    def errorf(self, msg: str) -> None:
        raise TemplateParseError(f"template: {self.name}:{self.last_line}: {msg}")

    def unexpected(self, item: Item, context: str) -> None:
        self.errorf(f"unexpected {item} in {context}")

    def expect(self, typ: T, context: str) -> Item:
        item = self.next_non_space()
        if item.typ is not typ:
            self.unexpected(item, context)
        return item

    # --- structure ---

    def parse(self) -> dict[str, Tree]:
        root = ListNode(0)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT:
                start = self.i
                self.next()
                tok = self.next_non_space()
                if tok.typ is T.KEYWORD and tok.val == "define":
                    self.parse_definition()
                    continue
                self.i = start
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.next()
        main = Tree(self.name, root, self.text)
        existing = self.trees.get(self.name)
        if existing is None or not _is_empty(root):
            self.trees[self.name] = main
        return self.trees

    def parse_definition(self) -> None:
        tok = self.next_non_space()
        if tok.typ not in (T.STRING, T.RAW_STRING):
            self.unexpected(tok, "define clause")
        name = self.unquote(tok)
        self.expect(T.RIGHT, "define clause")
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in define clause")
        self.add_tree(name, body)

    def add_tree(self, name: str, body: ListNode) -> None:
        old = self.trees.get(name)
        if old is not None and not _is_empty(old.root) and not _is_empty(body):
            self.errorf(f"template: multiple definition of template {go_q(name)}")
        if old is None or not _is_empty(body):
            self.trees[name] = Tree(name, body, self.text)

    def unquote(self, item: Item) -> str:
        try:
            return unquote(item.val)
        except (ValueError, SyntaxError):
            self.errorf("invalid syntax")
        raise AssertionError  # pragma: no cover

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not T.EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return lst, node
            lst.nodes.append(node)
        self.errorf("unexpected EOF")
        raise AssertionError  # pragma: no cover

    def text_or_action(self) -> Node:
        item = self.next_non_space()
        if item.typ is T.TEXT:
            return TextNode(item.pos, item.val)
        if item.typ is T.LEFT:
            return self.action()
        self.unexpected(item, "input")
        raise AssertionError  # pragma: no cover

    def action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ is T.KEYWORD:
            kw = tok.val
            if kw == "block":
                return self.block_control()
            if kw in ("break", "continue"):
                t2 = self.next_non_space()
                if t2.typ is not T.RIGHT:
                    self.unexpected(t2, "{{" + kw + "}}")
                if self.range_depth == 0:
                    self.errorf("{{" + kw + "}} outside {{range}}")
                return LoopControlNode(kw, tok.pos, tok.line)
            if kw == "else":
                peek = self.peek_non_space()
                if peek.typ is T.KEYWORD and peek.val in ("if", "with"):
                    return _Else(peek.pos, peek.line)
                self.expect(T.RIGHT, "else")
                return _Else(tok.pos, tok.line)
            if kw == "end":
                return _End(self.expect(T.RIGHT, "end").pos)
            if kw in ("if", "range", "with"):
                return self.control(kw, tok)
            if kw == "template":
                return self.template_control(tok)
            self.unexpected(tok, "command")
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", T.RIGHT))

    def control(self, kind: str, tok: Item) -> BranchNode:
        nvars = len(self.vars)
        pipe = self.pipeline(kind, T.RIGHT)
        if kind == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_list: ListNode | None = None
        if isinstance(nxt, _Else):
            peek = self.peek_non_space()
            if kind in ("if", "with") and peek.typ is T.KEYWORD and peek.val == kind:
                # "else if" / "else with": a nested branch that shares our {{end}}.
                inner_tok = self.next_non_space()
                else_list = ListNode(nxt.pos, [self.control(kind, inner_tok)])
            else:
                else_list, end = self.item_list()
                if not isinstance(end, _End):
                    self.errorf(f"expected end; found {end}")
        del self.vars[nvars:]
        del tok
        return BranchNode(kind, pipe.pos, pipe.line, pipe, body, else_list)

    def template_control(self, tok: Item) -> TemplateNode:
        name_tok = self.next_non_space()
        if name_tok.typ not in (T.STRING, T.RAW_STRING):
            self.unexpected(name_tok, "template clause")
        name = self.unquote(name_tok)
        pipe = None
        if self.next_non_space().typ is not T.RIGHT:
            self.backup()
            pipe = self.pipeline("template clause", T.RIGHT)
        del tok
        return TemplateNode(name_tok.pos, name_tok.line, name, pipe)

    def block_control(self) -> TemplateNode:
        context = "block clause"
        name_tok = self.next_non_space()
        if name_tok.typ not in (T.STRING, T.RAW_STRING):
            self.unexpected(name_tok, context)
        name = self.unquote(name_tok)
        pipe = None
        if self.next_non_space().typ is not T.RIGHT:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.add_tree(name, body)
        return TemplateNode(name_tok.pos, name_tok.line, name, pipe)

    def pipeline(self, context: str, end: T) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        while True:
            v = self.peek_non_space()
            if v.typ is not T.VARIABLE:
                break
            start = self.i
            self.next_non_space()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ is T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.typ is T.COMMA:
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT, T.RPAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            del after
            self.i = start
            break
        while True:
            tok = self.next_non_space()
            if tok.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ is T.SPACE:
                continue
            if tok.typ in (T.RIGHT, T.RPAREN):
                self.backup()
            elif tok.typ is not T.PIPE:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            fields = []
            pos = self.peek().pos
            while self.peek().typ is T.FIELD:
                fields.append(self.next().val[1:])
            # NB: Go positions a chained field at its first trailing field, not at its start.
            if isinstance(node, FieldNode):
                return FieldNode(pos, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(pos, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {go_q(str(node))}")
            return ChainNode(pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is T.IDENT:
            if tok.val not in self.funcs:
                self.errorf(f"function {go_q(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if typ is T.DOT:
            return DotNode(tok.pos)
        if typ is T.NIL:
            return NilNode(tok.pos)
        if typ is T.VARIABLE:
            if tok.val not in self.vars:
                self.errorf(f"undefined variable {go_q(tok.val)}")
            return VariableNode(tok.pos, [tok.val])
        if typ is T.FIELD:
            return FieldNode(tok.pos, [tok.val[1:]])
        if typ is T.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if typ is T.NUMBER:
            try:
                return NumberNode(tok.pos, tok.val, _number(tok.val))
            except ValueError as exc:
                self.errorf(str(exc))
        if typ is T.CHAR:
            try:
                ch = unquote('"' + tok.val[1:-1] + '"') if tok.val != "'\"'" else '"'
            except (ValueError, SyntaxError):
                ch = ""
            if len(ch) != 1:
                self.errorf(f"malformed character constant: {tok.val}")
            return NumberNode(tok.pos, tok.val, ord(ch))
        if typ is T.LPAREN:
            return self.pipeline("parenthesized pipeline", T.RPAREN)
        if typ in (T.STRING, T.RAW_STRING):
            return StringNode(tok.pos, tok.val, self.unquote(tok))
        self.backup()
        return None


def _is_empty(node: ListNode) -> bool:
    return all(isinstance(n, TextNode) and not n.text.strip() for n in node.nodes)


def parse(name: str, text: str, funcs: set[str]) -> dict[str, Tree]:
    """Parses template text; returns the trees by name (the main one under `name`).

    Raises:
        TemplateParseError: with Go's message, "template: NAME:LINE: reason".
    """
    return _Parser(name, text, funcs).parse()
