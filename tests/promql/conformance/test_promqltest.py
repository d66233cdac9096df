"""Runs Prometheus's v3 PromQL test scripts (../shared/conformance/promql/v3/*.test).

One test per file. Native-histogram cases are skipped and counted apart; a file fails
only on a failure not listed in known_failures.py, or when a listed case passes.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from watchkeeper.promql.promqltest import Outcome, ScriptRunner
from watchkeeper.testing.peers import shared_dir

KNOWN_FAILURES: dict[tuple[str, int], str] = runpy.run_path(
    str(Path(__file__).with_name("known_failures.py"))
)["KNOWN_FAILURES"]

V3_DIR = shared_dir() / "conformance" / "promql" / "v3"
FILES = sorted(V3_DIR.glob("*.test")) if V3_DIR.is_dir() else []


@pytest.mark.skipif(not FILES, reason=f"conformance scripts not found in {V3_DIR}")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_v3_script_passes_except_known_failures(path: Path) -> None:
    result = ScriptRunner().run_file(path)
    passed = result.count(Outcome.PASSED)
    failed = result.count(Outcome.FAILED)
    skipped = result.count(Outcome.SKIPPED)
    print(
        f"{path.name}: {passed}/{passed + failed} passed, {skipped} skipped (native histograms)",
        file=sys.stderr,
    )
    unexpected = []
    fixed = []
    for case in result.cases:
        listed = (path.name, case.line) in KNOWN_FAILURES
        if case.outcome is Outcome.FAILED and not listed:
            unexpected.append(f"line {case.line}: {case.expr}\n    {case.message}")
        elif case.outcome is Outcome.PASSED and listed:
            fixed.append(f"line {case.line}: {case.expr} (listed as known failure, now passes)")
    assert not unexpected, "unexpected failures:\n" + "\n".join(unexpected)
    assert not fixed, "remove from known_failures.py:\n" + "\n".join(fixed)
