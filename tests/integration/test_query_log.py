"""`global.query_log_file` as a user sees it: a real server writes one JSON line per query."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port, http_get, wait_until

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: recording
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
"""


def _config(port: int, query_log_file: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
  query_log_file: {json.dumps(query_log_file)}
rule_files: [rules.yml]
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


def _write_config(workdir: Path, port: int, query_log_file: str) -> None:
    (workdir / "conf").mkdir(exist_ok=True)
    (workdir / "conf/prometheus.yml").write_text(_config(port, query_log_file))
    (workdir / "conf/rules.yml").write_text(RULES)


def _server_args(workdir: Path, port: int) -> list[str]:
    return [
        "--config.file=conf/prometheus.yml",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]


def _api(port: int, path: str, **params: str) -> None:
    url = f"http://127.0.0.1:{port}{path}?" + urllib.parse.urlencode(params)
    status, body = http_get(url)
    assert status == 200, body


def _post(port: int, path: str) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(port: int, name: str) -> str:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    raise AssertionError(f"{name} not exported")


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run_user_queries(port: int) -> None:
    _api(port, "/api/v1/query", query="up", time="1700000000.123")
    _api(
        port,
        "/api/v1/query_range",
        query="rate(up[1m])",
        start="1700000000",
        end="1700000060.5",
        step="15.7",
    )


def _logged_by_kind(path: Path) -> dict[str, dict[str, Any]]:
    """The first line of each kind: instant and range API queries, and a rule evaluation."""
    found: dict[str, dict[str, Any]] = {}
    for line in _lines(path):
        request = line.get("httpRequest")
        if request is not None and request["path"].endswith("/query"):
            found.setdefault("instant", line)
        elif request is not None and request["path"].endswith("/query_range"):
            found.setdefault("range", line)
        elif "ruleGroup" in line:
            found.setdefault("rule", line)
    return found


def _wait_for_kinds(path: Path, proc: ServerProcess) -> dict[str, dict[str, Any]]:
    assert wait_until(lambda: len(_logged_by_kind(path)) == 3, 20), proc.log()
    return _logged_by_kind(path)


def _shape(value: object) -> object:
    """Keys and JSON types, numbers as one type (Go writes 0 for a zero float)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path, int]]:
    port = free_port()
    _write_config(tmp_path, port, "queries.log")
    with ServerProcess(["server", *_server_args(tmp_path, port)], tmp_path) as proc:
        proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
        yield proc, tmp_path, port


def test_api_queries_and_rule_evaluations_each_write_one_line(
    server: tuple[ServerProcess, Path, int],
) -> None:
    proc, workdir, port = server
    log_path = workdir / "conf/queries.log"  # relative to the config file, as in Prometheus
    _run_user_queries(port)
    kinds = _wait_for_kinds(log_path, proc)
    instant, ranged, rule = kinds["instant"], kinds["range"], kinds["rule"]
    assert instant["params"] == {
        "end": "2023-11-14T22:13:20.123Z",
        "query": "up",
        "start": "2023-11-14T22:13:20.123Z",
        "step": 0,
    }
    assert instant["httpRequest"] == {
        "clientIP": "127.0.0.1",
        "method": "GET",
        "path": "/api/v1/query",
    }
    assert ranged["params"] == {
        "end": "2023-11-14T22:14:20.500Z",
        "query": "rate(up[1m])",
        "start": "2023-11-14T22:13:20.000Z",
        "step": 15,
    }
    assert rule["params"]["query"] == "sum by (job) (up)"
    assert rule["params"]["start"] == rule["params"]["end"]
    assert rule["ruleGroup"] == {"file": "conf/rules.yml", "name": "recording"}
    for line in (instant, ranged, rule):
        assert (line["level"], line["msg"]) == ("INFO", "promql query logged")
        assert set(line["stats"]) == {"timings", "samples"}
    assert _metric(port, "prometheus_engine_query_log_enabled") == "1"


def test_a_failed_query_is_logged_with_its_error(server: tuple[ServerProcess, Path, int]) -> None:
    proc, workdir, port = server
    assert wait_until(lambda: _lines(workdir / "conf/queries.log") != [], 20), proc.log()
    # Two series that end with the same labels: an execution error whatever the data.
    query = (
        'label_replace(vector(1) or label_replace(vector(2), "a", "b", "", ""), "a", "", "", "")'
    )
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    status, body = http_get(url)
    assert status == 422, body
    [line] = [x for x in _lines(workdir / "conf/queries.log") if x["params"]["query"] == query]
    assert line["error"] == json.loads(body)["error"]


def test_reloads_switch_files_refuse_a_bad_path_and_turn_the_log_off(
    server: tuple[ServerProcess, Path, int],
) -> None:
    proc, workdir, port = server
    first, second = workdir / "conf/queries.log", workdir / "conf/other.log"
    _write_config(workdir, port, "other.log")
    assert _post(port, "/-/reload")[0] == 200
    before = len(_lines(first))
    _api(port, "/api/v1/query", query="vector(1)")
    assert [x["params"]["query"] for x in _lines(second) if "httpRequest" in x] == ["vector(1)"]
    assert "vector(1)" not in [x["params"]["query"] for x in _lines(first)[before:]]

    _write_config(workdir, port, "/nonexistent/dir/q.log")
    status, body = _post(port, "/-/reload")
    assert (status, body) == (
        500,
        "failed to reload config: one or more errors occurred while applying the new "
        'configuration (--config.file="conf/prometheus.yml")\n',
    )
    assert (
        'err="can\'t create json log file: open /nonexistent/dir/q.log: no such file or directory"'
        in proc.log()
    )
    assert _metric(port, "prometheus_config_last_reload_successful") == "0"
    assert _metric(port, "prometheus_engine_query_log_enabled") == "1"
    _api(port, "/api/v1/query", query="vector(2)")
    assert "vector(2)" in [x["params"]["query"] for x in _lines(second)]

    _write_config(workdir, port, "")
    assert _post(port, "/-/reload")[0] == 200
    assert _metric(port, "prometheus_engine_query_log_enabled") == "0"
    _api(port, "/api/v1/query", query="vector(3)")
    assert "vector(3)" not in [x["params"]["query"] for x in _lines(second)]


@pytest.mark.peers
def test_lines_have_the_keys_and_types_prometheus_writes(tmp_path: Path) -> None:
    prometheus = peer_binary("prometheus")
    if prometheus is None:
        pytest.skip("the reference prometheus binary is not installed (../shared/peers)")
    logged: dict[str, dict[str, dict[str, Any]]] = {}
    for name, command in (("ours", None), ("prometheus", [str(prometheus)])):
        workdir = tmp_path / name
        workdir.mkdir()
        port = free_port()
        _write_config(workdir, port, "queries.log")
        args = _server_args(workdir, port)
        with ServerProcess(
            args if command else ["server", *args], workdir, command=command
        ) as proc:
            proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
            _run_user_queries(port)
            logged[name] = _wait_for_kinds(workdir / "conf/queries.log", proc)
    ours, theirs = logged["ours"], logged["prometheus"]
    for kind in ("instant", "range", "rule"):
        assert _shape(ours[kind]) == _shape(theirs[kind]), kind
        assert list(ours[kind]) == list(theirs[kind]), kind  # the same field order
        assert ours[kind]["params"].keys() == theirs[kind]["params"].keys()
        if kind != "rule":
            assert ours[kind]["params"] == theirs[kind]["params"], kind
    assert ours["rule"]["ruleGroup"] == theirs["rule"]["ruleGroup"]
    assert ours["instant"]["httpRequest"] == theirs["instant"]["httpRequest"]
