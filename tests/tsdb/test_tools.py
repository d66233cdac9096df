"""The tsdb tools: import, dump, analyze and export, compared with promtool where it runs."""

from __future__ import annotations

import argparse
import io
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.cli import tsdb as tsdb_cli
from watchkeeper.testing.peers import peer_binary
from watchkeeper.tsdb.block import open_blocks
from watchkeeper.tsdb.tools import analyze_block, import_openmetrics, render_report
from watchkeeper.tsdb.tools.importer import ImportInputError
from watchkeeper.tsdb.tools.selector import SelectorError, parse_selector

T0_S = 1_700_000_000


def openmetrics_file(path: Path, hours: int = 5) -> Path:
    rng = np.random.default_rng(0)
    lines = ["# HELP reqs_total Requests.", "# TYPE reqs counter"]
    steps = hours * 240
    for code in ("200", "500"):
        vals = rng.poisson(5, steps).cumsum()
        lines += [
            f'reqs_total{{code="{code}",job="api"}} {v} {T0_S + 15 * i}'
            for i, v in enumerate(vals.tolist())
        ]
    lines.append("# TYPE temp gauge")
    temps = np.round(rng.normal(20, 3, steps), 2)
    lines += [f'temp{{room="a b"}} {v!r} {T0_S + 15 * i}.5' for i, v in enumerate(temps.tolist())]
    lines += ['temp{room="c"} NaN 1700000000', 'temp{room="c"} 1e-07 1700000015', "# EOF"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="watchkeeper")
    tsdb_cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def test_import_cuts_two_hour_blocks_and_keeps_every_sample(tmp_path: Path) -> None:
    dirs = import_openmetrics(openmetrics_file(tmp_path / "in.om"), tmp_path / "data")
    blocks = open_blocks(tmp_path / "data")
    assert len(blocks) == len(dirs) == 3
    assert sum(b.meta.stats.num_samples for b in blocks) == 3 * 5 * 240 + 2
    for b in blocks:
        assert b.meta.min_time_ms // 7_200_000 == (b.meta.max_time_ms - 1) // 7_200_000
        b.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("up 1 1700000000\n", "# EOF"),
        ("up 1\n# EOF\n", "expected timestamp"),
        ("up 1 1700000000\nup{ 2 1700000001\n# EOF\n", ":2:"),
        ("up 1 1700000000\nup 2 1700000000\n# EOF\n", "duplicate sample"),
    ],
)
def test_bad_input_is_rejected_with_its_line_and_writes_nothing(
    tmp_path: Path, body: str, reason: str
) -> None:
    src = tmp_path / "bad.om"
    src.write_text(body)
    with pytest.raises(ImportInputError, match=reason):
        import_openmetrics(src, tmp_path / "data")
    assert not (tmp_path / "data").exists()
    assert run_cli("tsdb", "import", "openmetrics", str(src), str(tmp_path / "data")) == 1


def test_dump_prints_promtool_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.om"
    src.write_text('a_total{x="1"} 1234567 1700000000\na_total{x="1"} 0.5 1700000001.5\n# EOF\n')
    assert run_cli("tsdb", "import", "openmetrics", "--quiet", str(src), str(tmp_path / "d")) == 0
    assert run_cli("tsdb", "dump", str(tmp_path / "d"), "--min-time", "1700000000001") == 0
    assert capsys.readouterr().out == '{__name__="a_total", x="1"} 0.5 1700000001500\n'


