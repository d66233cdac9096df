"""The PromQL abstract syntax tree: frozen dataclasses, independent of any parser library.

Durations are integer milliseconds. Every node is hashable and compares by value, so
`parse_expr(format_expr(e)) == e` can be checked directly. Each node also records `pos`, where
it starts in the parsed text (for annotation positions); it takes no part in equality.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from watchkeeper.model.matchers import Matcher


class ExprType(enum.Enum):
    """The static type of an expression, named as Prometheus names it in errors."""

    SCALAR = "scalar"
    STRING = "string"
    VECTOR = "instant vector"
    MATRIX = "range vector"


class AtKind(enum.Enum):
    """What an `@` modifier pins evaluation to."""

    TIME = "time"
    START = "start"
    END = "end"


@dataclass(frozen=True, slots=True)
class At:
    """An `@` modifier: a fixed time (ms) or the query's start()/end()."""

    kind: AtKind
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class NumberLiteral:
    """A float literal (durations used as numbers are seconds)."""

    value: float
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumberLiteral):
            return NotImplemented
        return self.value == other.value or (
            self.value != self.value and other.value != other.value
        )

    def __hash__(self) -> int:
        return hash(("num", 0.0 if self.value != self.value else self.value))


@dataclass(frozen=True, slots=True)
class StringLiteral:
    """A string literal."""

    value: str
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class VectorSelector:
    """An instant vector selector; `name` is the metric name when written outside braces."""

    name: str
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    at: At | None = None
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class MatrixSelector:
    """A range vector selector: `vector[range]`."""

    vector: VectorSelector
    range_ms: int
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class SubqueryExpr:
    """A subquery `expr[range:step]`; step_ms 0 means the engine's default step."""

    expr: Expr
    range_ms: int
    step_ms: int = 0
    offset_ms: int = 0
    at: At | None = None
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class Call:
    """A function call."""

    func: str
    args: tuple[Expr, ...]
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class AggregateExpr:
    """An aggregation such as `sum by (job) (x)` or `topk(3, x)`."""

    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False
    has_grouping: bool = False
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


class Cardinality(enum.Enum):
    """Vector matching cardinality."""

    ONE_TO_ONE = "one-to-one"
    MANY_TO_ONE = "many-to-one"
    ONE_TO_MANY = "one-to-many"
    MANY_TO_MANY = "many-to-many"


@dataclass(frozen=True, slots=True)
class VectorMatching:
    """How the two sides of a vector binary operation are matched."""

    card: Cardinality = Cardinality.ONE_TO_ONE
    labels: tuple[str, ...] = ()
    on: bool = False
    include: tuple[str, ...] = ()
    explicit: bool = False
    """True when `on`/`ignoring` was written (so `ignoring()` prints)."""


@dataclass(frozen=True, slots=True)
class BinaryExpr:
    """A binary operation; `matching` is set when both sides are instant vectors."""

    op: str
    lhs: Expr
    rhs: Expr
    matching: VectorMatching | None = None
    return_bool: bool = False
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class UnaryExpr:
    """Unary minus or plus."""

    op: str
    expr: Expr
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


@dataclass(frozen=True, slots=True)
class ParenExpr:
    """A parenthesised expression."""

    expr: Expr
    pos: int = field(default=-1, compare=False, repr=False)
    """Where the node starts in the parsed text (a str index; -1 when not parsed)."""


Expr = (
    NumberLiteral
    | StringLiteral
    | VectorSelector
    | MatrixSelector
    | SubqueryExpr
    | Call
    | AggregateExpr
    | BinaryExpr
    | UnaryExpr
    | ParenExpr
)
"""Any PromQL expression node."""

COMPARISON_OPS = frozenset({"==", "!=", ">", "<", ">=", "<="})
"""The comparison operators (they filter unless `bool` is given)."""

SET_OPS = frozenset({"and", "or", "unless"})
"""The set operators (many-to-many by nature)."""


def children(expr: Expr) -> tuple[Expr, ...]:
    """Returns the direct sub-expressions of a node."""
    if isinstance(expr, MatrixSelector):
        return (expr.vector,)
    if isinstance(expr, SubqueryExpr | UnaryExpr | ParenExpr):
        return (expr.expr,)
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, AggregateExpr):
        return (expr.expr,) if expr.param is None else (expr.param, expr.expr)
    if isinstance(expr, BinaryExpr):
        return (expr.lhs, expr.rhs)
    return ()


def walk(expr: Expr) -> list[Expr]:
    """Returns every node of the tree, parents before children."""
    out: list[Expr] = []
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(children(node)))
    return out


def unwrap_parens(expr: Expr) -> Expr:
    """Strips any number of enclosing parentheses."""
    while isinstance(expr, ParenExpr):
        expr = expr.expr
    return expr
