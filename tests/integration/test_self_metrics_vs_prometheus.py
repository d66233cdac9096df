"""Our /metrics against Prometheus 3.5's, both running the same configuration.

Both servers scrape themselves (one static job, one file_sd job), evaluate a recording and an
alerting rule, and send alerts to an Alertmanager on a closed port. Every metric family
Prometheus exposes for the compared subsystems must be on ours with the same type, help text
and label names, unless it is listed below with the reason it is not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port, http_get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.peers]

NOT_COMPARED = re.compile(r"^(go_|net_conntrack_|promhttp_)")
"""Families of Go's runtime and of Go libraries, which a Python server cannot have."""

ABSENT_FEATURES: dict[str, str] = {
    "prometheus_sd_file_watcher_errors_total": "file SD polls files; there is no inotify watcher",
    "prometheus_sd_kubernetes_events_total": "no Kubernetes service discovery",
    "prometheus_sd_kubernetes_failures_total": "no Kubernetes service discovery",
    "prometheus_sd_linode_failures_total": "no Linode service discovery",
    "prometheus_treecache_watcher_goroutines": "no ZooKeeper (serverset, nerve) discovery",
    "prometheus_treecache_zookeeper_failures_total": "no ZooKeeper (serverset, nerve) discovery",
    "prometheus_target_scrape_pool_symboltable_items": "no Go label-string symbol table",
    "prometheus_target_scrapes_exceeded_native_histogram_bucket_limit_total": (
        "no native histograms"
    ),
    "prometheus_target_scrapes_exemplar_out_of_order_total": "exemplars are not stored",
    "prometheus_tsdb_exemplar_exemplars_appended_total": "exemplars are not stored",
    "prometheus_tsdb_exemplar_exemplars_in_storage": "exemplars are not stored",
    "prometheus_tsdb_exemplar_last_exemplars_timestamp_seconds": "exemplars are not stored",
    "prometheus_tsdb_exemplar_max_exemplars": "exemplars are not stored",
    "prometheus_tsdb_exemplar_out_of_order_exemplars_total": "exemplars are not stored",
    "prometheus_tsdb_exemplar_series_with_exemplars_in_storage": "exemplars are not stored",
    "prometheus_tsdb_head_chunks_created_total": "the head keeps sample arrays, not chunks",
    "prometheus_tsdb_head_chunks_removed_total": "the head keeps sample arrays, not chunks",
    "prometheus_tsdb_head_chunks_storage_size_bytes": "no chunks_head directory",
    "prometheus_tsdb_mmap_chunk_corruptions_total": "no memory-mapped head chunks",
    "prometheus_tsdb_mmap_chunks_total": "no memory-mapped head chunks",
    "prometheus_tsdb_isolation_high_watermark": "no append-ID isolation",
    "prometheus_tsdb_isolation_low_watermark": "no append-ID isolation",
    "prometheus_tsdb_snapshot_replay_error_total": "no chunk snapshot on shutdown",
    "prometheus_tsdb_compaction_chunk_range_seconds": (
        "blocks are written as column-compressed pages, not per-series XOR chunks"
    ),
    "prometheus_tsdb_compaction_chunk_samples": (
        "blocks are written as column-compressed pages, not per-series XOR chunks"
    ),
    "prometheus_tsdb_compaction_chunk_size_bytes": (
        "blocks are written as column-compressed pages, not per-series XOR chunks"
    ),
    "prometheus_tsdb_wal_completed_pages_total": "WAL records are written whole, not in pages",
    "prometheus_tsdb_wal_page_flushes_total": "WAL records are written whole, not in pages",
    "prometheus_tsdb_wal_record_part_writes_total": "WAL records are never split into parts",
    "prometheus_tsdb_wal_record_parts_bytes_written_total": (
        "WAL records are never split into parts"
    ),
}
"""Families of Prometheus features Watchkeeper does not have, with the reason."""

