from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from watchkeeper.config.prometheus import (
    check_config_file,
    check_failed,
    load_config,
    parse_config,
)
from watchkeeper.config.yamlsource import ConfigError
from watchkeeper.testing.peers import peer_binary

GOOD: dict[str, str] = {
    "empty": "",
    "empty_global": "global:\n",
    "minimal": """
scrape_configs:
  - job_name: a
    static_configs: [{targets: ["localhost:9090"]}]
""",
    "full_scrape": """
global:
  scrape_interval: 15s
  scrape_timeout: 5s
  evaluation_interval: 30s
  external_labels: {region: eu, replica: "1"}
  body_size_limit: 10MB
  sample_limit: 1000
  label_limit: 30
  label_name_length_limit: 200
  label_value_length_limit: 200
  target_limit: 100
  keep_dropped_targets: 10
  query_log_file: queries.log
scrape_configs:
  - job_name: node
    scrape_interval: 10s
    scrape_timeout: 3s
    scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]
    fallback_scrape_protocol: PrometheusText0.0.4
    metrics_path: /probe
    scheme: https
    params: {module: [http_2xx]}
    honor_labels: true
    honor_timestamps: false
    track_timestamps_staleness: true
    enable_compression: false
    follow_redirects: false
    enable_http2: false
    body_size_limit: 1GB
    sample_limit: 5
    label_limit: 3
    basic_auth: {username: u, password: p}
    tls_config:
      insecure_skip_verify: true
      server_name: example.com
      min_version: TLS12
    proxy_url: http://127.0.0.1:3128
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
      - action: labelmap
        regex: __meta_(.+)
      - action: hashmod
        source_labels: [__address__]
        modulus: 4
        target_label: __tmp_hash
      - action: keep
        source_labels: [__tmp_hash]
        regex: "[0-3]"
    metric_relabel_configs:
      - action: labeldrop
        regex: pod_.*
      - action: lowercase
        source_labels: [job]
        target_label: job_lower
      - action: keepequal
        source_labels: [job]
        target_label: job
    static_configs:
      - targets: ["https://example.com/x"]
        labels: {env: prod}
    file_sd_configs:
      - files: [targets/*.json, "targets/b.yml"]
        refresh_interval: 1m
    http_sd_configs:
      - url: http://127.0.0.1:8080/sd
        refresh_interval: 30s
    dns_sd_configs:
      - names: [_prometheus._tcp.example.com]
      - names: [example.com]
        type: A
        port: 9100
""",
    "authorization": """
scrape_configs:
  - job_name: a
    authorization: {credentials: secret}
""",
    "bearer_token": """
scrape_configs:
  - job_name: a
    bearer_token: abc
""",
    "alerting_remote": """
alerting:
  alert_relabel_configs:
    - action: labeldrop
      regex: replica
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:9093"]}]
      path_prefix: /am
      timeout: 5s
      api_version: v2
remote_write:
  - url: http://127.0.0.1:9201/write
    name: a
    remote_timeout: 10s
    headers: {X-Scope-OrgID: t1}
    write_relabel_configs:
      - action: drop
        source_labels: [__name__]
        regex: go_.*
    queue_config: {capacity: 500, max_shards: 2, batch_send_deadline: 1s}
    metadata_config: {send: false}
remote_read:
  - url: http://127.0.0.1:9201/read
    read_recent: true
    required_matchers: {job: a}
storage:
  tsdb:
    out_of_order_time_window: 10m
tracing:
  endpoint: 127.0.0.1:4317
  client_type: grpc
rule_files: [rules/*.yml]
""",
    "timeout_defaults_to_interval": """
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: a
    scrape_interval: 2s
""",
    "relabel_action_case": """
scrape_configs:
  - job_name: a
    relabel_configs:
      - action: Drop
        source_labels: [x]
""",
    "unused_bad_validation_scheme": """
global:
  metric_name_validation_scheme: ascii
""",
    "utf8_external_label": """
global:
  external_labels: {"service.name": x}
""",
    "oauth2_everywhere": """
scrape_configs:
  - job_name: a
    oauth2:
      client_id: c
      client_secret: s
      token_url: https://auth.example/token
      scopes: [read, write]
      endpoint_params: {audience: api}
      tls_config: {ca_file: ca.pem, insecure_skip_verify: true}
      proxy_url: http://proxy:3128
      no_proxy: localhost
    http_sd_configs:
      - url: http://sd.example/targets
        oauth2: {client_id: c, client_secret_file: secret.txt, token_url: http://auth/t}
alerting:
  alertmanagers:
    - oauth2:
        client_id: c
        token_url: http://auth/t
        proxy_from_environment: true
        proxy_connect_header: {X-Proxy: [v]}
      static_configs: [{targets: ["am:9093"]}]
""",
    "oauth2_jwt_bearer": """
scrape_configs:
  - job_name: a
    oauth2:
      client_id: c
      token_url: http://auth/t
      grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer
      client_certificate_key: k
      signature_algorithm: RS384
""",
}

