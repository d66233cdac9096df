"""static_configs: target groups written in the config itself."""

from __future__ import annotations

from collections.abc import Sequence

from watchkeeper.discovery.provider import SendGroups, StaticConfigLike
from watchkeeper.discovery.targetgroup import ADDRESS_LABEL, TargetGroup


class StaticProvider:
    """Sends the configured groups once; sources are "0", "1", ... as in Prometheus."""

    def __init__(self, configs: Sequence[StaticConfigLike]) -> None:
        self._groups = [
            TargetGroup(
                targets=[{ADDRESS_LABEL: t} for t in sc.targets],
                labels=dict(sc.labels),
                source=str(i),
            )
            for i, sc in enumerate(configs)
        ]

    async def run(self, send: SendGroups) -> None:
        """Sends the groups and returns."""
        send(list(self._groups))