@pytest.mark.integration
def test_import_and_dump_agree_with_promtool(tmp_path: Path) -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not found (run ../shared/peers/fetch-peers.sh)")
    src = openmetrics_file(tmp_path / "in.om")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    import_openmetrics(src, ours)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", src, theirs],
        check=True,
        capture_output=True,
    )
    (theirs / "wal").mkdir(exist_ok=True)
    for match in ("{__name__=~'(?s:.*)'}", 'temp{room!="c"}'):
        want = subprocess.run(
            [promtool, "tsdb", "dump", f"--match={match}", theirs],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        out = io.StringIO()
        blocks = open_blocks(ours)
        from watchkeeper.tsdb.tools import dump_samples

        dump_samples(blocks, out, matcher_sets=[parse_selector(match)])
        for b in blocks:
            b.close()
        assert out.getvalue() == want
    want_blocks = subprocess.run(
        [promtool, "tsdb", "list", theirs], check=True, capture_output=True, text=True
    ).stdout.splitlines()[1:]
    ours_blocks = open_blocks(ours)
    assert sorted(
        (int(r.split()[1]), int(r.split()[2]), int(r.split()[4]), int(r.split()[6]))
        for r in want_blocks
    ) == sorted(
        (b.meta.min_time_ms, b.meta.max_time_ms, b.meta.stats.num_samples, b.meta.stats.num_series)
        for b in ours_blocks
    )
    for b in ours_blocks:
        b.close()


@pytest.mark.integration
def test_analyze_agrees_with_promtool(tmp_path: Path) -> None:
    promtool = peer_binary("promtool")
    if promtool is None:
        pytest.skip("promtool not found (run ../shared/peers/fetch-peers.sh)")
    src = openmetrics_file(tmp_path / "in.om", hours=1)
    import_openmetrics(src, tmp_path / "ours", block_duration_ms=4 * 3_600_000)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", src, tmp_path / "theirs"],
        check=True,
        capture_output=True,
    )
    (tmp_path / "theirs" / "wal").mkdir(exist_ok=True)
    want = subprocess.run(
        [promtool, "tsdb", "analyze", tmp_path / "theirs"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    blocks = open_blocks(tmp_path / "ours")
    out = io.StringIO()
    render_report(analyze_block(blocks[0]), out, plain=True)
    blocks[0].close()

    def sections(text: str) -> list[Counter[str]]:
        # Ties come out in random order in promtool; compare each section as a multiset.
        return [Counter(part.splitlines()[1:]) for part in text.split("\n\n")[1:]]

    assert (
        out.getvalue().split("\n\n")[0].splitlines()[1:] == want.split("\n\n")[0].splitlines()[1:]
    )
    assert sections(out.getvalue()) == sections(want)


def test_analyze_prints_rich_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import_openmetrics(openmetrics_file(tmp_path / "in.om", hours=1), tmp_path / "d")
    assert run_cli("tsdb", "analyze", str(tmp_path / "d"), "--limit", "3") == 0
    out = capsys.readouterr().out
    assert "Highest" in out
    assert "reqs_total" in out


def test_export_writes_one_row_per_sample(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import_openmetrics(openmetrics_file(tmp_path / "in.om", hours=1), tmp_path / "d")
    out = tmp_path / "x.parquet"
    assert (
        run_cli("tsdb", "export", "--format", "parquet", str(tmp_path / "d"), "-o", str(out)) == 0
    )
    table = pq.read_table(out)
    assert table.num_rows == 3 * 240 + 2
    assert set(table.column_names) == {"__name__", "code", "job", "room", "timestamp", "value"}


def test_selectors_parse_like_promtool_match_flags() -> None:
    assert [str(m) for m in parse_selector("{__name__=~'(?s:.*)'}")] == ['__name__=~"(?s:.*)"']
    assert [str(m) for m in parse_selector('up{job="a",x!~"b|c",}')] == [
        '__name__="up"',
        'job="a"',
        'x!~"b|c"',
    ]
    with pytest.raises(SelectorError):
        parse_selector("up{job=}")


def test_list_prints_promtools_block_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import_openmetrics(openmetrics_file(tmp_path / "in.om", hours=1), tmp_path / "d")
    assert run_cli("tsdb", "list", str(tmp_path / "d")) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["BLOCK", "ULID", "MIN"]
    assert row.split()[4] == str(3 * 240 + 2)


def test_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("tsdb", "dump", str(tmp_path / "nope")) == 1
    assert "no such directory" in capsys.readouterr().err
