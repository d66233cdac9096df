"""The alert the notifier sends: what Alertmanager's API v2 POST /api/v2/alerts takes."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from watchkeeper.model.labels import Labels


def format_api_time(ms: int) -> str:
    """Formats a millisecond timestamp as Go's time.Time JSON (RFC 3339, UTC)."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        stamp += "." + f"{millis:03d}".rstrip("0")
    return stamp + "Z"


@dataclass(frozen=True, slots=True)
class NotifierAlert:
    """An alert on its way to Alertmanager; 0 means an unset time."""

    labels: Labels
    annotations: Labels
    starts_at_ms: int = 0
    ends_at_ms: int = 0
    generator_url: str = ""

    def to_api(self) -> dict[str, Any]:
        """The JSON object of API v2's postableAlert."""
        out: dict[str, Any] = {
            "labels": self.labels.as_dict(),
            "annotations": self.annotations.as_dict(),
        }
        if self.starts_at_ms:
            out["startsAt"] = format_api_time(self.starts_at_ms)
        if self.ends_at_ms:
            out["endsAt"] = format_api_time(self.ends_at_ms)
        if self.generator_url:
            out["generatorURL"] = self.generator_url
        return out
