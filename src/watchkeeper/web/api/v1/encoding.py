"""JSON encoding of query results, byte for byte as Prometheus writes them.

Sample values are strings: Go's strconv 'f' format with the shortest digits, switching to
'e' below 1e-6 and from 1e21 ("NaN", "+Inf", "-Inf" spelt so); timestamps are seconds
with the milliseconds kept as three digits ("1.050"). Matrices are encoded without a
Python object per point: numpy arrays go through orjson in one call per series, and the
few textual differences from Go are patched with whole-buffer byte replacements.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from watchkeeper.model.exposition.floats import format_go_json_float, format_go_positional
from watchkeeper.model.labels import Labels
from watchkeeper.promql.value import Matrix, QueryStats, Scalar, String, Value, Vector

_NUMPY: Final = orjson.OPT_SERIALIZE_NUMPY
# NB: sentinels sit outside the fast path's safe value range, so a genuine value equal to
# a sentinel sends its series to the slow path and can never be mistaken for one.
_SENTINELS: Final = ((3e-300, b"3e-300]", b"NaN]"), (4e-300, b"4e-300]", b"+Inf]"))
_NEG_INF_SENTINEL: Final = (5e-300, b"5e-300]", b"-Inf]")
_SAFE_MIN: Final = 1e-5
_SAFE_MAX: Final = 1e16
_SAFE_TS_MS: Final = 10**15


def format_sample_value(value: float) -> str:
    """Formats a vector or matrix sample value as Prometheus's API does.

    Example:
        >>> [format_sample_value(v) for v in (1.0, 0.1, 1.5e-7, 1e20, 1e21, float("nan"))]
        ['1', '0.1', '1.5e-07', '100000000000000000000', '1e+21', 'NaN']
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    mag = abs(value)
    if mag != 0 and (mag < 1e-6 or mag >= 1e21):
        return repr(value)
    return format_go_positional(value)


def format_timestamp(timestamp_ms: int) -> str:
    """Formats milliseconds as Prometheus's MarshalTimestamp: seconds, 3-digit fraction.

    Example:
        >>> format_timestamp(1050), format_timestamp(2000), format_timestamp(-1500)
        ('1.050', '2', '-1.500')
    """
    sign = "-" if timestamp_ms < 0 else ""
    secs, frac = divmod(abs(timestamp_ms), 1000)
    return f"{sign}{secs}.{frac:03d}" if frac else f"{sign}{secs}"


def format_json_seconds(timestamp_ms: int) -> str:
    """Formats milliseconds as Go's encoding/json writes the float seconds (scalar results).

    Example:
        >>> format_json_seconds(1780), format_json_seconds(1000)
        ('1.78', '1')
    """
    return format_go_json_float(timestamp_ms / 1000)


def labels_json(labels: Labels) -> bytes:
    """Encodes a label set as a JSON object."""
    return orjson.dumps(dict(labels.pairs))


def _points_slow(ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]) -> bytes:
    parts = [
        f'[{format_timestamp(t)},"{format_sample_value(v)}"]'
        for t, v in zip(ts.tolist(), vals.tolist(), strict=True)
    ]
    return ("[" + ",".join(parts) + "]").encode()


class TimestampTokens:
    """Caches the text of the last timestamp array: a range query's series share one grid.

    Each token carries the punctuation around it: `[[<t>,"` for the first point and
    `"],[<t>,"` for the others, so a series' JSON is these tokens interleaved with its
    value tokens, closed by `"]]`.
    """

    __slots__ = ("_key", "_tokens")

    def __init__(self) -> None:
        self._key: npt.NDArray[np.int64] | None = None
        self._tokens: list[bytes] = []

    def tokens(self, ts: npt.NDArray[np.int64]) -> list[bytes]:
        """Returns the opening token of each point (timestamps must be non-negative)."""
        key = self._key
        if key is not None and len(key) == len(ts) and np.array_equal(key, ts):
            return self._tokens
        secs = orjson.dumps(ts // 1000, option=_NUMPY)[1:-1].split(b",")
        fracs = ts % 1000
        if bool(fracs.any()):
            frac_text = operator.itemgetter(*fracs.tolist())(_FRACTIONS)
            if len(ts) == 1:
                frac_text = (frac_text,)
            secs = [a + b for a, b in zip(secs, frac_text, strict=True)]
        tokens = [b'"],[' + t + b',"' for t in secs]
        tokens[0] = b"[[" + secs[0] + b',"'
        self._key, self._tokens = ts.copy(), tokens
        return tokens


_FRACTIONS: Final = tuple([b""] + [f".{f:03d}".encode() for f in range(1, 1000)])


def encode_points(
    ts: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float64],
    ts_tokens: TimestampTokens | None = None,
) -> bytes:
    """Encodes one series' points as `[[<seconds>,"<value>"],...]`.

    The fast path lets orjson print all values in one call, C-level `split` cut them into
    tokens and `join` interleave them with the timestamps' tokens: the interpreter never
    loops over points. Values orjson would spell differently from Go (exponents) and
    negative timestamps take the per-point path.
    """
    n = len(ts)
    if n == 0:
        return b"[]"
    mag = np.abs(vals)
    plain = (mag < _SAFE_MAX) & ((mag >= _SAFE_MIN) | (mag == 0))
    has_nonfinite = False
    if not bool(plain.all()):
        finite = np.isfinite(vals)
        if not bool((plain | ~finite).all()):
            return _points_slow(ts, vals)
        has_nonfinite = True
    if int(ts[0]) < 0 or int(ts[-1]) >= _SAFE_TS_MS:
        return _points_slow(ts, vals)
    integral = bool((vals == np.trunc(vals)).any())
    return _encode_plain(ts, vals, ts_tokens, integral=integral, nonfinite=has_nonfinite)