NOT_YET: dict[str, str] = {
    "prometheus_remote_storage_samples_in_total": "remote/ exports no self-metrics yet",
    "prometheus_remote_storage_exemplars_in_total": "remote/ exports no self-metrics yet",
    "prometheus_remote_storage_histograms_in_total": "remote/ exports no self-metrics yet",
    "prometheus_remote_storage_highest_timestamp_in_seconds": (
        "remote/ exports no self-metrics yet"
    ),
    "prometheus_remote_storage_string_interner_zero_reference_releases_total": (
        "remote/ exports no self-metrics yet"
    ),
    "prometheus_remote_read_handler_queries": "remote/ exports no self-metrics yet",
    "prometheus_tsdb_wal_record_bytes_saved_total": (
        "WAL records are compressed but the saving is not measured yet"
    ),
    "prometheus_tsdb_checkpoint_deletions_failed_total": (
        "a failed removal of old checkpoints counts as a failed checkpoint creation"
    ),
}
"""Families of things Watchkeeper does, whose metric is still missing."""

KNOWN_LABEL_DIFFERENCES: dict[str, str] = {}
"""Families whose label names still differ, with the reason."""

KNOWN_HELP_DIFFERENCES: dict[str, str] = {}
"""Families whose help text differs on purpose, with the reason."""


@dataclass
class Family:
    """One metric family as an exposition shows it."""

    type: str = ""
    help: str = ""
    label_names: set[str] = field(default_factory=set)
    samples: dict[str, float] = field(default_factory=dict)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
_LABEL_NAME = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')
_SUFFIXES = ("_bucket", "_sum", "_count")


def parse_families(text: str) -> dict[str, Family]:
    """Families by name, with their type, help, label names (not `le`) and samples."""
    families: dict[str, Family] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            families.setdefault(name, Family()).help = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            families.setdefault(name, Family()).type = kind
        elif line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, line
            series_name, labels, value = match.groups()
            family = families.get(series_name)
            if family is None:
                base = next(
                    series_name.removesuffix(s) for s in (*_SUFFIXES, "") if series_name.endswith(s)
                )
                family = families[base]
            family.label_names |= set(_LABEL_NAME.findall(labels or "")) - {"le"}
            family.samples[series_name + (labels or "")] = float(value)
    return families


CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{closed_port}"]}}]
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: filesd
    file_sd_configs: [{{files: [targets.json]}}]
"""

RULES = """
groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: AlwaysFiring
        expr: vector(1) > 0
        annotations: {summary: "value {{ $value }}"}
"""


def _prepare(workdir: Path, port: int, closed_port: int) -> None:
    workdir.mkdir()
    (workdir / "prometheus.yml").write_text(CONFIG.format(port=port, closed_port=closed_port))
    (workdir / "targets.json").write_text(f'[{{"targets": ["127.0.0.1:{port}"]}}]')
    (workdir / "rules.yml").write_text(RULES)


def _families(port: int) -> dict[str, Family]:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return parse_families(body.decode())


def _value(families: dict[str, Family], series: str) -> float:
    name = series.partition("{")[0]
    base = next(name.removesuffix(s) for s in (*_SUFFIXES, "") if name.endswith(s))
    return families[base].samples[series]


def _settled(port: int) -> bool:
    """True once rules ran a few times and targets were scraped a few times (after SD's 5 s)."""
    families = _families(port)
    rules = families.get("prometheus_rule_group_iterations_total")
    scrapes = families.get("prometheus_target_interval_length_seconds")
    return (
        rules is not None
        and any(v >= 4 for v in rules.samples.values())
        and scrapes is not None
        and any(
            n.startswith("prometheus_target_interval_length_seconds_count") and v >= 2
            for n, v in scrapes.samples.items()
        )
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Family], dict[str, Family]]:
    """Prometheus's and our /metrics after both ran the same configuration for a few seconds."""
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("the reference prometheus binary is not installed (../shared/peers)")
    root = tmp_path_factory.mktemp("self-metrics")
    closed_port = free_port()
    ports = {"prometheus": free_port(), "watchkeeper": free_port()}
    procs: list[ServerProcess] = []
    try:
        for name, port in ports.items():
            workdir = root / name
            _prepare(workdir, port, closed_port)
            args = [
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ]
            command = [str(binary)] if name == "prometheus" else None
            proc = ServerProcess(args if command else ["server", *args], workdir, command=command)
            procs.append(proc.start())
        for proc, port in zip(procs, ports.values(), strict=True):
            proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
        for proc, port in zip(procs, ports.values(), strict=True):
            assert wait_until(lambda port=port: _settled(port), timeout_s=30), proc.log()
        return _families(ports["prometheus"]), _families(ports["watchkeeper"])
    finally:
        for proc in procs:
            proc.stop()


