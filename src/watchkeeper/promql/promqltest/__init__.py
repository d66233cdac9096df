"""A runner for Prometheus's PromQL test scripts (`.test` files), as in promql/promqltest."""

from watchkeeper.promql.promqltest.runner import (
    TEST_ENGINE_OPTIONS,
    CaseResult,
    Outcome,
    ScriptResult,
    ScriptRunner,
    almost_equal,
    run_script,
)
from watchkeeper.promql.promqltest.script import ScriptError, parse_script

__all__ = [
    "TEST_ENGINE_OPTIONS",
    "CaseResult",
    "Outcome",
    "ScriptError",
    "ScriptResult",
    "ScriptRunner",
    "almost_equal",
    "parse_script",
    "run_script",
]
