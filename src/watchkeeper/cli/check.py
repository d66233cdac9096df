"""`watchkeeper check config|rules`: promtool's checks, same messages and exit codes.

`check config` also checks the rule files the config names, as `promtool check config`
does. Exit codes: 0 when everything is valid, 1 when anything was refused.
"""

from __future__ import annotations

import argparse
import sys

from watchkeeper.config.prometheus import check_config_file, check_failed, load_config
from watchkeeper.config.yamlsource import ConfigError
from watchkeeper.rules.files import check_rule_files_streams

SUCCESS = 0
FAILURE = 1


def _rule_files_of(config_path: str) -> list[str]:
    try:
        return load_config(config_path).rule_file_paths()
    except ConfigError:
        return []


def run_check_config(args: argparse.Namespace) -> int:
    """Checks prometheus.yml files and the rule files they name."""
    code = SUCCESS
    for path in args.files:
        messages = check_config_file(path)
        failed = check_failed(messages)
        stream = sys.stderr if failed else sys.stdout
        print("\n".join(messages), file=stream)
        print(file=stream)
        if failed:
            code = FAILURE
            continue
        rule_files = _rule_files_of(path)
        if rule_files and not args.syntax_only:
            code = max(code, _print_rule_check(rule_files))
    return code


def _print_rule_check(paths: list[str]) -> int:
    """Checks rule files and prints each line to stdout or stderr, as promtool splits them."""
    code, lines = check_rule_files_streams(paths)
    for stream, line in lines:
        print(line, file=sys.stdout if stream == "out" else sys.stderr)
    return code


def run_check_rules(args: argparse.Namespace) -> int:
    """Checks rule files."""
    return _print_rule_check(list(args.files))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `watchkeeper check config` and `watchkeeper check rules`."""
    parser = subparsers.add_parser("check", help="Check configuration and rule files.")
    sub = parser.add_subparsers(dest="check_command", metavar="WHAT", required=True)
    config = sub.add_parser("config", help="Check prometheus.yml files (as promtool does).")
    config.add_argument("files", nargs="+", metavar="CONFIG-FILE")
    config.add_argument(
        "--syntax-only",
        action="store_true",
        help="Only check the config file syntax, not the rule files it names.",
    )
    config.set_defaults(func=run_check_config)
    rules = sub.add_parser("rules", help="Check rule files (as promtool does).")
    rules.add_argument("files", nargs="+", metavar="RULE-FILE")
    rules.set_defaults(func=run_check_rules)
