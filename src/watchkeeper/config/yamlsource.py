"""YAML loading that remembers where every value came from, for errors with file and line.

`load_yaml` returns plain dicts and lists (subclasses that carry line numbers), so pydantic
validates them as usual; `describe_validation_error` turns a pydantic error into lines like
`prometheus.yml:12: scrape_configs[0].scrape_interval: not a valid duration string: "1x"`.
Duplicate keys are errors, as in Prometheus's strict YAML decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class ConfigError(Exception):
    """Raised when a config file cannot be read, parsed or validated.

    The message names the file and, where known, the line and the field.
    """


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line (1-based) of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence from YAML that knows the line of itself and of each item."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: Node) -> LineDict:
    if not isinstance(node, MappingNode):  # pragma: no cover - registered for mappings only
        raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"field {key} already set in type", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: Node) -> LineList:
    if not isinstance(node, SequenceNode):  # pragma: no cover
        raise yaml.constructor.ConstructorError(None, None, "expected a sequence", node.start_mark)
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _keep_scalar_text(loader: _LineLoader, node: Node) -> Any:
    """Loads timestamps as their text: Prometheus configs never mean YAML dates."""
    if isinstance(node, ScalarNode):
        return node.value
    return loader.construct_scalar(node)  # type: ignore[arg-type]  # pragma: no cover


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _keep_scalar_text)


def parse_yaml(text: str, source: str) -> Any:
    """Parses YAML text; `source` names it in errors.

    Raises:
        ConfigError: "source:line: reason" when the YAML is malformed.
    """
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}{line}: parsing YAML file {source}: {reason}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: parsing YAML file {source}: {exc}") from exc


def load_yaml(path: str | Path) -> Any:
    """Reads and parses a YAML file.

    Raises:
        ConfigError: when the file cannot be read or is malformed.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read file: {exc}") from exc
    return parse_yaml(text, str(path))


def line_of(document: Any, loc: Sequence[int | str]) -> int | None:
    """Returns the line of the value at `loc` (a pydantic error location) or of its parent."""
    node = document
    line: int | None = getattr(node, "line", None)
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def format_loc(loc: Sequence[int | str]) -> str:
    """Formats a location as scrape_configs[0].scrape_interval."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_validation_error(exc: ValidationError, document: Any, source: str) -> list[str]:
    """Turns a pydantic error into one "source:line: field: reason" line per problem."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        line = line_of(document, loc)
        where = f"{source}:{line}" if line else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"field {loc[-1]} not found in type" if loc else "unknown field"
        field = format_loc(loc)
        lines.append(f"{where}: {field}: {msg}" if field else f"{where}: {msg}")
    return lines
