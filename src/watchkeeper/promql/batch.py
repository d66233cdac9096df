"""Evaluating many same-shaped expressions as one query.

Rule files generated per shard, tenant or service hold hundreds of expressions that differ
only in one selector's label values, such as `sum by (job) (rate(x{shard="7"}[5m]))` for
every shard. Evaluated one by one, each pays the engine's fixed cost per query; evaluated
as one, the engine works on all their series at once:

    sum by (job, shard) (rate(x{shard=~"0|1|...|999"}[5m]))

and each expression's result is the part of the batched result with its own values of
the varying labels (those labels removed again where the expression would have
aggregated them away).

This is exact only for expressions where every series is computed independently of series
with other values of the varying labels. `plan_batches` therefore accepts only expressions
with exactly one selector, built from per-series functions, aggregations (which get the
varying labels added to their grouping) and arithmetic or comparisons with constants. Any
other expression is left to be evaluated alone.

Example:
    >>> from watchkeeper.promql.parser import format_expr, parse_expr
    >>> exprs = [parse_expr(f'sum by (job) (rate(x{{shard="{i}"}}[5m]))') for i in range(3)]
    >>> [b] = plan_batches(exprs)
    >>> print(format_expr(b.expr))
    sum by (job, shard) (rate(x{shard=~"0|1|2"}[5m]))
    >>> b.keys, b.dropped
    ((('0',), ('1',), ('2',)), ('shard',))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import Matcher, MatchType, quote_regex
from watchkeeper.promql import ast
from watchkeeper.promql.functions import INSTANT_FUNCTIONS
from watchkeeper.promql.kernels import RANGE_FUNCTIONS

__all__ = ["QueryBatch", "plan_batches", "split_vector"]

_PER_SERIES_FUNCTIONS = frozenset(RANGE_FUNCTIONS) | (
    frozenset(INSTANT_FUNCTIONS)
    - {
        # Look at the whole vector or make series from nothing.
        "vector",
        "scalar",
        "time",
        "pi",
        "absent",
        "info",
        # Order matters to them; rules do not need them.
        "sort",
        "sort_desc",
        "sort_by_label",
        "sort_by_label_desc",
    }
)
"""Functions whose output series depend only on their own input series."""

_WRITING_FUNCTIONS = {"label_replace": 1, "label_join": 1}
"""Functions that write a label, and the argument naming it."""

_MERGING_FUNCTIONS = {"histogram_quantile": "le", "histogram_fraction": "le"}
"""Functions that merge series differing in one label, and that label."""

_BATCHABLE_AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk"}
    | {"quantile", "count_values"}
)

_SELECTING_AGGREGATIONS = frozenset({"topk", "bottomk"})
"""Aggregations that pick input series, labels and all, rather than make new ones."""

_PLACEHOLDER = "\x00"
"""Stands for a candidate label value in an expression's shape (cannot occur in PromQL)."""


