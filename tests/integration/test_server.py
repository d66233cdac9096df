"""`watchkeeper server` as a user runs it: a real process, real files, real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port, http_get, wait_until

pytestmark = pytest.mark.integration


def _config(port: int, extra_job: str = "") -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {{site: test}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
{extra_job}"""


RULES = """
groups:
  - name: test
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: AlwaysFiring
        expr: vector(1) > 0
        labels: {severity: page}
        annotations: {summary: "value is {{ $value }}"}
"""


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http_get(url)
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def _post(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _start(tmp_path: Path, port: int, *extra: str) -> ServerProcess:
    proc = ServerProcess(
        [
            "server",
            "--config.file=conf/prometheus.yml",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra,
        ],
        tmp_path,
    ).start()
    proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
    return proc


@pytest.fixture
def workdir(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    # NB: the config lives in a subfolder; rule_files are relative to it, as in Prometheus.
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/prometheus.yml").write_text(_config(port))
    (tmp_path / "conf/rules.yml").write_text(RULES)
    return tmp_path, port


def test_server_scrapes_itself_evaluates_rules_and_answers_queries(
    workdir: tuple[Path, int],
) -> None:
    tmp_path, port = workdir
    with _start(tmp_path, port) as proc:
        assert wait_until(lambda: _query(port, 'up{job="self"}') != [], 20), proc.log()
        up = _query(port, 'up{job="self"}')[0]
        assert up["metric"] == {"__name__": "up", "instance": f"127.0.0.1:{port}", "job": "self"}
        assert up["value"][1] == "1"
        assert wait_until(lambda: _query(port, "job:up:sum") != [], 20), proc.log()
        assert wait_until(lambda: _query(port, 'ALERTS{alertstate="firing"}') != [], 20)
        assert _query(port, "prometheus_tsdb_head_series")[0]["value"][1] != "0"


def test_a_bad_reload_keeps_the_running_config(workdir: tuple[Path, int]) -> None:
    tmp_path, port = workdir
    with _start(tmp_path, port, "--web.enable-lifecycle") as proc:
        (tmp_path / "conf/prometheus.yml").write_text("scrape_configs:\n  - job_nme: broken\n")
        status, body = _post(f"http://127.0.0.1:{port}/-/reload")
        assert status == 500
        assert b"job_nme" in body
        metric = "prometheus_config_last_reload_successful"
        assert wait_until(lambda: [r["value"][1] for r in _query(port, metric)] == ["0"], 20)
        proc.signal(signal.SIGHUP)
        time.sleep(1.5)
        assert wait_until(lambda: _query(port, 'up{job="self"}') != [], 20), proc.log()
        assert proc.proc is not None
        assert proc.proc.poll() is None, proc.log()
        (tmp_path / "conf/prometheus.yml").write_text(_config(port))
        status, _ = _post(f"http://127.0.0.1:{port}/-/reload")
        assert status == 200
        assert wait_until(lambda: [r["value"][1] for r in _query(port, metric)] == ["1"], 20)


def test_lifecycle_endpoints_are_refused_unless_enabled(workdir: tuple[Path, int]) -> None:
    tmp_path, port = workdir
    with _start(tmp_path, port):
        status, body = _post(f"http://127.0.0.1:{port}/-/reload")
        assert status == 403
        assert b"Lifecycle API is not enabled." in body
        status, body = _post(f"http://127.0.0.1:{port}/api/v1/admin/tsdb/snapshot")
        assert status == 503
        assert json.loads(body) == {
            "status": "error",
            "errorType": "unavailable",
            "error": "admin APIs disabled",
        }


def test_sigterm_flushes_and_a_restart_serves_the_same_samples(
    workdir: tuple[Path, int],
) -> None:
    tmp_path, port = workdir
    proc = _start(tmp_path, port)
    try:
        assert wait_until(
            lambda: (
                len(_query(port, 'up{job="self"}[1h]')) == 1
                and len(_query(port, 'up{job="self"}[1h]')[0]["values"]) >= 3
            ),
            30,
        )
        before = _query(port, 'up{job="self"}[1h]')[0]["values"]
    finally:
        code = proc.stop()
    assert code == 0, proc.log()
    proc = _start(tmp_path, port)
    try:
        after = _query(port, 'up{job="self"}[1h]')[0]["values"]
        assert after[: len(before)] == before
    finally:
        proc.stop()


def test_kill_9_loses_no_committed_sample(workdir: tuple[Path, int]) -> None:
    tmp_path, port = workdir
    proc = _start(tmp_path, port)
    assert wait_until(
        lambda: (
            len(_query(port, 'up{job="self"}[1h]')) == 1
            and len(_query(port, 'up{job="self"}[1h]')[0]["values"]) >= 3
        ),
        30,
    )
    seen = _query(port, 'up{job="self"}[1h]')[0]["values"]
    proc.kill()
    proc = _start(tmp_path, port)
    try:
        after = _query(port, 'up{job="self"}[1h]')[0]["values"]
        assert after[: len(seen)] == seen
    finally:
        proc.stop()


def test_bad_flags_and_bad_config_refuse_to_start_with_a_clear_reason(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "watchkeeper.cli.main", "server"]
    res = subprocess.run(
        [*run, "--storage.tsdb.retention.time=ten days"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode != 0
    assert "--storage.tsdb.retention.time" in res.stderr
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1x\n")
    res = subprocess.run(
        [*run, f"--web.listen-address=127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode != 0
    assert "prometheus.yml:2" in res.stderr


@pytest.mark.parametrize(
    ("config", "valid"),
    [
        ("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['x:1']}]\n", True),
        ("scrape_configs:\n  - job_name: a\n    scrape_interval: 1x\n", False),
        ("scrape_configs:\n  - job_name: a\n  - job_name: a\n", False),
        ("global:\n  unknown_field: 1\n", False),
        (
            "scrape_configs:\n  - job_name: a\n    scrape_timeout: 20s\n    scrape_interval: 10s\n",
            False,
        ),
    ],
)
def test_check_config_agrees_with_promtool(tmp_path: Path, config: str, valid: bool) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    ours = subprocess.run(
        [sys.executable, "-m", "watchkeeper.cli.main", "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ours.returncode == 0) is valid, ours.stdout + ours.stderr
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not found: run ../shared/peers/fetch-peers.sh to compare")
    theirs = subprocess.run(
        [str(promtool), "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ours.returncode == theirs.returncode, theirs.stdout + theirs.stderr
