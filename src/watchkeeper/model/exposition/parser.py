"""Parsing whole exposition bodies (text 0.0.4, OpenMetrics 1.0, protobuf) into columns.

The fast path treats the body as arrays: it finds newlines, spaces and quotes with numpy,
splits the ordinary lines (`series value [timestamp]` with single spaces) with str.split and
converts the value column at once. Comments, blank lines and unusual lines (tabs, escapes,
exemplars, spaces inside label values) go through the careful per-line parser in lines.py,
which also produces every error message. Next stop for the result: the scrape cache, which
maps each series text to a series ref and calls `parse_series_text` on a miss. A scrape
loop keeps an `ExpositionParser`, which remembers the last body's layout and, while it
repeats, parses only the values. Protobuf bodies go to protobuf.py.
"""

from __future__ import annotations

import dataclasses
import re
from itertools import chain
from operator import itemgetter
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.model.exposition.floats import GO_FLOAT_PATTERN, go_quote
from watchkeeper.model.exposition.lines import (
    OM_TYPES,
    TEXT_TYPES,
    Line,
    normalize_bucket_label,
    parse_om_line,
    parse_text_line,
)
from watchkeeper.model.exposition.protobuf import parse_protobuf
from watchkeeper.model.exposition.series import parse_series_text
from watchkeeper.model.exposition.types import (
    NO_TIMESTAMP,
    Exemplar,
    ExpositionParseError,
    MetricMetadata,
    ParsedExposition,
)
from watchkeeper.model.value import NORMAL_NAN_BITS

TEXT_MEDIA_TYPE: Final = "text/plain"
OPENMETRICS_MEDIA_TYPE: Final = "application/openmetrics-text"
PROTOBUF_MEDIA_TYPE: Final = "application/vnd.google.protobuf"

SCRAPE_PROTOCOL_HEADERS: Final = {
    "PrometheusProto": (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    ),
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
    "PrometheusText1.0.0": "text/plain;version=1.0.0",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
}
"""Prometheus's scrape protocols (config values) and the media types they ask for."""

_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_RE: Final = re.compile(rf"\s*({_TOKEN}/{_TOKEN})\s*")
_PARAM_RE: Final = re.compile(rf'\s*{_TOKEN}\s*=\s*(?:{_TOKEN}|"(?:[^"\\]|\\.)*")\s*')
# NB: possessive quantifiers: these patterns never need to backtrack, and sre is faster so.
_LABEL_PAIR: Final = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\\n]*+"'
_SERIES: Final = (
    r"[a-zA-Z_:][a-zA-Z0-9_:]*+(?:\{(?:" + _LABEL_PAIR + r"(?:," + _LABEL_PAIR + r")*+,?)?\})?"
)
_SERIES_COLUMN_RE: Final = re.compile(rf"(?:{_SERIES}\n)*+{_SERIES}")
_SERIES_RE: Final = re.compile(_SERIES)
_FLOAT_COLUMN_RE: Final = re.compile(rf"(?:(?:{GO_FLOAT_PATTERN})\n)*(?:{GO_FLOAT_PATTERN})")
_FLOAT_RE: Final = re.compile(GO_FLOAT_PATTERN)
_CT_TYPES: Final = frozenset(("counter", "summary", "histogram"))