BAD: dict[str, str] = {
    "timeout_over_interval": """
scrape_configs:
  - job_name: a
    scrape_interval: 5s
    scrape_timeout: 10s
""",
    "global_timeout_over_interval": """
global:
  scrape_interval: 5s
  scrape_timeout: 6s
""",
    "duplicate_job": """
scrape_configs:
  - job_name: a
  - job_name: a
""",
    "unknown_field": """
scrape_configs:
  - job_name: a
    scrape_intervall: 5s
""",
    "unknown_top_level": "foo: 1\n",
    "bad_duration": """
global:
  scrape_interval: 1x
""",
    "missing_job_name": """
scrape_configs:
  - scrape_interval: 5s
""",
    "bad_relabel_action": """
scrape_configs:
  - job_name: a
    relabel_configs:
      - action: explode
""",
    "bad_relabel_regex": """
scrape_configs:
  - job_name: a
    relabel_configs:
      - source_labels: [a]
        regex: "(("
        target_label: b
""",
    "hashmod_without_modulus": """
scrape_configs:
  - job_name: a
    relabel_configs:
      - action: hashmod
        source_labels: [a]
        target_label: b
""",
    "replace_without_target": """
scrape_configs:
  - job_name: a
    metric_relabel_configs:
      - source_labels: [a]
""",
    "labeldrop_with_source": """
scrape_configs:
  - job_name: a
    relabel_configs:
      - action: labeldrop
        source_labels: [a]
        regex: x
""",
    "url_as_static_target": """
scrape_configs:
  - job_name: a
    static_configs: [{targets: ["http://a:1/metrics"]}]
""",
    "two_auth_methods": """
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: p}
    authorization: {credentials: c}
""",
    "password_and_file": """
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: p, password_file: f}
""",
    "authorization_basic": """
scrape_configs:
  - job_name: a
    authorization: {type: Basic, credentials: c}
""",
    "unknown_protocol": """
scrape_configs:
  - job_name: a
    scrape_protocols: [Foo]
""",
    "empty_protocols": """
global:
  scrape_protocols: []
""",
    "bad_fallback_protocol": """
scrape_configs:
  - job_name: a
    fallback_scrape_protocol: Foo
""",
    "bad_file_sd_name": """
scrape_configs:
  - job_name: a
    file_sd_configs: [{files: [targets.txt]}]
""",
    "dns_a_without_port": """
scrape_configs:
  - job_name: a
    dns_sd_configs: [{names: [x.example], type: A}]
""",
    "dns_bad_type": """
scrape_configs:
  - job_name: a
    dns_sd_configs: [{names: [x.example], type: TXT, port: 1}]
""",
    "http_sd_without_url": """
scrape_configs:
  - job_name: a
    http_sd_configs: [{refresh_interval: 1m}]
""",
    "http_sd_bad_scheme": """
scrape_configs:
  - job_name: a
    http_sd_configs: [{url: "ftp://x/sd"}]
""",
    "bad_size": """
global:
  body_size_limit: 10XB
""",
    "negative_sample_limit": """
global:
  sample_limit: -1
""",
    "am_api_v1": """
alerting:
  alertmanagers:
    - api_version: v1
""",
    "remote_write_without_url": """
remote_write:
  - name: x
""",
    "remote_write_authorization_header": """
remote_write:
  - url: http://127.0.0.1/w
    headers: {Authorization: x}
""",
    "remote_write_duplicate_names": """
remote_write:
  - url: http://127.0.0.1/w
    name: a
  - url: http://127.0.0.1/x
    name: a
""",
    "tracing_without_endpoint": """
tracing:
  client_type: http
""",
    "bad_tls_version": """
scrape_configs:
  - job_name: a
    tls_config: {min_version: TLS99}
""",
    "cert_without_key": """
scrape_configs:
  - job_name: a
    tls_config: {cert_file: c.pem}
""",
    "yaml_syntax": "scrape_configs: [\n",
    "duplicate_key": """
global:
  scrape_interval: 5s
  scrape_interval: 6s
""",
    "bad_rule_file_glob": """
rule_files: ["a/*/b/*.yml"]
""",
    "interval_as_number": """
global:
  scrape_interval: 10
""",
    "bad_validation_scheme": """
global:
  metric_name_validation_scheme: ascii
scrape_configs:
  - job_name: a
""",
    "legacy_with_utf8_escaping": """
scrape_configs:
  - job_name: a
    metric_name_validation_scheme: legacy
    metric_name_escaping_scheme: allow-utf-8
""",
    "oauth2_with_basic_auth": """
scrape_configs:
  - job_name: a
    basic_auth: {username: u}
    oauth2: {client_id: c, client_secret: s, token_url: http://auth/t}
""",
    "oauth2_with_authorization": """
scrape_configs:
  - job_name: a
    authorization: {credentials: x}
    oauth2: {client_id: c, client_secret: s, token_url: http://auth/t}
""",
    "oauth2_with_bearer_token": """
scrape_configs:
  - job_name: a
    bearer_token: x
    oauth2: {client_id: c, client_secret: s, token_url: http://auth/t}
""",
    "oauth2_without_client_id": """
scrape_configs:
  - job_name: a
    oauth2: {client_secret: s, token_url: http://auth/t}
""",
    "oauth2_without_token_url": """
scrape_configs:
  - job_name: a
    oauth2: {client_id: c, client_secret: s}
""",
    "oauth2_two_secrets": """
scrape_configs:
  - job_name: a
    oauth2: {client_id: c, client_secret: s, client_secret_file: f, token_url: http://auth/t}
""",
    "oauth2_unknown_field": """
scrape_configs:
  - job_name: a
    oauth2: {client_id: c, token_url: http://auth/t, client_scret: s}
""",
    "oauth2_proxy_header_without_proxy": """
scrape_configs:
  - job_name: a
    oauth2: {client_id: c, token_url: http://auth/t, proxy_connect_header: {A: [b]}}
""",
    "oauth2_proxy_from_environment_and_url": """
alerting:
  alertmanagers:
    - oauth2:
        client_id: c
        token_url: http://auth/t
        proxy_from_environment: true
        proxy_url: http://proxy:3128
""",
    "oauth2_bad_proxy_url": """
scrape_configs:
  - job_name: a
    oauth2: {client_id: c, token_url: http://auth/t, proxy_url: ":nope"}
""",
    "oauth2_jwt_bearer_two_keys": """
scrape_configs:
  - job_name: a
    oauth2:
      client_id: c
      token_url: http://auth/t
      grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer
      client_certificate_key: k
      client_certificate_key_file: k.pem
""",
    "oauth2_jwt_bearer_bad_algorithm": """
scrape_configs:
  - job_name: a
    oauth2:
      client_id: c
      token_url: http://auth/t
      grant_type: urn:ietf:params:oauth:grant-type:jwt-bearer
      signature_algorithm: HS256
""",
}


