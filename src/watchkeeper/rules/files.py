"""Loading rule files (globs) with full validation, and `promtool check rules` output.

The checks that need PromQL and templates are plugged into `config.rulefmt` here.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from watchkeeper.config.rulefmt import ParsedRuleFile, RuleCheckers, parse_rule_file
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.parser import parse_expr
from watchkeeper.rules import templating


class RuleLoadError(Exception):
    """Raised when rule files are refused; the message lists every error with file and line."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def check_expr(text: str) -> str | None:
    """Returns Prometheus's parse error for a PromQL expression, or None when it parses."""
    try:
        parse_expr(text)
    except ParseError as exc:
        return str(exc)
    return None


RULE_CHECKERS = RuleCheckers(expr=check_expr, template=templating.check_template)
"""The full checks: PromQL parsing and template parsing."""


def expand_globs(patterns: Sequence[str], base_dir: str | Path | None = None) -> list[str]:
    """Expands rule_files patterns (relative to the config file's folder), sorted and unique."""
    out: list[str] = []
    for pattern in patterns:
        full = pattern
        if base_dir is not None and not Path(pattern).is_absolute():
            full = str(Path(base_dir) / pattern)
        matches = sorted(glob.glob(full))
        if not matches and not glob.has_magic(full):
            matches = [full]
        out.extend(m for m in matches if m not in out)
    return out


def load_rule_files(paths: Sequence[str]) -> list[ParsedRuleFile]:
    """Parses and validates every file.

    Raises:
        RuleLoadError: listing every error of every file when any file is invalid.
    """
    parsed = [parse_rule_file(p, RULE_CHECKERS) for p in paths]
    errors = [e for f in parsed for e in f.errors]
    if errors:
        raise RuleLoadError(errors)
    return parsed


def check_rule_files_streams(
    paths: Sequence[str], *, lint: bool = True, lint_fatal: bool = False
) -> tuple[int, list[tuple[str, str]]]:
    """Checks rule files as `promtool check rules` does.

    Returns the exit code (0 ok, 1 invalid files, 3 lint findings with `lint_fatal`) and the
    output as ("out" | "err", line) pairs, in order, as promtool splits them.
    """
    out: list[tuple[str, str]] = []
    failed = has_errors = False
    for path in paths:
        out.append(("out", f"Checking {path}"))
        parsed = parse_rule_file(path, RULE_CHECKERS)
        if parsed.errors or parsed.groups is None:
            failed = has_errors = True
            out.append(("err", "  FAILED:"))
            out.extend(("err", line) for e in parsed.errors for line in e.split("\n"))
            continue
        dups = _duplicates(parsed) if lint else []
        if dups:
            failed = True
            out.append(("err", "  FAILED:"))
            out.append(("err", f"lint error {len(dups)} duplicate rule(s) found."))
            for name, labels in dups:
                out.append(("err", f"Metric: {name}"))
                out.append(("err", "Label(s):"))
                out.extend(("err", f"\t{k}: {v}") for k, v in labels)
            out.append(("err", "Might cause inconsistency while recording expressions"))
        else:
            count = sum(len(g.rules) for g in parsed.groups.groups)
            out.append(("out", f"  SUCCESS: {count} rules found"))
        out.append(("out", ""))
    code = 0
    if failed and has_errors:
        code = 1
    elif failed and lint_fatal:
        code = 3
    return code, out


def check_rule_files(paths: Sequence[str]) -> tuple[int, list[str]]:
    """Checks rule files as `promtool check rules` does: (exit code, output lines).

    Lines promtool writes to stderr ("  FAILED:" and what follows) are mixed in order; use
    `check_rule_files_streams` to keep the two streams apart.
    """
    code, lines = check_rule_files_streams(paths)
    return code, [line for _, line in lines]


def _duplicates(parsed: ParsedRuleFile) -> list[tuple[str, list[tuple[str, str]]]]:
    """Rules with the same name and labels anywhere in the file (promtool's lint)."""
    if parsed.groups is None:
        return []
    keys = sorted(
        (rule.name, sorted(rule.labels.items()))
        for group in parsed.groups.groups
        for rule in group.rules
    )
    return [keys[i] for i in range(1, len(keys)) if keys[i] == keys[i - 1]]
