"""Batched evaluation of same-shaped expressions gives each one exactly its own result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.promql.batch import plan_batches, split_vector
from watchkeeper.promql.engine import Engine
from watchkeeper.promql.parser import format_expr, parse_expr
from watchkeeper.promql.value import Vector
from watchkeeper.testing.storage import MemoryStorage

MIN = 60_000
SHARDS = ["0", "1", "2", "3", "a.b|c"]
"""Shard label values in the data; the last one needs regex escaping."""

TEMPLATES = [
    'sum by (job) (rate(x{shard="S"}[5m]))',
    'rate(x{shard="S"}[5m])',
    'sum without (instance) (x{shard="S"})',
    'sum without (shard) (x{shard="S"})',
    'max(sum by (job) (increase(x{job="a", shard="S"}[10m])))',
    'topk(1, x{shard="S"})',
    'quantile(0.9, x{shard="S"}) * 2',
    'count_values("v", x{shard="S"})',
    'x{shard="S"} > 50',
    'x{shard="S"} > bool 50',
    '-x{shard="S"} + 1',
    'avg_over_time(x{shard="S"}[10m:1m])',
    'label_replace(x{shard="S"}, "dst", "$1", "instance", "i(.*)")',
    'clamp_max(abs(x{shard="S"}), 10)',
    'stddev by (job) (x{shard="S"} offset 1m)',
    'count(last_over_time(x{shard="S"}[2m]))',
    'sum by (shard) (x{shard="S"})',
    'histogram_quantile(0.5, sum by (le) (rate(h{shard="S"}[5m])))',
]


@st.composite
def _data(draw: st.DrawFn) -> MemoryStorage:
    """Counters and gauges per shard, job and instance, with NaN, stale markers and gaps."""
    db = MemoryStorage()
    values = st.one_of(
        st.floats(0, 100, allow_nan=False),
        st.just(float("nan")),
        st.just(STALE_NAN),
    )
    with db.appender() as app:
        for shard in SHARDS:
            for job in ("a", "b"):
                for instance in draw(st.sets(st.sampled_from(["i0", "i1", "i2"]), max_size=3)):
                    lbls = Labels.from_strings(
                        "__name__", "x", "shard", shard, "job", job, "instance", instance
                    )
                    times = sorted(draw(st.sets(st.integers(0, 20), min_size=1, max_size=12)))
                    vals = [draw(values) for _ in times]
                    app.append_series([lbls] * len(times), [t * MIN for t in times], vals)
            for le in ("0.1", "1", "+Inf"):
                lbls = Labels.from_strings("__name__", "h", "shard", shard, "le", le)
                counts = np.cumsum(np.full(21, float(SHARDS.index(shard) + 1)))
                app.append_series([lbls] * 21, [t * MIN for t in range(21)], counts.tolist())
    return db


def _alone(engine: Engine, text: str, t: int) -> dict[Labels, float]:
    value = engine.eval_expr(parse_expr(text), t).value
    assert isinstance(value, Vector)
    return dict(zip(value.labels, value.values.tolist(), strict=True))


def _same(got: dict[Labels, float], want: dict[Labels, float]) -> bool:
    """Same series and values: bit for bit, except that sums over many series or long
    windows may take the engine's compensated whole-array path in one query and its
    sequential fold in the other, which agree to a few ulps (as Prometheus's own sum does
    with either, see kernels_aggregate)."""
    if got.keys() != want.keys():
        return False
    for k, a in got.items():
        b = want[k]
        if np.float64(a).tobytes() == np.float64(b).tobytes():
            continue
        if not (np.isfinite(a) and np.isfinite(b)) or abs(a - b) > 4e-16 * max(abs(a), abs(b)):
            return False
    return True


@settings(max_examples=40, deadline=None)
@given(db=_data(), t=st.integers(5, 22), template=st.sampled_from(TEMPLATES))
def test_each_member_gets_exactly_the_result_it_has_alone(
    db: MemoryStorage, t: int, template: str
) -> None:
    engine = Engine(db)
    texts = [template.replace('"S"', f'"{s}"') for s in [*SHARDS, "missing"]]
    (batch,) = plan_batches([parse_expr(x) for x in texts])
    batched = engine.eval_expr(batch.expr, t * MIN).value
    assert isinstance(batched, Vector)
    parts = split_vector(batch, batched.labels, batched.values)
    for member, (labels, values) in zip(batch.members, parts, strict=True):
        got = dict(zip(labels, values.tolist(), strict=True))
        want = _alone(engine, texts[member], t * MIN)
        assert _same(got, want), (texts[member], got, want)


def test_the_batched_expression_selects_every_value_and_groups_by_the_varying_labels() -> None:
    texts = [
        f'sum by (job) (rate(x{{job="a", shard="{s}", instance="{i}"}}[5m]))'
        for s, i in [("1", "h1"), ("2", "h1"), ("3", "h2")]
    ]
    (batch,) = plan_batches([parse_expr(x) for x in texts])
    assert format_expr(batch.expr) == (
        'sum by (job, shard, instance) (rate(x{job="a", shard=~"1|2|3", instance=~"h1|h2"}[5m]))'
    )
    assert batch.labels == ("shard", "instance")
    assert batch.keys == (("1", "h1"), ("2", "h1"), ("3", "h2"))
    assert batch.dropped == ("shard", "instance")
    assert batch.metric == "x"


@pytest.mark.parametrize(
    "template",
    [
        'absent(x{shard="S"})',
        'x{shard="S"} / on (job) y',
        'x{shard="S"} / x{shard="S"}',
        'label_replace(x{shard="S"}, "shard", "z", "", "")',
        'count_values("shard", x{shard="S"})',
        'histogram_quantile(0.9, x{le="S"})',
        'sort(x{shard="S"})',
        'x{shard=~"S"}',
        '{__name__=~"x", shard="S"}',
        'scalar(x{shard="S"})',
        'x{shard="S"} and on () vector(1)',
        'topk(scalar(y), x{shard="S"})',
    ],
)
def test_expressions_that_would_mix_members_are_not_batched(template: str) -> None:
    exprs = [parse_expr(template.replace("S", s)) for s in ("1", "2", "3")]
    assert plan_batches(exprs) == []


def test_identical_expressions_share_a_key_and_lone_shapes_stay_alone() -> None:
    texts = [
        'rate(x{shard="1"}[5m])',
        'rate(x{shard="2"}[5m])',
        'rate(x{shard="1"}[5m])',
        'rate(y{shard="1"}[5m])',
        "up",
    ]
    (batch,) = plan_batches([parse_expr(x) for x in texts])
    assert batch.members == (0, 1, 2)
    assert batch.keys == (("1",), ("2",), ("1",))
