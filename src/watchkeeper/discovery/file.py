"""file_sd_configs: target groups read from JSON or YAML files, re-read when they change.

Files are found by glob; each is re-read when its mtime or size changes (polled every
`poll_interval_s`) and at every refresh_interval. A file that fails to parse keeps its last
good groups and counts `prometheus_sd_file_read_errors_total`; a deleted file drops its
groups. Every group gets `__meta_filepath`.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import time
from pathlib import Path

import yaml

from watchkeeper.discovery.provider import FileSDConfigLike, SDMetrics, SendGroups
from watchkeeper.discovery.targetgroup import TargetGroup, TargetGroupError, groups_from_data

log = logging.getLogger(__name__)

FILEPATH_LABEL = "__meta_filepath"
"""The label that names the file a group came from."""


class FileProvider:
    """Watches the files of one file_sd_config."""

    def __init__(
        self, config: FileSDConfigLike, metrics: SDMetrics, *, poll_interval_s: float = 1.0
    ) -> None:
        self._patterns = list(config.files)
        self._refresh_s = config.refresh_interval / 1000
        self._poll_s = min(poll_interval_s, self._refresh_s) if self._refresh_s else poll_interval_s
        self._metrics = metrics
        self._stamps: dict[str, tuple[int, int]] = {}
        self._groups: dict[str, list[TargetGroup]] = {}

    def _list_files(self) -> list[str]:
        files: set[str] = set()
        for pattern in self._patterns:
            files.update(glob.glob(pattern))
        return sorted(files)

    def _read(self, filename: str) -> list[TargetGroup]:
        text = Path(filename).read_text(encoding="utf-8")
        data = json.loads(text) if filename.lower().endswith(".json") else yaml.safe_load(text)
        groups = groups_from_data(data, filename)
        for g in groups:
            g.labels[FILEPATH_LABEL] = filename
        return groups

    def refresh(self, *, force: bool) -> bool:
        """Re-reads changed files (all files when `force`); tells whether groups changed."""
        started = time.perf_counter()
        changed = False
        files = self._list_files()
        for gone in set(self._groups) - set(files):
            del self._groups[gone]
            self._stamps.pop(gone, None)
            self._metrics.file_mtime.remove(gone)
            changed = True
        for filename in files:
            try:
                st = os.stat(filename)
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            if not force and self._stamps.get(filename) == stamp:
                continue
            self._stamps[filename] = stamp
            try:
                groups = self._read(filename)
            except (
                OSError,
                UnicodeDecodeError,
                ValueError,
                yaml.YAMLError,
                TargetGroupError,
            ) as exc:
                self._metrics.file_read_errors.inc()
                log.error("Error reading file %s: %s", filename, exc)
                continue
            self._metrics.file_mtime.labels(filename).set(st.st_mtime)
            if groups != self._groups.get(filename):
                self._groups[filename] = groups
                changed = True
        self._metrics.file_scan_duration.observe(time.perf_counter() - started)
        return changed

    def current(self) -> list[TargetGroup]:
        """The groups of every file, in file order."""
        return [g for f in sorted(self._groups) for g in self._groups[f]]

    async def run(self, send: SendGroups) -> None:
        """Reads the files, sends their groups, then watches them until cancelled."""
        self.refresh(force=True)
        send(self.current())
        loop = asyncio.get_running_loop()
        last_full = loop.time()
        while True:
            await asyncio.sleep(self._poll_s)
            force = loop.time() - last_full >= self._refresh_s
            if force:
                last_full = loop.time()
            if self.refresh(force=force):
                send(self.current())