def media_type_for(content_type: str, fallback: str | None = None) -> tuple[str, str | None]:
    """Chooses the parser for a Content-Type as Prometheus 3.5 does (textparse.New).

    `fallback` is a scrape protocol name (e.g. "PrometheusText0.0.4", as in
    `fallback_scrape_protocol`) or a media type. Returns (media type, warning or None).

    Raises:
        ExpositionParseError: when the type is blank, unparsable or unsupported and there is
            no fallback (Prometheus's messages).
    """
    fb = ""
    if fallback:
        header = SCRAPE_PROTOCOL_HEADERS.get(fallback, fallback)
        fb = header.split(";", 1)[0].strip().lower()
    if not content_type:
        if not fb:
            raise ExpositionParseError(
                "non-compliant scrape target sending blank Content-Type and no "
                "fallback_scrape_protocol specified for target"
            )
        return fb, (
            "non-compliant scrape target sending blank Content-Type, using "
            f"fallback_scrape_protocol {go_quote(fb)}"
        )
    head, *params = content_type.split(";")
    m = _MEDIA_RE.fullmatch(head)
    if m is None or any(_PARAM_RE.fullmatch(p) is None for p in params if p.strip()):
        if not fb:
            raise ExpositionParseError(
                f"cannot parse Content-Type {go_quote(content_type)} and no "
                "fallback_scrape_protocol for target"
            )
        return fb, (
            f"could not parse received Content-Type {go_quote(content_type)}, using "
            f"fallback_scrape_protocol {go_quote(fb)}"
        )
    media = m.group(1).lower()
    if media in (OPENMETRICS_MEDIA_TYPE, PROTOBUF_MEDIA_TYPE, TEXT_MEDIA_TYPE):
        return media, None
    if not fb:
        raise ExpositionParseError(
            f"received unsupported Content-Type {go_quote(content_type)} and no "
            "fallback_scrape_protocol specified for target"
        )
    return fb, (
        f"received unsupported Content-Type {go_quote(content_type)}, using "
        f"fallback_scrape_protocol {go_quote(fb)}"
    )