def test_every_prometheus_family_is_exposed_or_listed_with_a_reason(
    both: tuple[dict[str, Family], dict[str, Family]],
) -> None:
    theirs, ours = both
    expected = {n for n in theirs if not NOT_COMPARED.match(n)}
    missing = expected - set(ours) - set(ABSENT_FEATURES) - set(NOT_YET)
    assert not missing, f"families Prometheus exposes and we do not: {sorted(missing)}"
    listed_but_present = (set(ABSENT_FEATURES) | set(NOT_YET)) & set(ours)
    assert not listed_but_present, f"drop these from the lists: {sorted(listed_but_present)}"


def test_shared_families_have_the_same_type_help_and_label_names(
    both: tuple[dict[str, Family], dict[str, Family]],
) -> None:
    theirs, ours = both
    differences: list[str] = []
    for name in sorted(set(theirs) & set(ours)):
        if NOT_COMPARED.match(name):
            continue
        mine, reference = ours[name], theirs[name]
        if mine.type != reference.type:
            differences.append(f"{name}: type {mine.type} != {reference.type}")
        if mine.help != reference.help and name not in KNOWN_HELP_DIFFERENCES:
            differences.append(f"{name}: help {mine.help!r} != {reference.help!r}")
        # A family without samples shows no labels; compare when both have some.
        if (
            mine.samples
            and reference.samples
            and mine.label_names != reference.label_names
            and name not in KNOWN_LABEL_DIFFERENCES
        ):
            differences.append(f"{name}: labels {mine.label_names} != {reference.label_names}")
    assert not differences, "\n".join(differences)


def test_rule_summaries_export_prometheus_quantiles_with_values(
    both: tuple[dict[str, Family], dict[str, Family]],
) -> None:
    theirs, ours = both
    for name in (
        "prometheus_rule_evaluation_duration_seconds",
        "prometheus_rule_group_duration_seconds",
        "prometheus_engine_query_duration_seconds",
        "prometheus_sd_file_scan_duration_seconds",
        "prometheus_tsdb_wal_fsync_duration_seconds",
    ):
        quantile_series = {s for s in theirs[name].samples if "quantile=" in s}
        assert quantile_series <= set(ours[name].samples), name
        assert "quantile" in ours[name].label_names, name
    for q in ("0.5", "0.9", "0.99"):
        value = _value(ours, f'prometheus_rule_evaluation_duration_seconds{{quantile="{q}"}}')
        assert 0 < value < 1, "a rule evaluation takes well under a second"
    median = _value(ours, 'prometheus_rule_group_duration_seconds{quantile="0.5"}')
    assert not math.isnan(median)


def test_values_describe_what_the_server_did(
    both: tuple[dict[str, Family], dict[str, Family]],
) -> None:
    _, ours = both
    group = 'rule_group="rules.yml;g"'
    assert _value(ours, f"prometheus_rule_group_last_rule_duration_sum_seconds{{{group}}}") > 0
    assert _value(ours, f"prometheus_rule_group_last_restore_duration_seconds{{{group}}}") >= 0
    assert _value(ours, "prometheus_template_text_expansions_total") >= 1, "the annotation"
    assert _value(ours, "prometheus_sd_file_mtime_seconds" + '{filename="targets.json"}') > 1e9
    assert _value(ours, 'prometheus_target_metadata_cache_entries{scrape_job="self"}') > 10
    assert _value(ours, 'prometheus_target_sync_failed_total{scrape_job="filesd"}') == 0
    assert _value(ours, 'prometheus_engine_query_duration_seconds_count{slice="inner_eval"}') >= 8
    assert _value(ours, "prometheus_engine_query_samples_total") > 0
    assert _value(ours, 'prometheus_http_requests_total{code="200",handler="/metrics"}') >= 2
    assert _value(ours, "prometheus_tsdb_clean_start") == 1
    assert _value(ours, "process_max_fds") > 0
