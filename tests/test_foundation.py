"""The shared value types and the in-memory storage behave as the stages expect."""

from __future__ import annotations

import numpy as np

from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.model.value import STALE_NAN, is_stale_nan, stale_mask
from watchkeeper.testing.storage import MemoryStorage


def test_labels_sort_drop_empty_and_format_like_prometheus() -> None:
    lbls = Labels.from_dict({"job": "api", "__name__": "up", "empty": ""})
    assert lbls.pairs == (("__name__", "up"), ("job", "api"))
    assert str(lbls) == 'up{job="api"}'
    assert str(Labels.from_dict({"a": 'x"y'})) == '{a="x\\"y"}'


def test_regex_matchers_are_anchored_and_dot_matches_newline() -> None:
    m = Matcher(MatchType.REGEX, "a", "fo.")
    assert m.matches("foo")
    assert not m.matches("fooo")
    assert m.matches("fo\n")
    assert Matcher(MatchType.NOT_REGEX, "a", "x|").matches("y")


def test_stale_marker_is_recognised_by_bits() -> None:
    assert is_stale_nan(STALE_NAN)
    assert not is_stale_nan(float("nan"))
    arr = np.array([1.0, STALE_NAN, float("nan")])
    assert stale_mask(arr).tolist() == [False, True, False]


def test_memory_storage_commits_and_rejects_out_of_order() -> None:
    db = MemoryStorage()
    up = Labels.from_dict({"__name__": "up", "job": "a"})
    with db.appender() as app:
        res = app.append_series([up, up, up], [10, 20, 15], [1.0, 2.0, 3.0])
    assert res.out_of_order == 1
    with db.querier(0, 100) as q:
        s = q.select([Matcher.equal("__name__", "up")])
    assert s.labels == [up]
    assert s.timestamps_ms.tolist() == [10, 20]


def test_registry_renders_text_format() -> None:
    reg = Registry()
    c = reg.counter("wk_things_total", "Things.", ["kind"])
    c.labels("a").inc(2)
    text = reg.render().decode()
    assert '# TYPE wk_things_total counter\nwk_things_total{kind="a"} 2\n' in text