@dataclass(frozen=True, slots=True)
class QueryBatch:
    """Expressions that are evaluated together as `expr`.

    `members[i]` is the position (in the list given to `plan_batches`) of an expression
    whose varying labels `labels` have the values `keys[i]`; its result is the part of the
    batched result with those values, minus the labels in `dropped`.
    """

    expr: ast.Expr
    metric: str
    """The metric the single selector reads (callers keep batches away from metrics that
    the batched expressions themselves write)."""
    labels: tuple[str, ...]
    members: tuple[int, ...]
    keys: tuple[tuple[str, ...], ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Shape:
    """An expression with its selector's equality-matcher values taken out."""

    template: ast.Expr
    metric: str
    names: tuple[str, ...]


def plan_batches(exprs: Sequence[ast.Expr | None], *, min_size: int = 2) -> list[QueryBatch]:
    """Groups expressions that differ only in one selector's label values into batches.

    `None` entries (expressions that failed to parse) are skipped. Expressions that cannot
    be batched, or whose shape has fewer than `min_size` distinct label values, are in no
    batch.
    """
    by_shape: dict[_Shape, list[tuple[int, tuple[str, ...]]]] = {}
    for i, expr in enumerate(exprs):
        if expr is None:
            continue
        found = _shape(expr)
        if found is not None:
            shape, values = found
            by_shape.setdefault(shape, []).append((i, values))
    batches = []
    for shape, members in by_shape.items():
        distinct = {values for _, values in members}
        if len(distinct) < max(min_size, 2):
            continue
        varying = [j for j in range(len(shape.names)) if len({v[j] for v in distinct}) > 1]
        batch = _batch(shape, members, varying)
        if batch is not None:
            batches.append(batch)
    return batches


def split_vector(
    batch: QueryBatch, labels: Sequence[Labels], values: npt.NDArray[np.float64]
) -> list[tuple[list[Labels], npt.NDArray[np.float64]]]:
    """Cuts a batched instant vector into each member's result, in `batch.members` order."""
    names = batch.labels
    rows: dict[tuple[str, ...], list[int]] = {}
    for i, lbls in enumerate(labels):
        rows.setdefault(tuple(lbls.get(n) for n in names), []).append(i)
    dropped = batch.dropped
    out: list[tuple[list[Labels], npt.NDArray[np.float64]]] = []
    cut: dict[tuple[str, ...], tuple[list[Labels], npt.NDArray[np.float64]]] = {}
    for key in batch.keys:
        part = cut.get(key)
        if part is None:
            picked = rows.get(key, [])
            part_labels = [labels[i] for i in picked]
            if dropped:
                part_labels = [lbls.without(*dropped) for lbls in part_labels]
            part = cut[key] = (part_labels, values[picked])
        out.append(part)
    return out


def _shape(expr: ast.Expr) -> tuple[_Shape, tuple[str, ...]] | None:
    """The expression's shape and its candidate values, or None when it cannot batch."""
    selectors = [n for n in ast.walk(expr) if isinstance(n, ast.VectorSelector)]
    if len(selectors) != 1 or not _batchable(expr):
        return None
    sel = selectors[0]
    metric = next(
        (m.value for m in sel.matchers if m.name == METRIC_NAME and m.type is MatchType.EQUAL),
        None,
    )
    if not metric:
        return None
    names: list[str] = []
    values: list[str] = []
    masked: list[Matcher] = []
    for m in sel.matchers:
        if m.type is MatchType.EQUAL and m.name != METRIC_NAME and m.value:
            names.append(m.name)
            values.append(m.value)
            masked.append(Matcher(MatchType.EQUAL, m.name, _PLACEHOLDER))
        else:
            masked.append(m)
    if not names or len(set(names)) != len(names):
        return None
    template = _replace_selector(expr, dataclasses.replace(sel, matchers=tuple(masked)), ())
    return _Shape(template, metric, tuple(names)), tuple(values)


def _batch(
    shape: _Shape, members: list[tuple[int, tuple[str, ...]]], varying: list[int]
) -> QueryBatch | None:
    """The batch of a shape's members, or None when the shape rewrites a varying label."""
    names = tuple(shape.names[j] for j in varying)
    if _rewritten_labels(shape.template) & set(names):
        return None
    first = members[0][1]
    sel = next(n for n in ast.walk(shape.template) if isinstance(n, ast.VectorSelector))
    matchers: list[Matcher] = []
    for m in sel.matchers:
        if m.value != _PLACEHOLDER or m.type is not MatchType.EQUAL:
            matchers.append(m)
            continue
        j = shape.names.index(m.name)
        if j in varying:
            distinct = sorted({values[j] for _, values in members})
            matchers.append(Matcher(MatchType.REGEX, m.name, "|".join(map(quote_regex, distinct))))
        else:
            matchers.append(Matcher(MatchType.EQUAL, m.name, first[j]))
    batched_sel = dataclasses.replace(sel, matchers=tuple(matchers))
    expr = _replace_selector(shape.template, batched_sel, names)
    kept = _kept(shape.template, frozenset(names))
    return QueryBatch(
        expr=expr,
        metric=shape.metric,
        labels=names,
        members=tuple(i for i, _ in members),
        keys=tuple(tuple(values[j] for j in varying) for _, values in members),
        dropped=tuple(n for n in names if n not in kept),
    )


def _is_constant(expr: ast.Expr) -> bool:
    """True for number and string literals and arithmetic of them."""
    node = ast.unwrap_parens(expr)
    if isinstance(node, ast.NumberLiteral | ast.StringLiteral):
        return True
    if isinstance(node, ast.UnaryExpr):
        return _is_constant(node.expr)
    if isinstance(node, ast.BinaryExpr):
        return _is_constant(node.lhs) and _is_constant(node.rhs)
    return False


def _batchable(expr: ast.Expr) -> bool:
    """True when every series of the result depends only on input series like it."""
    if isinstance(expr, ast.VectorSelector | ast.NumberLiteral | ast.StringLiteral):
        return True
    if isinstance(expr, ast.MatrixSelector | ast.SubqueryExpr | ast.ParenExpr | ast.UnaryExpr):
        return all(_batchable(c) for c in ast.children(expr))
    if isinstance(expr, ast.Call):
        if expr.func not in _PER_SERIES_FUNCTIONS:
            return False
        vector_args = [a for a in expr.args if not _is_constant(a)]
        return len(vector_args) <= 1 and all(_batchable(a) for a in vector_args)
    if isinstance(expr, ast.AggregateExpr):
        if expr.op not in _BATCHABLE_AGGREGATIONS:
            return False
        if expr.param is not None and not _is_constant(expr.param):
            return False
        return _batchable(expr.expr)
    # A binary expression: only with a constant on one side.
    if expr.op in ast.SET_OPS or expr.matching is not None:
        return False
    if _is_constant(expr.lhs):
        return _batchable(expr.rhs)
    return _is_constant(expr.rhs) and _batchable(expr.lhs)


def _replace_selector(
    expr: ast.Expr, selector: ast.VectorSelector, grouping: tuple[str, ...]
) -> ast.Expr:
    """Puts `selector` in place of the expression's one selector.

    Aggregations keep `grouping`: it is added to `by` and taken out of `without`.
    """
    if isinstance(expr, ast.VectorSelector):
        return selector
    if isinstance(expr, ast.MatrixSelector):
        return dataclasses.replace(expr, vector=selector)
    if isinstance(expr, ast.SubqueryExpr | ast.ParenExpr | ast.UnaryExpr):
        return dataclasses.replace(expr, expr=_replace_selector(expr.expr, selector, grouping))
    if isinstance(expr, ast.Call):
        args = tuple(
            a if _is_constant(a) else _replace_selector(a, selector, grouping) for a in expr.args
        )
        return dataclasses.replace(expr, args=args)
    if isinstance(expr, ast.AggregateExpr):
        inner = _replace_selector(expr.expr, selector, grouping)
        if expr.without:
            by = tuple(g for g in expr.grouping if g not in grouping)
            return dataclasses.replace(expr, expr=inner, grouping=by)
        by = expr.grouping + tuple(g for g in grouping if g not in expr.grouping)
        return dataclasses.replace(expr, expr=inner, grouping=by, has_grouping=True)
    if isinstance(expr, ast.BinaryExpr):
        if _is_constant(expr.lhs):
            return dataclasses.replace(expr, rhs=_replace_selector(expr.rhs, selector, grouping))
        return dataclasses.replace(expr, lhs=_replace_selector(expr.lhs, selector, grouping))
    return expr


def _rewritten_labels(expr: ast.Expr) -> set[str]:
    """Labels the expression writes or merges across (a batch must not vary them)."""
    out: set[str] = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            position = _WRITING_FUNCTIONS.get(node.func)
            if position is not None and len(node.args) > position:
                written = ast.unwrap_parens(node.args[position])
                out.add(written.value if isinstance(written, ast.StringLiteral) else "")
            merged = _MERGING_FUNCTIONS.get(node.func)
            if merged is not None:
                out.add(merged)
        elif isinstance(node, ast.AggregateExpr) and node.op == "count_values":
            param = ast.unwrap_parens(node.param) if node.param is not None else None
            out.add(param.value if isinstance(param, ast.StringLiteral) else "")
    return out


def _kept(expr: ast.Expr, names: frozenset[str]) -> frozenset[str]:
    """Which of `names` the original (unbatched) expression keeps in its output labels."""
    if isinstance(expr, ast.VectorSelector):
        return names
    if isinstance(expr, ast.Call):
        arg = next((a for a in expr.args if not _is_constant(a)), None)
        return names if arg is None else _kept(arg, names)
    if isinstance(expr, ast.AggregateExpr):
        inner = _kept(expr.expr, names)
        if expr.op in _SELECTING_AGGREGATIONS:
            return inner  # they return their input series whole
        # The batched grouping already holds every name: the original kept those it named
        # in `by`, or did not name in `without`.
        original = set(expr.grouping)
        return frozenset(n for n in inner if (n in original) != expr.without)
    if isinstance(expr, ast.BinaryExpr):
        return _kept(expr.rhs if _is_constant(expr.lhs) else expr.lhs, names)
    children = ast.children(expr)
    return _kept(children[0], names) if children else names