def _encode_plain(
    ts: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float64],
    ts_tokens: TimestampTokens | None,
    *,
    integral: bool,
    nonfinite: bool,
) -> bytes:
    """The fast path of `encode_points` once the values are known to be safe for it."""
    filled = vals
    if nonfinite:
        filled = vals.copy()
        filled[np.isnan(vals)] = _SENTINELS[0][0]
        filled[vals == np.inf] = _SENTINELS[1][0]
        filled[vals == -np.inf] = _NEG_INF_SENTINEL[0]
    body = orjson.dumps(filled, option=_NUMPY)[1:-1] + b","
    if integral:
        body = body.replace(b".0,", b",")
    if nonfinite:
        for _, text, name in (*_SENTINELS, _NEG_INF_SENTINEL):
            body = body.replace(text[:-1] + b",", name[:-1] + b",")
    values = body.split(b",")
    values.pop()
    parts: list[bytes] = [b""] * (2 * len(values))
    parts[0::2] = (ts_tokens or TimestampTokens()).tokens(ts)
    parts[1::2] = values
    parts.append(b'"]]')
    return b"".join(parts)


def encode_vector_element(labels: Labels, timestamp_ms: int, value: float) -> bytes:
    """Encodes one instant-vector element: {"metric":{...},"value":[t,"v"]}."""
    return (
        b'{"metric":'
        + labels_json(labels)
        + f',"value":[{format_timestamp(timestamp_ms)},"{format_sample_value(value)}"]}}'.encode()
    )


def iter_result_chunks(value: Value) -> Iterator[bytes]:
    """Yields the JSON of a query's `result` field in pieces (one per series for matrices)."""
    if isinstance(value, Scalar):
        secs = format_json_seconds(value.timestamp_ms)
        yield f'[{secs},"{format_go_positional(value.value)}"]'.encode()
        return
    if isinstance(value, String):
        yield b"[" + format_json_seconds(value.timestamp_ms).encode() + b","
        yield orjson.dumps(value.value) + b"]"
        return
    if isinstance(value, Vector):
        yield b"["
        vals = value.values.tolist()
        t = value.timestamp_ms
        yield b",".join(
            encode_vector_element(lbl, t, v) for lbl, v in zip(value.labels, vals, strict=True)
        )
        yield b"]"
        return
    yield from _iter_matrix(value)


def _iter_matrix(value: Matrix) -> Iterator[bytes]:
    yield b"["
    offsets = value.offsets.tolist()
    stamps = TimestampTokens()
    # NB: the checks of encode_points run once over the whole matrix, reduced per series;
    # ".0," only ever ends an integral value, so its replacement needs no check.
    vals, ts = value.values, value.timestamps_ms
    mag = np.abs(vals)
    ok = mag < _SAFE_MAX
    ok &= (mag >= _SAFE_MIN) | (mag == 0)
    good = _all_per_series(ok, value.offsets).tolist()
    for i, lbl in enumerate(value.labels):
        lo, hi = offsets[i], offsets[i + 1]
        head = b'{"metric":' if i == 0 else b',{"metric":'
        yield head + labels_json(lbl) + b',"values":'
        if not good[i] or hi == lo or int(ts[lo]) < 0 or int(ts[hi - 1]) >= _SAFE_TS_MS:
            yield encode_points(ts[lo:hi], vals[lo:hi], stamps)
        else:
            yield _encode_plain(ts[lo:hi], vals[lo:hi], stamps, integral=True, nonfinite=False)
        yield b"}"
    yield b"]"


def _all_per_series(
    mask: npt.NDArray[np.bool_], offsets: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Whether every entry of a per-sample mask is true in each series' slice."""
    starts = offsets[:-1]
    result = np.ones(len(starts), dtype=np.bool_)
    nonempty = starts < offsets[1:]
    if len(mask) and bool(nonempty.any()):
        # NB: reduceat spans from one start to the next; empty series in between add none.
        result[nonempty] = np.logical_and.reduceat(mask[: int(offsets[-1])], starts[nonempty])
    return result


def stats_json(stats: QueryStats, *, all_stats: bool) -> dict[str, object]:
    """Builds the `stats` object of a query response (timings and sample counts)."""
    samples: dict[str, object] = {
        "totalQueryableSamples": stats.total_queryable_samples,
        "peakSamples": stats.peak_samples,
    }
    if all_stats:
        samples["totalQueryableSamplesPerStep"] = [
            [float(t) / 1000, n] for t, n in stats.samples_per_step
        ]
    return {
        "timings": {
            "evalTotalTime": stats.exec_total_time_s or stats.total_time_s,
            "resultSortTime": stats.result_sort_time_s,
            "queryPreparationTime": stats.query_preparation_time_s,
            "innerEvalTime": stats.inner_eval_time_s,
            "execQueueTime": stats.exec_queue_time_s,
            "execTotalTime": stats.exec_total_time_s or stats.total_time_s,
        },
        "samples": samples,
    }


def envelope_chunks(
    data_chunks: Iterable[bytes], warnings: list[str], infos: list[str]
) -> Iterator[bytes]:
    """Wraps pieces of a `data` value into {"status":"success","data":...,"warnings":...}."""
    yield b'{"status":"success","data":'
    yield from data_chunks
    if warnings:
        yield b',"warnings":' + orjson.dumps(warnings)
    if infos:
        yield b',"infos":' + orjson.dumps(infos)
    yield b"}"
