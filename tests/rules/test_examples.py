"""The shipped example rule files are valid and their unit tests pass (ours and promtool's)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from watchkeeper.rules.files import check_rule_files
from watchkeeper.rules.unittest import run_rule_tests
from watchkeeper.testing.peers import peer_binary

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
RULE_FILES = sorted(p for p in EXAMPLES.glob("*.yml") if not p.name.endswith("_test.yml"))


def test_every_example_rule_file_passes_the_checker() -> None:
    code, output = check_rule_files([str(p) for p in RULE_FILES])
    assert code == 0, "\n".join(output)
    assert len(RULE_FILES) >= 2


def test_the_example_unit_tests_pass() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_rule_tests([str(EXAMPLES / "node_test.yml")], stdout=out, stderr=err) == 0, (
        err.getvalue()
    )


@pytest.mark.integration
def test_promtool_accepts_the_examples() -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (run ../shared/peers/fetch-peers.sh)")
    for args in (["check", "rules", *map(str, RULE_FILES)], ["test", "rules", "node_test.yml"]):
        proc = subprocess.run(
            [str(promtool), *args],
            cwd=EXAMPLES,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
