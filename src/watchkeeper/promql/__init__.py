"""The PromQL language: AST, parser, engine, functions and a library entry point.

The names others use: `Engine`, `EngineOptions`, `parse_expr`, `format_expr`, the result
types (`QueryResult`, `Vector`, `Matrix`, `Scalar`, `String`), the errors, and the library
functions `query` and `query_range` for evaluating PromQL over data given in Python.
"""

from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.errors import (
    EvaluationError,
    ParseError,
    PromQLError,
    QueryCanceledError,
    QueryTimeoutError,
    TooManySamplesError,
)
from watchkeeper.promql.library import SeriesData, query, query_range, to_frame
from watchkeeper.promql.parser import expr_type, format_expr, parse_expr
from watchkeeper.promql.value import (
    Matrix,
    QueryResult,
    QueryStats,
    Scalar,
    String,
    Value,
    ValueType,
    Vector,
)

__all__ = [
    "Engine",
    "EngineOptions",
    "EvaluationError",
    "Matrix",
    "ParseError",
    "PromQLError",
    "QueryCanceledError",
    "QueryResult",
    "QueryStats",
    "QueryTimeoutError",
    "Scalar",
    "SeriesData",
    "String",
    "TooManySamplesError",
    "Value",
    "ValueType",
    "Vector",
    "expr_type",
    "format_expr",
    "parse_expr",
    "query",
    "query_range",
    "to_frame",
]
