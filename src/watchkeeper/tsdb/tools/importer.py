"""`watchkeeper tsdb import openmetrics`: backfills blocks from an OpenMetrics file.

Like `promtool tsdb create-blocks-from openmetrics`: every sample needs a timestamp, and the
data is cut into blocks aligned to the block duration (2h by default). The whole file is
parsed (in pieces, with the shared exposition parser) before anything is written, so bad
input is rejected with its line and reason and leaves the output directory untouched.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.model.exposition import (
    NO_TIMESTAMP,
    ExpositionParseError,
    parse_exposition,
    parse_series_text,
)
from watchkeeper.storage.interface import SeriesSet
from watchkeeper.tsdb.block import write_block

DEFAULT_BLOCK_DURATION_MS: Final = 2 * 3600 * 1000
_PIECE_BYTES: Final = 32 << 20
_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0"


class ImportInputError(ValueError):
    """Raised when the input file is malformed; names the file, line and reason."""


def _pieces(data: bytes, limit: int) -> list[tuple[int, int, int, bytes]]:
    """Cuts the body at line ends into (start, end, first line, carried TYPE line) pieces.

    A piece that starts inside a metric family gets that family's `# TYPE` line in front,
    so that the parser sees the same types as in one pass over the whole file.
    """
    out: list[tuple[int, int, int, bytes]] = []
    start, line = 0, 1
    carried = b""
    while start < limit:
        end = data.find(b"\n", min(limit, start + _PIECE_BYTES), limit)
        end = limit if end < 0 else end + 1
        out.append((start, end, line, carried))
        line += data.count(b"\n", start, end)
        if end < limit and data[end : end + 1] != b"#":
            at = data.rfind(b"\n# TYPE ", 0, end)
            if at >= 0 or data.startswith(b"# TYPE "):
                begin = at + 1 if at >= 0 else 0
                carried = data[begin : data.find(b"\n", begin) + 1]
        else:
            carried = b""
        start = end
    return out


def _parse_file(
    path: Path,
) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Parses the whole file; returns series texts, sample series ids, timestamps, values."""
    data = path.read_bytes()
    tail = data[-64:]
    stripped = tail.rstrip(b"\n")
    if not stripped.endswith(b"# EOF") or (len(stripped) > 5 and stripped[-6:-5] != b"\n"):
        raise ImportInputError(f"{path}: data does not end with # EOF")
    eof_at = len(data) - len(tail) + len(stripped) - len(b"# EOF")
    text_ids: dict[str, int] = {}
    ids_parts: list[npt.NDArray[np.int64]] = []
    ts_parts: list[npt.NDArray[np.int64]] = []
    val_parts: list[npt.NDArray[np.float64]] = []
    for start, end, first_line, carried in _pieces(data, eof_at):
        piece = carried + data[start:end] + b"# EOF\n"
        extra = 1 if carried else 0
        try:
            # Series texts are checked below, once per distinct text (faster than per line).
            parsed = parse_exposition(piece, _CONTENT_TYPE, validate_series=False)
        except ExpositionParseError as exc:
            line = first_line + exc.line - 1 - extra if exc.line else first_line
            raise ImportInputError(f"{path}:{line}: {exc.reason}") from None
        if not parsed.series_text:
            continue
        missing = np.flatnonzero(parsed.timestamps_ms == NO_TIMESTAMP)
        if len(missing):
            bad = parsed.series_text[int(missing[0])]
            raise ImportInputError(
                f"{path}: expected timestamp for series {bad}, got none "
                "(every sample of a backfill needs one)"
            )
        ids = np.fromiter(
            (text_ids.setdefault(t, len(text_ids)) for t in parsed.series_text),
            dtype=np.int64,
            count=len(parsed.series_text),
        )
        ids_parts.append(ids)
        ts_parts.append(parsed.timestamps_ms.astype(np.int64))
        val_parts.append(parsed.values.astype(np.float64))
    if not ids_parts:
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    texts = list(text_ids)
    for t in texts:
        try:
            parse_series_text(t)
        except ExpositionParseError as exc:
            at = data.find(b"\n" + t.encode() + b" ")
            line = data.count(b"\n", 0, at + 1) + 1 if at >= 0 else 1
            raise ImportInputError(f"{path}:{line}: {exc.reason}") from None
    return (
        texts,
        np.concatenate(ids_parts),
        np.concatenate(ts_parts),
        np.concatenate(val_parts),
    )


def import_openmetrics(
    path: Path,
    out_dir: Path,
    *,
    block_duration_ms: int = DEFAULT_BLOCK_DURATION_MS,
) -> list[Path]:
    """Writes blocks for the samples of an OpenMetrics file; returns their directories.

    Raises:
        ImportInputError: for malformed input (nothing is written).
        OSError: when the file cannot be read or blocks cannot be written (blocks written
            by this call are removed again).
    """
    texts, ids, ts, vals = _parse_file(path)
    if not len(ids):
        return []
    labels_of_text = [parse_series_text(t) for t in texts]
    unique = sorted(set(labels_of_text))
    rank = {lbls: i for i, lbls in enumerate(unique)}
    text_rank = np.asarray([rank[lbls] for lbls in labels_of_text], dtype=np.int64)
    series = text_rank[ids]
    window = ts // block_duration_ms
    order = np.lexsort((ts, series, window))
    series, ts, vals, window = series[order], ts[order], vals[order], window[order]
    same = (series[1:] == series[:-1]) & (ts[1:] == ts[:-1])
    if same.any():
        bits = vals.view(np.uint64)
        conflict = same & (bits[1:] != bits[:-1])
        if conflict.any():
            i = int(np.flatnonzero(conflict)[0])
            raise ImportInputError(
                f"{path}: duplicate sample for timestamp {int(ts[i])} with different values "
                f"in series {unique[int(series[i])]}"
            )
        keep = np.concatenate(([True], ~same))
        series, ts, vals, window = series[keep], ts[keep], vals[keep], window[keep]
    cuts = np.flatnonzero(np.diff(window)) + 1
    bounds = [0, *cuts.tolist(), len(window)]
    written: list[Path] = []
    try:
        for a, b in itertools.pairwise(bounds):
            s = series[a:b]
            present = np.unique(s)
            counts = np.bincount(np.searchsorted(present, s), minlength=len(present))
            offsets = np.zeros(len(present) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            batch = SeriesSet([unique[i] for i in present.tolist()], offsets, ts[a:b], vals[a:b])
            # NB: as promtool, a block covers its data's range, not the whole window.
            block = write_block(
                out_dir, batch, mint_ms=int(ts[a:b].min()), maxt_ms=int(ts[a:b].max()) + 1
            )
            if block is not None:
                written.append(block)
    except BaseException:
        for d in written:
            shutil.rmtree(d, ignore_errors=True)
        raise
    return written