def write(tmp_path: Path, text: str, name: str = "prometheus.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_configs_load(tmp_path: Path, name: str) -> None:
    load_config(write(tmp_path, GOOD[name]))


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_configs_are_refused_with_the_file_name(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, BAD[name])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


def test_scrape_timeout_defaults_to_the_smaller_of_global_timeout_and_interval() -> None:
    cfg = parse_config(GOOD["timeout_defaults_to_interval"])
    sc = cfg.scrape_configs[0]
    assert (sc.scrape_interval, sc.scrape_timeout) == (2000, 2000)
    assert cfg.global_config.scrape_timeout == 5000


def test_scrape_configs_inherit_global_limits_and_protocols() -> None:
    cfg = parse_config(GOOD["full_scrape"])
    g = cfg.global_config
    assert g.body_size_limit == 10 * 1024 * 1024
    sc = cfg.scrape_configs[0]
    assert sc.body_size_limit == 1 << 30
    assert sc.sample_limit == 5
    assert sc.label_name_length_limit == 200
    assert sc.target_limit == 100
    assert sc.scrape_protocols == ["PrometheusText0.0.4", "OpenMetricsText1.0.0"]


def test_errors_name_the_line_and_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BAD["unknown_field"], "p.yml")
    assert str(info.value) == (
        "p.yml:4: scrape_configs[0].scrape_intervall: field scrape_intervall not found in type"
    )


def test_timeout_over_interval_error_names_the_job_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BAD["timeout_over_interval"], "p.yml")
    assert str(info.value) == (
        "p.yml:3: scrape_configs[0]: scrape timeout greater than scrape interval for scrape "
        'config with job name "a"'
    )


def test_duplicate_job_names_are_refused_at_the_second_one() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BAD["duplicate_job"], "p.yml")
    assert (
        str(info.value)
        == 'p.yml:4: scrape_configs[1].job_name: found multiple scrape configs with job name "a"'
    )


def test_secrets_print_as_secret_and_defaults_are_filled_in() -> None:
    cfg = parse_config(GOOD["full_scrape"] + "\n")
    printed = yaml.safe_load(cfg.as_yaml())
    sc = printed["scrape_configs"][0]
    assert sc["basic_auth"] == {"username": "u", "password": "<secret>"}
    assert sc["scrape_interval"] == "10s"
    assert sc["body_size_limit"] == "1GiB"
    assert printed["global"]["scrape_timeout"] == "5s"
    assert cfg.scrape_configs[0].basic_auth is not None
    assert cfg.scrape_configs[0].basic_auth.password == "p"
    assert "secret" not in parse_config(GOOD["authorization"]).as_yaml().replace("<secret>", "")


