"""Relabelling: rewriting label sets by `relabel_configs` rules, as Prometheus 3.5 does.

Used for targets (relabel_configs), scraped series (metric_relabel_configs), alerts and
remote write. Regexes are fully anchored and `.` matches newlines; `$1`, `${1}` and `$name`
in target_label and replacement expand as Go's regexp.Expand does.

Example:
    >>> cfg = RelabelConfig(source_labels=["__address__"], regex="(.*):.*", target_label="host")
    >>> str(relabel(Labels.from_dict({"__address__": "db:9100"}), [cfg]))
    '{__address__="db:9100", host="db"}'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import InvalidMatcherError, compile_anchored

RELABEL_ACTIONS: Final = (
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
)
"""Every relabel action of Prometheus 3.5."""

DEFAULT_REGEX: Final = "(.*)"
DEFAULT_REPLACEMENT: Final = "$1"
DEFAULT_SEPARATOR: Final = ";"
_UINT64_MAX: Final = (1 << 64) - 1
_TARGET_ACTIONS: Final = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
_CASE_EQUAL_ACTIONS: Final = ("lowercase", "uppercase", "keepequal", "dropequal")


def _valid_label_name(name: str) -> bool:
    """Prometheus 3's (UTF-8) label name rule: any non-empty valid UTF-8 string."""
    return bool(name) and _is_valid_utf8(name)


def _is_valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def compile_relabel_regex(regex: str) -> re.Pattern[str]:
    """Compiles a relabel regex (anchored, dot matches newline); use `.fullmatch` on it.

    Raises:
        ValueError: "error parsing regexp: ..." when the regex is invalid.
    """
    try:
        return compile_anchored(regex)
    except InvalidMatcherError as exc:
        cause = exc.__cause__
        raise ValueError(f"error parsing regexp: {cause or exc}") from None


class RelabelConfig(BaseModel):
    """One relabelling rule (a `relabel_config` block), validated as Prometheus validates it.

    Unknown fields are errors. Errors carry Prometheus's wording, e.g. "relabel configuration
    for hashmod requires non-zero modulus".
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    source_labels: list[str] | None = None
    separator: str = DEFAULT_SEPARATOR
    regex: str = DEFAULT_REGEX
    modulus: int = Field(default=0, ge=0, le=_UINT64_MAX)
    target_label: str = ""
    replacement: str = DEFAULT_REPLACEMENT
    action: str = "replace"

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_unset(cls, data: Any) -> Any:
        """Reads null fields as unset, except a null regex, which Prometheus reads as ""."""
        if data is None:
            return {}
        if isinstance(data, dict):
            out = {k: v for k, v in data.items() if v is not None}
            if "regex" in data and data["regex"] is None:
                out["regex"] = ""
            return out
        return data

    @field_validator("source_labels")
    @classmethod
    def _check_source_labels(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if not _valid_label_name(name):
                raise ValueError(f'"{name}" is not a valid label name')
        return value

    @field_validator("action", mode="before")
    @classmethod
    def _check_action(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() not in RELABEL_ACTIONS:
                raise ValueError(f'unknown relabel action "{value}"')
            return value.lower()
        return value

    @field_validator("regex")
    @classmethod
    def _check_regex(cls, value: str) -> str:
        compile_relabel_regex(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        a = self.action
        if not a:
            raise ValueError("relabel action cannot be empty")
        if a == "hashmod" and self.modulus == 0:
            raise ValueError("relabel configuration for hashmod requires non-zero modulus")
        if a in _TARGET_ACTIONS and not self.target_label:
            raise ValueError(f"relabel configuration for {a} action requires 'target_label' value")
        if a in (*_CASE_EQUAL_ACTIONS, "hashmod", "replace") and not _valid_label_name(
            self.target_label
        ):
            raise ValueError(f"\"{self.target_label}\" is invalid 'target_label' for {a} action")
        if a in _CASE_EQUAL_ACTIONS and self.replacement != DEFAULT_REPLACEMENT:
            raise ValueError(f"'replacement' can not be set for {a} action")
        if a == "labelmap" and not _valid_label_name(self.replacement):
            raise ValueError(f"\"{self.replacement}\" is invalid 'replacement' for {a} action")
        if a in ("keepequal", "dropequal") and (
            "regex" in self.model_fields_set
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise ValueError(
                f"{a} action requires only 'source_labels' and `target_label`, and no other fields"
            )
        if a in ("labeldrop", "labelkeep") and (
            self.source_labels is not None
            or self.target_label
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise ValueError(f"{a} action requires only 'regex', and no other fields")
        return self

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled, fully anchored regex (call `.fullmatch`)."""
        return compile_relabel_regex(self.regex)

    @property
    def uses_default_regex(self) -> bool:
        """Tells whether the regex was left unset (Prometheus treats that case specially)."""
        return "regex" not in self.model_fields_set


