from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from watchkeeper.config.sd import FileSDConfig
from watchkeeper.discovery.file import FileProvider
from watchkeeper.discovery.provider import CounterLike, SDMetrics
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Counter, Registry
from watchkeeper.scrape.metrics import sd_metrics


def value(counter: CounterLike) -> float:
    assert isinstance(counter, Counter)
    return counter.value


def make(tmp_path: Path, *patterns: str) -> tuple[FileProvider, SDMetrics]:
    metrics = sd_metrics(Registry())
    cfg = FileSDConfig(files=[str(tmp_path / p) for p in patterns])
    return FileProvider(cfg, metrics, poll_interval_s=0.02), metrics


def bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_json_and_yaml_files_give_groups_with_the_file_path(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        json.dumps(
            [{"targets": ["h1:1", "h2:2"], "labels": {"env": "prod"}}, {"targets": ["h3:3"]}]
        )
    )
    (tmp_path / "b.yml").write_text("- targets: [h4:4]\n  labels: {team: x}\n")
    p, _ = make(tmp_path, "*.json", "*.yml")
    assert p.refresh(force=True)
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.yml")
    assert p.current() == [
        TargetGroup(
            [{"__address__": "h1:1"}, {"__address__": "h2:2"}],
            {"env": "prod", "__meta_filepath": a},
            f"{a}:0",
        ),
        TargetGroup([{"__address__": "h3:3"}], {"__meta_filepath": a}, f"{a}:1"),
        TargetGroup([{"__address__": "h4:4"}], {"team": "x", "__meta_filepath": b}, f"{b}:0"),
    ]


def test_a_broken_file_keeps_its_last_good_groups_and_counts_an_error(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text('[{"targets": ["h1:1"]}]')
    p, metrics = make(tmp_path, "a.json")
    p.refresh(force=True)
    good = p.current()
    f.write_text('[{"targets": ["h1:1"]')
    bump(f)
    assert not p.refresh(force=False)
    assert p.current() == good
    assert value(metrics.file_read_errors) == 1


def test_unknown_fields_and_bad_labels_are_read_errors(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"targets": ["h1:1"], "lables": {}}]')
    (tmp_path / "b.yml").write_text("- targets: [h]\n  labels: {'': x}\n")
    p, metrics = make(tmp_path, "*.json", "*.yml")
    p.refresh(force=True)
    assert p.current() == []
    assert value(metrics.file_read_errors) == 2


def test_a_deleted_file_drops_its_groups(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("- targets: [h1:1]\n")
    p, _ = make(tmp_path, "*.yaml")
    p.refresh(force=True)
    f.unlink()
    assert p.refresh(force=False)
    assert p.current() == []


async def test_changes_are_sent_while_running(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text('[{"targets": ["h1:1"]}]')
    p, _ = make(tmp_path, "*.json")
    sent: list[list[TargetGroup]] = []
    task = asyncio.create_task(p.run(sent.append))
    await asyncio.sleep(0.05)
    f.write_text('[{"targets": ["h1:1", "h2:2"]}]')
    bump(f)
    (tmp_path / "b.json").write_text('[{"targets": ["h3:3"]}]')
    for _ in range(100):
        if sent and sum(len(g.targets) for g in sent[-1]) == 3:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert sum(len(g.targets) for g in sent[-1]) == 3
    assert len(sent[0][0].targets) == 1
