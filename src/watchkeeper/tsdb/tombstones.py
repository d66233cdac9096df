"""Tombstones: deleted time intervals per series of a block, applied when reading.

A block's `tombstones` file lists (series id, mint, maxt) intervals, inclusive milliseconds,
sorted and merged per series; compaction and `Block.clean_tombstones` drop the covered
samples for good. The format is specified in docs/formats/block.md.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from watchkeeper.tsdb.chunks.errors import CorruptionError

TOMBSTONES_FILENAME: Final = "tombstones"
MAGIC: Final = b"WKTS"
VERSION: Final = 1
HEADER: Final = struct.Struct("<4sII")
"""magic, version, interval count."""
CRC: Final = struct.Struct("<I")
RECORD: Final = np.dtype([("series", "<u4"), ("mint", "<i8"), ("maxt", "<i8")])


class Tombstones:
    """Sorted, merged deletion intervals: interval i is (series[i], mint[i], maxt[i])."""

    __slots__ = ("maxt", "mint", "series")

    def __init__(
        self,
        series: npt.NDArray[np.int64] | None = None,
        mint: npt.NDArray[np.int64] | None = None,
        maxt: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Builds tombstones from parallel arrays (merged and sorted here)."""
        s = np.zeros(0, np.int64) if series is None else np.asarray(series, dtype=np.int64)
        lo = np.zeros(0, np.int64) if mint is None else np.asarray(mint, dtype=np.int64)
        hi = np.zeros(0, np.int64) if maxt is None else np.asarray(maxt, dtype=np.int64)
        self.series, self.mint, self.maxt = _merge(s, lo, hi)

    def __len__(self) -> int:
        return len(self.series)

    def with_intervals(
        self, series: npt.NDArray[np.int64], mint_ms: int, maxt_ms: int
    ) -> Tombstones:
        """Returns tombstones that also delete [mint_ms, maxt_ms] from the given series."""
        n = len(series)
        return Tombstones(
            np.concatenate([self.series, series]),
            np.concatenate([self.mint, np.full(n, mint_ms, dtype=np.int64)]),
            np.concatenate([self.maxt, np.full(n, maxt_ms, dtype=np.int64)]),
        )

    def num_series(self) -> int:
        """The number of series with at least one deleted interval."""
        return len(np.unique(self.series))

    def deleted_mask(
        self, sample_series: npt.NDArray[np.int64], timestamps_ms: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Marks samples (series id, timestamp) that fall in a deleted interval.

        `sample_series` must ascend, and timestamps ascend within each series (as
        `Block.read` produces them); the cost is a few binary searches per interval.
        """
        out = np.zeros(len(timestamps_ms), dtype=np.bool_)
        if not len(self.series) or not len(timestamps_ms):
            return out
        lo = np.searchsorted(sample_series, self.series, side="left")
        hi = np.searchsorted(sample_series, self.series, side="right")
        for a, b, t0, t1 in zip(
            lo.tolist(), hi.tolist(), self.mint.tolist(), self.maxt.tolist(), strict=True
        ):
            if a == b:
                continue
            t = timestamps_ms[a:b]
            i = a + int(np.searchsorted(t, t0, side="left"))
            j = a + int(np.searchsorted(t, t1, side="right"))
            out[i:j] = True
        return out

    def write(self, block_dir: Path) -> None:
        """Writes the tombstones file of a block atomically (temporary file, fsync, rename)."""
        recs = np.empty(len(self.series), dtype=RECORD)
        recs["series"] = self.series
        recs["mint"] = self.mint
        recs["maxt"] = self.maxt
        body = HEADER.pack(MAGIC, VERSION, len(recs)) + recs.tobytes()
        tmp = block_dir / (TOMBSTONES_FILENAME + ".tmp")
        with tmp.open("wb") as f:
            f.write(body + CRC.pack(zlib.crc32(body)))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(block_dir / TOMBSTONES_FILENAME)

    @classmethod
    def read(cls, block_dir: Path) -> Tombstones:
        """Reads a block's tombstones; a missing file means none.

        Raises:
            CorruptionError: when the file is damaged.
        """
        path = block_dir / TOMBSTONES_FILENAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, what: str = "tombstones") -> Tombstones:
        """Parses the bytes of a tombstones file.

        Raises:
            CorruptionError: when the bytes are damaged.
        """
        if len(data) < HEADER.size + CRC.size:
            raise CorruptionError(f"{what}: truncated")
        body = data[: -CRC.size]
        (crc,) = CRC.unpack_from(data, len(body))
        if zlib.crc32(body) != crc:
            raise CorruptionError(f"{what}: checksum mismatch")
        magic, version, n = HEADER.unpack_from(body, 0)
        if magic != MAGIC or version != VERSION:
            raise CorruptionError(f"{what}: bad magic or version")
        if len(body) != HEADER.size + n * RECORD.itemsize:
            raise CorruptionError(f"{what}: length does not match {n} intervals")
        recs = np.frombuffer(body, dtype=RECORD, count=n, offset=HEADER.size)
        return cls(
            recs["series"].astype(np.int64),
            recs["mint"].astype(np.int64),
            recs["maxt"].astype(np.int64),
        )


def _merge(
    series: npt.NDArray[np.int64], mint: npt.NDArray[np.int64], maxt: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sorts intervals by (series, mint) and merges overlapping or adjacent ones."""
    keep = mint <= maxt
    series, mint, maxt = series[keep], mint[keep], maxt[keep]
    if len(series) < 2:
        return series, mint, maxt
    order = np.lexsort((mint, series))
    series, mint, maxt = series[order], mint[order], maxt[order]
    out_s: list[int] = []
    out_lo: list[int] = []
    out_hi: list[int] = []
    for s, lo, hi in zip(series.tolist(), mint.tolist(), maxt.tolist(), strict=True):
        if out_s and out_s[-1] == s and lo <= out_hi[-1] + 1:
            out_hi[-1] = max(out_hi[-1], hi)
        else:
            out_s.append(s)
            out_lo.append(lo)
            out_hi.append(hi)
    return (
        np.asarray(out_s, dtype=np.int64),
        np.asarray(out_lo, dtype=np.int64),
        np.asarray(out_hi, dtype=np.int64),
    )
