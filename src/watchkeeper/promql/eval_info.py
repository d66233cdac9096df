"""The experimental `info()` function: series enriched with the data labels of info series.

`info(v, {selector})` selects info series (`target_info` unless the selector names others
with `__name__` matchers) whose identifying labels (`instance`, `job`) equal those of the
series of `v`, and adds their data labels, step by step with the lookback, as Prometheus 3.5
does. Its quirks are kept: a selector with several `__name__` matchers fails as 3.5 does, a
series is left alone when any `__name__` matcher matches its name, and labels an info series
shares with the base series count as no match. Unlike 3.5, base and info series are matched
by their labels, not by their position in the step's vector (a 3.5 bug, fixed in 3.7).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import Matcher, MatchType, quote_regex
from watchkeeper.model.value import stale_mask
from watchkeeper.promql import ast
from watchkeeper.promql.errors import EvaluationError
from watchkeeper.promql.eval_select import at_times, latest_samples, select
from watchkeeper.promql.eval_types import (
    DUPLICATE_LABELSET,
    I64,
    Bool,
    EvalContext,
    VectorV,
)

TARGET_INFO = "target_info"
"""The info metric `info()` reads when its selector names none."""

IDENTIFYING_LABELS = ("instance", "job")
"""The labels that join a series to its info series (hard-coded in Prometheus too)."""

TIME_DEPENDENT_FUNCTIONS = frozenset(
    {
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute",
        "month", "year", "predict_linear", "time", "timestamp",
    }
)  # fmt: skip
"""Functions that keep a call from being step-invariant (Prometheus's AtModifierUnsafeFunctions)."""

NIL_DEREFERENCE = (
    "unexpected error: runtime error: invalid memory address or nil pointer dereference"
)
"""What Prometheus 3.5 answers when the info selector has several `__name__` matchers."""

_NO_SAMPLE = np.iinfo(np.int64).min

Identity = tuple[str, str]
"""The values of the identifying labels ("" where a series lacks one)."""


@dataclass(frozen=True, slots=True)
class _InfoSelector:
    """The second argument of `info()`: which info metrics, and which data labels."""

    name_matchers: tuple[Matcher, ...]
    """Matchers on `__name__`; a base series whose name any of them matches is not enriched."""
    matchers: tuple[Matcher, ...]
    """Every matcher of the selector, as given."""

    @classmethod
    def of(cls, call: ast.Call) -> _InfoSelector:
        if len(call.args) < 2:
            return cls((Matcher(MatchType.EQUAL, METRIC_NAME, TARGET_INFO),), ())
        sel = ast.unwrap_parens(call.args[1])
        if not isinstance(sel, ast.VectorSelector):
            raise EvaluationError("info(): the second argument must be a label selector")
        names = tuple(m for m in sel.matchers if m.name == METRIC_NAME)
        return cls(names, sel.matchers)


@dataclass(slots=True)
class _Piece:
    """One base series under one combination of info series: output labels and steps."""

    labels: Labels
    row: int
    mask: Bool


def eval_info(call: ast.Call, base: VectorV, ctx: EvalContext) -> VectorV:
    """Evaluates `info(v, [selector])` given v, the evaluated first argument.

    Raises:
        EvaluationError: on two info series with the same identity and sample time, on data
            labels that conflict between info metrics, on two outputs with equal labels, and
            on a selector with several `__name__` matchers (as Prometheus 3.5 fails on it).
    """
    if ctx.n_steps > 1 and _step_invariant(call):
        # NB: Prometheus evaluates a step-invariant call once, at the first step, and repeats
        # the result: info series are then looked up at that step only.
        first = VectorV(base.labels, base.values[:, :1], base.present[:, :1], base.drop_name)
        once = _enrich(call, first.nonempty(), ctx.sub(ctx.steps[:1]))
        k = ctx.n_steps
        return VectorV(
            once.labels,
            np.repeat(once.values, k, axis=1),
            np.repeat(once.present, k, axis=1),
            once.drop_name,
        )
    return _enrich(call, base, ctx)


def _enrich(call: ast.Call, base: VectorV, ctx: EvalContext) -> VectorV:
    k = ctx.n_steps
    if not len(base.labels):
        return VectorV.empty(k)
    selector = _InfoSelector.of(call)
    ignored = [
        any(m.matches(lb.get(METRIC_NAME)) for m in selector.name_matchers) for lb in base.labels
    ]
    id_values: dict[str, set[str]] = {}
    for lb, skip in zip(base.labels, ignored, strict=True):
        if not skip:
            for name in IDENTIFYING_LABELS:
                if value := lb.get(name):
                    id_values.setdefault(name, set()).add(value)
    # The data label matchers: all of the selector's, but once info series are fetched the
    # `__name__` ones are spent (Prometheus deletes them from its map while fetching).
    data_matchers = list(selector.matchers)
    infos = _InfoSeries.empty(k)
    if id_values:
        if len(selector.name_matchers) > 1:
            raise EvaluationError(NIL_DEREFERENCE)
        data_matchers = [m for m in selector.matchers if m.name != METRIC_NAME]
        infos = _fetch_info_series(call, selector, id_values, ctx)
    data_names = frozenset(m.name for m in data_matchers)
    needs_match = any(not m.matches("") for m in data_matchers)
    base_any: Bool = np.any(base.present, axis=0)

    winners = infos.winners()
    pieces: list[_Piece] = []
    conflicts: list[tuple[Bool, str]] = []
    groups: dict[Identity, list[int]] = {}
    for row, (lb, skip) in enumerate(zip(base.labels, ignored, strict=True)):
        if skip:
            pieces.append(_Piece(lb, row, base.present[row]))
        else:
            groups.setdefault(_identity(lb), []).append(row)
    for identity, rows in groups.items():
        for combo, steps in _combinations(winners.get(identity), k):
            sources = [infos.labels[i] for i in combo if i >= 0]
            for row in rows:
                mask = base.present[row] & steps
                if not mask.any():
                    continue
                lb = base.labels[row]
                added, conflict = _data_labels(lb, sources, data_names)
                if conflict:
                    conflicts.append((mask, conflict))
                    continue
                if not added and needs_match:
                    continue
                pieces.append(_Piece(lb.with_mapping(added) if added else lb, row, mask))
    _raise_first_error(infos.duplicates, conflicts, pieces, base_any)
    return _assemble(pieces, base, k)


def _identity(lb: Labels) -> Identity:
    return lb.get(IDENTIFYING_LABELS[0]), lb.get(IDENTIFYING_LABELS[1])


def _data_labels(
    base: Labels, sources: list[Labels], data_names: frozenset[str]
) -> tuple[dict[str, str], str]:
    """The labels the info series add to a base series, and the first conflicting name ("")."""
    added: dict[str, str] = {}
    for info in sources:
        for name, value in info.pairs:
            if name == METRIC_NAME or (data_names and name not in data_names):
                continue
            if added.get(name, value) != value:
                return added, name
            if not base.has(name):
                added[name] = value
    return added, ""


def _combinations(winners: list[I64] | None, k: int) -> Iterator[tuple[tuple[int, ...], Bool]]:
    """Each run of steps with the same winning info rows (one per info metric), and its steps.

    Info series change rarely, so there are few runs; a combination that comes back later
    is a new run, whose output merges with the first by labels.
    """
    if not winners:
        yield (), np.ones(k, dtype=np.bool_)
        return
    grid = np.stack(winners)
    bounds = [0, *(np.flatnonzero((grid[:, 1:] != grid[:, :-1]).any(axis=0)) + 1).tolist(), k]
    for start, stop in itertools.pairwise(bounds):
        steps = np.zeros(k, dtype=np.bool_)
        steps[start:stop] = True
        yield tuple(grid[:, start].tolist()), steps


@dataclass(slots=True)
class _InfoSeries:
    """The fetched info series at every step: presence and original sample times."""

    labels: list[Labels]
    present: Bool
    sample_ts: I64
    duplicates: list[tuple[Bool, str]]
    """Steps at which two info series of one metric and identity have samples of the same
    time, with the metric's name."""
    groups: dict[tuple[str, Identity], list[int]]

    @classmethod
    def empty(cls, k: int) -> _InfoSeries:
        return cls(
            [],
            np.zeros((0, k), dtype=np.bool_),
            np.zeros((0, k), dtype=np.int64),
            [],
            {},
        )

    def winners(self) -> dict[Identity, list[I64]]:
        """Per identity, per info metric: the row of the newest sample at each step (-1: none).

        As in Prometheus, the newest sample wins when several series of one metric and
        identity are in the lookback window (an info series whose labels changed).
        """
        out: dict[Identity, list[I64]] = {}
        for (_, identity), rows in self.groups.items():
            ts = np.where(self.present[rows], self.sample_ts[rows], _NO_SAMPLE)
            best = np.asarray(rows, dtype=np.int64)[np.argmax(ts, axis=0)]
            best[~self.present[rows].any(axis=0)] = -1
            out.setdefault(identity, []).append(best)
        return out


def _fetch_info_series(
    call: ast.Call, selector: _InfoSelector, id_values: dict[str, set[str]], ctx: EvalContext
) -> _InfoSeries:
    """Selects the info series for the identities of the base series, over the query's steps."""
    matchers: list[Matcher] = []
    if not any(m.name == METRIC_NAME for m in selector.matchers):
        matchers.append(Matcher(MatchType.EQUAL, METRIC_NAME, TARGET_INFO))
    for name in sorted(id_values):
        pattern = "|".join(quote_regex(v) for v in sorted(id_values[name]))
        matchers.append(Matcher(MatchType.REGEX, name, pattern))
    matchers.extend(selector.matchers)
    mint, maxt = _info_window(call.args[0], ctx)
    ss = select(ctx, ast.VectorSelector("", tuple(matchers)), mint, maxt, range_ms=0, func="info")
    k = ctx.n_steps
    if not len(ss.labels) or not len(ss.values):
        return _InfoSeries.empty(k)
    idx, present = latest_samples(ss.timestamps_ms, ss.offsets, ctx.steps, ctx.lookback_ms)
    present &= ~stale_mask(ss.values[idx])
    ctx.add_samples(present.sum(axis=0))
    ctx.count_samples(int(present.sum()))
    keep = np.flatnonzero(present.any(axis=1))
    labels = [ss.labels[i] for i in keep.tolist()]
    present = present[keep]
    sample_ts = ss.timestamps_ms[idx[keep]]
    groups: dict[tuple[str, Identity], list[int]] = {}
    for row, lb in enumerate(labels):
        groups.setdefault((lb.get(METRIC_NAME), _identity(lb)), []).append(row)
    duplicates: list[tuple[Bool, str]] = []
    for (name, _), rows in groups.items():
        if len(rows) < 2:
            continue
        # Prometheus walks the series in order, keeping the newest sample so far; a sample as
        # old as the one kept is a conflict.
        ts = np.where(present[rows], sample_ts[rows], _NO_SAMPLE)
        kept = np.maximum.accumulate(ts, axis=0)
        tie = (ts[1:] == kept[:-1]) & present[rows][1:]
        if tie.any():
            duplicates.append((tie.any(axis=0), name))
    return _InfoSeries(labels, present, sample_ts, duplicates, groups)


def _info_window(expr: ast.Expr, ctx: EvalContext) -> tuple[int, int]:
    """The time range info series are read from, as Prometheus's infoSelectHints computes it.

    It follows the offset and `@` of the first selector in the first argument, while the
    samples are still looked up at the steps themselves.
    """
    start, end = ctx.start_ms, ctx.end_ms
    offset = 0
    sel = _first_selector(expr)
    if sel is not None:
        offset = sel.offset_ms
        if sel.at is not None:
            start = end = int(at_times(ctx, sel.at, 0)[0])
    return start - ctx.lookback_ms + 1 - offset, end - offset


def _first_selector(expr: ast.Expr) -> ast.VectorSelector | None:
    """The first instant selector depth-first, an aggregation's operand before its parameter."""
    if isinstance(expr, ast.VectorSelector):
        return expr
    if isinstance(expr, ast.AggregateExpr):
        kids: tuple[ast.Expr, ...] = (expr.expr,) if expr.param is None else (expr.expr, expr.param)
    else:
        kids = ast.children(expr)
    for kid in kids:
        found = _first_selector(kid)
        if found is not None:
            return found
    return None


def _step_invariant(expr: ast.Expr) -> bool:
    """Whether Prometheus evaluates the node once per query (its PreprocessExpr rules)."""
    if isinstance(expr, ast.VectorSelector):
        return expr.at is not None
    if isinstance(expr, ast.MatrixSelector):
        return expr.vector.at is not None
    if isinstance(expr, ast.SubqueryExpr):
        return expr.at is not None
    if isinstance(expr, ast.NumberLiteral | ast.StringLiteral):
        return True
    if isinstance(expr, ast.AggregateExpr):
        return _step_invariant(expr.expr)
    if isinstance(expr, ast.Call):
        results = [_step_invariant(a) for a in expr.args]
        return expr.func not in TIME_DEPENDENT_FUNCTIONS and all(results)
    return all(_step_invariant(kid) for kid in ast.children(expr))


def _raise_first_error(
    duplicates: list[tuple[Bool, str]],
    conflicts: list[tuple[Bool, str]],
    pieces: list[_Piece],
    base_any: Bool,
) -> None:
    """Raises the error Prometheus meets first, walking the steps in order.

    At one step it checks duplicate info samples (only where there is a base sample), then
    conflicting data labels, then outputs with equal labels.
    """
    k = len(base_any)
    dup_steps = np.zeros(k, dtype=np.bool_)
    for mask, _ in duplicates:
        dup_steps |= mask
    dup_steps &= base_any
    conflict_steps = np.zeros(k, dtype=np.bool_)
    for mask, _ in conflicts:
        conflict_steps |= mask
    same_steps = np.zeros(k, dtype=np.bool_)
    by_labels: dict[Labels, list[int]] = {}
    for i, piece in enumerate(pieces):
        by_labels.setdefault(piece.labels, []).append(i)
    for members in by_labels.values():
        if len(members) > 1:
            same_steps |= np.stack([pieces[i].mask for i in members]).sum(axis=0) > 1
    bad = dup_steps | conflict_steps | same_steps
    if not bad.any():
        return
    j = int(np.argmax(bad))
    if dup_steps[j]:
        name = next(name for mask, name in duplicates if mask[j])
        raise EvaluationError(f"found duplicate series for info metric {name}")
    if conflict_steps[j]:
        name = next(name for mask, name in conflicts if mask[j])
        raise EvaluationError(f"conflicting label: {name}")
    raise EvaluationError(DUPLICATE_LABELSET)


def _assemble(pieces: list[_Piece], base: VectorV, k: int) -> VectorV:
    """One output series per label set, with the base values at the steps of its pieces."""
    out_rows: dict[Labels, int] = {}
    for piece in pieces:
        out_rows.setdefault(piece.labels, len(out_rows))
    values = np.zeros((len(out_rows), k))
    present = np.zeros((len(out_rows), k), dtype=np.bool_)
    for piece in pieces:
        o = out_rows[piece.labels]
        values[o, piece.mask] = base.values[piece.row, piece.mask]
        present[o] |= piece.mask
    # NB: Prometheus 3.5 drops the delayed name removal flag here: names survive info().
    return VectorV(list(out_rows), values, present, np.zeros(len(out_rows), dtype=np.bool_))


__all__ = ["IDENTIFYING_LABELS", "TARGET_INFO", "eval_info"]