def expand(template: str, match: re.Match[str]) -> str:
    """Expands `$1`, `${1}`, `$name`, `${name}` and `$$` exactly as Go's regexp.Expand.

    Unknown or unmatched groups expand to ""; a `$` not followed by a name stays literal.

    Example:
        >>> expand("${1}x-$2y", re.fullmatch(r"(a)(b)", "ab"))
        'ax-'
    """
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    groups = match.re.groupindex
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        k = i + 1 if brace else i
        start = k
        while k < n and (template[k].isalnum() or template[k] == "_"):
            k += 1
        name = template[start:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")
            continue
        i = k + 1 if brace else k
        num = -1
        if (
            name.isascii()
            and name.isdigit()
            and len(name) <= 9
            and not (name[0] == "0" and len(name) > 1)
        ):
            num = int(name)
        if num >= 0:
            if num <= match.re.groups:
                out.append(match.group(num) or "")
        elif name in groups:
            out.append(match.group(name) or "")
    return "".join(out)


def _hashmod(value: str, modulus: int) -> int:
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


def _apply(cfg: RelabelConfig, lb: dict[str, str]) -> bool:
    """Applies one rule to a mutable label dict; returns False when the set is dropped."""
    src = cfg.source_labels or ()
    val = cfg.separator.join(lb.get(n, "") for n in src)
    action = cfg.action
    if action == "drop":
        return cfg.pattern.fullmatch(val) is None
    if action == "keep":
        return cfg.pattern.fullmatch(val) is not None
    if action == "dropequal":
        return lb.get(cfg.target_label, "") != val
    if action == "keepequal":
        return lb.get(cfg.target_label, "") == val
    if action == "replace":
        if (
            val == ""
            and cfg.uses_default_regex
            and "$" not in cfg.target_label
            and "$" not in cfg.replacement
        ):
            _set(lb, cfg.target_label, cfg.replacement)
            return True
        m = cfg.pattern.fullmatch(val)
        if m is None:
            return True
        target = expand(cfg.target_label, m)
        if not _valid_label_name(target):
            return True
        _set(lb, target, expand(cfg.replacement, m))
    elif action == "lowercase":
        _set(lb, cfg.target_label, val.lower())
    elif action == "uppercase":
        _set(lb, cfg.target_label, val.upper())
    elif action == "hashmod":
        _set(lb, cfg.target_label, str(_hashmod(val, cfg.modulus)))
    elif action == "labelmap":
        for name, value in list(lb.items()):
            m = cfg.pattern.fullmatch(name)
            if m is not None:
                _set(lb, expand(cfg.replacement, m), value)
    elif action == "labeldrop":
        for name in [n for n in lb if cfg.pattern.fullmatch(n) is not None]:
            del lb[name]
    elif action == "labelkeep":
        for name in [n for n in lb if cfg.pattern.fullmatch(n) is None]:
            del lb[name]
    return True


def _set(lb: dict[str, str], name: str, value: str) -> None:
    if value:
        lb[name] = value
    else:
        lb.pop(name, None)


def relabel(labels: Labels, configs: Sequence[RelabelConfig]) -> Labels | None:
    """Applies the rules in order; returns the new labels, or None when a rule drops the set.

    An empty result (every label removed) is returned as empty Labels, not None, as in
    Prometheus; callers that need a name treat that as dropped.
    """
    if not configs:
        return labels
    lb = labels.as_dict()
    for cfg in configs:
        if not _apply(cfg, lb):
            return None
    return Labels(lb.items())
