from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.config.prometheus import parse_config
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Registry
from watchkeeper.model.exposition import (
    PROTOBUF_CONTENT_TYPE,
    ExpositionParseError,
    encode_delimited,
    parse_series_text,
)
from watchkeeper.model.exposition.protobuf import COUNTER, HISTOGRAM, MESSAGES
from watchkeeper.model.labels import Labels
from watchkeeper.model.value import is_stale_nan
from watchkeeper.scrape.failure_log import ScrapeFailureLog
from watchkeeper.scrape.loop import (
    LoopContext,
    ScrapeLoop,
    mutate_sample_labels,
    sample_labels,
)
from watchkeeper.scrape.metrics import ScrapeMetrics
from watchkeeper.scrape.options import ScrapeOptions
from watchkeeper.scrape.scraper import Scraper
from watchkeeper.scrape.target import TargetHealth, targets_from_groups
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.targets import TargetServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def target_server() -> AsyncIterator[TargetServer]:
    server = TargetServer()
    await server.start()
    yield server
    await server.stop()


T0 = 1_700_000_000_000


def dump(storage: MemoryStorage) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    with storage.querier(0, 2**62) as q:
        ss = q.select([])
        for i in range(len(ss)):
            lbls, ts, vs = ss.series(i)
            out[str(lbls)] = list(zip(ts.tolist(), vs.tolist(), strict=True))
    return out


LoopFactory = Callable[..., ScrapeLoop]


@pytest.fixture
async def make_loop(
    target_server: TargetServer,
) -> AsyncIterator[Callable[[str, str], ScrapeLoop]]:
    sessions: list[aiohttp.ClientSession] = []

    def factory(
        job_yaml: str,
        path: str,
        *,
        storage: MemoryStorage | None = None,
        clock: ManualClock | None = None,
        options: ScrapeOptions | None = None,
        registry: Registry | None = None,
    ) -> ScrapeLoop:
        cfg = parse_config("scrape_configs:\n  - job_name: j\n" + job_yaml).scrape_configs[0]
        cfg.metrics_path = f"/{path}"
        session = aiohttp.ClientSession()
        sessions.append(session)
        group = TargetGroup([{"__address__": target_server.address}], {"grp": "g"}, "0")
        active, _, failures = targets_from_groups(cfg, [group])
        assert not failures
        ctx = LoopContext(
            cfg=cfg,
            scraper=Scraper(cfg, session),
            appendable=storage if storage is not None else MemoryStorage(),
            metrics=ScrapeMetrics.register(registry or Registry()),
            clock=clock or ManualClock(T0),
            options=options or ScrapeOptions(),
            pool_error=lambda: "",
        )
        return ScrapeLoop(active[0], ctx)

    yield factory
    for s in sessions:
        await s.close()


def job_labels(port: int) -> str:
    return f'grp="g", instance="127.0.0.1:{port}", job="j"'


