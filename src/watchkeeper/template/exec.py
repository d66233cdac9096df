"""Executing parsed templates with Go's text/template semantics and error messages."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from watchkeeper.template.errors import GoFuncError, TemplateExecError
from watchkeeper.template.gofmt import format_v, go_type
from watchkeeper.template.parse import (
    ActionNode,
    BoolNode,
    BranchNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    LoopControlNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    Tree,
    VariableNode,
)

MAX_EXEC_DEPTH: Final = 1000
"""Nesting limit of {{template}} calls (Go allows 100000; Python's stack allows less)."""


class _Missing:
    """Go's invalid reflect.Value: a missing map key; prints as "<no value>"."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Final = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def is_true(value: Any) -> bool:
    """Go's template truth: false for zero values, nil, empty collections and missing."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, complex, str)):
        return bool(value)
    if isinstance(value, (list, tuple, Mapping)):
        return len(value) > 0
    if isinstance(value, dt.timedelta):
        return bool(value)
    return True


@dataclass
class _State:
    name: str
    trees: Mapping[str, Tree]
    funcs: Mapping[str, Callable[..., Any]]
    missingkey: str
    out: list[str]
    vars: list[tuple[str, Any]]
    depth: int = 0
    node: Node | None = None
    tree: Tree | None = None


def _location(tree: Tree | None, node: Node | None) -> tuple[str, str]:
    if tree is None or node is None:
        return "", ""
    pos = getattr(node, "pos", 0)
    text = tree.text[:pos]
    nl = text.rfind("\n")
    col = pos if nl < 0 else pos - nl - 1
    line = 1 + text.count("\n")
    context = str(node).replace("%", "%%")
    return f"{tree.name}:{line}:{col}", context


class _Executor:
    """Runs one template tree against data."""

    def __init__(
        self,
        trees: Mapping[str, Tree],
        funcs: Mapping[str, Callable[..., Any]],
        *,
        missingkey: str = "default",
    ) -> None:
        self.trees = trees
        self.funcs = funcs
        self.missingkey = missingkey

    def execute(self, name: str, data: Any) -> str:
        """Executes the named template.

        Raises:
            TemplateExecError: with Go's message.
        """
        tree = self.trees.get(name)
        if tree is None:
            raise TemplateExecError(f'template: no template "{name}" associated with template')
        dot = MISSING if data is None else data
        s = _State(name, self.trees, self.funcs, self.missingkey, [], [("$", dot)], tree=tree)
        try:
            self.walk(s, dot, tree.root)
        except (_Break, _Continue):  # pragma: no cover - the parser rejects them outside range
            pass
        except RecursionError:
            self.errorf(s, f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        return "".join(s.out)

    def errorf(self, s: _State, msg: str) -> None:
        location, context = _location(s.tree, s.node)
        name = s.tree.name if s.tree is not None else s.name
        if not location:
            raise TemplateExecError(f"template: {name}: {msg}")
        if not context:
            raise TemplateExecError(f"template: {location}: {msg}")
        raise TemplateExecError(f'template: {location}: executing "{name}" at <{context}>: {msg}')

    # --- statements ---

    def walk(self, s: _State, dot: Any, node: Node) -> None:
        s.node = node
        if isinstance(node, TextNode):
            s.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(s, dot, n)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(s, dot, node.pipe)
            if not node.pipe.decl:
                s.node = node
                s.out.append(self.print_value(s, value))
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(s, dot, node)
            else:
                self.walk_if_or_with(s, dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(s, dot, node)
        elif isinstance(node, LoopControlNode):
            raise _Break if node.kind == "break" else _Continue
        else:  # pragma: no cover - the parser makes no other statements
            self.errorf(s, f"unknown node: {node}")

    def print_value(self, s: _State, value: Any) -> str:
        if value is MISSING:
            return "<no value>"
        if callable(value) and not hasattr(value, "__str__"):  # pragma: no cover
            self.errorf(s, f"can't print {s.node} of type func")
        return format_v(value)

    def walk_if_or_with(self, s: _State, dot: Any, node: BranchNode) -> None:
        mark = len(s.vars)
        value = self.eval_pipeline(s, dot, node.pipe)
        truth = is_true(value)
        if truth:
            self.walk(s, value if node.kind == "with" else dot, node.list)
        elif node.else_list is not None:
            self.walk(s, dot, node.else_list)
        del s.vars[mark:]

    def walk_range(self, s: _State, dot: Any, node: BranchNode) -> None:
        s.node = node
        mark = len(s.vars)
        value = self.eval_pipeline(s, dot, node.pipe)
        pairs: list[tuple[Any, Any]]
        if value is None or value is MISSING:
            pairs = []
        elif isinstance(value, Mapping):
            pairs = [(k, value[k]) for k in sorted(value, key=_key)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if node.pipe.decl and len(node.pipe.decl) > 1:
                s.node = node
                self.errorf(s, "can't use 2 variables when ranging over int")
            pairs = [(i, i) for i in range(value)]
        else:
            s.node = node
            self.errorf(s, f"range can't iterate over {format_v(value)}")
            raise AssertionError  # pragma: no cover
        if not pairs:
            del s.vars[mark:]
            if node.else_list is not None:
                self.walk(s, dot, node.else_list)
            return
        decl = node.pipe.decl
        for key, elem in pairs:
            if len(decl) == 1:
                s.vars[-1] = (decl[0].ident[0], elem)
            elif len(decl) == 2:
                s.vars[-2] = (decl[0].ident[0], key)
                s.vars[-1] = (decl[1].ident[0], elem)
            inner = len(s.vars)
            try:
                self.walk(s, elem, node.list)
            except _Break:
                del s.vars[inner:]
                break
            except _Continue:
                pass
            del s.vars[inner:]
        del s.vars[mark:]

    def walk_template(self, s: _State, dot: Any, node: TemplateNode) -> None:
        tree = s.trees.get(node.name)
        if tree is None:
            self.errorf(s, f'template: no template "{node.name}" associated with template')
            raise AssertionError  # pragma: no cover
        new_dot = MISSING if node.pipe is None else self.eval_pipeline(s, dot, node.pipe)
        if s.depth >= MAX_EXEC_DEPTH:
            self.errorf(s, f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        saved = (s.tree, s.vars, s.name)
        s.depth += 1
        s.tree = tree
        s.name = node.name
        s.vars = [("$", new_dot)]
        try:
            self.walk(s, new_dot, tree.root)
        finally:
            s.tree, s.vars, s.name = saved
            s.depth -= 1

    # --- expressions ---

    def eval_pipeline(self, s: _State, dot: Any, pipe: PipeNode) -> Any:
        s.node = pipe
        value: Any = MISSING
        final_set = False
        for cmd in pipe.cmds:
            value = self.eval_command(
                s, dot, cmd, final=value if final_set else MISSING, has_final=final_set
            )
            final_set = True
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(s, var.ident[0], value)
            else:
                s.vars.append((var.ident[0], value))
        return value

    def set_var(self, s: _State, name: str, value: Any) -> None:
        for i in range(len(s.vars) - 1, -1, -1):
            if s.vars[i][0] == name:
                s.vars[i] = (name, value)
                return
        self.errorf(s, f"undefined variable: {name}")

    def var_value(self, s: _State, name: str) -> Any:
        for i in range(len(s.vars) - 1, -1, -1):
            if s.vars[i][0] == name:
                return s.vars[i][1]
        self.errorf(s, f"undefined variable: {name}")
        raise AssertionError  # pragma: no cover

    def eval_command(
        self, s: _State, dot: Any, cmd: CommandNode, *, final: Any, has_final: bool
    ) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            s.node = first
            return self.eval_field_chain(
                s, dot, dot, first, first.ident, cmd.args, final=final, has_final=has_final
            )
        if isinstance(first, ChainNode):
            s.node = first
            return self.eval_chain(s, dot, first, cmd.args, final=final, has_final=has_final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(s, dot, first, cmd.args, final=final, has_final=has_final)
        if isinstance(first, PipeNode):
            self.not_a_function(s, cmd.args, has_final)
            return self.eval_pipeline_scoped(s, dot, first)
        if isinstance(first, VariableNode):
            s.node = first
            value = self.var_value(s, first.ident[0])
            if len(first.ident) == 1:
                self.not_a_function(s, cmd.args, has_final)
                return value
            return self.eval_field_chain(
                s, dot, value, first, first.ident[1:], cmd.args, final=final, has_final=has_final
            )
        s.node = first
        self.not_a_function(s, cmd.args, has_final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf(s, "nil is not a command")
        if isinstance(first, NumberNode):
            return first.value
        if isinstance(first, StringNode):
            return first.text
        self.errorf(s, f"can't evaluate command {first}")  # pragma: no cover
        raise AssertionError  # pragma: no cover

    def eval_pipeline_scoped(self, s: _State, dot: Any, pipe: PipeNode) -> Any:
        mark = len(s.vars)
        value = self.eval_pipeline(s, dot, pipe)
        del s.vars[mark:]
        return value

    def not_a_function(self, s: _State, args: list[Node], has_final: bool) -> None:
        if len(args) > 1 or has_final:
            self.errorf(s, f"can't give argument to non-function {args[0]}")

    def eval_chain(
        self,
        s: _State,
        dot: Any,
        chain: ChainNode,
        args: list[Node],
        *,
        final: Any,
        has_final: bool,
    ) -> Any:
        if not chain.field:  # pragma: no cover - the parser makes chains with fields
            self.errorf(s, "internal error: no fields in evalChainNode")
        if isinstance(chain.node, NilNode):
            s.node = chain
            self.errorf(s, f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(s, dot, chain.node)
        return self.eval_field_chain(
            s, dot, pipe, chain, chain.field, args, final=final, has_final=has_final
        )

    def eval_field_chain(  # noqa: PLR0917 - mirrors Go's evalFieldChain.
        self,
        s: _State,
        dot: Any,
        receiver: Any,
        node: Node,
        ident: list[str],
        args: list[Node],
        *,
        final: Any,
        has_final: bool,
    ) -> Any:
        n = len(ident)
        for i in range(n - 1):
            receiver = self.eval_field(
                s, dot, ident[i], node, [], final=MISSING, has_final=False, receiver=receiver
            )
        return self.eval_field(
            s, dot, ident[n - 1], node, args, final=final, has_final=has_final, receiver=receiver
        )

    def eval_field(
        self,
        s: _State,
        dot: Any,
        name: str,
        node: Node,
        args: list[Node],
        *,
        final: Any,
        has_final: bool,
        receiver: Any,
    ) -> Any:
        if receiver is MISSING or receiver is None:
            if receiver is None:
                self.errorf(s, f"nil pointer evaluating interface {{}}.{name}")
            self.errorf(s, f"nil data; no entry for key {_gq(name)}")
        if isinstance(receiver, Mapping):
            if len(args) > 1 or has_final:
                self.errorf(s, f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missingkey == "error":
                self.errorf(s, f"map has no entry for key {_gq(name)}")
            if self.missingkey == "zero":
                return _zero_of(receiver)
            return MISSING
        attr = getattr(receiver, name, MISSING) if not name.startswith("_") else MISSING
        if attr is MISSING or isinstance(receiver, (str, int, float, bool, list, tuple)):
            self.errorf(s, f"can't evaluate field {name} in type {go_type(receiver)}")
        if inspect.ismethod(attr) or inspect.isbuiltin(attr):
            call_args = [self.eval_arg(s, dot, a) for a in args[1:]]
            if has_final:
                call_args.append(final)
            return self.call(s, name, attr, call_args, node)
        if len(args) > 1 or has_final:
            self.errorf(s, f"{name} has arguments but cannot be invoked as function")
        return attr

    def eval_function(
        self,
        s: _State,
        dot: Any,
        ident: IdentifierNode,
        args: list[Node],
        *,
        final: Any,
        has_final: bool,
    ) -> Any:
        s.node = ident
        name = ident.ident
        fn = s.funcs.get(name)
        if fn is None:  # pragma: no cover - the parser checks function names
            self.errorf(s, f'"{name}" is not a defined function')
            raise AssertionError
        if name in ("and", "or"):
            value: Any = MISSING
            rest = list(args[1:])
            candidates: list[Any] = [lambda a=a: self.eval_arg(s, dot, a) for a in rest]
            if has_final:
                candidates.append(lambda: final)
            if not candidates:
                self.errorf(s, f"wrong number of args for {name}: want at least 1 got 0")
            for get in candidates:
                value = get()
                if is_true(value) == (name == "or"):
                    return value
            return value
        cmd: Node = ident if len(args) == 1 and args[0] is ident else self._cmd_of(args)
        self.check_arity(s, name, fn, len(args) - 1 + (1 if has_final else 0))
        call_args = [self.eval_arg(s, dot, a) for a in args[1:]]
        if has_final:
            call_args.append(final)
        return self.call(s, name, fn, call_args, cmd)

    @staticmethod
    def _cmd_of(args: list[Node]) -> CommandNode:
        return CommandNode(getattr(args[0], "pos", 0), list(args))

    def check_arity(self, s: _State, name: str, fn: Callable[..., Any], count: int) -> None:
        """Go checks the argument count before calling: "wrong number of args for ..."."""
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        params = list(sig.parameters.values())
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            fixed = [p for p in params if p.kind is not p.VAR_POSITIONAL]
            if count < len(fixed):
                self.errorf(
                    s, f"wrong number of args for {name}: want at least {len(fixed)} got {count}"
                )
            return
        required = [p for p in params if p.default is p.empty]
        if not len(required) <= count <= len(params):
            self.errorf(s, f"wrong number of args for {name}: want {len(params)} got {count}")

    def call(
        self, s: _State, name: str, fn: Callable[..., Any], args: list[Any], node: Node
    ) -> Any:
        args = [None if a is MISSING else a for a in args]
        try:
            return fn(*args)
        except GoFuncError as exc:
            s.node = node
            self.errorf(s, f"error calling {name}: {exc}")
        except TemplateExecError:
            raise
        except TypeError as exc:
            s.node = node
            self.errorf(s, f"error calling {name}: {exc}")
        except (ValueError, ArithmeticError, LookupError) as exc:
            s.node = node
            self.errorf(s, f"error calling {name}: {exc}")
        raise AssertionError  # pragma: no cover

    def eval_arg(self, s: _State, dot: Any, node: Node) -> Any:
        s.node = node
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, NilNode):
            return None
        if isinstance(node, FieldNode):
            return self.eval_field_chain(
                s, dot, dot, node, node.ident, [node], final=MISSING, has_final=False
            )
        if isinstance(node, VariableNode):
            value = self.var_value(s, node.ident[0])
            if len(node.ident) == 1:
                return value
            return self.eval_field_chain(
                s, dot, value, node, node.ident[1:], [node], final=MISSING, has_final=False
            )
        if isinstance(node, PipeNode):
            return self.eval_pipeline_scoped(s, dot, node)
        if isinstance(node, IdentifierNode):
            return self.eval_function(s, dot, node, [node], final=MISSING, has_final=False)
        if isinstance(node, ChainNode):
            return self.eval_chain(s, dot, node, [node], final=MISSING, has_final=False)
        if isinstance(node, BoolNode):
            return node.value
        if isinstance(node, NumberNode):
            return node.value
        if isinstance(node, StringNode):
            return node.text
        self.errorf(s, f"can't handle {node} for arg")  # pragma: no cover
        raise AssertionError  # pragma: no cover


def _zero_of(mapping: Mapping[Any, Any]) -> Any:
    """missingkey=zero: "" for string maps (labels), nil otherwise."""
    if all(isinstance(v, str) for v in mapping.values()):
        return ""
    return None


def _key(key: Any) -> tuple[int, Any]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    return (1, str(key))


def _gq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