def test_bearer_token_becomes_an_authorization_header() -> None:
    sc = parse_config(GOOD["bearer_token"]).scrape_configs[0]
    assert sc.authorization_header() == "Bearer abc"


def test_relative_paths_are_joined_with_the_config_directory(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD["full_scrape"]))
    sc = cfg.scrape_configs[0]
    assert sc.file_sd_configs[0].files[0] == str(tmp_path / "targets/*.json")
    assert cfg.global_config.query_log_file == str(tmp_path / "queries.log")


def test_scrape_config_files_add_jobs(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    write(tmp_path / "jobs", "scrape_configs:\n  - job_name: extra\n", "x.yml")
    cfg = load_config(write(tmp_path, "scrape_config_files: [jobs/*.yml]\n"))
    assert [sc.job_name for sc in cfg.scrape_configs] == ["extra"]
    assert cfg.scrape_configs[0].scrape_interval == 60_000


def test_scrape_config_files_cannot_repeat_a_job(tmp_path: Path) -> None:
    write(tmp_path, "scrape_configs:\n  - job_name: a\n", "x.yml")
    path = write(tmp_path, "scrape_config_files: [x.yml]\nscrape_configs:\n  - job_name: a\n")
    with pytest.raises(ConfigError, match="found multiple scrape configs with job name"):
        load_config(path)


def test_external_labels_expand_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_REGION", "eu-1")
    cfg = parse_config("global:\n  external_labels: {region: $WK_REGION, x: '${WK_NOPE}y'}\n")
    assert cfg.global_config.external_labels == {"region": "eu-1", "x": "y"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("oauth2_with_basic_auth", "at most one of basic_auth, oauth2 & authorization must be"),
        ("oauth2_with_authorization", "at most one of basic_auth, oauth2 & authorization must"),
        ("oauth2_with_bearer_token", "at most one of basic_auth, oauth2, bearer_token & bearer"),
        ("oauth2_without_client_id", "oauth2 client_id must be configured"),
        ("oauth2_without_token_url", "oauth2 token_url must be configured"),
        ("oauth2_two_secrets", "at most one of oauth2 client_secret, client_secret_file & client"),
        ("oauth2_proxy_header_without_proxy", "if proxy_connect_header is configured, proxy_url"),
        ("oauth2_jwt_bearer_bad_algorithm", "valid signature algorithms are RS256, RS384 and RS5"),
    ],
)
def test_oauth2_conflicts_are_refused_with_prometheus_messages(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(BAD[name])


def test_oauth2_relative_paths_are_joined_with_the_config_directory(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD["oauth2_everywhere"]))
    oauth2 = cfg.scrape_configs[0].oauth2
    assert oauth2 is not None
    assert oauth2.tls_config is not None
    assert oauth2.tls_config.ca_file == str(tmp_path / "ca.pem")
    sd_oauth2 = cfg.scrape_configs[0].http_sd_configs[0].oauth2
    assert sd_oauth2 is not None
    assert sd_oauth2.client_secret_file == str(tmp_path / "secret.txt")


def test_check_config_reports_success_and_failure(tmp_path: Path) -> None:
    good = check_config_file(write(tmp_path, GOOD["minimal"]))
    assert not check_failed(good)
    assert good[-1].endswith("is valid prometheus config file syntax")
    bad = check_config_file(write(tmp_path, BAD["duplicate_job"], "bad.yml"))
    assert check_failed(bad)


def test_check_config_refuses_missing_credential_files(tmp_path: Path) -> None:
    path = write(
        tmp_path, "scrape_configs:\n  - job_name: a\n    authorization: {credentials_file: nope}\n"
    )
    assert check_failed(check_config_file(path))


@pytest.mark.integration
@pytest.mark.peers
def test_promtool_accepts_and_refuses_the_same_files(tmp_path: Path) -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (run ../shared/peers/fetch-peers.sh)")
    disagreements = []
    for name, text in [*GOOD.items(), *BAD.items()]:
        path = write(tmp_path, text, f"{name}.yml")
        ours = not check_failed(check_config_file(path))
        proc = subprocess.run(
            [str(promtool), "check", "config", "--syntax-only", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        theirs = proc.returncode == 0
        if ours != theirs:
            disagreements.append(
                f"{name}: ours={ours} promtool={theirs} {proc.stdout}{proc.stderr}"
            )
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_the_printed_config_loads_again_to_the_same_config(name: str) -> None:
    cfg = parse_config(GOOD[name])
    again = parse_config(cfg.as_yaml())
    assert again.as_yaml() == cfg.as_yaml()
