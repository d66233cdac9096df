"""The signatures of PromQL's functions: argument types, variadic arity, experimental flag.

Shared by the parser (type checks) and the engine (dispatch); the implementations live in
`functions.py` (instant-vector functions) and `kernels.py` (range functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from watchkeeper.promql.ast import ExprType

_V = ExprType.VECTOR
_M = ExprType.MATRIX
_S = ExprType.SCALAR
_STR = ExprType.STRING


@dataclass(frozen=True, slots=True)
class FunctionSignature:
    """One function: `variadic` 0 is exact, 1 makes the last argument optional, -1 repeats it."""

    name: str
    arg_types: tuple[ExprType, ...]
    return_type: ExprType
    variadic: int = 0
    experimental: bool = False


def _sig(
    name: str,
    args: tuple[ExprType, ...],
    ret: ExprType = _V,
    variadic: int = 0,
    experimental: bool = False,
) -> FunctionSignature:
    return FunctionSignature(name, args, ret, variadic, experimental)


_MATH = [
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "cos",
    "cosh",
    "deg",
    "exp",
    "floor",
    "ln",
    "log10",
    "log2",
    "rad",
    "sgn",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "sort",
    "sort_desc",
    "timestamp",
    "absent",
    "histogram_avg",
    "histogram_count",
    "histogram_sum",
    "histogram_stddev",
    "histogram_stdvar",
]
_OVER_TIME = [
    "absent_over_time",
    "avg_over_time",
    "changes",
    "count_over_time",
    "delta",
    "deriv",
    "idelta",
    "increase",
    "irate",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "present_over_time",
    "rate",
    "resets",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
]
_DATE = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
]

FUNCTIONS: Final[dict[str, FunctionSignature]] = {
    **{n: _sig(n, (_V,)) for n in _MATH},
    **{n: _sig(n, (_M,)) for n in _OVER_TIME},
    **{n: _sig(n, (_V,), variadic=1) for n in _DATE},
    **{
        n: _sig(n, (_M,), experimental=True)
        for n in ("mad_over_time", "ts_of_max_over_time", "ts_of_min_over_time")
    },
    "ts_of_last_over_time": _sig("ts_of_last_over_time", (_M,), experimental=True),
    "clamp": _sig("clamp", (_V, _S, _S)),
    "clamp_max": _sig("clamp_max", (_V, _S)),
    "clamp_min": _sig("clamp_min", (_V, _S)),
    "histogram_fraction": _sig("histogram_fraction", (_S, _S, _V)),
    "histogram_quantile": _sig("histogram_quantile", (_S, _V)),
    "double_exponential_smoothing": _sig(
        "double_exponential_smoothing", (_M, _S, _S), experimental=True
    ),
    "info": _sig("info", (_V, _V), variadic=1, experimental=True),
    "label_replace": _sig("label_replace", (_V, _STR, _STR, _STR, _STR)),
    "label_join": _sig("label_join", (_V, _STR, _STR, _STR), variadic=-1),
    "pi": _sig("pi", (), _S),
    "predict_linear": _sig("predict_linear", (_M, _S)),
    "quantile_over_time": _sig("quantile_over_time", (_S, _M)),
    "round": _sig("round", (_V, _S), variadic=1),
    "scalar": _sig("scalar", (_V,), _S),
    "sort_by_label": _sig("sort_by_label", (_V, _STR), variadic=-1, experimental=True),
    "sort_by_label_desc": _sig("sort_by_label_desc", (_V, _STR), variadic=-1, experimental=True),
    "time": _sig("time", (), _S),
    "vector": _sig("vector", (_S,)),
}
"""Every function Prometheus 3.5 knows, by name."""

AGGREGATIONS: Final = frozenset(
    [
        "sum",
        "avg",
        "count",
        "min",
        "max",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "count_values",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)
"""The aggregation operators."""

EXPERIMENTAL_AGGREGATIONS: Final = frozenset({"limitk", "limit_ratio"})
"""Aggregations that need experimental functions enabled."""

PARAM_AGGREGATIONS: Final = {
    "topk": _S,
    "bottomk": _S,
    "quantile": _S,
    "limitk": _S,
    "limit_ratio": _S,
    "count_values": _STR,
}
"""Aggregations that take a parameter, with its type."""
