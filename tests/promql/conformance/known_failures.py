"""The one list of Prometheus v3 PromQL test cases we are known to fail, with the reason.

Keys are (file name, line of the `eval` command). A case listed here that starts passing
fails the conformance test too, so the list stays true: remove it when it passes.
"""

from __future__ import annotations

from typing import Final

KNOWN_FAILURES: Final[dict[tuple[str, int], str]] = {}
"""(file, eval line) -> why we fail it."""
