"""The `watchkeeper test rules` subcommand parses its files and returns promtool's exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from watchkeeper.cli import test_rules

TESTDATA = Path(__file__).parent / "testdata"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="watchkeeper")
    test_rules.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return cast(Callable[[argparse.Namespace], int], args.func)(args)


def test_passing_files_exit_zero_and_failing_ones_exit_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run("test", "rules", str(TESTDATA / "pass.yml")) == 0
    assert capsys.readouterr().out == "  SUCCESS\n\n"
    assert _run("test", "rules", str(TESTDATA / "pass.yml"), str(TESTDATA / "fail.yml")) == 1
    assert "  FAILED:" in capsys.readouterr().err


def test_a_missing_file_is_a_failure_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("test", "rules", "/nonexistent/t.yml") == 1
    assert "open /nonexistent/t.yml: no such file or directory" in capsys.readouterr().err