def parse_exposition(
    body: bytes,
    content_type: str,
    *,
    fallback: str | None = None,
    validate_series: bool = True,
    skip_created_series: bool = False,
    classic_histograms: bool = False,
) -> ParsedExposition:
    """Parses a whole scrape (or push, or file) body.

    Args:
        body: the (decompressed) body.
        content_type: the Content-Type header; chooses the format as Prometheus 3.5 does.
        fallback: `fallback_scrape_protocol` for blank, bad or unknown content types.
        validate_series: check the syntax of every series text here; the scraper may pass
            False and rely on `parse_series_text` on cache misses (faster).
        skip_created_series: drop OpenMetrics `_created` samples of counters, summaries and
            histograms (their values still fill `created_timestamps_ms`).
        classic_histograms: protobuf only: also parse the classic buckets of histograms that
            carry native data (`always_scrape_classic_histograms`).

    Raises:
        ExpositionParseError: with the 1-based line and Prometheus's reason.
    """
    return ExpositionParser(remember=False).parse(
        body,
        content_type,
        fallback=fallback,
        validate_series=validate_series,
        skip_created_series=skip_created_series,
        classic_histograms=classic_histograms,
    )


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        bad = body[exc.start : exc.end]
        raise ExpositionParseError(f"invalid UTF-8 byte sequence {bad!r}", line) from None


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    """The line layout of a body whose sample lines are all plain `series value`.

    Lines are kept as runs (slices of the body's lines), not per-line indices, so a target's
    layout costs memory per family, not per series; the series texts are shared with the
    parse result (and so with the scrape cache).
    """

    om: bool
    validated: bool
    n_lines: int
    fixed_runs: tuple[slice, ...]
    fixed_lines: list[str]
    sample_runs: tuple[slice, ...]
    raw: list[str]
    raw_chars: int
    fixed_chars: int
    series: list[str]
    metadata: dict[str, MetricMetadata]


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[slice, ...]:
    """The runs of True in mask, as slices."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return tuple(
        slice(lo, hi) for lo, hi in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)
    )


def _gather(lines: list[str], runs: tuple[slice, ...]) -> list[str]:
    """The lines in the runs, in order."""
    if len(runs) == 1:
        return lines[runs[0]]
    return list(chain.from_iterable(map(lines.__getitem__, runs)))


class ExpositionParser:
    """Parses successive bodies of one source (one scrape target), fastest when they repeat.

    Most targets expose the same lines every time with only the values changed. After a
    body whose samples are all plain `series value` lines, the parser remembers its layout;
    the next body is split into lines and, when its comment lines are identical and every
    sample line starts with the same series text, only the values are parsed (no numpy
    scanning, no series work). Anything else, and any doubt, takes the full parse, so the
    result is always exactly what `parse_exposition` returns.
    """

    def __init__(self, *, remember: bool = True) -> None:
        """Starts with no layout; with remember=False it never keeps one (one-off parses)."""
        self._remember = remember
        self._layout: _Layout | None = None

    def parse(
        self,
        body: bytes,
        content_type: str,
        *,
        fallback: str | None = None,
        validate_series: bool = True,
        skip_created_series: bool = False,
        classic_histograms: bool = False,
    ) -> ParsedExposition:
        """Parses one body; arguments and errors as for `parse_exposition`.

        Raises:
            ExpositionParseError: with the 1-based line and Prometheus's reason.
        """
        media, warning = media_type_for(content_type, fallback)
        if media == PROTOBUF_MEDIA_TYPE:
            self._layout = None
            result = parse_protobuf(body, classic_histograms=classic_histograms)
            return dataclasses.replace(result, warnings=(warning,) if warning else ())
        om = media == OPENMETRICS_MEDIA_TYPE
        text = _decode(body)
        warnings = (warning,) if warning else ()
        layout = self._layout
        if layout is not None and layout.om == om and (layout.validated or not validate_series):
            quick = _parse_with_layout(text, layout, media, warnings)
            if quick is not None:
                return quick
        parser = _Parser(text, om=om, validate_series=validate_series)
        try:
            result = parser.run()
        except ExpositionParseError:
            self._layout = None
            raise
        if self._remember:
            self._layout = _layout_of(text, parser, result, om=om, validated=validate_series)
        if om and skip_created_series and result.created_timestamps_ms is not None:
            result = _drop_created(result, parser.created_mask)
        return dataclasses.replace(result, content_type=media, warnings=warnings)


def _layout_of(
    text: str, parser: _Parser, result: ParsedExposition, *, om: bool, validated: bool
) -> _Layout | None:
    """The layout of a fully parsed body, or None when it is not plain enough to reuse."""
    plain = parser.plain_samples
    if plain is None or not len(plain[1]) or result.exemplars:
        return None
    if result.created_timestamps_ms is not None or (om and "_created" in text):
        return None  # NB: whether _created values count depends on the values.
    sample_idx, raw = plain
    lines = text.split("\n")
    is_sample = np.zeros(len(lines), dtype=np.bool_)
    is_sample[sample_idx] = True
    fixed_runs = _runs(~is_sample)
    sample_runs = _runs(is_sample)
    fixed_lines = _gather(lines, fixed_runs)
    return _Layout(
        om=om,
        validated=validated,
        n_lines=len(lines),
        fixed_runs=fixed_runs,
        fixed_lines=fixed_lines,
        sample_runs=sample_runs,
        raw=raw,
        raw_chars=sum(map(len, raw)),
        fixed_chars=sum(map(len, fixed_lines)),
        series=list(result.series_text),
        metadata=dict(result.metadata),
    )


def _parse_with_layout(
    text: str, layout: _Layout, media: str, warnings: tuple[str, ...]
) -> ParsedExposition | None:
    """Parses a body laid out as the last one (only values changed); None when it is not."""
    lines = text.split("\n")
    if len(lines) != layout.n_lines or _gather(lines, layout.fixed_runs) != layout.fixed_lines:
        return None
    n = len(layout.raw)
    rests = list(map(str.removeprefix, _gather(lines, layout.sample_runs), layout.raw))
    joined = "\n".join(rests)
    # NB: removeprefix leaves a line whole when it does not start with its series, so the
    # rests are exactly as long as the sample lines less the series texts only if all did.
    sample_chars = len(text) - len(lines) + 1 - layout.fixed_chars
    if len(joined) - n + 1 != sample_chars - layout.raw_chars:
        return None
    # Each rest must be one space and a value: then the spaces are exactly n, one per rest.
    if not joined.startswith(" ") or joined.count(" ") != n or joined.count("\n ") != n - 1:
        return None
    values = _spaced_floats(rests, joined)
    if values is None:
        return None
    nan = np.isnan(values)
    if nan.any():
        values.view(np.uint64)[nan] = np.uint64(NORMAL_NAN_BITS)
    return ParsedExposition(
        series_text=list(layout.series),
        values=values,
        timestamps_ms=np.full(n, NO_TIMESTAMP, dtype=np.int64),
        metadata=dict(layout.metadata),
        content_type=media,
        warnings=warnings,
    )


def _count_in(
    positions: npt.NDArray[np.intp], lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Counts sorted positions p with lo <= p < hi, for each pair."""
    counts: npt.NDArray[np.intp] = np.searchsorted(positions, hi) - np.searchsorted(positions, lo)
    return counts


