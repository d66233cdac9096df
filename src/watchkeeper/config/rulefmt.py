r"""The Prometheus rule file format: groups of recording and alerting rules.

`parse_rule_file` reads a file into `RuleGroups` or returns the errors Prometheus (and
`promtool check rules`) would report, word for word: YAML type errors as
"yaml: unmarshal errors:\\n  line N: ...", durations as "unknown unit ..." and semantic
errors as `5:15: group "g", rule 1, "name": could not parse expression: ...`.

PromQL and Go templates live in higher layers, so their checks are passed in as callables
(`RuleCheckers`); `watchkeeper.rules.files` supplies the real ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from watchkeeper.config.yamlsource import ConfigError, LineDict, LineList, line_of, parse_yaml
from watchkeeper.model.exposition.floats import go_quote


class DurationSyntaxError(ValueError):
    """Raised for a duration Go's model.ParseDuration refuses (aborts decoding, as in Go)."""


_UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
_UNIT_ORDER = ("y", "w", "d", "h", "m", "s", "ms")
_MAX_DURATION_MS = (1 << 63) // 1_000_000 - 1


def parse_go_duration(text: str) -> int:
    """Parses a Prometheus duration into milliseconds with Go's exact error messages.

    Raises:
        DurationSyntaxError: e.g. `unknown unit "x" in duration "5x"`.
    """
    if text == "0":
        return 0
    if text == "":
        raise DurationSyntaxError("empty duration string")
    rest = text
    total = 0
    last = -1
    while rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        if i == 0:
            raise DurationSyntaxError(f"not a valid duration string: {go_quote(text)}")
        digits, rest = rest[:i], rest[i:]
        j = 0
        while j < len(rest) and not rest[j].isdigit():
            j += 1
        unit, rest = rest[:j], rest[j:]
        if unit not in _UNIT_MS:
            if unit == "":
                raise DurationSyntaxError(f"not a valid duration string: {go_quote(text)}")
            raise DurationSyntaxError(f"unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        pos = _UNIT_ORDER.index(unit)
        if pos <= last:
            raise DurationSyntaxError(f"not a valid duration string: {go_quote(text)}")
        last = pos
        total += int(digits) * _UNIT_MS[unit]
        if total > _MAX_DURATION_MS:
            raise DurationSyntaxError(f"not a valid duration string: {go_quote(text)}")
    return total


def _scalar_text(value: Any) -> Any:
    """Turns YAML scalars into the text Go's decoder would keep for a string field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    return value


def _duration(value: Any) -> int:
    if isinstance(value, dict | list):
        raise TypeError("not a scalar")
    return parse_go_duration(str(_scalar_text(value)))


def _string_map(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(_scalar_text(k)): _scalar_text(v) for k, v in value.items()}
    return value


GoString = Annotated[str, BeforeValidator(_scalar_text)]
DurationMs = Annotated[int, BeforeValidator(_duration)]
StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]


class Rule(BaseModel):
    """One recording (`record`) or alerting (`alert`) rule as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    record: GoString = ""
    alert: GoString = ""
    expr: GoString = ""
    for_ms: DurationMs = Field(0, alias="for")
    keep_firing_for_ms: DurationMs = Field(0, alias="keep_firing_for")
    labels: StringMap = Field(default_factory=dict)
    annotations: StringMap = Field(default_factory=dict)

    @property
    def name(self) -> str:
        """The alert name or the recorded metric name."""
        return self.alert or self.record


class RuleGroup(BaseModel):
    """A list of rules evaluated in order at one interval."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: GoString = ""
    interval_ms: DurationMs = Field(0, alias="interval")
    query_offset_ms: DurationMs | None = Field(None, alias="query_offset")
    limit: int = 0
    rules: list[Rule] = Field(default_factory=list)
    labels: StringMap = Field(default_factory=dict)


class RuleGroups(BaseModel):
    """The content of one rule file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[RuleGroup] = Field(default_factory=list)


ExprChecker = Callable[[str], str | None]
"""Returns Prometheus's parse error text for a PromQL expression, or None when it parses."""

TemplateChecker = Callable[[str, str], str | None]
"""Given (template name, text) returns the template parse error text, or None."""


@dataclass(frozen=True, slots=True)
class RuleCheckers:
    """The checks that need higher layers (PromQL parser, template engine)."""

    expr: ExprChecker | None = None
    template: TemplateChecker | None = None


_TYPE_NAMES = {"RuleGroups": "rulefmt.RuleGroups", "RuleGroup": "rulefmt.RuleGroup"}


def _go_type_name(loc: tuple[int | str, ...]) -> str:
    """Names the Go type at a pydantic location (for "field x not found in type T")."""
    if not loc:
        return "rulefmt.RuleGroups"
    if "rules" in loc and loc.index("rules") + 2 <= len(loc):
        return "rulefmt.Rule"
    if loc[0] == "groups" and len(loc) >= 2:
        return "rulefmt.RuleGroup"
    return "rulefmt.RuleGroups"


def _yaml_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "!!map"
    if isinstance(value, list):
        return "!!seq"
    if isinstance(value, bool):
        return "!!bool"
    if isinstance(value, int):
        return "!!int"
    if isinstance(value, float):
        return "!!float"
    return "!!str"


def _unmarshal_errors(exc: ValidationError, document: Any, *, strict: bool) -> list[str]:
    """Formats pydantic errors like go-yaml's "yaml: unmarshal errors" (durations abort)."""
    items: list[tuple[int, str]] = []
    for err in exc.errors(include_url=False):
        if err["type"] == "extra_forbidden" and not strict:
            continue
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, DurationSyntaxError):
            return [str(ctx_error)]
        line = line_of(document, loc) or 0
        if err["type"] == "extra_forbidden":
            line = line_of(document, loc) or 0
            items.append((line, f"field {loc[-1]} not found in type {_go_type_name(loc[:-1])}"))
            continue
        value = _value_at(document, loc)
        shown = ""
        if not isinstance(value, dict | list):
            shown = f" `{_scalar_text(value)}`"
        items.append((line, f"cannot unmarshal {_yaml_tag(value)}{shown} into {_target_type(loc)}"))
    if not items:
        return []
    items.sort(key=lambda x: x[0])
    body = "\n".join(f"  line {line}: {msg}" for line, msg in items)
    return [f"yaml: unmarshal errors:\n{body}"]


