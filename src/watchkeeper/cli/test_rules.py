"""`watchkeeper test rules TEST.yml...`: rule unit tests in `promtool test rules` format."""

from __future__ import annotations

import argparse

from watchkeeper.rules.unittest import run_rule_tests


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the `test` command with its `rules` subcommand."""
    test = subparsers.add_parser("test", help="Unit testing.")
    sub = test.add_subparsers(dest="test_command", metavar="COMMAND")
    rules = sub.add_parser(
        "rules", help="Unit tests for rules.", description="Unit tests for rules."
    )
    rules.add_argument(
        "test_files", nargs="+", metavar="test-rule-file", help="The unit test file."
    )
    rules.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return run_rule_tests(args.test_files)
