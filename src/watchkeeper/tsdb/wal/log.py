"""The write-ahead log: numbered segment files of CRC-checked records, and checkpoints.

Layout (as Prometheus's data/wal): `wal/00000000`, `wal/00000001`, ... and at most one
`wal/checkpoint.NNNNNNNN/` holding what survived of segments up to NNNNNNNN. Each commit is
one `write` (so a killed process loses nothing it acknowledged); fsync is grouped by
interval. Reading stops at the first torn or corrupt record: the damaged tail is cut off,
later segments are removed, and the corruption is logged and counted, never raised.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from watchkeeper.tsdb.wal.records import Record, RecordDecodeError, RecordType, decode, encode

log = logging.getLogger(__name__)

SEGMENT_MAGIC = b"WKWAL\x00\x00\x01"
"""The first 8 bytes of every segment file: format name and version."""

_HEADER = struct.Struct("<BII")  # type, payload length, crc32 of type byte + payload
_SEGMENT_RE = re.compile(r"^\d{8}$")
_CHECKPOINT_RE = re.compile(r"^checkpoint\.(\d{8})$")


def segment_name(index: int) -> str:
    """Returns the file name of segment `index`."""
    return f"{index:08d}"


def list_segments(wal_dir: Path) -> list[int]:
    """Returns the indexes of the segment files in a WAL directory, ascending."""
    if not wal_dir.is_dir():
        return []
    return sorted(int(p.name) for p in wal_dir.iterdir() if _SEGMENT_RE.match(p.name))


def last_checkpoint(wal_dir: Path) -> tuple[int, Path] | None:
    """Returns (index, path) of the newest complete checkpoint, if any."""
    best: tuple[int, Path] | None = None
    if not wal_dir.is_dir():
        return None
    for p in wal_dir.iterdir():
        m = _CHECKPOINT_RE.match(p.name)
        if m and p.is_dir() and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), p)
    return best


def frame(rtype: RecordType, payload: bytes) -> bytes:
    """Returns a record framed with its header, ready to be written to a segment."""
    crc = zlib.crc32(payload, zlib.crc32(bytes((rtype,))))
    return _HEADER.pack(rtype, len(payload), crc) + payload


@dataclass(slots=True)
class Corruption:
    """Where and why reading a segment stopped early."""

    path: Path
    offset: int
    reason: str


def read_segment(path: Path) -> tuple[list[tuple[int, bytes]], Corruption | None]:
    """Reads every intact record of a segment file, and the corruption that ended it, if any."""
    data = path.read_bytes()
    out: list[tuple[int, bytes]] = []
    if len(data) < len(SEGMENT_MAGIC):
        if data and not SEGMENT_MAGIC.startswith(data):
            return out, Corruption(path, 0, "bad segment magic")
        return out, (Corruption(path, 0, "torn segment header") if data else None)
    if data[: len(SEGMENT_MAGIC)] != SEGMENT_MAGIC:
        return out, Corruption(path, 0, "bad segment magic")
    pos = len(SEGMENT_MAGIC)
    end = len(data)
    while pos < end:
        if pos + _HEADER.size > end:
            return out, Corruption(path, pos, "torn record header")
        rtype, length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        if rtype == 0 and length == 0 and crc == 0:
            return out, Corruption(path, pos, "zero-filled tail")
        if start + length > end:
            return out, Corruption(path, pos, "torn record")
        payload = data[start : start + length]
        if zlib.crc32(payload, zlib.crc32(bytes((rtype,)))) != crc:
            return out, Corruption(path, pos, "checksum mismatch")
        out.append((rtype, payload))
        pos = start + length
    return out, None


@dataclass(slots=True)
class ReplayStatus:
    """Progress of a WAL replay, for /api/v1/status/walreplay."""

    min: int = 0
    max: int = 0
    current: int = 0
    corruptions: list[Corruption] = field(default_factory=list)


def read_records(
    wal_dir: Path,
    status: ReplayStatus | None = None,
    *,
    on_corruption: Callable[[Corruption], None] | None = None,
    repair: bool = True,
) -> Iterator[Record]:
    """Yields every record of the newest checkpoint and the segments after it, repairing damage.

    A corrupt record ends the replay: its segment is cut at the record and later segments
    are deleted (as Prometheus's WAL repair does). `on_corruption` hears about each cut.
    With `repair` off nothing is changed on disk (readers of a live or foreign directory).
    """
    status = status if status is not None else ReplayStatus()
    cp = last_checkpoint(wal_dir)
    first = 0
    if cp is not None:
        first = cp[0] + 1
        for seg in list_segments(cp[1]):
            recs, bad = read_segment(cp[1] / segment_name(seg))
            for rtype, payload in recs:
                yield decode(rtype, payload)
            if bad is not None:
                # NB: a checkpoint is written atomically, so damage here is disk rot: keep going.
                _report(bad, status, on_corruption)
    segments = [s for s in list_segments(wal_dir) if s >= first]
    status.min = segments[0] if segments else 0
    status.max = segments[-1] if segments else 0
    for i, seg in enumerate(segments):
        status.current = seg
        path = wal_dir / segment_name(seg)
        recs, bad = read_segment(path)
        offset = len(SEGMENT_MAGIC)
        for rtype, payload in recs:
            try:
                rec = decode(rtype, payload)
            except RecordDecodeError as exc:
                bad = Corruption(path, offset, str(exc))
                break
            offset += _HEADER.size + len(payload)
            yield rec
        if bad is not None:
            _report(bad, status, on_corruption, repair=repair)
            if not repair:
                return
            if bad.reason == "bad segment magic":
                # NB: not our format (a Prometheus WAL?): keep the files aside, never cut them.
                for aside in segments[i:]:
                    src = wal_dir / segment_name(aside)
                    src.rename(src.with_name(src.name + ".unreadable"))
                return
            _repair(path, bad.offset, segments[i + 1 :], wal_dir)
            return


def _report(
    bad: Corruption,
    status: ReplayStatus,
    on_corruption: Callable[[Corruption], None] | None,
    *,
    repair: bool = True,
) -> None:
    status.corruptions.append(bad)
    log.log(
        logging.WARNING if repair else logging.INFO,
        "WAL corruption in %s at offset %d (%s): %s",
        bad.path,
        bad.offset,
        bad.reason,
        "the rest of the log is cut off" if repair else "reading stops there (nothing changed)",
    )
    if on_corruption is not None:
        on_corruption(bad)


def _repair(path: Path, offset: int, later: list[int], wal_dir: Path) -> None:
    with path.open("r+b") as f:
        if offset <= 0:
            f.truncate(0)
            f.write(SEGMENT_MAGIC)
        else:
            f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())
    for seg in later:
        (wal_dir / segment_name(seg)).unlink(missing_ok=True)


class WriteAheadLog:
    """Appends framed records to the current segment; cuts segments; checkpoints.

    Thread-safe: `log` may be called from several committing appenders at once.
    """

    def __init__(
        self,
        wal_dir: Path,
        *,
        segment_size_bytes: int,
        compress: bool = True,
        fsync_interval_ms: int = 1000,
        on_fsync: Callable[[float], None] | None = None,
    ) -> None:
        self.dir = wal_dir
        self.segment_size_bytes = segment_size_bytes
        self.compress = compress
        self.fsync_interval_s = fsync_interval_ms / 1000.0
        self._on_fsync = on_fsync
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._dirty = False
        self._last_sync = time.monotonic()
        wal_dir.mkdir(parents=True, exist_ok=True)
        segs = list_segments(wal_dir)
        self.current = (segs[-1] + 1) if segs else 0
        cp = last_checkpoint(wal_dir)
        if cp is not None:
            self.current = max(self.current, cp[0] + 1)
        for p in wal_dir.iterdir():
            if p.name.endswith(".tmp"):
                shutil.rmtree(p, ignore_errors=True)
        self._open_segment(self.current)

    def _open_segment(self, index: int) -> None:
        path = self.dir / segment_name(index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        os.write(fd, SEGMENT_MAGIC)
        os.fsync(fd)
        _fsync_dir(self.dir)
        self._fd = fd
        self._size = len(SEGMENT_MAGIC)
        self.current = index

    def log(self, records: list[Record]) -> None:
        """Writes records as one write call (after any segment cut) and fsyncs per interval.

        Raises:
            OSError: when the write fails; nothing of the batch is then acknowledged.
        """
        data = b"".join(frame(*encode(r, compress=self.compress)) for r in records)
        if not data:
            return
        with self._lock:
            if self._size + len(data) > self.segment_size_bytes and self._size > len(SEGMENT_MAGIC):
                self._cut_locked()
            try:
                written = os.write(self._fd, data)
                while written < len(data):
                    written += os.write(self._fd, data[written:])
            except OSError:
                # NB: cut a partial record off now, or replay would stop there and lose
                # every later commit.
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    log.exception("cannot cut a partial WAL record off %s", self.current)
                raise
            self._size += len(data)
            self._dirty = True
            if time.monotonic() - self._last_sync >= self.fsync_interval_s:
                self._sync_locked()

    def sync(self) -> None:
        """Fsyncs the current segment if anything was written since the last fsync."""
        with self._lock:
            if self._dirty:
                self._sync_locked()

    def _sync_locked(self) -> None:
        start = time.monotonic()
        os.fdatasync(self._fd)
        self._last_sync = time.monotonic()
        self._dirty = False
        if self._on_fsync is not None:
            self._on_fsync(self._last_sync - start)

    def _cut_locked(self) -> None:
        self._sync_locked()
        os.close(self._fd)
        self._open_segment(self.current + 1)

    def next_segment(self) -> int:
        """Closes the current segment (if it holds records) and returns the last closed index."""
        with self._lock:
            if self._size > len(SEGMENT_MAGIC):
                self._cut_locked()
            return self.current - 1

    def size_bytes(self) -> int:
        """The size of the WAL directory (segments and checkpoint)."""
        total = 0
        for root, _dirs, files in os.walk(self.dir):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:
                    continue
        return total

    def close(self) -> None:
        """Fsyncs and closes the current segment."""
        with self._lock:
            if self._fd >= 0:
                if self._dirty:
                    self._sync_locked()
                os.close(self._fd)
                self._fd = -1


def write_checkpoint(wal_dir: Path, through: int, records: Iterator[Record]) -> Path:
    """Writes records as checkpoint.<through> atomically and deletes what it replaces.

    Segments up to `through` and older checkpoints are removed only after the new
    checkpoint is renamed into place.
    """
    final = wal_dir / f"checkpoint.{through:08d}"
    tmp = wal_dir / f"checkpoint.{through:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    with (tmp / segment_name(0)).open("wb") as f:
        f.write(SEGMENT_MAGIC)
        for rec in records:
            f.write(frame(*encode(rec, compress=True)))
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    _fsync_dir(wal_dir)
    for seg in list_segments(wal_dir):
        if seg <= through:
            (wal_dir / segment_name(seg)).unlink(missing_ok=True)
    for p in wal_dir.iterdir():
        m = _CHECKPOINT_RE.match(p.name)
        if m and int(m.group(1)) < through:
            shutil.rmtree(p, ignore_errors=True)
    return final


def read_checkpoint_and_segments(wal_dir: Path, through: int) -> Iterator[Record]:
    """Yields the records of the newest checkpoint and of the segments up to `through`."""
    cp = last_checkpoint(wal_dir)
    first = 0
    if cp is not None:
        first = cp[0] + 1
        for seg in list_segments(cp[1]):
            recs, _bad = read_segment(cp[1] / segment_name(seg))
            for rtype, payload in recs:
                yield decode(rtype, payload)
    for seg in list_segments(wal_dir):
        if first <= seg <= through:
            recs, _bad = read_segment(wal_dir / segment_name(seg))
            for rtype, payload in recs:
                try:
                    yield decode(rtype, payload)
                except RecordDecodeError:
                    break


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
