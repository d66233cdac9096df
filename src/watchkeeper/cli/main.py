"""The `watchkeeper` command: dispatches to one module per subcommand.

Each module listed in SUBCOMMAND_MODULES exposes `register(subparsers)`, which adds its
parser and sets `func` (taking the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

from watchkeeper import __version__

SUBCOMMAND_MODULES = (
    "watchkeeper.cli.server",
    "watchkeeper.cli.demo",
    "watchkeeper.cli.check",
    "watchkeeper.cli.tsdb",
    "watchkeeper.cli.query",
    "watchkeeper.cli.test_rules",
)


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="watchkeeper",
        description="A Prometheus-compatible monitoring stack and release controller.",
    )
    parser.add_argument("--version", action="version", version=f"watchkeeper {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return cast(Callable[[argparse.Namespace], int], func)(args)


if __name__ == "__main__":
    sys.exit(main())