def _pick(seq: list[str], idx: npt.NDArray[np.intp]) -> list[str]:
    """Returns [seq[i] for i in idx] without a Python-level loop."""
    if len(idx) == 0:
        return []
    if len(idx) == 1:
        return [seq[int(idx[0])]]
    return list(itemgetter(*idx.tolist())(seq))


_META_FAST_RE: Final = re.compile(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ([^\\]*)")
_FLOAT_CHARS: Final = b"0123456789.eE+-\n"
_DIGIT_CHARS: Final = b"0123456789\n"
_SPACED_FLOAT_CHARS: Final = b"0123456789.eE+-\n "


def _floats(tokens: list[str]) -> npt.NDArray[np.float64] | None:
    """Converts Go-syntax float tokens at once; None when one is not valid Go syntax."""
    if not tokens:
        return np.empty(0, dtype=np.float64)
    joined = "\n".join(tokens)
    plain = joined.replace("NaN", "").replace("+Inf", "").replace("-Inf", "")
    odd = (
        not plain.isascii()
        or bool(plain.encode("ascii").translate(None, _FLOAT_CHARS))
        or "+NaN" in joined
        or "-NaN" in joined
    )
    if odd and (_FLOAT_COLUMN_RE.fullmatch(joined) is None or "_" in joined):
        return None
    try:
        values = np.fromiter(map(float, tokens), dtype=np.float64, count=len(tokens))
    except ValueError:
        return None
    inf = np.isinf(values)
    if inf.any() and any("n" not in tokens[i].lower() for i in np.flatnonzero(inf).tolist()):
        return None  # NB: Go reports overflow ("value out of range") where Python says inf.
    return values


def _spaced_floats(rests: list[str], joined: str) -> npt.NDArray[np.float64] | None:
    """Converts " value" strings (joined: them with newlines) in the common spellings only.

    Digits, ".", "e", signs, NaN and ±Inf; anything else (rarer spellings that Go accepts
    too, and every error) answers None, for the full parse to handle.
    """
    plain = joined.replace("NaN", "").replace("+Inf", "").replace("-Inf", "")
    if not plain.isascii() or plain.encode("ascii").translate(None, _SPACED_FLOAT_CHARS):
        return None
    if "+NaN" in joined or "-NaN" in joined:
        return None
    try:
        values = np.fromiter(map(float, rests), dtype=np.float64, count=len(rests))
    except ValueError:
        return None
    inf = np.isinf(values)
    if inf.any() and any("n" not in rests[i].lower() for i in np.flatnonzero(inf).tolist()):
        return None  # NB: Go reports overflow ("value out of range") where Python says inf.
    return values


def _bad_floats(tokens: list[str]) -> npt.NDArray[np.intp]:
    """Positions of tokens that are not valid Go floats (the slow, exact check)."""
    bad = []
    for i, tok in enumerate(tokens):
        if _FLOAT_RE.fullmatch(tok) is None or (
            "n" not in tok.lower() and float(tok) in (float("inf"), float("-inf"))
        ):
            bad.append(i)
    return np.array(bad, dtype=np.intp)


class _Parser:
    """One parse of one body; state lives here only for the duration of `run`."""

    def __init__(self, text: str, *, om: bool, validate_series: bool) -> None:
        self.text = text
        self.om = om
        self.validate_series = validate_series
        self.created_mask: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self.starts = np.zeros(0, dtype=np.intp)
        self.ends = np.zeros(0, dtype=np.intp)
        # Set by `_assemble` when every sample line is plain `series value`: the line
        # indices of the samples and their series as written (before le/quantile rewrites).
        self.plain_samples: tuple[npt.NDArray[np.intp], list[str]] | None = None

    def line(self, i: int) -> str:
        """The text of line i (0-based, without its newline)."""
        return self.text[int(self.starts[i]) : int(self.ends[i])]

    def _parse_line(self, i: int) -> Line:
        try:
            text = self.line(i)
            return parse_om_line(text) if self.om else parse_text_line(text)
        except ValueError as exc:
            raise ExpositionParseError(str(exc), i + 1) from None

    def run(self) -> ParsedExposition:
        text = self.text
        chars = self._char_array(text)
        nl = np.flatnonzero(chars == 10)
        n_lines = len(nl) + (0 if text.endswith("\n") or not text else 1)
        starts = np.zeros(n_lines, dtype=np.intp)
        starts[1:] = nl[: n_lines - 1] + 1
        ends = np.full(n_lines, len(chars), dtype=np.intp)
        ends[: min(len(nl), n_lines)] = nl[:n_lines]
        self.starts, self.ends = starts, ends
        if self.om:
            self._check_om_end(n_lines)
        first = chars[np.minimum(starts, max(len(chars) - 1, 0))] if len(chars) else starts
        special = (ends == starts) | (first == 35)
        if not self.om:
            # Leading blanks: the line may still be blank or a comment (or HELP/TYPE).
            for i in np.flatnonzero(((first == 32) | (first == 9)) & ~special).tolist():
                stripped = self.line(i).lstrip(" \t")
                special[i] = not stripped or stripped.startswith("#")
        special_idx = np.flatnonzero(special)
        sample_idx = np.flatnonzero(~special)
        spaces = np.flatnonzero(chars == 32)
        sp_start = np.searchsorted(spaces, starts)
        n_space_all = np.searchsorted(spaces, ends) - sp_start
        n_space = n_space_all[sample_idx]
        slow = (n_space < 1) | (n_space > 2)
        if not self.validate_series:
            # A space inside a label value leaves an odd number of quotes before it.
            s_starts = starts[sample_idx]
            quotes = np.flatnonzero(chars == 34)
            k = np.minimum(sp_start[sample_idx], max(len(spaces) - 1, 0))
            first_space = np.where(n_space > 0, spaces[k] if len(spaces) else s_starts, s_starts)
            slow |= _count_in(quotes, s_starts, first_space) % 2 == 1
        for char in ("\\", "\t"):
            # Escapes may hide quotes; tabs separate tokens in the text format.
            if char in text:
                s_starts, s_ends = starts[sample_idx], ends[sample_idx]
                where = np.flatnonzero(chars == ord(char))
                slow |= _count_in(where, s_starts, s_ends) > 0
        counts = n_space_all + 1
        tstart = (np.cumsum(counts) - counts)[sample_idx]
        tokens = text.replace("\n", " ").split(" ")
        return self._assemble(tokens, tstart, n_space, special_idx, sample_idx, slow=slow)

    @staticmethod
    def _char_array(text: str) -> npt.NDArray[np.uint32] | npt.NDArray[np.uint8]:
        if text.isascii():
            return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)

    def _check_om_end(self, n_lines: int) -> None:
        """OpenMetrics must end with "# EOF" (and an optional newline), and nothing after it."""
        if n_lines and self.line(n_lines - 1) == "# EOF":
            return
        for i in range(n_lines):
            if self.line(i) == "# EOF":
                raise ExpositionParseError("unexpected data after # EOF", i + 2)
            self._parse_line(i)
        raise ExpositionParseError("data does not end with # EOF", n_lines + 1)

    def _assemble(
        self,
        tokens: list[str],
        tstart: npt.NDArray[np.intp],
        n_space: npt.NDArray[np.intp],
        special_idx: npt.NDArray[np.intp],
        sample_idx: npt.NDArray[np.intp],
        *,
        slow: npt.NDArray[np.bool_],
    ) -> ParsedExposition:
        while True:
            fast_pos = np.flatnonzero(~slow)
            columns = self._split_fast(tokens, tstart[fast_pos], n_space[fast_pos])
            if isinstance(columns, tuple):
                break
            slow = slow.copy()
            # NB: an empty answer must still make progress: then every line goes the slow way.
            slow[fast_pos[columns] if len(columns) else fast_pos] = True
        series_f, values_f, ts_f = columns
        slow_pos = np.flatnonzero(slow)
        if not len(slow_pos) and bool((n_space == 1).all()):
            self.plain_samples = (sample_idx, list(series_f))
        n = len(sample_idx)
        values = np.empty(n, dtype=np.float64)
        timestamps = np.empty(n, dtype=np.int64)
        values[fast_pos] = values_f
        timestamps[fast_pos] = ts_f
        series_s: list[str] = []
        exemplars: dict[int, Exemplar] = {}
        for p in slow_pos.tolist():
            li = int(sample_idx[p])
            parsed = self._parse_line(li)
            if parsed.kind != "sample":  # pragma: no cover - special lines are filtered out
                raise ExpositionParseError("expected a sample", li + 1)
            series_s.append(parsed.series)
            values[p] = parsed.value
            timestamps[p] = NO_TIMESTAMP if parsed.timestamp_ms is None else parsed.timestamp_ms
            if parsed.exemplar is not None:
                exemplars[p] = parsed.exemplar
        if len(slow_pos) == 0:
            series = series_f
        elif len(fast_pos) == 0:
            series = series_s
        else:
            order = np.argsort(np.concatenate([fast_pos, slow_pos]), kind="stable")
            series = _pick(series_f + series_s, order)
        nan = np.isnan(values)
        if nan.any():
            values.view(np.uint64)[nan] = np.uint64(NORMAL_NAN_BITS)
        metadata, regions = self._metadata(special_idx)
        for start, stop, mtype in regions:
            if mtype in ("histogram", "summary"):
                label = 'le="' if mtype == "histogram" else 'quantile="'
                for s in range(start, min(stop, n)):
                    if label in series[s]:
                        series[s] = normalize_bucket_label(series[s], mtype)
        created = None
        if self.om and "_created" in self.text:
            created = self._created(series, values, regions, n)
        return ParsedExposition(
            series_text=series,
            values=values,
            timestamps_ms=timestamps,
            metadata=metadata,
            exemplars=exemplars,
            created_timestamps_ms=created,
        )

    def _split_fast(
        self, tokens: list[str], tstart: npt.NDArray[np.intp], n_space: npt.NDArray[np.intp]
    ) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.int64]] | npt.NDArray[np.intp]:
        """Columns of the ordinary lines, or the positions of lines that need the slow path."""
        n = len(tstart)
        if n == 0:
            return [], np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
        series = _pick(tokens, tstart)
        vals = _pick(tokens, tstart + 1)
        has_ts = n_space == 2
        ts_pos = np.flatnonzero(has_ts)
        ts_tokens = _pick(tokens, tstart[ts_pos] + 2)
        if self.validate_series:
            if _SERIES_COLUMN_RE.fullmatch("\n".join(series)) is None:
                return np.flatnonzero([_SERIES_RE.fullmatch(s) is None for s in series])
        elif "" in series:
            return np.flatnonzero([not s for s in series])
        values = _floats(vals)
        if values is None:
            return _bad_floats(vals)
        timestamps = np.full(n, NO_TIMESTAMP, dtype=np.int64)
        if ts_tokens:
            if self.om:
                seconds = _floats(ts_tokens)
                if seconds is None:
                    return ts_pos
                ms = seconds * 1000.0
                if not (np.isfinite(ms).all() and (np.abs(ms) < 9.2e18).all()):
                    return ts_pos
                timestamps[ts_pos] = ms.astype(np.int64)
            else:
                joined = "\n".join(ts_tokens).encode()
                if joined.translate(None, _DIGIT_CHARS):
                    return ts_pos
                try:
                    timestamps[ts_pos] = np.fromiter(map(int, ts_tokens), np.int64, len(ts_pos))
                except (ValueError, OverflowError):
                    return ts_pos
        return series, values, timestamps

    def _metadata(
        self, special_idx: npt.NDArray[np.intp]
    ) -> tuple[dict[str, MetricMetadata], list[tuple[int, int, str]]]:
        """Reads comment lines; returns metadata and (first, stop, type) sample index ranges."""
        meta: dict[str, list[str]] = {}
        regions: list[tuple[int, int, str]] = []
        current = "unknown"
        region_start = 0
        types = OM_TYPES if self.om else TEXT_TYPES
        for k, li in enumerate(special_idx.tolist()):
            line = self.line(li)
            m = _META_FAST_RE.fullmatch(line)
            if m is not None and (m.group(1) == "HELP" or m.group(3) in types):
                kind, name, text = m.group(1).lower(), m.group(2), m.group(3)
                if kind == "type" and not self.om:
                    text = TEXT_TYPES[text]
            else:
                parsed = self._parse_line(li)
                if parsed.kind in ("blank", "comment"):
                    continue
                if parsed.kind == "eof":
                    if li == len(self.starts) - 1:
                        continue
                    raise ExpositionParseError("unexpected data after # EOF", li + 2)
                kind, name, text = parsed.kind, parsed.name, parsed.text
            entry = meta.setdefault(name, ["unknown", "", ""])
            if kind == "type":
                boundary = li - k
                if boundary > region_start:
                    regions.append((region_start, boundary, current))
                region_start = boundary
                current = text
                entry[0] = text
            elif kind == "help":
                entry[1] = text
            else:
                entry[2] = text
        regions.append((region_start, 1 << 62, current))
        metadata = {name: MetricMetadata(t, h, u) for name, (t, h, u) in meta.items()}
        return metadata, regions

    def _created(
        self,
        series: list[str],
        values: npt.NDArray[np.float64],
        regions: list[tuple[int, int, str]],
        n: int,
    ) -> npt.NDArray[np.int64] | None:
        """Fills created timestamps (ms) from `_created` samples, per OpenMetrics family."""
        created = np.full(n, NO_TIMESTAMP, dtype=np.int64)
        mask = np.zeros(n, dtype=np.bool_)
        found = False
        for start, stop, mtype in regions:
            if mtype not in _CT_TYPES:
                continue
            end = min(stop, n)
            keys: list[tuple[str, tuple[tuple[str, str], ...]]] = []
            cts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
            for s in range(start, end):
                try:
                    lbls = parse_series_text(series[s])
                except ExpositionParseError:
                    keys.append(("", ()))
                    continue
                name = lbls.name
                rest = tuple(p for p in lbls.pairs if p[0] not in ("__name__", "le", "quantile"))
                if name.endswith("_created"):
                    mask[s] = True
                    v = float(values[s])
                    if abs(v) < 9.2e15:
                        cts[(name[: -len("_created")], rest)] = int(v * 1000.0)
                    keys.append(("", ()))
                else:
                    keys.append((_family_of(name, mtype), rest))
            for s, key in zip(range(start, end), keys, strict=True):
                ct = cts.get(key)
                if ct is not None and key[0]:
                    created[s] = ct
                    found = True
        self.created_mask = mask
        return created if found or mask.any() else None


def _family_of(name: str, mtype: str) -> str:
    """The family name of a sample name (foo_total -> foo) for _created matching."""
    suffixes = {
        "counter": ("_total",),
        "summary": ("_sum", "_count"),
        "histogram": ("_bucket", "_sum", "_count"),
    }[mtype]
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _drop_created(result: ParsedExposition, mask: npt.NDArray[np.bool_]) -> ParsedExposition:
    keep = np.flatnonzero(~mask)
    remap = {int(old): new for new, old in enumerate(keep.tolist())}
    created = result.created_timestamps_ms
    return dataclasses.replace(
        result,
        series_text=_pick(result.series_text, keep),
        values=result.values[keep],
        timestamps_ms=result.timestamps_ms[keep],
        exemplars={remap[i]: e for i, e in result.exemplars.items() if i in remap},
        created_timestamps_ms=None if created is None else created[keep],
    )
