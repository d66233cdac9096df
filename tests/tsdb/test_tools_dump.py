"""`watchkeeper tsdb dump` of blocks and head: read-only, ordered and filtered as promtool."""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.cli import tsdb as tsdb_cli
from watchkeeper.model.labels import Labels
from watchkeeper.model.value import STALE_NAN
from watchkeeper.remote.codec import WRITE_HEADERS, WriteBatch, encode_write_request
from watchkeeper.storage.interface import StorageError
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import free_port
from watchkeeper.tsdb.block import open_blocks
from watchkeeper.tsdb.compact import compact
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.tools import import_openmetrics
from watchkeeper.tsdb.wal import list_segments

T0 = 1_700_000_000_000
Series = tuple[Labels, Sequence[int], Sequence[float]]

# Old samples for blocks (before T0), as OpenMetrics (seconds).
BLOCKS_OM = textwrap.dedent(
    """\
    # TYPE zz gauge
    zz{a="1"} 0.5 1699999000
    # TYPE qq gauge
    qq 7 1699990000
    # EOF
    """
)


def lbls(name: str, **pairs: str) -> Labels:
    return Labels.from_dict({"__name__": name, **pairs})


# Head samples, in the order their series are created (not label order).
HEAD: list[Series] = [
    (lbls("zz", a="1"), [T0, T0 + 15_000], [1.0, 2.0]),
    (lbls("aa", b="2"), [T0, T0 + 15_000], [3.0, math.nan]),
    (lbls("mm"), [T0 + 1], [0.1]),
    (lbls("aa", a="9"), [T0 + 2], [1e-7]),
]


def append(db: TSDB, series: Sequence[Series]) -> None:
    with db.appender() as app:
        refs = app.refs([s[0] for s in series])
        app.append(
            np.concatenate(
                [np.full(len(ts), r, np.uint64) for (_, ts, _), r in zip(series, refs, strict=True)]
            ),
            np.asarray([t for _, ts, _ in series for t in ts], np.int64),
            np.asarray([v for _, _, vs in series for v in vs], np.float64),
        )