async def test_a_scrape_stores_samples_with_target_labels_and_report_series(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", '# TYPE a gauge\na{x="1"} 1.5\nb 2 1600000000000\n')
    storage = MemoryStorage()
    loop = make_loop("", "m", storage=storage)
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    assert got[f'a{{{jl}, x="1"}}'] == [(T0, 1.5)]
    assert got[f"b{{{jl}}}"] == [(1600000000000, 2.0)]
    assert got[f"up{{{jl}}}"] == [(T0, 1.0)]
    assert got[f"scrape_samples_scraped{{{jl}}}"] == [(T0, 2.0)]
    assert got[f"scrape_samples_post_metric_relabeling{{{jl}}}"] == [(T0, 2.0)]
    assert got[f"scrape_series_added{{{jl}}}"] == [(T0, 2.0)]
    assert loop.target.health is TargetHealth.UP
    assert loop.target.metadata["a"].type == "gauge"


async def test_the_request_carries_prometheus_headers_auth_and_params(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    ep = target_server.add("m", "a 1\n")
    loop = make_loop(
        "    params: {module: [x], b: [1, 2]}\n    basic_auth: {username: u, password: p}\n"
        "    scrape_protocols: [PrometheusText0.0.4]\n",
        "m",
    )
    await loop.scrape_once()
    req = ep.requests[0]
    assert req.query_string == "b=1&b=2&module=x"
    assert req.headers["Authorization"] == "Basic dTpw"
    assert req.headers["Accept"] == "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    assert req.headers["X-Prometheus-Scrape-Timeout-Seconds"] == "10"
    assert req.headers["Accept-Encoding"] == "gzip"


async def test_gzip_bodies_are_decompressed(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1\n" * 3 + "b 2\n", gzip=True)
    storage = MemoryStorage()
    await make_loop("", "m", storage=storage).scrape_once()
    assert f"b{{{job_labels(target_server.port)}}}" in dump(storage)


def test_scraped_labels_that_clash_with_target_labels_become_exported() -> None:
    target = Labels.from_dict({"job": "j", "instance": "i"})
    scraped = Labels.from_dict({"__name__": "m", "job": "x", "exported_job": "y"})
    assert mutate_sample_labels(scraped, target, honor=False) == Labels.from_dict(
        {
            "__name__": "m",
            "job": "j",
            "instance": "i",
            "exported_job": "y",
            "exported_exported_job": "x",
        }
    )
    assert mutate_sample_labels(scraped, target, honor=True) == Labels.from_dict(
        {"__name__": "m", "job": "x", "exported_job": "y", "instance": "i"}
    )


_LABEL_NAMES = st.sampled_from(["job", "instance", "exported_job", "a", "__name__", "le"])
_LABEL_VALUES = st.sampled_from(["", "x", "j", 'q\\"', "1.0"])


@given(
    st.lists(st.tuples(_LABEL_NAMES, _LABEL_VALUES), max_size=4),
    st.sampled_from(["m", "up", ""]),
    st.dictionaries(st.sampled_from(["job", "instance", "a"]), st.sampled_from(["j", "i"])),
    st.booleans(),
)
def test_cache_miss_labels_equal_parsing_then_adding_target_labels(
    pairs: list[tuple[str, str]], name: str, target: dict[str, str], honor: bool
) -> None:
    body = ",".join(f'{n}="{v}"' for n, v in pairs)
    text = f"{name}{{{body}}}" if pairs or not name else name
    tlabels = Labels.from_dict(target)
    try:
        want = mutate_sample_labels(parse_series_text(text), tlabels, honor=honor)
    except ExpositionParseError as exc:
        with pytest.raises(ExpositionParseError, match=re.escape(str(exc))):
            sample_labels(text, tlabels, honor=honor)
        return
    got, _ = sample_labels(text, tlabels, honor=honor)
    assert got == want
    assert got.pairs == want.pairs


async def test_honor_labels_keeps_scraped_values(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", 'a{job="other",instance="z"} 1\n')
    storage = MemoryStorage()
    await make_loop("    honor_labels: true\n", "m", storage=storage).scrape_once()
    assert 'a{grp="g", instance="z", job="other"}' in dump(storage)


async def test_metric_relabel_configs_drop_and_rewrite_series(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", 'a{x="1"} 1\na{x="2"} 2\ngo_gc 3\n')
    storage = MemoryStorage()
    loop = make_loop(
        """    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
      - source_labels: [x]
        target_label: y
        replacement: v$1
      - regex: x
        action: labeldrop
""",
        "m",
        storage=storage,
    )
    await loop.scrape_once()
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    assert sorted(k for k in got if k.startswith("a")) == [
        f'a{{{jl}, y="v1"}}',
        f'a{{{jl}, y="v2"}}',
    ]
    assert not any(k.startswith("go_gc") for k in got)
    assert got[f"scrape_samples_post_metric_relabeling{{{jl}}}"][0][1] == 2.0
    assert got[f"scrape_samples_scraped{{{jl}}}"][0][1] == 3.0


async def test_sample_limit_fails_the_whole_scrape(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    ep = target_server.add("m", "a 1\nb 2\n")
    storage = MemoryStorage()
    clock = ManualClock(T0)
    registry = Registry()
    loop = make_loop("    sample_limit: 2\n", "m", storage=storage, clock=clock, registry=registry)
    await loop.scrape_once()
    ep.body = b"a 1\nb 2\nc 3\n"
    clock.advance(1000)
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    assert f"c{{{jl}}}" not in got
    assert got[f"up{{{jl}}}"] == [(T0, 1.0), (T0 + 1000, 0.0)]
    assert got[f"scrape_samples_scraped{{{jl}}}"][-1] == (T0 + 1000, 3.0)
    assert is_stale_nan(got[f"a{{{jl}}}"][-1][1])
    assert loop.target.last_error == "sample limit exceeded"
    assert "prometheus_target_scrapes_exceeded_sample_limit_total 1" in registry.render().decode()


@pytest.mark.parametrize(
    ("limit", "error"),
    [
        ("label_limit: 3", "label_limit exceeded (metric: a, number of labels: 5, limit: 3)"),
        (
            "label_name_length_limit: 4",
            "label_name_length_limit exceeded (metric: a, label name: __name__, length: 8, "
            "limit: 4)",
        ),
        (
            "label_value_length_limit: 5",
            "label_value_length_limit exceeded (metric: a, label name: instance, value: "
            '"127.0.0.1:',
        ),
    ],
)
async def test_label_limits_fail_the_scrape_with_prometheus_messages(
    target_server: TargetServer, make_loop: LoopFactory, limit: str, error: str
) -> None:
    target_server.add("m", 'a{x="1"} 1\n')
    storage = MemoryStorage()
    loop = make_loop(f"    {limit}\n", "m", storage=storage)
    await loop.scrape_once()
    assert loop.target.last_error.startswith(error)
    assert dump(storage)[f"up{{{job_labels(target_server.port)}}}"] == [(T0, 0.0)]


async def test_series_that_disappear_get_staleness_markers(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    ep = target_server.add("m", "a 1\nb 2\n")
    storage = MemoryStorage()
    clock = ManualClock(T0)
    loop = make_loop("", "m", storage=storage, clock=clock)
    await loop.scrape_once()
    ep.body = b"a 1\n"
    clock.advance(1000)
    await loop.scrape_once()
    clock.advance(1000)
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    b = got[f"b{{{jl}}}"]
    assert b[0] == (T0, 2.0)
    assert b[1][0] == T0 + 1000
    assert is_stale_nan(b[1][1])
    assert len(b) == 2
    assert got[f"a{{{jl}}}"] == [(T0, 1.0), (T0 + 1000, 1.0), (T0 + 2000, 1.0)]


async def test_explicit_timestamps_are_not_tracked_for_staleness_unless_asked(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    for track in (False, True):
        ep = target_server.add("m", f"a 1 {T0 - 5000}\n")
        storage = MemoryStorage()
        clock = ManualClock(T0)
        loop = make_loop(
            f"    track_timestamps_staleness: {str(track).lower()}\n",
            "m",
            storage=storage,
            clock=clock,
        )
        await loop.scrape_once()
        ep.body = b""
        clock.advance(1000)
        await loop.scrape_once()
        series = dump(storage)[f"a{{{job_labels(target_server.port)}}}"]
        assert len(series) == (2 if track else 1)


async def test_honor_timestamps_false_uses_the_scrape_time(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1 1600000000000\n")
    storage = MemoryStorage()
    await make_loop("    honor_timestamps: false\n", "m", storage=storage).scrape_once()
    assert dump(storage)[f"a{{{job_labels(target_server.port)}}}"] == [(T0, 1.0)]


async def test_a_failed_scrape_marks_previous_series_stale(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    ep = target_server.add("m", "a 1\n")
    storage = MemoryStorage()
    clock = ManualClock(T0)
    loop = make_loop("", "m", storage=storage, clock=clock)
    await loop.scrape_once()
    ep.status = 500
    clock.advance(1000)
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    assert is_stale_nan(got[f"a{{{jl}}}"][1][1])
    assert got[f"up{{{jl}}}"][1] == (T0 + 1000, 0.0)
    assert loop.target.last_error == "server returned HTTP status 500 Internal Server Error"
    assert loop.target.health is TargetHealth.DOWN


async def test_a_hanging_target_times_out(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1\n", delay_s=5)
    storage = MemoryStorage()
    loop = make_loop("    scrape_interval: 1s\n    scrape_timeout: 200ms\n", "m", storage=storage)
    await loop.scrape_once()
    assert loop.target.last_error.endswith("context deadline exceeded")
    up = dump(storage)[f"up{{{job_labels(target_server.port)}}}"]
    assert up == [(T0, 0.0)]
    duration = dump(storage)[f"scrape_duration_seconds{{{job_labels(target_server.port)}}}"]
    assert 0.15 < duration[0][1] < 1.0


async def test_a_huge_body_stops_at_the_body_size_limit(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", endless=True)
    storage = MemoryStorage()
    registry = Registry()
    loop = make_loop("    body_size_limit: 1MB\n", "m", storage=storage, registry=registry)
    await loop.scrape_once()
    assert loop.target.last_error == "body size limit exceeded"
    assert (
        "prometheus_target_scrapes_exceeded_body_size_limit_total 1" in registry.render().decode()
    )


async def test_invalid_utf8_fails_the_scrape(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", b'a{x="\xff"} 1\n')
    storage = MemoryStorage()
    loop = make_loop("", "m", storage=storage)
    await loop.scrape_once()
    assert "UTF-8" in loop.target.last_error
    assert dump(storage)[f"up{{{job_labels(target_server.port)}}}"] == [(T0, 0.0)]


async def test_a_malformed_body_fails_with_the_parser_reason(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1\nb{ 2\n")
    loop = make_loop("", "m")
    await loop.scrape_once()
    assert loop.target.health is TargetHealth.DOWN
    assert loop.target.last_error


async def test_a_connection_closed_mid_body_fails_the_scrape(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1\nb 2\n" * 100, cut_after=50)
    storage = MemoryStorage()
    loop = make_loop("", "m", storage=storage)
    await loop.scrape_once()
    assert loop.target.health is TargetHealth.DOWN
    assert loop.target.last_error
    assert f"a{{{job_labels(target_server.port)}}}" not in dump(storage)


async def test_duplicate_series_keep_the_first_sample_and_are_counted(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1\na 2\n")
    storage = MemoryStorage()
    registry = Registry()
    loop = make_loop("", "m", storage=storage, registry=registry)
    await loop.scrape_once()
    assert dump(storage)[f"a{{{job_labels(target_server.port)}}}"] == [(T0, 1.0)]
    assert loop.target.health is TargetHealth.UP
    text = registry.render().decode()
    assert "prometheus_target_scrapes_sample_duplicate_timestamp_total 1" in text


async def test_an_unreachable_target_is_down_with_the_dial_error(make_loop: LoopFactory) -> None:
    loop = make_loop("", "m")
    loop.target._url = "http://127.0.0.1:9/metrics"
    await loop.scrape_once()
    assert "connect" in loop.target.last_error


async def test_extra_scrape_metrics_add_timeout_limit_and_body_size(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", "a 1\n")
    storage = MemoryStorage()
    loop = make_loop(
        "    sample_limit: 7\n",
        "m",
        storage=storage,
        options=ScrapeOptions(extra_scrape_metrics=True),
    )
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    assert got[f"scrape_timeout_seconds{{{jl}}}"] == [(T0, 10.0)]
    assert got[f"scrape_sample_limit{{{jl}}}"] == [(T0, 7.0)]
    assert got[f"scrape_body_size_bytes{{{jl}}}"] == [(T0, 4.0)]


async def test_a_known_series_is_a_cache_hit(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("m", 'a{x="1"} 1\n')
    storage = MemoryStorage()
    clock = ManualClock(T0)
    loop = make_loop("", "m", storage=storage, clock=clock)
    await loop.scrape_once()
    clock.advance(1000)
    await loop.scrape_once()
    added = dump(storage)[f"scrape_series_added{{{job_labels(target_server.port)}}}"]
    assert [v for _, v in added] == [1.0, 0.0]
    assert list(loop._cache) == ['a{x="1"}']


async def test_a_target_that_recovers_gets_fresh_samples_after_its_stale_markers(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    ep = target_server.add("m", "a 1\nb 2\n")
    storage = MemoryStorage()
    clock = ManualClock(T0)
    loop = make_loop("", "m", storage=storage, clock=clock)
    await loop.scrape_once()
    ep.status = 503
    clock.advance(1000)
    await loop.scrape_once()
    ep.status = 200
    for _ in range(2):
        clock.advance(1000)
        await loop.scrape_once()
    ep.body = b"a 1\n"
    clock.advance(1000)
    await loop.scrape_once()
    got = dump(storage)
    jl = job_labels(target_server.port)
    a = got[f"a{{{jl}}}"]
    assert [t for t, _ in a] == [T0, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000]
    assert [is_stale_nan(v) for _, v in a] == [False, True, False, False, False]
    b = got[f"b{{{jl}}}"]
    assert [is_stale_nan(v) for _, v in b] == [False, True, False, False, True]


PROTO_TEXT = """# HELP req_total Requests.
# TYPE req_total counter
req_total{code="200"} 7
# TYPE lat histogram
lat_bucket{le="0.5"} 1
lat_bucket{le="+Inf"} 2
lat_sum 0.75
lat_count 2
"""


def proto_body() -> bytes:
    counter = MESSAGES["MetricFamily"](name="req_total", help="Requests.", type=COUNTER)
    m = counter.metric.add()
    m.label.add(name="code", value="200")
    m.counter.value = 7
    hist = MESSAGES["MetricFamily"](name="lat", type=HISTOGRAM)
    h = hist.metric.add().histogram
    h.sample_count, h.sample_sum = 2, 0.75
    h.bucket.add(upper_bound=0.5, cumulative_count=1)
    native = MESSAGES["MetricFamily"](name="native", type=HISTOGRAM)
    n = native.metric.add().histogram
    n.sample_count, n.schema, n.zero_threshold = 1, 0, 1e-128
    n.positive_span.add(offset=0, length=1)
    n.positive_delta.append(1)
    return encode_delimited([counter, hist, native])


async def test_a_protobuf_target_gives_the_series_of_its_text_form(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    ep = target_server.add("p", proto_body(), content_type=PROTOBUF_CONTENT_TYPE)
    target_server.add("t", PROTO_TEXT)
    job = "    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n"
    proto_storage, text_storage = MemoryStorage(), MemoryStorage()
    proto_loop = make_loop(job, "p", storage=proto_storage)
    await proto_loop.scrape_once()
    await make_loop(job, "t", storage=text_storage).scrape_once()
    assert ep.requests[0].headers["Accept"] == (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
        "encoding=delimited;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4"
    )
    assert proto_loop.target.health is TargetHealth.UP
    proto, text = dump(proto_storage), dump(text_storage)
    jl = job_labels(target_server.port)
    report = ("scrape_", "up{")
    assert {k: v for k, v in proto.items() if not k.startswith(report)} == {
        k: v for k, v in text.items() if not k.startswith(report)
    }
    # NB: the native histogram is counted as scraped but not stored, as in Prometheus.
    assert proto[f"scrape_samples_scraped{{{jl}}}"] == [(T0, 6.0)]
    assert proto[f"scrape_samples_post_metric_relabeling{{{jl}}}"] == [(T0, 5.0)]
    assert proto_loop.target.metadata["req_total"].help == "Requests."


async def test_a_bad_protobuf_body_fails_the_scrape(
    target_server: TargetServer, make_loop: LoopFactory
) -> None:
    target_server.add("p", b"\x05\x0a", content_type=PROTOBUF_CONTENT_TYPE)
    loop = make_loop("", "p")
    await loop.scrape_once()
    assert loop.target.health is TargetHealth.DOWN
    assert "insufficient length of buffer" in loop.target.last_error


async def test_failed_requests_are_logged_to_the_failure_log_file(
    target_server: TargetServer, make_loop: LoopFactory, tmp_path: Path
) -> None:
    ep = target_server.add("m", "a 1\n", status=500)
    target_server.add("bad", "a{ 1\n")
    path = tmp_path / "failures.log"
    loop = make_loop("", "m")
    loop.ctx.failure_log = ScrapeFailureLog(str(path))
    await loop.scrape_once()
    ep.status = 200
    await loop.scrape_once()
    bad = make_loop("", "bad")
    bad.ctx.failure_log = loop.ctx.failure_log
    await bad.scrape_once()  # NB: a body that does not parse is not a failed request.
    loop.ctx.failure_log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1
    assert list(lines[0]) == ["time", "level", "source", "msg", "job_name", "target"]
    assert lines[0]["level"] == "ERROR"
    assert lines[0]["msg"] == "server returned HTTP status 500 Internal Server Error"
    assert lines[0]["job_name"] == "j"
    assert lines[0]["target"] == f"http://{target_server.address}/m"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", lines[0]["time"])
