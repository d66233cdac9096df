"""End to end over 127.0.0.1: promtool, Grafana's requests and a differential test against
the real Prometheus 3.5 holding the same samples; Prometheus remote-writing into us."""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.model.labels import Labels
from watchkeeper.model.matchers import Matcher, MatchType
from watchkeeper.model.value import STALE_NAN
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port, wait_until
from watchkeeper.testing.remote import post_remote_write
from watchkeeper.testing.storage import MemoryStorage
from watchkeeper.testing.web import (
    ApiServerThread,
    StaticConfigInfo,
    encode_write_request,
    make_api_deps,
)
from watchkeeper.web.app import WebOptions

pytestmark = [pytest.mark.integration, pytest.mark.peers]

PROMETHEUS = peer_binary("prometheus")
PROMTOOL = peer_binary("promtool")
NOW_S = int(time.time()) // 60 * 60 - 60
"""The last sample time of the shared data set: recent, so Prometheus's head accepts it."""


def _series() -> list[tuple[Labels, list[int], list[float]]]:
    ts = [(NOW_S - 1200 + 15 * i) * 1000 for i in range(81)]
    out = []
    for job, inst, scale in (("api", "a:9100", 1.0), ("api", "b:9100", 2.5), ("web", "c:80", 0.1)):
        up = Labels.from_dict({"__name__": "up", "job": job, "instance": inst})
        out.append((up, ts, [1.0] * len(ts)))
        reqs = Labels.from_dict({"__name__": "http_requests_total", "job": job, "instance": inst})
        out.append((reqs, ts, [float(i * 7) * scale for i in range(len(ts))]))
    odd = Labels.from_dict({"__name__": "odd_values", "kind": "mixed"})
    vals = [0.1, 1e-7, 1e21, 123456.789, -0.0, math.nan, math.inf, -math.inf, 2.5e-6, 1e16]
    out.append((odd, ts, [vals[i % len(vals)] for i in range(len(ts))]))
    gone = Labels.from_dict({"__name__": "went_stale", "job": "api"})
    out.append((gone, ts[:41], [3.0] * 40 + [STALE_NAN]))
    return out


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.skip("the prometheus peer binary is not installed (../shared/peers/fetch-peers.sh)")
    d = tmp_path_factory.mktemp("prometheus")
    (d / "prometheus.yml").write_text("global:\n  external_labels:\n    replica: a\n")
    port = free_port()
    proc = ServerProcess(
        [
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        d,
        command=[str(PROMETHEUS)],
    )
    with proc:
        url = f"http://127.0.0.1:{port}"
        proc.wait_ready(url + "/-/ready")
        assert post_remote_write(url + "/api/v1/write", encode_write_request(_series())) == 204
        yield url


@pytest.fixture(scope="module")
def ours() -> Iterator[str]:
    db = MemoryStorage()
    deps = make_api_deps(db)
    deps.config = StaticConfigInfo(external=Labels.from_dict({"replica": "a"}))
    with ApiServerThread(deps, WebOptions(enable_remote_write_receiver=True)) as server:
        assert (
            post_remote_write(server.url + "/api/v1/write", encode_write_request(_series())) == 204
        )
        yield server.url


def _get(
    base: str, path: str, params: list[tuple[str, str]] | None = None, *, post: bool = False
) -> tuple[int, Any]:
    query = urllib.parse.urlencode(params or [])
    if post:
        req = urllib.request.Request(
            base + path,
            data=query.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        req = urllib.request.Request(base + path + ("?" + query if query else ""))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return int(resp.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _normalize(body: Any) -> Any:
    data = body.get("data") if isinstance(body, dict) else None
    if (
        isinstance(data, dict)
        and isinstance(data.get("result"), list)
        and data.get("resultType") in ("vector", "matrix")
    ):
        data["result"].sort(key=lambda r: json.dumps(r["metric"], sort_keys=True))
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data.sort(key=lambda r: json.dumps(r, sort_keys=True))
    return body


T = str(NOW_S)
T_FRAC = f"{NOW_S - 0.95:.2f}"
START = str(NOW_S - 600)
EARLY = str(NOW_S - 900)
DIFFERENTIAL = [
    ("/api/v1/query", [("query", "up"), ("time", T)]),
    ("/api/v1/query", [("query", "up"), ("time", T_FRAC)]),
    ("/api/v1/query", [("query", "odd_values"), ("time", T)]),
    ("/api/v1/query", [("query", "http_requests_total offset 1m"), ("time", T)]),
    ("/api/v1/query", [("query", 'http_requests_total{job="api"}[1m]'), ("time", T)]),
    ("/api/v1/query", [("query", "went_stale"), ("time", str(NOW_S - 700))]),
    ("/api/v1/query", [("query", "1.5e-7"), ("time", T_FRAC)]),
    ("/api/v1/query", [("query", '"text"'), ("time", T)]),
    ("/api/v1/query", [("query", "up"), ("time", T), ("limit", "2")]),
    ("/api/v1/query", [("query", "up{"), ("time", T)]),
    ("/api/v1/query", [("query", "up"), ("time", "x")]),
    (
        "/api/v1/query_range",
        [("query", "odd_values"), ("start", START), ("end", T), ("step", "15")],
    ),
    ("/api/v1/query_range", [("query", "up"), ("start", START), ("end", T), ("step", "1m")]),
    (
        "/api/v1/query_range",
        [("query", "http_requests_total"), ("start", START), ("end", T), ("step", "7.5")],
    ),
    (
        "/api/v1/query_range",
        [("query", "went_stale"), ("start", EARLY), ("end", T), ("step", "30s")],
    ),
    ("/api/v1/query_range", [("query", "up"), ("start", T), ("end", START), ("step", "15")]),
    ("/api/v1/query_range", [("query", "up"), ("start", "0"), ("end", T), ("step", "1")]),
    ("/api/v1/series", [("match[]", "up"), ("match[]", '{job="web"}')]),
    ("/api/v1/series", [("match[]", 'up{job="api"}'), ("start", START), ("end", T)]),
    ("/api/v1/series", []),
    ("/api/v1/labels", []),
    ("/api/v1/labels", [("match[]", "odd_values")]),
    ("/api/v1/label/job/values", []),
    ("/api/v1/label/__name__/values", [("match[]", '{job="api"}')]),
    ("/api/v1/label/instance/values", [("limit", "1")]),
    ("/api/v1/rules", [("group_limit", "1")]),
    ("/api/v1/rules", [("group_limit", "0")]),
    ("/api/v1/rules", [("group_limit", "-3")]),
    ("/api/v1/rules", [("group_limit", "abc")]),
    ("/api/v1/rules", [("group_limit", "+1.5")]),
    ("/api/v1/rules", [("group_limit", "99999999999")]),
    ("/api/v1/rules", [("group_next_token", "abc")]),
    ("/api/v1/rules", [("group_limit", "2"), ("group_next_token", "abc")]),
    ("/api/v1/rules", [("group_limit", "0"), ("type", "Bogus")]),
    ("/api/v1/rules", [("exclude_alerts", "Maybe"), ("group_limit", "x")]),
    ("/api/v1/rules", [("match[]", '{a=""}'), ("type", "x")]),
]


@pytest.mark.parametrize(
    ("path", "params"), DIFFERENTIAL, ids=[f"{p}?{q}" for p, q in DIFFERENTIAL]
)
def test_answers_match_prometheus_on_the_same_data(
    prometheus: str, ours: str, path: str, params: list[tuple[str, str]]
) -> None:
    expected = _get(prometheus, path, params)
    got = _get(ours, path, params)
    if expected[0] != 200:
        assert (got[0], got[1]["errorType"]) == (expected[0], expected[1]["errorType"])
        if "parse error" not in expected[1]["error"]:
            assert got[1]["error"] == expected[1]["error"]
        return
    assert got[0] == 200
    assert _normalize(got[1]) == _normalize(expected[1])
    if path.startswith("/api/v1/query"):
        assert expected[1]["data"]["result"], "the data set should give a non-empty result"


GRAFANA = [
    (
        "/api/v1/query_range",
        [
            ("query", "sum by (job) (http_requests_total)"),
            ("start", START),
            ("end", T),
            ("step", "60"),
        ],
        True,
    ),
    ("/api/v1/query", [("query", "up"), ("time", T)], True),
    ("/api/v1/labels", [("start", START), ("end", T)], False),
    ("/api/v1/labels", [("start", START), ("end", T)], True),
    ("/api/v1/series", [("match[]", "up"), ("start", START), ("end", T)], False),
    ("/api/v1/label/job/values", [("start", START), ("end", T)], False),
    ("/api/v1/metadata", [], False),
    ("/api/v1/query_exemplars", [("query", "up"), ("start", START), ("end", T)], False),
]


@pytest.mark.parametrize(
    ("path", "params", "post"),
    GRAFANA,
    ids=[f"{'POST' if x[2] else 'GET'} {x[0]}" for x in GRAFANA],
)
def test_grafana_data_source_requests_are_answered_as_prometheus(
    prometheus: str, ours: str, path: str, params: list[tuple[str, str]], post: bool
) -> None:
    expected = _normalize(_get(prometheus, path, params, post=post)[1])
    got = _normalize(_get(ours, path, params, post=post)[1])
    assert got == expected


def test_buildinfo_has_prometheus_fields(prometheus: str, ours: str) -> None:
    expected = _get(prometheus, "/api/v1/status/buildinfo")[1]["data"]
    got = _get(ours, "/api/v1/status/buildinfo")[1]["data"]
    assert set(got) == set(expected)


def test_federation_matches_prometheus(prometheus: str, ours: str) -> None:
    params = [("match[]", "up"), ("match[]", "went_stale"), ("match[]", "http_requests_total")]

    def lines(base: str) -> list[str]:
        url = f"{base}/federate?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return sorted(resp.read().decode().splitlines())

    assert lines(ours) == lines(prometheus)


def _promtool(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return "\n".join(sorted(done.stdout.splitlines()))


PROMTOOL_CASES = [
    ("query", "instant", "--time", T, "{server}", "up"),
    ("query", "instant", "--time", T, "-o", "json", "{server}", "odd_values"),
    (
        "query",
        "range",
        "--start",
        START,
        "--end",
        T,
        "--step",
        "1m",
        "{server}",
        "http_requests_total",
    ),
    ("query", "series", "--match", "up", "{server}"),
    ("query", "labels", "{server}", "job"),
]


@pytest.mark.parametrize(
    "args", PROMTOOL_CASES, ids=[" ".join(a[:2]) + " " + a[-1] for a in PROMTOOL_CASES]
)
def test_promtool_queries_print_what_they_print_for_prometheus(
    prometheus: str, ours: str, args: tuple[str, ...]
) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (../shared/peers/fetch-peers.sh)")

    def run(base: str) -> str:
        return _promtool(*[a.replace("{server}", base) for a in args])

    assert run(ours) == run(prometheus)


def test_prometheus_remote_writes_into_our_receiver(tmp_path: Path) -> None:
    if PROMETHEUS is None:
        pytest.skip("the prometheus peer binary is not installed (../shared/peers/fetch-peers.sh)")
    db = MemoryStorage()
    with ApiServerThread(
        make_api_deps(db), WebOptions(enable_remote_write_receiver=True)
    ) as server:
        port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: self\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{port}']\n"
            f"remote_write:\n  - url: {server.url}/api/v1/write\n"
            "    queue_config:\n      batch_send_deadline: 500ms\n"
        )
        proc = ServerProcess(
            [
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            tmp_path,
            command=[str(PROMETHEUS)],
        )
        with proc:
            proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
            up = [Matcher.equal("__name__", "up"), Matcher.equal("job", "self")]

            def received() -> bool:
                with db.querier(0, 2**62) as q:
                    return len(q.select(up)) == 1 and len(q.label_values("__name__")) > 50

            assert wait_until(received, timeout_s=60), proc.log()
        with db.querier(0, 2**62) as q:
            ss = q.select([Matcher(MatchType.REGEX, "__name__", "prometheus_build_info")])
            assert ss.labels[0].get("job") == "self"
            assert np.all(ss.values == 1.0)
        status, body = _get(server.url, "/api/v1/query", [("query", 'up{job="self"}')])
        assert status == 200
        assert body["data"]["result"][0]["value"][1] == "1"


def _post_write_text(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_rejected_remote_writes_are_answered_as_prometheus(prometheus: str, ours: str) -> None:
    up = _series()[0][0]
    last = NOW_S * 1000
    cases = [
        [(up, [last - 30_000], [1.0])],  # out of order
        [(up, [last], [1.0])],  # an identical duplicate is not an error
        [(up, [last], [2.0])],  # a conflicting duplicate is
        [(Labels.from_dict({"job": "no_name"}), [last], [1.0])],  # skipped, not an error
    ]
    for series in cases:
        body = encode_write_request(series)
        expected = _post_write_text(prometheus + "/api/v1/write", body)
        got = _post_write_text(ours + "/api/v1/write", body)
        assert got[0] == expected[0], (series, expected, got)
        if expected[0] == 400:
            assert expected[1].startswith(got[1].strip()), (expected, got)


def test_prometheus_api_client_reads_the_same_as_from_prometheus(
    prometheus: str, ours: str
) -> None:
    client_module = pytest.importorskip("prometheus_api_client")
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(NOW_S - 600, tz=UTC)
    end = datetime.fromtimestamp(NOW_S, tz=UTC)

    def read(base: str) -> list[Any]:
        prom = client_module.PrometheusConnect(url=base, disable_ssl=True)
        out: list[Any] = [
            prom.check_prometheus_connection(),
            sorted(prom.get_label_names()),
            sorted(prom.get_label_values("job")),
            prom.custom_query("sum by (job) (up)", params={"time": T}),
            prom.custom_query_range("odd_values", start_time=start, end_time=end, step="60"),
            prom.get_metric_range_data('up{job="web"}', start_time=start, end_time=end),
        ]
        for item in out[3:]:
            item.sort(key=lambda r: json.dumps(r["metric"], sort_keys=True))
        return out

    assert read(ours) == read(prometheus)
