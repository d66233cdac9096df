"""Parsing Prometheus's PromQL test scripts (`.test` files) into commands.

The format is described in ../shared/conformance/README.md: `load`, `load_with_nhcb`,
`clear` and `eval*` commands separated by blank lines, with expectation blocks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final

from watchkeeper.model.duration import DurationError, parse_duration_ms
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.model.matchers import MatchType
from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql import ast
from watchkeeper.promql.errors import ParseError
from watchkeeper.promql.parser import duration_ms, parse_expr


class ScriptError(ValueError):
    """Raised when a test script is malformed; names the line."""


_PAT_LOAD: Final = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_PAT_INSTANT: Final = re.compile(
    r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$"
)
_PAT_RANGE: Final = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"
)
_PAT_EXPECT: Final = re.compile(
    r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$"
)
_NUM: Final = (
    r"[+-]?(?:[iI][nN][fF]|[nN][aA][nN]|(?:[0-9]+(?:ms|[smhdwy]))+"
    r"|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
)
_ITEM_ONE: Final = re.compile(rf"^({_NUM})$")
_ITEM_REPEAT: Final = re.compile(rf"^({_NUM})x([0-9]+)$")
_ITEM_SERIES: Final = re.compile(rf"^({_NUM})([+-])({_NUM})x([0-9]+)$")
_ITEM_GAP: Final = re.compile(r"^_x([0-9]+)$")


@dataclass(frozen=True, slots=True)
class Omitted:
    """A `_` slot in a sequence: no sample."""


OMITTED: Final = Omitted()


@dataclass(frozen=True, slots=True)
class HistogramLiteral:
    """A native histogram literal `{{...}}` (not evaluated: native histograms are skipped)."""

    text: str


SequenceValue = float | Omitted | HistogramLiteral


def parse_number(text: str) -> float:
    """Parses a PromQL number as the test format does (durations count as seconds).

    Raises:
        ValueError: when the text is not a number.
    """
    t = text.strip()
    sign = 1.0
    body = t
    if body[:1] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    low = body.lower()
    if low in ("inf", "nan"):
        return sign * float(low)
    if low.startswith("0x"):
        return sign * float(int(body, 16))
    if re.fullmatch(r"(?:[0-9]+(?:ms|[smhdwy]))+", body):
        return sign * duration_ms(body) / 1000.0
    if not re.fullmatch(r"[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.", body):
        raise ValueError(f"invalid number {text!r}")
    return sign * float(body)


def parse_scalar_line(text: str) -> float | None:
    """Parses an expected scalar as Go's ParseInt(s, 0, 64) then ParseFloat; None if not one."""
    t = text.strip()
    try:
        return float(int(t, 0))
    except ValueError:
        pass
    if re.fullmatch(r"[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])", t):
        return float(t.lower().replace("infinity", "inf"))
    if re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", t):
        return float(t)
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F.]+[pP][+-]?[0-9]+", t):
        return float.fromhex(t)
    return None


def parse_sequence(text: str) -> list[SequenceValue]:
    """Expands a sequence such as `1 2 _ 0+10x3 stale {{...}}` into values.

    Raises:
        ValueError: on an item that is not part of the notation.
    """
    out: list[SequenceValue] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text.startswith("{{", i):
            j = text.find("}}", i)
            if j < 0:
                raise ValueError("unterminated histogram literal")
            if text.startswith(("+{{", "-{{"), j + 2):
                j = text.find("}}", j + 3)
                if j < 0:
                    raise ValueError("unterminated histogram literal")
            end = j + 2
            while end < n and not text[end].isspace():
                end += 1
            lit = HistogramLiteral(text[i:end])
            rep = re.search(r"x([0-9]+)$", text[j + 2 : end])
            count = int(rep.group(1)) + 1 if rep else 1
            out.extend([lit] * count)
            i = end
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        out.extend(_expand_item(text[i:j]))
        i = j
    return out


