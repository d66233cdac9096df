"""Finds the reference binaries fetched by ../shared/peers/fetch-peers.sh."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def peers_dir() -> Path:
    """The folder that holds the peer binaries (may not exist)."""
    root = os.environ.get("WATCHKEEPER_PEERS") or str(Path.home() / ".cache/watchkeeper-peers")
    return Path(root) / "bin"


def peer_binary(name: str) -> Path | None:
    """Returns the path of a peer binary (prometheus, promtool, alertmanager...), or None."""
    candidate = peers_dir() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def shared_dir() -> Path:
    """The ../shared folder beside the repository (conformance data, peers script)."""
    return Path(__file__).resolve().parents[3].parent / "shared"
