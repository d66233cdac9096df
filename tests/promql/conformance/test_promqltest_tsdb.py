"""The v3 PromQL scripts again, over our real TSDB instead of MemoryStorage.

Checks that the engine and the TSDB querier agree on the storage contract (ragged series
sets, inclusive time bounds, staleness markers). The `@` re-runs are left to the
MemoryStorage run to keep this one short.
"""

from __future__ import annotations

import itertools
import runpy
from pathlib import Path

import pytest

from watchkeeper.promql.promqltest import Outcome, ScriptRunner
from watchkeeper.storage.interface import Storage
from watchkeeper.testing.peers import shared_dir
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.options import TsdbOptions

KNOWN_FAILURES: dict[tuple[str, int], str] = runpy.run_path(
    str(Path(__file__).with_name("known_failures.py"))
)["KNOWN_FAILURES"]

V3_DIR = shared_dir() / "conformance" / "promql" / "v3"
FILES = sorted(V3_DIR.glob("*.test")) if V3_DIR.is_dir() else []

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not FILES, reason=f"conformance scripts not found in {V3_DIR}")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_v3_script_passes_over_the_tsdb(path: Path, tmp_path: Path) -> None:
    counter = itertools.count()
    opened: list[TSDB] = []

    def factory() -> Storage:
        # Scripts load old data after newer data; an out-of-order window admits it.
        db = TSDB.open(
            tmp_path / f"db{next(counter)}", TsdbOptions(out_of_order_time_window_ms=10**12)
        )
        opened.append(db)
        return db

    try:
        result = ScriptRunner(storage_factory=factory, at_modifier_check=False).run_file(path)
    finally:
        for db in opened:
            db.close()
    unexpected = [
        f"line {c.line}: {c.expr}\n    {c.message}"
        for c in result.cases
        if c.outcome is Outcome.FAILED and (path.name, c.line) not in KNOWN_FAILURES
    ]
    assert not unexpected, "unexpected failures:\n" + "\n".join(unexpected)