def _expand_item(item: str) -> list[SequenceValue]:
    if item == "_":
        return [OMITTED]
    if item == "stale":
        return [STALE_NAN]
    m = _ITEM_GAP.match(item)
    if m:
        return [OMITTED] * int(m.group(1))
    m = _ITEM_ONE.match(item)
    if m:
        return [parse_number(m.group(1))]
    m = _ITEM_REPEAT.match(item)
    if m:
        v = parse_number(m.group(1))
        return [v] * (int(m.group(2)) + 1)
    m = _ITEM_SERIES.match(item)
    if m:
        v = parse_number(m.group(1))
        step = parse_number(m.group(3))
        if m.group(2) == "-":
            step = -step
        vals: list[SequenceValue] = [v]
        for _ in range(int(m.group(4))):
            v += step
            vals.append(v)
        return vals
    raise ValueError(f"invalid sequence item {item!r}")


def _split_series(line: str) -> tuple[str, str]:
    """Splits `<series> <sequence>` where the series may contain spaces inside braces."""
    depth = 0
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c.isspace() and depth == 0:
            return line[:i], line[i:].strip()
        i += 1
    return line, ""


def parse_series_labels(text: str) -> Labels:
    """Parses a series description such as `foo{a="b"}` into labels.

    Raises:
        ValueError: when it is not a selector made of equality matchers.
    """
    if text.replace(" ", "") == "{}":
        return Labels()
    try:
        expr = parse_expr(text)
    except ParseError as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(expr, ast.VectorSelector):
        raise ValueError(f"not a series description: {text!r}")
    pairs = []
    for m in expr.matchers:
        if m.type is not MatchType.EQUAL:
            raise ValueError(f"series descriptions need = matchers: {text!r}")
        pairs.append((m.name, m.value))
    return Labels(pairs)


def parse_series_line(line: str) -> tuple[Labels, list[SequenceValue]]:
    """Parses `<series> <sequence>`."""
    series, seq = _split_series(line)
    return parse_series_labels(series), parse_sequence(seq)


@dataclass(slots=True)
class LoadCmd:
    """A `load` block: series and their samples at k * interval."""

    line: int
    interval_ms: int
    series: dict[Labels, list[SequenceValue]]
    with_nhcb: bool = False


@dataclass(slots=True)
class ClearCmd:
    """A `clear` command."""

    line: int


@dataclass(frozen=True, slots=True)
class Expect:
    """One `expect` line: a message or a regex (None matches anything)."""

    kind: str
    message: str | None = None
    regex: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        """Tells whether an error or annotation text satisfies this line."""
        if self.regex is not None:
            return self.regex.search(text) is not None
        if self.message is not None:
            return self.message == text
        return True


@dataclass(slots=True)
class EvalCmd:
    """An `eval` command with its expectations."""

    line: int
    expr: str
    start_ms: int
    end_ms: int = 0
    step_ms: int = 0
    is_range: bool = False
    fail: bool = False
    warn: bool = False
    info: bool = False
    ordered: bool = False
    expected_fail_message: str | None = None
    expected_fail_regexp: re.Pattern[str] | None = None
    expects: list[Expect] = field(default_factory=list)
    expect_scalar: float | None = None
    series: list[tuple[Labels, list[SequenceValue]]] = field(default_factory=list)
    has_histogram: bool = False

    def expects_of(self, kind: str) -> list[Expect]:
        """The expect lines of one kind."""
        return [e for e in self.expects if e.kind == kind]

    @property
    def is_fail(self) -> bool:
        """Whether the query must fail."""
        return self.fail or bool(self.expects_of("fail"))

    @property
    def is_ordered(self) -> bool:
        """Whether the result order is checked."""
        return self.ordered or bool(self.expects_of("ordered"))


Command = LoadCmd | ClearCmd | EvalCmd


def _duration(text: str, line: int) -> int:
    try:
        return parse_duration_ms(text.strip())
    except DurationError as exc:
        raise ScriptError(f"line {line}: {exc}") from exc


def parse_script(text: str) -> list[Command]:
    """Parses a whole script.

    Raises:
        ScriptError: naming the line of the first malformed command.
    """
    lines = []
    for raw in text.split("\n"):
        s = raw.strip()
        lines.append("" if s.startswith("#") else s)
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = line.split()[0].lower()
        if word == "clear":
            cmds.append(ClearCmd(i + 1))
            i += 1
        elif word.startswith("load"):
            i = _parse_load(lines, i, cmds)
        elif word.startswith("eval"):
            i = _parse_eval(lines, i, cmds)
        else:
            raise ScriptError(f"line {i + 1}: unknown command {line!r}")
    return cmds