def _value_at(document: Any, loc: tuple[int | str, ...]) -> Any:
    node = document
    for part in loc:
        if isinstance(node, dict) and part in node:  # noqa: SIM114 - mypy narrows each
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    return node


def _target_type(loc: tuple[int | str, ...]) -> str:
    last = loc[-1] if loc else ""
    if last in ("labels", "annotations"):
        return "map[string]string"
    if last == "groups":
        return "[]rulefmt.RuleGroup"
    if last == "rules":
        return "[]rulefmt.Rule"
    if last == "limit":
        return "int"
    if isinstance(last, int):
        return "rulefmt.Rule" if "rules" in loc else "rulefmt.RuleGroup"
    return "string"


def _positions(text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # pragma: no cover - parse_yaml already accepted the text
        return None


def _child(node: Node | None, key: str | int) -> Node | None:
    if isinstance(node, MappingNode) and isinstance(key, str):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v  # type: ignore[no-any-return]
    if isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]  # type: ignore[no-any-return]
    return None


def _pos(node: Node | None) -> str:
    if node is None:
        return "0:0"
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _valid_utf8_name(name: str) -> bool:
    return name != ""


def validate_rule_groups(groups: RuleGroups, text: str, checkers: RuleCheckers) -> list[str]:
    """Returns Prometheus's semantic errors for parsed groups (empty when they are valid)."""
    root = _positions(text)
    errs: list[str] = []
    seen: set[str] = set()
    for j, group in enumerate(groups.groups):
        if group.name == "":
            errs.append("0:0: Groupname must not be empty")
        if group.name in seen:
            errs.append(f'0:0: groupname: "{group.name}" is repeated in the same file')
        errs.extend(
            f"invalid label name: {k}"
            for k in sorted(group.labels)
            if not _valid_utf8_name(k) or k == "__name__"
        )
        seen.add(group.name)
        group_node = _child(_child(root, "groups"), j)
        for i, rule in enumerate(group.rules):
            rule_node = _child(_child(group_node, "rules"), i)
            prefix = f'group "{group.name}", rule {i + 1}, {go_quote(rule.name)}: '
            errs.extend(
                (f"{where}: {prefix}{msg}" if where else f"{prefix}{msg}")
                for where, msg in _validate_rule(rule, rule_node, checkers)
            )
    return errs


