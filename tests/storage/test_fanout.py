"""Fan-out storage: writes reach every storage, a failing secondary read is only a warning."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.storage.fanout import FanoutStorage
from watchkeeper.storage.interface import Appender, Querier, SelectHints, SeriesSet, StorageError
from watchkeeper.testing.storage import MemoryStorage

ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)


class _BrokenQuerier(Querier):
    def select(self, matchers: Sequence[Matcher], *, hints: SelectHints | None = None) -> SeriesSet:
        raise StorageError("remote read: connection refused")

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        raise StorageError("down")

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        raise StorageError("down")


class _BrokenRemote:
    def appender(self) -> Appender:
        return MemoryStorage().appender()

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        return _BrokenQuerier()

    def close(self) -> None:
        pass


def test_appends_reach_the_primary_and_every_secondary() -> None:
    primary, secondary = MemoryStorage(), MemoryStorage()
    fan = FanoutStorage(primary, [secondary])
    with fan.appender() as app:
        refs = app.refs([Labels.from_strings("__name__", "up")])
        app.append(refs, np.array([5], np.int64), np.array([1.0]))
    for s in (primary, secondary):
        assert s.querier(0, 10).select(ALL).values.tolist() == [1.0]


def test_a_rejected_sample_is_not_sent_to_secondaries() -> None:
    primary, secondary = MemoryStorage(), MemoryStorage()
    fan = FanoutStorage(primary, [secondary])
    with fan.appender() as app:
        refs = app.refs([Labels.from_strings("__name__", "up")])
        app.append(refs, np.array([5], np.int64), np.array([1.0]))
        res = app.append(refs, np.array([4], np.int64), np.array([2.0]))
    assert res.out_of_order == 1
    assert secondary.querier(0, 10).select(ALL).values.tolist() == [1.0]


def test_reads_merge_and_a_failing_secondary_becomes_a_warning() -> None:
    primary = MemoryStorage()
    with primary.appender() as app:
        app.append_series([Labels.from_strings("__name__", "up")], [1], [1.0])
    fan = FanoutStorage(primary, [_BrokenRemote()])
    with fan.querier(0, 10) as q:
        ss = q.select(ALL)
        assert ss.values.tolist() == [1.0]
        assert ss.warnings == ["secondary storage failed: remote read: connection refused"]
        assert q.label_names() == ["__name__"]
        assert q.label_values("__name__") == ["up"]


def test_a_failing_primary_read_is_an_error() -> None:
    fan = FanoutStorage(_BrokenRemote(), [MemoryStorage()])
    with pytest.raises(StorageError), fan.querier(0, 10) as q:
        q.select(ALL)
