"""Small fakes of the web API's collaborators, for tests of the HTTP API and its clients.

Each fake holds plain data that a test fills in; `MemoryTsdbAdmin` computes TSDB stats from
a `MemoryStorage`. `make_api_deps` wires them with the real PromQL engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from watchkeeper.model.labels import EMPTY_LABELS, Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.remote import codec
from watchkeeper.storage.interface import SelectHints
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.web.api.v1.deps import (
    ActiveTarget,
    ApiDeps,
    DroppedTarget,
    RuleGroupInfo,
    TsdbStats,
)
from watchkeeper.web.app import WebOptions, create_app, serve
from watchkeeper.web.notifications import NotificationHub


@dataclass
class StaticTargets:
    """A TargetRetriever over fixed lists."""

    active: dict[str, list[ActiveTarget]] = field(default_factory=dict)
    dropped: dict[str, list[DroppedTarget]] = field(default_factory=dict)

    def targets_active(self) -> Mapping[str, Sequence[ActiveTarget]]:
        """Returns the active targets by pool."""
        return self.active

    def targets_dropped(self) -> Mapping[str, Sequence[DroppedTarget]]:
        """Returns the dropped targets by pool."""
        return self.dropped

    def targets_dropped_counts(self) -> Mapping[str, int]:
        """Counts dropped targets by pool (every pool, zero included)."""
        pools = set(self.active) | set(self.dropped)
        return {p: len(self.dropped.get(p, [])) for p in pools}

    def scrape_pools(self) -> Sequence[str]:
        """Returns every pool name."""
        return sorted(set(self.active) | set(self.dropped))


@dataclass
class StaticRules:
    """A RulesRetriever over a fixed list of groups."""

    groups: list[RuleGroupInfo] = field(default_factory=list)

    def rule_groups(self) -> Sequence[RuleGroupInfo]:
        """Returns the groups."""
        return self.groups


@dataclass
class StaticAlertmanagers:
    """An AlertmanagerRetriever over fixed URLs."""

    active: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def alertmanagers(self) -> Sequence[str]:
        """Returns the active URLs."""
        return self.active

    def dropped_alertmanagers(self) -> Sequence[str]:
        """Returns the dropped URLs."""
        return self.dropped


@dataclass
class StaticConfigInfo:
    """A ConfigInfo with fixed answers."""

    yaml: str = "global:\n  scrape_interval: 15s\n"
    flag_values: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, object] = field(default_factory=dict)
    build: dict[str, str] = field(
        default_factory=lambda: {
            "version": "3.5.0",
            "revision": "watchkeeper",
            "branch": "main",
            "buildUser": "watchkeeper",
            "buildDate": "20250101-00:00:00",
            "goVersion": "python3.11",
        }
    )
    external: Labels = EMPTY_LABELS

    def config_yaml(self) -> str:
        """Returns the YAML text."""
        return self.yaml

    def flags(self) -> Mapping[str, str]:
        """Returns the flags."""
        return self.flag_values

    def runtime_info(self) -> Mapping[str, object]:
        """Returns the runtime facts."""
        return self.runtime

    def build_info(self) -> Mapping[str, str]:
        """Returns the build facts."""
        return self.build

    def external_labels(self) -> Labels:
        """Returns the external labels."""
        return self.external


class MemoryTsdbAdmin:
    """TSDB stats and admin operations over a MemoryStorage (deletes drop whole series)."""

    def __init__(self, storage: MemoryStorage) -> None:
        """Wraps the storage."""
        self.storage = storage
        self.deleted: list[tuple[list[list[Matcher]], int, int]] = []
        self.tombstones_cleaned = 0
        self.snapshots = 0

    def _all(self) -> list[Labels]:
        lo, hi = -(2**62), 2**62
        with self.storage.querier(lo, hi) as q:
            return q.select(_any_name(), hints=SelectHints(lo, hi, func="series")).labels

    def stats(self, limit: int) -> TsdbStats:
        """Counts series by metric name, label name and label pair."""
        series = self._all()
        by_name = Counter(s.name for s in series)
        values_by_label: dict[str, set[str]] = {}
        pairs: Counter[str] = Counter()
        for s in series:
            for n, v in s.pairs:
                values_by_label.setdefault(n, set()).add(v)
                pairs[f"{n}={v}"] += 1
        memory = {n: sum(len(v) for v in vs) for n, vs in values_by_label.items()}
        with self.storage.querier(-(2**62), 2**62) as q:
            ss = q.select(_any_name())
        mint = int(ss.timestamps_ms.min()) if ss.sample_count else 2**63 - 1
        maxt = int(ss.timestamps_ms.max()) if ss.sample_count else -(2**63)

        def top(c: Mapping[str, int]) -> list[tuple[str, int]]:
            return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

        return TsdbStats(
            num_series=len(series),
            num_label_pairs=len(pairs),
            chunk_count=len(series),
            min_time_ms=mint,
            max_time_ms=maxt,
            series_count_by_metric_name=top(by_name),
            label_value_count_by_label_name=top({n: len(v) for n, v in values_by_label.items()}),
            memory_in_bytes_by_label_name=top(memory),
            series_count_by_label_value_pair=top(pairs),
        )

    def wal_replay_status(self) -> tuple[int, int, int]:
        """No WAL: nothing to replay."""
        return 0, 0, 0

    def delete_series(
        self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> None:
        """Records the request (MemoryStorage has no tombstones)."""
        self.deleted.append(([list(m) for m in matcher_sets], start_ms, end_ms))

    def clean_tombstones(self) -> None:
        """Counts the call."""
        self.tombstones_cleaned += 1

    def snapshot(self, *, skip_head: bool) -> str:
        """Pretends to write a snapshot and returns its name."""
        self.snapshots += 1
        return f"20250101T000000Z-{self.snapshots:016x}"


def _any_name() -> list[Matcher]:
    return [Matcher(MatchType.REGEX, "__name__", ".+")]


def make_api_deps(
    storage: MemoryStorage | None = None,
    *,
    engine_options: EngineOptions | None = None,
    **overrides: object,
) -> ApiDeps:
    """Builds ApiDeps over a MemoryStorage and the real engine, with fakes elsewhere."""
    db = storage if storage is not None else MemoryStorage()
    deps = ApiDeps(
        queryable=db,
        engine=Engine(db, engine_options or EngineOptions()),
        targets=StaticTargets(),
        rules=StaticRules(),
        alertmanagers=StaticAlertmanagers(),
        tsdb=MemoryTsdbAdmin(db),
        remote_write_sink=db,
        config=StaticConfigInfo(),
        notifications=NotificationHub(),
    )
    for name, value in overrides.items():
        setattr(deps, name, value)
    return deps


def encode_write_request(series: Sequence[tuple[Labels, Sequence[int], Sequence[float]]]) -> bytes:
    """Encodes a snappy-compressed remote-write 1.0 WriteRequest (float bits kept exactly)."""
    return codec.encode_write_request(codec.WriteBatch.from_series(series))


class ApiServerThread:
    """Serves an app built by `create_app` on 127.0.0.1 from a background thread.

    For end-to-end tests and benchmarks that drive the server with blocking clients
    (promtool, urllib): `with ApiServerThread(deps, options) as server: server.url`.
    """

    def __init__(self, deps: ApiDeps, options: WebOptions | None = None) -> None:
        """Prepares the server; `options.listen_address` is replaced by 127.0.0.1:0."""
        self.deps = deps
        self.options = dataclasses.replace(options or WebOptions(), listen_address="127.0.0.1:0")
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:43211."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServerThread:
        """Starts serving; returns once the socket is bound."""
        self._thread.start()

        async def up() -> tuple[web.AppRunner, int]:
            return await serve(create_app(self.deps, self.options), self.options)

        self._runner, self.port = asyncio.run_coroutine_threadsafe(up(), self._loop).result(30)
        return self

    def stop(self) -> None:
        """Stops serving and ends the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> ApiServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
