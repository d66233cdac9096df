"""The server's flags: Prometheus's names, validated values, and all documented."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from watchkeeper.cli.flags import FlagError, add_server_flags, flags_from_args

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_flags(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_prometheus_defaults() -> None:
    flags = flags_from_args(_parse())
    assert flags.retention_ms == 15 * 24 * 3600 * 1000
    assert flags.lookback_delta_ms == 5 * 60 * 1000
    assert flags.listen_address == "0.0.0.0:9090"
    assert flags.raw["storage.tsdb.retention.time"] == "15d"


def test_sizes_durations_and_features_are_parsed() -> None:
    flags = flags_from_args(
        _parse(
            "--storage.tsdb.retention.size=512MB",
            "--query.timeout=30s",
            "--enable-feature=promql-experimental-functions,made-up",
            "--no-web.enable-lifecycle",
        )
    )
    assert flags.retention_bytes == 512 << 20
    assert flags.query_timeout_ms == 30_000
    assert "promql-experimental-functions" in flags.features
    assert flags.unknown_features == ("made-up",)
    assert flags.enable_lifecycle is False


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--storage.tsdb.retention.time=ten days"], "--storage.tsdb.retention.time"),
        (["--storage.tsdb.retention.size=lots"], "--storage.tsdb.retention.size"),
        (["--web.listen-address=localhost"], "--web.listen-address"),
        (["--query.max-samples=-1"], "--query.max-samples"),
    ],
)
def test_a_bad_value_is_refused_naming_the_flag(argv: list[str], named: str) -> None:
    with pytest.raises(FlagError, match=named):
        flags_from_args(_parse(*argv))


def test_every_flag_is_documented() -> None:
    parser = argparse.ArgumentParser()
    add_server_flags(parser)
    docs = DOCS.read_text(encoding="utf-8")
    missing = [
        a.option_strings[0]
        for a in parser._actions
        if a.option_strings and a.dest != "help" and f"`{a.option_strings[0]}`" not in docs
    ]
    assert not missing, f"flags missing from docs/configuration.md: {missing}"