def _parse_load(lines: list[str], i: int, cmds: list[Command]) -> int:
    m = _PAT_LOAD.match(lines[i])
    if m is None:
        raise ScriptError(f"line {i + 1}: invalid load command {lines[i]!r}")
    cmd = LoadCmd(i + 1, _duration(m.group(2), i + 1), {}, with_nhcb=bool(m.group(1)))
    i += 1
    while i < len(lines) and lines[i]:
        try:
            labels, values = parse_series_line(lines[i])
        except ValueError as exc:
            raise ScriptError(f"line {i + 1}: {exc}") from exc
        cmd.series[labels] = values
        i += 1
    cmds.append(cmd)
    return i


def _parse_eval(lines: list[str], i: int, cmds: list[Command]) -> int:
    header = lines[i]
    mi = _PAT_INSTANT.match(header)
    mr = _PAT_RANGE.match(header)
    lineno = i + 1
    if mi is not None:
        mod = mi.group(1) or ""
        cmd = EvalCmd(lineno, mi.group(3), _duration(mi.group(2) or "", lineno))
    elif mr is not None:
        mod = mr.group(1) or ""
        start = _duration(mr.group(2), lineno)
        end = _duration(mr.group(3), lineno)
        if end < start:
            raise ScriptError(f"line {lineno}: end timestamp is before start timestamp")
        cmd = EvalCmd(
            lineno,
            mr.group(5),
            start,
            end,
            _duration(mr.group(4), lineno),
            is_range=True,
        )
    else:
        raise ScriptError(f"line {lineno}: invalid evaluation command {header!r}")
    cmd.fail = mod == "fail"
    cmd.warn = mod == "warn"
    cmd.info = mod == "info"
    cmd.ordered = mod == "ordered"
    i += 1
    while i < len(lines) and lines[i]:
        line = lines[i]
        i += 1
        if cmd.fail and line.startswith("expected_fail_message"):
            cmd.expected_fail_message = line[len("expected_fail_message") :].strip()
            break
        if cmd.fail and line.startswith("expected_fail_regexp"):
            cmd.expected_fail_regexp = re.compile(line[len("expected_fail_regexp") :].strip())
            break
        if line.split(" ")[0] == "expect":
            em = _PAT_EXPECT.match(line.strip())
            if em is None:
                raise ScriptError(f"line {i}: invalid expect statement {line!r}")
            kind, how, what = em.group(1), em.group(2), em.group(3)
            if how == "msg":
                cmd.expects.append(Expect(kind, message=what.strip()))
            elif how == "regex":
                cmd.expects.append(Expect(kind, regex=re.compile(what.strip())))
            else:
                cmd.expects.append(Expect(kind))
            continue
        scalar = parse_scalar_line(line)
        if scalar is not None:
            cmd.expect_scalar = scalar
            break
        if "{{" in line:
            cmd.has_histogram = True
        try:
            labels, values = parse_series_line(line)
        except ValueError as exc:
            raise ScriptError(f"line {i}: {exc}") from exc
        if len(values) > 1 and not cmd.is_range:
            raise ScriptError(f"line {i}: expecting multiple values in instant evaluation")
        cmd.series.append((labels, values))
    cmds.append(cmd)
    while i < len(lines) and lines[i]:
        i += 1
    return i


def classic_histogram_bases(series: dict[Labels, list[SequenceValue]]) -> list[Labels]:
    """The series `load_with_nhcb` would add as native histograms (X from X_bucket{le})."""
    out: set[Labels] = set()
    for lb in series:
        name = lb.get(METRIC_NAME)
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and (suffix != "_bucket" or lb.has("le")):
                base = lb.without("le").with_mapping({METRIC_NAME: name[: -len(suffix)]})
                out.add(base)
    return sorted(out)


def is_nan(v: float) -> bool:
    """NaN test usable on sequence values."""
    return math.isnan(v)