def write_ours(path: Path, head: Sequence[Series], *, blocks_om: str | None = None) -> Path:
    """Our data directory: blocks imported from OpenMetrics, then head samples in the WAL."""
    if blocks_om is not None:
        (path.parent / "blocks.om").write_text(blocks_om)
        import_openmetrics(path.parent / "blocks.om", path)
    db = TSDB.open(path)
    append(db, head)
    db.close()
    return path


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="watchkeeper")
    tsdb_cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def dump(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> str:
    assert run_cli("tsdb", "dump", *flags, str(path)) == 0
    return capsys.readouterr().out


def tree_hashes(path: Path) -> dict[str, str]:
    """Every file and directory under `path`, with the hash of each file's bytes."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), path)] = "dir"
        for f in files:
            full = os.path.join(root, f)
            out[os.path.relpath(full, path)] = hashlib.sha256(Path(full).read_bytes()).hexdigest()
    return out


def test_dump_prints_head_samples_in_creation_order_when_there_are_no_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_ours(tmp_path / "data", HEAD)
    assert dump(capsys, data) == textwrap.dedent(
        """\
        {__name__="zz", a="1"} 1 1700000000000
        {__name__="zz", a="1"} 2 1700000015000
        {__name__="aa", b="2"} 3 1700000000000
        {__name__="aa", b="2"} NaN 1700000015000
        {__name__="mm"} 0.1 1700000000001
        {__name__="aa", a="9"} 1e-07 1700000000002
        """
    )


def test_dump_merges_blocks_and_head_once_each_in_label_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_ours(tmp_path / "data", HEAD, blocks_om=BLOCKS_OM)
    assert dump(capsys, data) == textwrap.dedent(
        """\
        {__name__="aa", a="9"} 1e-07 1700000000002
        {__name__="aa", b="2"} 3 1700000000000
        {__name__="aa", b="2"} NaN 1700000015000
        {__name__="mm"} 0.1 1700000000001
        {__name__="qq"} 7 1699990000000
        {__name__="zz", a="1"} 0.5 1699999000000
        {__name__="zz", a="1"} 1 1700000000000
        {__name__="zz", a="1"} 2 1700000015000
        """
    )


def test_dump_merges_head_series_into_every_batch_of_block_series(tmp_path: Path) -> None:
    """Block series are read 2048 at a time; head series join the batch their labels fall in."""
    from watchkeeper.tsdb.tools.dump import iter_dump_series

    in_blocks, in_head = range(0, 6000, 2), range(5999, -1, -3)
    om = ["# TYPE m gauge"] + [f'm{{i="{i:04d}"}} {i} 1699999000' for i in in_blocks]
    data = write_ours(
        tmp_path / "data",
        [(lbls("m", i=f"{i:04d}"), [T0], [float(-i)]) for i in in_head],
        blocks_om="\n".join([*om, "# EOF", ""]),
    )
    db = TSDB.open_read_only(data)
    try:
        with db.blocks_in_range(-(1 << 63), (1 << 63) - 1) as blocks:
            batches = list(iter_dump_series(blocks, db.head, [[]], -(1 << 63), (1 << 63) - 1))
    finally:
        db.close()
    assert len(batches) > 1
    got = [(s.labels[i], s.series(i)[1].tolist()) for s in batches for i in range(len(s))]
    numbers = sorted(set(in_blocks) | set(in_head))
    assert [g[0] for g in got] == [lbls("m", i=f"{i:04d}") for i in numbers]
    for (_, ts), i in zip(got, numbers, strict=True):
        assert ts == [1_699_999_000_000] * (i % 2 == 0) + [T0] * (i % 3 == 2)


def test_match_and_time_flags_select_series_and_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_ours(tmp_path / "data", HEAD, blocks_om=BLOCKS_OM)
    # Only the head is in range: one selector keeps promtool's unsorted head order...
    assert dump(capsys, data, "--min-time", str(T0), "--max-time", str(T0 + 1)) == (
        '{__name__="zz", a="1"} 1 1700000000000\n'
        '{__name__="aa", b="2"} 3 1700000000000\n'
        '{__name__="mm"} 0.1 1700000000001\n'
    )
    # ...two selectors are merged in label order, a series matched by both printed once.
    assert dump(
        capsys, data, "--min-time", str(T0), "--match", "zz", "--match", '{__name__=~"zz|a.*"}'
    ) == textwrap.dedent(
        """\
        {__name__="aa", a="9"} 1e-07 1700000000002
        {__name__="aa", b="2"} 3 1700000000000
        {__name__="aa", b="2"} NaN 1700000015000
        {__name__="zz", a="1"} 1 1700000000000
        {__name__="zz", a="1"} 2 1700000015000
        """
    )
    assert dump(capsys, data, "--max-time", str(T0 - 1)) == (
        '{__name__="qq"} 7 1699990000000\n{__name__="zz", a="1"} 0.5 1699999000000\n'
    )
    assert dump(capsys, data, "--match", 'zz{a="1"}', "--min-time", "1699999000000") == (
        '{__name__="zz", a="1"} 0.5 1699999000000\n'
        '{__name__="zz", a="1"} 1 1700000000000\n'
        '{__name__="zz", a="1"} 2 1700000015000\n'
    )
    assert dump(capsys, data, "--match", "nothing_here") == ""


def test_dump_openmetrics_prints_names_bare_seconds_and_eof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = Labels.from_dict({"__name__": "my.metric", "lab.el": 'C:\\d\n"q" ü', "ok": "1"})
    data = write_ours(
        tmp_path / "data",
        [(odd, [T0, T0 + 1], [math.inf, STALE_NAN]), (lbls("up"), [T0 + 999], [-0.0])],
    )
    assert run_cli("tsdb", "dump-openmetrics", str(data)) == 0
    assert capsys.readouterr().out == textwrap.dedent(
        """\
        my.metric{lab.el="C:\\\\d\\n\\"q\\" ü",ok="1"} +Inf 1700000000.000
        my.metric{lab.el="C:\\\\d\\n\\"q\\" ü",ok="1"} NaN 1700000000.001
        up{} -0 1700000000.999
        # EOF
        """
    )


def test_dump_changes_nothing_in_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_ours(tmp_path / "data", HEAD, blocks_om=BLOCKS_OM)
    # What a writable open would repair or remove: a torn WAL tail, a leftover block, and
    # blocks already compacted into another one.
    last = data / "wal" / f"{list_segments(data / 'wal')[-1]:08d}"
    with last.open("ab") as f:
        f.write(b"\x01\x00\x00")
    (data / "01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp-for-creation").mkdir()
    parents = open_blocks(data)
    compact(parents, data)
    for b in parents:
        b.close()
    before = tree_hashes(data)
    assert run_cli("tsdb", "dump", str(data)) == 0
    out, err = capsys.readouterr()
    assert out == dump(capsys, write_ours(tmp_path / "clean", HEAD, blocks_om=BLOCKS_OM))
    assert f"WAL {last} is damaged at offset" in err
    assert run_cli("tsdb", "dump-openmetrics", "--match", "zz", str(data)) == 0
    assert tree_hashes(data) == before


def test_a_damaged_block_is_an_error_that_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_ours(tmp_path / "data", HEAD, blocks_om=BLOCKS_OM)
    meta = next(data.glob("*/meta.json"))
    meta.write_text("{")
    before = tree_hashes(data)
    assert run_cli("tsdb", "dump", str(data)) == 1
    assert str(meta.parent) in capsys.readouterr().err
    assert tree_hashes(data) == before


def test_read_only_open_refuses_writes_and_never_creates_the_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such directory"):
        TSDB.open_read_only(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    data = write_ours(tmp_path / "data", HEAD)
    db = TSDB.open_read_only(data)
    try:
        with pytest.raises(StorageError, match="read-only"):
            db.appender()
        with pytest.raises(StorageError, match="read-only"):
            db.delete_series([], 0, T0)
        assert db.maintenance().head_blocks == []
        with db.querier(T0, T0) as q:
            assert q.select([]).sample_count == 2
    finally:
        db.close()
    assert not (data / "lock").exists()


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from pathlib import Path
    from watchkeeper.model.labels import Labels
    from watchkeeper.tsdb.db import TSDB

    db = TSDB.open(Path(sys.argv[1]))
    series = [Labels.from_dict({"__name__": "m", "i": str(i)}) for i in (3, 1, 2)]
    with db.appender() as app:
        refs = app.refs(series)
        app.append(refs, np.full(3, 1000, np.int64), np.asarray([3.0, 1.0, 2.0]))
    print("ok", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.integration
def test_dump_reads_the_wal_of_a_live_and_then_a_killed_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)], stdout=subprocess.PIPE, text=True
    )
    want = (
        '{__name__="m", i="3"} 3 1000\n{__name__="m", i="1"} 1 1000\n{__name__="m", i="2"} 2 1000\n'
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ok\n"
        # The writer holds the directory's lock: a read-only dump still works.
        before = tree_hashes(data)
        assert dump(capsys, data) == want
        assert tree_hashes(data) == before
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert not any(p.name[0].isdigit() for p in data.iterdir() if p.name != "wal")
    before = tree_hashes(data)
    assert dump(capsys, data) == want
    assert tree_hashes(data) == before


# Differential: the same samples in a real Prometheus and in our TSDB, dumped by both.


def _remote_write(url: str, series: Sequence[Series]) -> None:
    req = urllib.request.Request(
        f"{url}/api/v1/write",
        data=encode_write_request(WriteBatch.from_series(list(series))),
        headers=WRITE_HEADERS,
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            pytest.fail("prometheus did not become ready")
        time.sleep(0.1)


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    """A directory the real Prometheus wrote: blocks from promtool, the head by remote write."""
    prometheus, promtool = peer_binary("prometheus"), peer_binary("promtool")
    if prometheus is None or promtool is None:
        pytest.skip("prometheus/promtool not found (run ../shared/peers/fetch-peers.sh)")
    data = tmp_path / "theirs"
    (tmp_path / "blocks.om").write_text(BLOCKS_OM)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", tmp_path / "blocks.om", data],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        _remote_write(f"http://127.0.0.1:{port}", HEAD)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return data


@pytest.mark.integration
@pytest.mark.peers
def test_dump_agrees_with_promtool_on_the_same_blocks_and_head(
    tmp_path: Path, prometheus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    promtool = peer_binary("promtool")
    assert promtool is not None
    ours = write_ours(tmp_path / "ours", HEAD, blocks_om=BLOCKS_OM)
    cases = [
        (),
        ("--min-time", str(T0)),
        ("--min-time", str(T0), "--max-time", str(T0 + 1)),
        ("--max-time", str(T0 - 1)),
        ("--min-time", "1699999000000", "--max-time", str(T0)),
        ("--match", "zz", "--match", '{__name__=~"a.*"}', "--min-time", str(T0)),
        ("--match", '{__name__=~"a.*|mm"}', "--min-time", str(T0)),
        ("--match", 'zz{a="1"}'),
    ]
    for command in ("dump", "dump-openmetrics"):
        for flags in cases:
            want = subprocess.run(
                [promtool, "tsdb", command, *flags, prometheus_dir],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            assert run_cli("tsdb", command, *flags, str(ours)) == 0
            assert capsys.readouterr().out == want, (command, flags)
