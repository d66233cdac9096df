"""Sample value conventions shared by every stage.

Prometheus marks a series as stale with a special NaN (bit pattern 0x7ff0000000000002) that
must travel unchanged through scrape, WAL, blocks, remote write and the API.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np
import numpy.typing as npt

STALE_NAN_BITS: Final = 0x7FF0000000000002
"""The bit pattern of Prometheus's staleness marker."""

NORMAL_NAN_BITS: Final = 0x7FF8000000000001
"""The bit pattern Prometheus uses for an ordinary NaN it produces."""

STALE_NAN: Final[float] = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
"""The staleness marker as a Python float (keep it as bits when copying: see is_stale_nan)."""


def is_stale_nan(value: float) -> bool:
    """Tells whether a float is the staleness marker (compares bits, not values)."""
    return bool(struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS))


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Returns a boolean mask of the staleness markers in an array of values."""
    mask: npt.NDArray[np.bool_] = values.view(np.uint64) == np.uint64(STALE_NAN_BITS)
    return mask