def _validate_rule(rule: Rule, node: Node | None, checkers: RuleCheckers) -> list[tuple[str, str]]:
    rec = _pos(_child(node, "record"))
    both = f"{rec}: {_pos(_child(node, 'alert'))}"
    out: list[tuple[str, str]] = []
    if rule.record and rule.alert:
        out.append((both, "only one of 'record' and 'alert' must be set"))
    if not rule.record and not rule.alert:
        out.append((both, "one of 'record' or 'alert' must be set"))
    expr_pos = _pos(_child(node, "expr"))
    if rule.expr == "":
        out.append((expr_pos, "field 'expr' must be set in rule"))
    elif checkers.expr is not None:
        problem = checkers.expr(rule.expr)
        if problem is not None:
            out.append((expr_pos, f"could not parse expression: {problem}"))
    if rule.record:
        if rule.annotations:
            out.append((rec, "invalid field 'annotations' in recording rule"))
        if rule.for_ms:
            out.append((rec, "invalid field 'for' in recording rule"))
        if rule.keep_firing_for_ms:
            out.append((rec, "invalid field 'keep_firing_for' in recording rule"))
        if not _valid_utf8_name(rule.record):
            out.append((rec, f"invalid recording rule name: {rule.record}"))
        if "{" in rule.record or "}" in rule.record:
            out.append(
                (
                    rec,
                    "braces present in the recording rule name; should it be in expr?: "
                    + rule.record,
                )
            )
    out.extend(
        ("", f"invalid label name: {k}")
        for k in sorted(rule.labels)
        if not _valid_utf8_name(k) or k == "__name__"
    )
    out.extend(
        ("", f"invalid annotation name: {k}")
        for k in sorted(rule.annotations)
        if not _valid_utf8_name(k)
    )
    if rule.alert and checkers.template is not None:
        name = "__alert_" + rule.alert
        for kind, mapping in (("label", rule.labels), ("annotation", rule.annotations)):
            for k in sorted(mapping):
                problem = checkers.template(name, mapping[k])
                if problem is not None:
                    out.append(("", f"{kind} {go_quote(k)}: {problem}"))
    return out


@dataclass(frozen=True, slots=True)
class ParsedRuleFile:
    """A rule file's groups, or the errors that refuse it (each prefixed with the file)."""

    path: str
    groups: RuleGroups | None
    errors: list[str]


def parse_rule_text(text: str, source: str, checkers: RuleCheckers | None = None) -> ParsedRuleFile:
    """Parses and validates rule file text; `source` prefixes every error."""
    checkers = checkers or RuleCheckers()
    try:
        document = parse_yaml(text, source)
    except ConfigError as exc:
        msg = str(exc)
        # parse_yaml prefixes "source:line: "; Prometheus says "source: yaml: line N: ...".
        match = re.match(rf"^{re.escape(source)}(?::(\d+))?: parsing YAML file [^:]*: (.*)$", msg)
        if match:
            line = f"line {match.group(1)}: " if match.group(1) else ""
            msg = f"{source}: yaml: {line}{match.group(2)}"
        return ParsedRuleFile(source, None, [msg])
    if document is None:
        document = LineDict()
    if isinstance(document, LineList) or not isinstance(document, Mapping):
        return ParsedRuleFile(
            source,
            None,
            [
                f"{source}: yaml: unmarshal errors:\n  line 1: cannot unmarshal "
                f"{_yaml_tag(document)} into rulefmt.RuleGroups",
                f"{source}: yaml: unmarshal errors:\n  line 1: cannot unmarshal "
                f"{_yaml_tag(document)} into rulefmt.ruleGroups",
            ],
        )
    try:
        groups = RuleGroups.model_validate(document)
    except ValidationError as exc:
        # Go decodes twice (strictly, then leniently for positions): type errors show twice.
        errors = _unmarshal_errors(exc, document, strict=True)
        errors += _unmarshal_errors(exc, document, strict=False)
        return ParsedRuleFile(source, None, [f"{source}: {e}" for e in errors])
    errs = validate_rule_groups(groups, text, checkers)
    return ParsedRuleFile(source, groups, [f"{source}: {e}" for e in errs])


def parse_rule_file(path: str | Path, checkers: RuleCheckers | None = None) -> ParsedRuleFile:
    """Reads, parses and validates one rule file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ParsedRuleFile(source, None, [f"{source}: open {source}: {reason.lower()}"])
    return parse_rule_text(text, source, checkers)
